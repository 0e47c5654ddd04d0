/*
 * copybench.c: a large live graph of small objects, for the collector's copy rate.
 *
 * `lists` singly linked lists are grown in turn, one object at a time, so consecutive objects in
 * memory belong to different lists: the collector cannot copy a list as one contiguous run. Every
 * object stays live, so each collection copies all it scans, and bytes copied per second of pause is
 * the rate at which the collector moves live data.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static int build_lists(mh_heap *heap, uint64_t objects, uint32_t nrefs, uint32_t nbytes,
                       uint32_t lists, mh_handle *heads, mh_bench_pauses *pauses,
                       char *error, size_t errlen)
{
    if (nrefs < 1 || lists < 1) {
        snprintf(error, errlen, "need nrefs >= 1 (slot 0 is the link) and lists >= 1");
        return -1;
    }
    for (uint32_t l = 0; l < lists; l++)
        heads[l] = MH_NULL_HANDLE;
    mh_bench_pauses_begin(heap, pauses);
    for (uint64_t i = 0; i < objects; i++) {
        uint32_t l = (uint32_t)(i % lists);
        mh_handle node = mh_alloc(heap, nrefs, nbytes);
        mh_bench_pauses_note(heap, pauses);
        if (node < 0) {
            snprintf(error, errlen, "mh_alloc after %llu objects: %s", (unsigned long long)i,
                     mh_last_error_message(heap));
            return -1;
        }
        if (nbytes >= 8) {
            uint8_t *payload = mh_payload(heap, node);
            uint64_t tag = i;
            memcpy(payload, &tag, sizeof tag);
        }
        if (heads[l] != MH_NULL_HANDLE) {
            if (mh_store(heap, node, 0, heads[l]) != 0) {
                snprintf(error, errlen, "mh_store: %s", mh_last_error_message(heap));
                mh_release(heap, node);
                return -1;
            }
            mh_release(heap, heads[l]);
        }
        heads[l] = node;
    }
    return 0;
}

/* Both hold the heap (mh_lock) across their calls: one mutex operation, not one per call. */
int mh_bench_build_lists(mh_heap *heap, uint64_t objects, uint32_t nrefs, uint32_t nbytes,
                         uint32_t lists, mh_handle *heads, mh_bench_pauses *pauses,
                         char *error, size_t errlen)
{
    mh_lock(heap);
    int rc = build_lists(heap, objects, nrefs, nbytes, lists, heads, pauses, error, errlen);
    mh_unlock(heap);
    return rc;
}

static int64_t count_lists(mh_heap *heap, uint32_t lists, const mh_handle *heads)
{
    int64_t n = 0;
    for (uint32_t l = 0; l < lists; l++) {
        if (heads[l] == MH_NULL_HANDLE)
            continue;
        mh_handle cursor = mh_dup(heap, heads[l]);
        if (cursor < 0)
            return -1;
        int rc;
        n++;
        while ((rc = mh_load_into(heap, cursor, 0, cursor)) == 1)
            n++;
        mh_release(heap, cursor);
        if (rc != 0)
            return -1;
    }
    return n;
}

int64_t mh_bench_count_lists(mh_heap *heap, uint32_t lists, const mh_handle *heads)
{
    mh_lock(heap);
    int64_t n = count_lists(heap, lists, heads);
    mh_unlock(heap);
    return n;
}

int mh_bench_collect(mh_heap *heap, int full, mh_bench_pauses *pauses)
{
    mh_bench_pauses_begin(heap, pauses);
    int rc = mh_collect(heap, full);
    mh_bench_pauses_note(heap, pauses);
    return rc;
}
