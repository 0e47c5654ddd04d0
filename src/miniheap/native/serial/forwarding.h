/*
 * forwarding.h: off-heap forwarding tables of the full collection.
 *
 * One table per evacuated region, listing (old offset, new offset) for each
 * object that started in it, in address order (evacuation walks the region
 * linearly), so a lookup is a binary search. Being off-heap, a table outlives
 * its region: the region is freed (even reused) at once, while stale
 * coloured references to its old objects can still be resolved until the
 * next marking has healed them all.
 */
#ifndef MH_FORWARDING_H
#define MH_FORWARDING_H

#include "internal.h"

typedef struct mh_fwd_entry {
    uint64_t from, to;
} mh_fwd_entry;

struct mh_fwd_table {
    uint32_t count, capacity;
    mh_fwd_entry entries[];
};

mh_fwd_table *fwd_table_new(uint32_t capacity);
void fwd_add(mh_fwd_table *t, uint64_t from, uint64_t to);
/* Whether `offset` is an object the last evacuation moved. */
bool fwd_lookup(const mh_fwd_table *t, uint64_t from, uint64_t *to);

/* The current offset of the object that was at `offset` when the last
 * evacuation ran (the same offset if its region was not evacuated). */
static inline uint64_t fwd_resolve(const mh_heap *h, uint64_t offset)
{
    if (offset >= h->heap_size)
        return offset;
    const mh_fwd_table *t = h->fwd[offset >> h->region_shift];
    uint64_t to;
    if (t && fwd_lookup(t, offset, &to))
        return to;
    return offset;
}
void fwd_drop_all(mh_heap *h);

#endif
