/*
 * color.h: references, views and colours.
 *
 * A reference (mh_ref) names an object header. How it encodes the object's
 * address and its colour is the layout's business, and this file is the only
 * one that knows it: everybody dereferences through ref_addr, tests colours
 * through ref_is_stale / ref_color and builds references with ref_make /
 * ref_good. Three layouts (mh_config.colored):
 *
 * MH_VIEWS_ONE (0), serial: one view at base[0]; a reference is the
 *   object's address, offset = ref - base; no colour.
 *
 * MH_VIEWS_MULTI (1), ZGC as in JDK 11-23 (non-generational): three views,
 *   each based at a single bit above the heap (1<<42 Marked0, 1<<43 Marked1,
 *   1<<44 Remapped for small heaps). A reference is an address in the view of
 *   its colour: colour bit | offset. The embedder maps the same memory at all
 *   three bases, so a reference of any colour can be dereferenced as it is.
 *
 * MH_VIEWS_LOW_BITS (2), ZGC as in JDK 21+ (generational ZGC's pointer
 *   layout): ONE view at the heap base bit (1<<42 for small heaps, where JDK
 *   25 maps its heap); the reference is that address shifted left by 16 with
 *   the colour in the 16 low bits:  ref = (base | offset) << 16 | colour bit.
 *   The colour bits are bits 12, 13 and 14 (Marked0, Marked1, Remapped): JDK
 *   21 keeps the bits its load barrier tests (its four Remapped bits) at
 *   12-15. A reference is no address: it must be decoded, address = ref >> 16.
 *
 * At any time one colour is "good"; a reference holding any other colour bit
 * is stale and the load barrier must fix it before use. The test is ZGC's in
 * both coloured layouts: ref & bad_mask, one AND and a branch; null passes.
 *
 * The uniform form the code below uses: a reference is
 *     ref_base | color_bit[c] | offset << shift
 * with meta_mask the bits that are not the offset's; address = ref >> shift
 * (shift 0: the reference is the address).
 */
#ifndef MH_COLOR_H
#define MH_COLOR_H

#include <stdint.h>
#include "miniheap.h"

typedef struct mh_views {
    int colored;            /* MH_VIEWS_*: references carry a colour unless MH_VIEWS_ONE */
    unsigned shift;         /* address = ref >> shift (16 with the colour in the low bits) */
    uint64_t base[3];       /* the view bases; one view: base[0] (== base[1] == base[2]) */
    uint64_t offset_mask;   /* coloured: the offset's bits of an address (below the lowest base) */
    uint64_t color_bit[3];  /* coloured: the bit each colour sets in a reference */
    uint64_t color_mask;    /* coloured: the three colour bits together */
    uint64_t meta_mask;     /* coloured: the bits of a reference that are not its offset */
    uint64_t ref_base;      /* coloured: the bits every reference has (base << 16 in the low-bits layout) */
    uint64_t bad_mask;      /* colour bits that make a reference stale now (0 in one uncoloured view) */
    int good;               /* MH_COLOR_*; MH_COLOR_NONE in one uncoloured view */
    int access;             /* coloured: the view the collector walks spaces through (view_addr) */
    int verify;             /* verify-views: only the good view is accessible (zgc/zviews.c) */
} mh_views;

/* Fill the colour encoding of a layout from its view bases (heap.c). */
static inline void views_init(mh_views *v, int colored, const uint64_t base[3])
{
    *v = (mh_views){.colored = colored, .good = MH_COLOR_NONE};
    if (colored == MH_VIEWS_ONE) {
        v->base[0] = v->base[1] = v->base[2] = base[0];
        return;
    }
    if (colored == MH_VIEWS_MULTI) {
        uint64_t lowest = UINT64_MAX;
        for (int c = 0; c < 3; c++) {
            v->base[c] = v->color_bit[c] = base[c];
            if (base[c] < lowest)
                lowest = base[c];
        }
        v->offset_mask = lowest - 1;
        v->meta_mask = ~v->offset_mask;
    } else { /* MH_VIEWS_LOW_BITS */
        v->shift = MH_LOW_BITS_SHIFT;
        v->base[0] = v->base[1] = v->base[2] = base[0];
        v->offset_mask = base[0] - 1;
        for (int c = 0; c < 3; c++)
            v->color_bit[c] = MH_LOW_BITS_COLOR0 << c;
        v->ref_base = base[0] << v->shift;
        v->meta_mask = ~(v->offset_mask << v->shift);
    }
    v->color_mask = v->color_bit[0] | v->color_bit[1] | v->color_bit[2];
}

/* How many views are mapped: three only when they are multi-mapped. */
static inline int views_count(const mh_views *v) { return v->colored == MH_VIEWS_MULTI ? 3 : 1; }

static inline void views_set_good(mh_views *v, int color)
{
    if (!v->colored)
        return;
    v->good = color;
    v->bad_mask = v->color_mask & ~v->color_bit[color];
    /* Remapped never changes colour, so walks need not care which phase runs; under
     * verify-views the other views are closed, and walks go through the one that is open. */
    v->access = v->verify ? color : MH_COLOR_REMAPPED;
}

static inline uint64_t ref_offset(const mh_views *v, mh_ref r)
{
    return v->colored ? (r & ~v->meta_mask) >> v->shift : r - v->base[0];
}

/* MH_COLOR_* for a well-formed reference, -1 for a bit pattern that names no view. */
static inline int ref_color(const mh_views *v, mh_ref r)
{
    if (!v->colored)
        return MH_COLOR_NONE;
    uint64_t meta = r & v->meta_mask;
    for (int c = 0; c < 3; c++)
        if (meta == (v->ref_base | v->color_bit[c]))
            return c;
    return -1;
}

static inline mh_ref ref_make(const mh_views *v, uint64_t offset, int color)
{
    return v->colored ? v->ref_base | v->color_bit[color] | offset << v->shift : v->base[0] + offset;
}

static inline mh_ref ref_good(const mh_views *v, uint64_t offset)
{
    return ref_make(v, offset, v->colored ? v->good : 0);
}

static inline int ref_is_stale(const mh_views *v, mh_ref r)
{
    return (r & v->bad_mask) != 0;
}

/* Dereference: the one decode. Every load or store through a reference goes
 * through here (nobody masks or shifts a reference by hand; the inline fast
 * path's mh_obj is the same formula, from the mutator record). With
 * multi-mapped views the address IS the reference, in whichever view it
 * names (shift 0): the views are what make that true. With the colour in the
 * low bits the shift strips it: JDK 21's uncolouring, (ref >> 16). */
static inline void *ref_addr(const mh_views *v, mh_ref r)
{
    return (void *)(uintptr_t)(r >> v->shift);
}

/* The offset of an address in any view (an allocation buffer's top). */
static inline uint64_t addr_offset(const mh_views *v, uint64_t address)
{
    return v->colored ? address & v->offset_mask : address - v->base[0];
}

/* The base of the view addresses are handed out in (the allocation buffer's):
 * the good colour's view when multi-mapped, else the one view. */
static inline uint64_t views_alloc_base(const mh_views *v)
{
    return v->colored == MH_VIEWS_MULTI ? v->base[v->good] : v->base[0];
}

/* Address of a heap offset, for walking spaces linearly (any view would do;
 * the Remapped view is used so walks never depend on the current colour,
 * except under verify-views, where only the good view can be read: as
 * HotSpot's collector then does, it goes through the good view). */
static inline void *view_addr(const mh_views *v, uint64_t offset)
{
    return (void *)(uintptr_t)(v->base[v->colored ? v->access : 0] + offset);
}

#endif
