/*
 * alloc.c: allocation. Bump pointer in eden for the mutator, bump pointer in
 * old regions for copies (promotion and evacuation), contiguous free regions
 * for humongous objects.
 */
#include "internal.h"
#include "card.h"
#include "poison.h"
#include "bump.h"
#include "miniheap-pyapi.h"
#include "serial.h"

/* The fast path: one compare and one add. */
static inline bool eden_bump(mh_heap *h, uint64_t size, uint64_t *offset)
{
    if (size > h->eden_end - h->eden_top)
        return false;
    *offset = h->eden_top;
    h->eden_top += size;
    space_unpoison(h, *offset, size);
    return true;
}

static void exhausted(mh_heap *h, uint64_t size)
{
    heap_error(h, MH_E_EXHAUSTED,
               "heap exhausted: %llu bytes requested, heap %llu bytes, live %llu bytes after a "
               "full collection; release handles to objects you no longer need or raise heap_size",
               (unsigned long long)size, (unsigned long long)h->heap_size,
               (unsigned long long)h->last_live);
}

/* After a full GC failed for a reason of its own (commit refused, no
 * metadata memory), report that rather than plain exhaustion. */
static bool full_failed_specifically(const mh_heap *h)
{
    return h->error == MH_E_COMMIT || h->error == MH_E_NO_MEMORY;
}

static bool eden_alloc(mh_heap *h, uint64_t size, uint64_t *offset)
{
    if (eden_bump(h, size, offset))
        return true;
    int rc = collect_young(h, MH_CAUSE_ALLOCATION_FAILURE);
    if (eden_bump(h, size, offset))
        return true;
    /* the young GC became a full one and still could not empty eden */
    if (!h->last_gc_full) {
        rc = collect_full(h, MH_CAUSE_ALLOCATION_FAILURE);
        if (eden_bump(h, size, offset))
            return true;
    }
    /* The last resort: compact all of old, so young fits into what is free
     * however scattered it was (compact.c). */
    if (!full_failed_specifically(h)) {
        rc = collect_compact(h, MH_CAUSE_ALLOCATION_FAILURE);
        if (eden_bump(h, size, offset))
            return true;
    }
    if (rc == 0 || !full_failed_specifically(h))
        exhausted(h, size);
    return false;
}

static int humongous_place(mh_heap *h, uint64_t size, uint64_t *offset)
{
    uint32_t n = (uint32_t)((size + h->region_size - 1) >> h->region_shift);
    int32_t start = region_take_run(h, n);
    if (start < 0)
        return start;
    uint64_t left = size;
    for (uint32_t r = (uint32_t)start; r < (uint32_t)start + n; r++) {
        h->regions[r].top = left < h->region_size ? left : h->region_size;
        left -= h->regions[r].top;
    }
    h->old_used += size;
    *offset = region_base(h, (uint32_t)start);
    space_unpoison(h, *offset, size);
    return 0;
}

static bool humongous_alloc(mh_heap *h, uint64_t size, uint64_t *offset)
{
    int rc = humongous_place(h, size, offset);
    if (rc == 0)
        return true;
    if (rc == -1) {
        collect_full(h, MH_CAUSE_ALLOCATION_FAILURE);
        rc = humongous_place(h, size, offset);
        if (rc == 0)
            return true;
    }
    if (rc == -1) {
        /* free regions may be enough but apart: compact old so they form one run */
        collect_compact(h, MH_CAUSE_ALLOCATION_FAILURE);
        rc = humongous_place(h, size, offset);
        if (rc == 0)
            return true;
    }
    if (rc == -1)
        exhausted(h, size);
    return false;
}

uint64_t old_bump(mh_heap *h, uint64_t size)
{
    int32_t r = h->promo_region;
    if (r < 0 || h->regions[r].top + size > h->region_size) {
        /* the reservation made before copying covers every copy (see
         * regions_needed); taking a fresh region is only a safety net */
        r = h->reserved_used < h->nreserved ? h->reserved[h->reserved_used++] : region_take(h);
        /* The full collection proved before moving a byte that its reservation holds every
         * copy; no region now means that proof is broken, and a copy written anyway would
         * corrupt the heap: stop here (a trap, not a write through a sentinel). */
        if (MH_UNLIKELY(r < 0))
            __builtin_trap();
        h->promo_region = r;
        h->scan_regions[h->nscan++] = r;
    }
    return region_bump(h, r, size);
}

/* The shape is allowed and could ever fit (the error says why not). */
static bool alloc_check(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    uint64_t size = obj_size_for(nrefs, nbytes);
    uint64_t old_capacity = h->heap_size - h->young_end;
    if (nrefs > OBJ_MAX_NREFS) {
        heap_error(h, MH_E_TOO_LARGE,
                   "an object may have at most %u reference slots, %u were requested; split it "
                   "into several objects",
                   OBJ_MAX_NREFS, nrefs);
        return false;
    }
    if (size > old_capacity) {
        heap_error(h, MH_E_TOO_LARGE,
                   "an object of %llu bytes (%u slots, %u payload bytes) can never fit: the "
                   "largest object is the old generation, %llu bytes; raise heap_size or "
                   "allocate smaller objects",
                   (unsigned long long)size, nrefs, nbytes, (unsigned long long)old_capacity);
        return false;
    }
    return true;
}

/* Place and initialise an object of a checked shape, in eden or, above half a
 * region, as a humongous object; collects if need be. Its offset, or
 * UINT64_MAX (the error is set). */
static uint64_t alloc_place(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    uint64_t size = obj_size_for(nrefs, nbytes);
    uint64_t offset;
    uint64_t flags = 0;
    if (size > h->region_size / 2) {
        if (!humongous_alloc(h, size, &offset))
            return UINT64_MAX;
        flags = OBJ_HUMONGOUS;
        h->bytes_retired += size; /* not in eden: counted here, not from the bump pointer */
    } else {
        if (!eden_alloc(h, size, &offset))
            return UINT64_MAX;
        if (size > h->young_max_size)
            h->young_max_size = size;
    }
    obj_init(heap_addr(h, offset), nrefs, nbytes, flags);
    return offset;
}

uint64_t alloc_object(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    return alloc_check(h, nrefs, nbytes) ? alloc_place(h, nrefs, nbytes) : UINT64_MAX;
}

static mh_handle alloc_slow(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
static mh_handle alloc_end(mh_heap *h, mh_handle x);

/* The fast path: a small object that fits in eden, a free handle; MH_WOULD_BLOCK
 * for anything else (an error to report, a collection, a humongous object).
 * Allocated bytes are not counted here: they are read from eden's bump pointer
 * when a collection starts (heap.c). */
static inline mh_handle alloc_fast(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    uint64_t size = obj_size_for(nrefs, nbytes);
    if (MH_LIKELY(size <= h->small_max && size <= h->eden_end - h->eden_top &&
                  h->handle_free != HANDLE_END)) {
        uint64_t offset = h->eden_top;
        h->eden_top += size;
        space_unpoison(h, offset, size);
        if (MH_UNLIKELY(size > h->young_max_size))
            h->young_max_size = size;
        obj_init(heap_addr(h, offset), nrefs, nbytes, 0);
        h->stats.objects_allocated++;
        return handle_new(h, ref_good(&h->views, offset));
    }
    return MH_WOULD_BLOCK;
}

/* mh_alloc for the serial collector (core/api.c checked the heap). */
mh_handle serial_alloc(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    mh_handle x = alloc_fast(h, nrefs, nbytes);
    return MH_LIKELY(x != MH_WOULD_BLOCK) ? x : alloc_slow(h, nrefs, nbytes);
}

/* The C-level Python Ref's allocation (core/pyapi.c holds the heap): the fast path only. */
mh_handle serial_alloc_try(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    return alloc_fast(h, nrefs, nbytes);
}

static mh_handle alloc_with_handle(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    if (!alloc_check(h, nrefs, nbytes) || !handle_available(h))
        return MH_ERROR;
    uint64_t offset = alloc_place(h, nrefs, nbytes);
    if (offset == UINT64_MAX)
        return MH_ERROR;
    h->stats.objects_allocated++;
    return handle_new(h, ref_good(&h->views, offset));
}

static mh_handle __attribute__((noinline)) alloc_slow(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    mh_handle x = alloc_with_handle(h, nrefs, nbytes);
    if (MH_UNLIKELY(h->deferred))
        return alloc_end(h, x);
    return x;
}

/* A callback ran during this allocation and asked for something (teardown.c):
 * a close or an interrupt makes the allocation fail; its object is garbage. */
static mh_handle __attribute__((noinline, cold)) alloc_end(mh_heap *h, mh_handle x)
{
    if (heap_call_end(h))
        return x;
    if (heap_ok(h) && x >= 0) {
        handle_release_now(h, x);
        h->stats.handles_live--;
    }
    return MH_ERROR;
}
