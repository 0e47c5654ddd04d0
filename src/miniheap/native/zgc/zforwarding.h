/*
 * zforwarding.h: where the objects of a relocated page went.
 *
 * One table per page of the relocation set, off-heap, as in JDK ZGC: an
 * open-addressed hash from the object's index in its page (offset / 8) to
 * its new offset, sized at twice the page's live objects. An entry is
 * claimed with one compare-and-swap of a 64-bit word, so when the GC thread
 * and a mutator both copy the same object, exactly one copy is installed:
 * the loser sees the winner's entry, uses it, and undoes its own copy.
 *
 *   entry = from_index << 40 | (to_offset / 8 + 1)      0 = empty
 *
 * (24 bits of index: pages up to 128 MiB; 40 of offset: heaps up to 8 TiB.)
 *
 * The table outlives its page: the page is freed as soon as the GC thread
 * has relocated it, while references of the old colour into it are still
 * remapped through the table until the next cycle's marking has healed them
 * all (then Concurrent Reset Relocation Set drops it).
 *
 * refcount keeps the from-page alive while a mutator copies from it: the GC
 * thread holds one reference until it has relocated the page, a mutator
 * takes one (if the count is not already 0) around its copy, and the GC
 * thread frees the page only when the count has reached 0 (JDK 16+'s
 * retain_page / release_page).
 */
#ifndef MH_ZGC_FORWARDING_H
#define MH_ZGC_FORWARDING_H

#include <stdbool.h>
#include <stdint.h>

struct zpage;

typedef struct zforwarding {
    uint64_t start, size;     /* the from-page */
    uint8_t type;
    struct zpage *page;       /* NULL once freed */
    uint32_t live_objects;
    uint64_t live_bytes;
    int32_t refcount;         /* atomic */
    uint64_t root_bytes;      /* Pause Relocate Start: bytes of the roots' objects in the page */
    bool evicted;             /* taken out of the set at Relocate Start: the page stays as it is */
    uint32_t mask;            /* nentries - 1 */
    uint64_t entries[];       /* atomic */
} zforwarding;

#define ZFWD_EMPTY 0ull

zforwarding *zforwarding_new(struct zpage *page, uint32_t live_objects, uint64_t live_bytes);
static inline uint64_t zforwarding_bytes(const zforwarding *f)
{
    return sizeof *f + (uint64_t)(f->mask + 1) * sizeof(uint64_t);
}

/* The new offset of the object at from_off, or UINT64_MAX if not (yet) relocated. */
uint64_t zforwarding_find(const zforwarding *f, uint64_t from_off);
/* Install from_off -> to_off unless someone did first; returns the installed offset. */
uint64_t zforwarding_insert(zforwarding *f, uint64_t from_off, uint64_t to_off);

/* A mutator about to copy from the page: false if the GC thread is done with it. */
bool zforwarding_retain(zforwarding *f);
void zforwarding_release(zforwarding *f);

#endif
