/*
 * api.c: the embedder's way in. Every public function takes the heap's lock
 * and calls its unlocked implementation, so a heap is safe to use from
 * several threads: cffi releases the GIL around each call, so two Python
 * threads really do enter the heap at once. The lock is recursive so that a
 * callback that calls back in on the same thread reaches heap_enter's busy
 * check (an MH_E_BUSY error) instead of deadlocking.
 */
#include "internal.h"

#define LOCKED(ret, name, params, args)          \
    ret name params                              \
    {                                            \
        mh_heap *locked_ = heap_lock(h);         \
        ret result_ = name##_unlocked args;      \
        heap_unlock(locked_);                    \
        return result_;                          \
    }

LOCKED(mh_handle, mh_alloc, (mh_heap *h, uint32_t nrefs, uint32_t nbytes), (h, nrefs, nbytes))
LOCKED(mh_handle, mh_dup, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_release, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_handle_valid, (mh_heap *h, mh_handle x), (h, x))
LOCKED(mh_ref, mh_handle_ref, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_same, (mh_heap *h, mh_handle a, mh_handle b), (h, a, b))
LOCKED(mh_handle, mh_load, (mh_heap *h, mh_handle x, uint32_t slot), (h, x, slot))
LOCKED(int, mh_load_into, (mh_heap *h, mh_handle x, uint32_t slot, mh_handle dest), (h, x, slot, dest))
LOCKED(int, mh_store, (mh_heap *h, mh_handle x, uint32_t slot, mh_handle value), (h, x, slot, value))
LOCKED(mh_ref, mh_peek_slot, (mh_heap *h, mh_handle x, uint32_t slot), (h, x, slot))
LOCKED(int64_t, mh_nrefs, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int64_t, mh_nbytes, (mh_heap *h, mh_handle x), (h, x))
LOCKED(uint8_t *, mh_payload, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_age, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_space_of, (mh_heap *h, mh_handle x), (h, x))
LOCKED(int, mh_ref_color, (mh_heap *h, mh_ref ref), (h, ref))
LOCKED(uint64_t, mh_ref_offset, (mh_heap *h, mh_ref ref), (h, ref))
LOCKED(int, mh_collect, (mh_heap *h, int full), (h, full))
LOCKED(const mh_stats *, mh_get_stats, (mh_heap *h), (h))
LOCKED(uint64_t, mh_used, (mh_heap *h), (h))
LOCKED(uint64_t, mh_eden_used, (mh_heap *h), (h))
LOCKED(uint64_t, mh_survivor_used, (mh_heap *h), (h))
LOCKED(uint64_t, mh_old_used, (mh_heap *h), (h))
LOCKED(int, mh_good_color, (mh_heap *h), (h))
LOCKED(uint32_t, mh_region_count, (mh_heap *h), (h))
LOCKED(int, mh_region_info, (mh_heap *h, uint32_t region, uint64_t *used), (h, region, used))
LOCKED(int, mh_verify, (mh_heap *h), (h))
LOCKED(int, mh_read_payload, (mh_heap *h, mh_handle x, uint64_t offset, void *dst, uint64_t length), (h, x, offset, dst, length))
LOCKED(int, mh_write_payload, (mh_heap *h, mh_handle x, uint64_t offset, const void *src, uint64_t length), (h, x, offset, src, length))
