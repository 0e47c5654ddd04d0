/*
 * copybench.c: a large live graph of small objects, for the collector's copy rate.
 *
 * `lists` singly linked lists are grown in turn, one object at a time, so consecutive objects in
 * memory belong to different lists: the collector cannot copy a list as one contiguous run. Every
 * object stays live, so each collection copies all it scans, and bytes copied per second of pause is
 * the rate at which the collector moves live data. The mutator uses the inline fast path
 * (miniheap-inline.h); the list heads are shadow-stack roots while it runs and handles afterwards.
 * Pauses are the heap's own events (the Python side reads them): nothing is recorded per object.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "miniheap-inline.h"

static int build_lists(mh_mutator *m, uint64_t objects, uint32_t nrefs, uint32_t nbytes,
                       uint32_t lists, char *error, size_t errlen)
{
    uint32_t first = mh_frame(m);
    for (uint32_t l = 0; l < lists; l++) {
        if (mh_push(m, 0) == UINT32_MAX) {
            snprintf(error, errlen, "mh_push: %s", mh_last_error_message(m->heap));
            return -1;
        }
    }
    for (uint64_t i = 0; i < objects; i++) {
        uint32_t head = first + (uint32_t)(i % lists);
        mh_ref node = mh_new(m, nrefs, nbytes);
        if (!node) {
            snprintf(error, errlen, "mh_new after %llu objects: %s", (unsigned long long)i,
                     mh_last_error_message(m->heap));
            return -1;
        }
        if (nbytes >= 8)
            memcpy(mh_data(m, node), &i, sizeof i);
        mh_put(m, node, 0, mh_root(m, head));
        mh_set_root(m, head, node);
    }
    return 0;
}

int mh_bench_build_lists(mh_heap *heap, uint64_t objects, uint32_t nrefs, uint32_t nbytes,
                         uint32_t lists, mh_handle *heads, char *error, size_t errlen)
{
    if (nrefs < 1 || lists < 1) {
        snprintf(error, errlen, "need nrefs >= 1 (slot 0 is the link) and lists >= 1");
        return -1;
    }
    for (uint32_t l = 0; l < lists; l++)
        heads[l] = MH_NULL_HANDLE;
    mh_mutator *m = mh_mutator_attach(heap);
    if (!m) {
        snprintf(error, errlen, "mh_mutator_attach: %s", mh_last_error_message(heap));
        return -1;
    }
    int rc = build_lists(m, objects, nrefs, nbytes, lists, error, errlen);
    /* the heads outlive the record: as handles */
    for (uint32_t l = 0; rc == 0 && l < lists; l++) {
        mh_ref head = mh_root(m, l);
        if (head && (heads[l] = mh_mutator_handle(m, head)) < 0) {
            snprintf(error, errlen, "mh_mutator_handle: %s", mh_last_error_message(heap));
            rc = -1;
        }
    }
    mh_mutator_detach(m);
    return rc;
}

int64_t mh_bench_count_lists(mh_heap *heap, uint32_t lists, const mh_handle *heads)
{
    mh_mutator *m = mh_mutator_attach(heap);
    if (!m)
        return -1;
    int64_t n = 0;
    for (uint32_t l = 0; l < lists; l++) {
        if (heads[l] == MH_NULL_HANDLE)
            continue;
        /* the walk allocates nothing: raw references stay valid */
        for (mh_ref node = mh_handle_ref(heap, heads[l]); node; node = mh_get(m, node, 0))
            n++;
    }
    mh_mutator_detach(m);
    return n;
}
