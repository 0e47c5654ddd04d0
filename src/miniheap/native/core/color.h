/*
 * color.h: references, views and colours.
 *
 * A reference (mh_ref) is the address of an object header in one *view* of
 * the heap. The embedder maps the same physical memory at every view base,
 * so a reference can be dereferenced as it is, whatever its view: that is
 * what multi-mapping buys, and the collector relies on it (ref_addr never
 * masks anything).
 *
 * Single view: one base; offset = ref - base; there is no colour.
 * Coloured (ZGC, JDK 11-17): three bases, each a single bit above the heap
 * size (1<<42 Marked0, 1<<43 Marked1, 1<<44 Remapped). The bits below the
 * lowest base are the offset; the base bit present in a reference is its
 * colour. At any time one colour is "good"; a reference holding any other
 * colour bit is stale and the load barrier must fix it before use. The test
 * for that is ZGC's: ref & bad_mask, one AND and a branch; null passes.
 */
#ifndef MH_COLOR_H
#define MH_COLOR_H

#include <stdint.h>
#include "miniheap.h"

typedef struct mh_views {
    int colored;
    uint64_t base[3];       /* single view: base[0] only */
    uint64_t offset_mask;   /* coloured: the bits below the lowest base */
    uint64_t color_mask;    /* coloured: the three base bits together */
    uint64_t bad_mask;      /* colour bits that make a reference stale now (0 in single view) */
    int good;               /* MH_COLOR_*; MH_COLOR_NONE in single view */
} mh_views;

static inline void views_set_good(mh_views *v, int color)
{
    if (!v->colored)
        return;
    v->good = color;
    v->bad_mask = v->color_mask & ~v->base[color];
}

static inline uint64_t ref_offset(const mh_views *v, mh_ref r)
{
    return v->colored ? (r & v->offset_mask) : (r - v->base[0]);
}

/* MH_COLOR_* for a well-formed reference, -1 for a bit pattern that names no view. */
static inline int ref_color(const mh_views *v, mh_ref r)
{
    if (!v->colored)
        return MH_COLOR_NONE;
    uint64_t bits = r & ~v->offset_mask;
    for (int c = 0; c < 3; c++)
        if (bits == v->base[c])
            return c;
    return -1;
}

static inline mh_ref ref_make(const mh_views *v, uint64_t offset, int color)
{
    return v->colored ? (v->base[color] | offset) : (v->base[0] + offset);
}

static inline mh_ref ref_good(const mh_views *v, uint64_t offset)
{
    return ref_make(v, offset, v->colored ? v->good : 0);
}

static inline int ref_is_stale(const mh_views *v, mh_ref r)
{
    return (r & v->bad_mask) != 0;
}

/* Dereference. Every load or store through a reference goes through here
 * (nobody masks or shifts a reference by hand), so that a layout that keeps
 * the colour outside the address (JDK 21's generational ZGC: colour in the
 * low 16 bits, address = base + (ref >> 16)) changes only this function.
 * With multi-mapped views the address IS the reference, in whichever view
 * it names: the views are what make that true. */
static inline void *ref_addr(const mh_views *v, mh_ref r)
{
    (void)v;
    return (void *)(uintptr_t)r;
}

/* Address of a heap offset, for walking spaces linearly (any view would do;
 * the Remapped view is used so walks never depend on the current colour). */
static inline void *view_addr(const mh_views *v, uint64_t offset)
{
    return (void *)(uintptr_t)((v->colored ? v->base[MH_COLOR_REMAPPED] : v->base[0]) + offset);
}

#endif
