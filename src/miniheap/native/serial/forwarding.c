/*
 * forwarding.c: off-heap forwarding tables.
 */
#include <stdlib.h>
#include "forwarding.h"

mh_fwd_table *fwd_table_new(uint32_t capacity)
{
    mh_fwd_table *t = malloc(sizeof *t + (size_t)capacity * sizeof(mh_fwd_entry));
    if (t) {
        t->count = 0;
        t->capacity = capacity;
    }
    return t;
}

void fwd_add(mh_fwd_table *t, uint64_t from, uint64_t to)
{
    /* capacity is the region's marked object count, so this cannot overflow */
    if (t->count < t->capacity)
        t->entries[t->count++] = (mh_fwd_entry){from, to};
}

bool fwd_lookup(const mh_fwd_table *t, uint64_t from, uint64_t *to)
{
    uint32_t lo = 0, hi = t->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->entries[mid].from < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->count && t->entries[lo].from == from) {
        *to = t->entries[lo].to;
        return true;
    }
    return false;
}

void fwd_drop_all(mh_heap *h)
{
    /* tables exist only below fwd_end (set when they are made): the work follows use */
    for (uint32_t r = 0; r < h->fwd_end; r++) {
        free(h->fwd[r]);
        h->fwd[r] = NULL;
    }
    h->fwd_end = 0;
}
