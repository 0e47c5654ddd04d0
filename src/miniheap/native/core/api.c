/*
 * api.c: the embedder's way in. Every public function takes the heap's lock
 * and calls its unlocked implementation, so a heap is safe to use from
 * several threads: cffi releases the GIL around each call, so two Python
 * threads really do enter the heap at once. A thread that already holds the
 * heap (inside mh_lock / mh_unlock, or a callback running inside one of its
 * own calls) goes straight to the implementation: heap_held in internal.h
 * compares the heap's owner with the calling thread, so a callback that calls
 * back in reaches heap_enter's busy check (an MH_E_BUSY error) instead of
 * deadlocking, and a C mutator holding the heap pays no mutex per call.
 */
#include "internal.h"
#include "collector.h"

/* MH_LOCKED is in internal.h. mh_dup, mh_release
 * (handles.c), mh_load, mh_load_into, mh_store, mh_payload (access.c) and
 * mh_get_stats (heap.c) are defined beside their implementations, so the
 * compiler inlines it into them: they are the calls a mutator makes millions
 * of times. mh_alloc is here: its fast path is the collector's. */
#define LOCKED MH_LOCKED

/* Allocation is the collector's, fast path included (serial: eden's bump
 * pointer; zgc: the current small page's). */
static mh_handle __attribute__((noinline, cold)) alloc_end(mh_heap *h, mh_handle x)
{
    if (heap_call_end(h))
        return x;
    if (heap_ok(h) && x >= 0) { /* interrupted: the object is garbage */
        handle_release_now(h, x);
        h->stats.handles_live--;
    }
    return MH_ERROR;
}

static inline mh_handle mh_alloc_unlocked(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    if (!heap_enter(h))
        return MH_ERROR;
    mh_handle x = h->collector->alloc(h, nrefs, nbytes);
    /* A callback ran during the allocation (a commit: zgc commits pages here) and asked for a
     * close or an interrupt (teardown.c): it happens now, before the embedder, seeing the call
     * fail, unmaps the heap under a collector still running; the allocation fails. */
    if (MH_UNLIKELY(h->deferred))
        return alloc_end(h, x);
    return x;
}

int mh_verify_unlocked(mh_heap *h)
{
    if (!heap_enter_read(h)) /* read-only: allowed in on_gc */
        return MH_ERROR;
    return h->collector->verify(h);
}

int mh_space_of_unlocked(mh_heap *h, mh_handle x)
{
    if (!heap_enter_read(h) || !handle_check(h, x))
        return MH_ERROR;
    return h->collector->space_of(h, ref_offset(&h->views, h->handles[x]));
}

LOCKED(mh_handle, mh_alloc, (mh_heap *h, uint32_t nrefs, uint32_t nbytes), (h, nrefs, nbytes))
LOCKED(int, mh_collector_kind, (mh_heap *h), (h))

LOCKED(int, mh_handle_valid, (mh_heap *h, mh_handle x), (h, x))
LOCKED(mh_ref, mh_handle_ref, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_same, (mh_heap *h, mh_handle a, mh_handle b), (h, a, b))
LOCKED(mh_ref, mh_peek_slot, (mh_heap *h, mh_handle x, uint32_t slot), (h, x, slot))
LOCKED(int64_t, mh_nrefs, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int64_t, mh_nbytes, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_age, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_space_of, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_ref_color, (mh_heap *h, mh_ref ref), (h, ref))
LOCKED(uint64_t, mh_ref_offset, (mh_heap *h, mh_ref ref), (h, ref))
LOCKED(uint64_t, mh_ref_address, (mh_heap *h, mh_ref ref), (h, ref))
LOCKED(int, mh_collect, (mh_heap *h, int full), (h, full))
LOCKED(uint64_t, mh_used, (mh_heap *h), (h))
LOCKED(uint64_t, mh_eden_used, (mh_heap *h), (h))
LOCKED(uint64_t, mh_survivor_used, (mh_heap *h), (h))
LOCKED(uint64_t, mh_old_used, (mh_heap *h), (h))
LOCKED(int, mh_good_color, (mh_heap *h), (h))
LOCKED(uint32_t, mh_region_count, (mh_heap *h), (h))
LOCKED(uint32_t, mh_regions_in_use, (mh_heap *h), (h))
LOCKED(int, mh_region_info, (mh_heap *h, uint32_t region, uint64_t *used), (h, region, used))
LOCKED(int, mh_verify, (mh_heap *h), (h))
LOCKED(int, mh_read_payload, (mh_heap *h, mh_handle x, uint64_t offset, void *dst, uint64_t length), (h, x, offset, dst, length))
LOCKED(int, mh_write_payload, (mh_heap *h, mh_handle x, uint64_t offset, const void *src, uint64_t length), (h, x, offset, src, length))
