/*
 * mutator.c: mutator records (miniheap-inline.h): attach and detach, the slow
 * paths of the inline fast path, and the meeting points with the heap record
 * (mutator.h).
 *
 * Serial: an attached record's buffer is eden itself. top and limit are eden's
 * bump pointer and end as addresses in the allocation view, the view whose
 * addresses are the good references between collections (the single view, or
 * Remapped in the coloured layout: a full collection ends with Remapped good),
 * so a new object's reference is its address and ref_bits is 0.
 *
 * Where a concurrent collector hooks in (zgc, DESIGN-C.md sections 4 and 5):
 * every slow path starts in slow_path_enter, the place to poll a pending
 * safepoint (set limit := 0 in every record to bring the mutators here) and to
 * deliver queued events; the buffer it hands out is mutators_refill_slow's.
 */
#include <stdlib.h>
#include "mutator.h"
#include "barrier.h"
#include "poison.h"
#include "safepoint.h"

#define ROOTS_INITIAL 256

/* The records' allocation pointers into the heap record, and its buffer out
 * to them: the collector's (serial: eden; zgc: the current small page). Not
 * once the heap is closed: the records' fast paths stay off (teardown.c). */
static void sync_in(mh_heap *h)
{
    if (heap_ok(h))
        h->collector->mutators_in(h);
}
static void sync_out(mh_heap *h)
{
    if (heap_ok(h))
        h->collector->mutators_out(h);
}

/* Calls nest (an on_gc listener calls mh_verify inside the collection that a
 * slow path started): only the outermost one moves the pointer in and out. */
void mutators_retire_slow(mh_heap *h)
{
    if (h->mutator_calls++ == 0)
        sync_in(h);
}

void mutators_refill_slow(mh_heap *h)
{
    /* (a heap closed during the call has turned the fast paths off already: mutators_close) */
    if (--h->mutator_calls == 0 && heap_ok(h))
        sync_out(h);
}

/* The heap is closing (teardown.c): the records stay until mh_heap_free (a
 * thread may still hold one), but their fast paths are off, so every
 * allocation reaches the slow path and fails with MH_E_CLOSED. */
void mutators_close(mh_heap *h)
{
    for (mh_mutator *m = h->mutators; m; m = m->next)
        m->top = m->limit = 0;
}

void mutators_free(mh_heap *h)
{
    while (h->mutators) {
        mh_mutator *m = h->mutators;
        h->mutators = m->next;
        free(m->roots);
        free(m);
    }
}

static bool not_attached_error(mh_heap *h)
{
    heap_error(h, MH_E_BAD_ARGUMENT,
               "this mutator record is used by a thread that did not attach it (or after "
               "mh_mutator_detach); each thread attaches its own with mh_mutator_attach");
    return false;
}

/* Every slow path starts here: the record's thread must hold the heap, and
 * the heap must accept calls (not closed, not inside a callback). */
static inline bool slow_path_enter(mh_mutator *m)
{
    mh_heap *h = m->heap;
    if (MH_UNLIKELY(!heap_held(h) || m->thread != thread_id()))
        return heap_ok(h) && not_attached_error(h);
    return heap_enter(h);
}

MH_API mh_mutator *mh_mutator_attach_flags(mh_heap *h, uint32_t flags)
{
    if (!heap_lock(h))
        return NULL;
    if (!heap_enter(h)) {
        heap_unlock(h);
        return NULL;
    }
    for (mh_mutator *m = h->mutators; m; m = m->next) {
        if (m->thread == thread_id()) {
            heap_error(h, MH_E_BAD_ARGUMENT,
                       "this thread has a mutator record attached to this heap already; use it, "
                       "or mh_mutator_detach it first");
            heap_unlock(h);
            return NULL;
        }
    }
    mh_mutator *m = calloc(1, sizeof *m);
    mh_ref *roots = malloc(ROOTS_INITIAL * sizeof *roots);
    if (!m || !roots) {
        free(m);
        free(roots);
        heap_error(h, MH_E_NO_MEMORY, "out of memory for a mutator record; free memory on the machine");
        heap_unlock(h);
        return NULL;
    }
    m->roots = roots;
    m->maxroots = ROOTS_INITIAL;
    m->flags = flags;
    m->heap = h;
    m->thread = thread_id();
    if (h->mutators)
        sync_in(h); /* (never in serial, where attaching holds the heap) */
    /* the list changes under sp_lock too: a GC thread starting a pause walks
     * it without holding the heap (safepoint_begin sets every limit to 0) */
    pthread_mutex_lock(&h->sp_lock);
    m->next = h->mutators;
    h->mutators = m;
    pthread_mutex_unlock(&h->sp_lock);
    sync_out(h);
    return m; /* the heap stays held until mh_mutator_detach */
}

MH_API void mh_mutator_detach(mh_mutator *m)
{
    if (!m)
        return;
    mh_heap *h = m->heap;
    if (!heap_held(h) || m->thread != thread_id()) {
        if (heap_ok(h))
            not_attached_error(h);
        return;
    }
    if (h->mutator_calls) {
        heap_error(h, MH_E_BUSY, "mh_mutator_detach inside a call of this heap (a callback): "
                   "detach after the call returns");
        return;
    }
    sync_in(h);
    pthread_mutex_lock(&h->sp_lock);
    for (mh_mutator **p = &h->mutators; *p; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->sp_lock);
    free(m->roots);
    free(m);
    if (h->mutators)
        sync_out(h);
    heap_unlock(h);
}

/* An allocation's slow path is a safepoint (the caller holds no raw
 * reference it needs afterwards): the record's buffer goes back into the heap
 * record first, the pause may move everything, and the buffer comes back out. */
MH_API mh_ref mh_new_slow(mh_mutator *m, uint32_t nrefs, uint32_t nbytes)
{
    if (!slow_path_enter(m))
        return 0;
    mh_heap *h = m->heap;
    mutators_retire(h);
    heap_poll(h);
    /* the pause, or an on_gc listener delivered at the poll, may have closed the heap */
    uint64_t offset = heap_ok(h) ? h->collector->alloc_object(h, nrefs, nbytes) : UINT64_MAX;
    mutators_refill(h);
    if (!heap_ok(h)) {
        if (heap_closed(h))
            heap_error(h, MH_E_CLOSED, "the heap was closed during this allocation; create a new heap");
        return 0;
    }
    /* a callback asked for a close or an interrupt (teardown.c): the allocation fails, its
     * object is garbage */
    if (!call_end(h))
        return 0;
    return offset == UINT64_MAX ? 0 : ref_good(&h->views, offset);
}

/* Not a safepoint: the caller holds the raw reference of the object whose
 * field this is. */
MH_API mh_ref mh_get_slow(mh_mutator *m, mh_ref *field, mh_ref stale)
{
    if (!slow_path_enter(m))
        return 0;
    /* a concurrent collector's barrier may copy an object into the mutators'
     * allocation buffer: the record's pointer goes back in for that */
    mh_heap *h = m->heap;
    mutators_retire(h);
    mh_ref good = h->collector->load_slow(h, field, stale);
    mutators_refill(h);
    return good;
}

/* A record lands here when its limit is 0: a concurrent collector wants a
 * pause (safepoint.c), or, in a sanitizer build, the record's fast path is off. */
MH_API void mh_poll_slow(mh_mutator *m)
{
    if (!slow_path_enter(m))
        return;
    mh_heap *h = m->heap;
    mutators_retire(h);
    heap_poll(h);
    mutators_refill(h);
}

MH_API int mh_roots_grow(mh_mutator *m)
{
    mh_heap *h = m->heap;
    uint32_t bigger = m->maxroots < (1u << 30) ? m->maxroots * 2 : 0;
    mh_ref *roots = bigger ? realloc(m->roots, (size_t)bigger * sizeof *roots) : NULL;
    if (!roots) {
        heap_error(h, MH_E_NO_MEMORY, "the shadow stack cannot grow beyond %u roots; pop roots you "
                   "no longer need (mh_unwind) or free memory", m->maxroots);
        return -1;
    }
    m->roots = roots;
    m->maxroots = bigger;
    return 0;
}

MH_API void mh_mutator_unpoison(mh_mutator *m, uint64_t address, uint64_t size)
{
    space_unpoison(m->heap, addr_offset(&m->heap->views, address), size);
}

MH_API mh_handle mh_mutator_handle(mh_mutator *m, mh_ref ref)
{
    if (!slow_path_enter(m))
        return MH_ERROR;
    mh_heap *h = m->heap;
    if (!ref || ref_offset(&h->views, ref) >= h->heap_size) {
        heap_error(h, MH_E_BAD_ARGUMENT, "0x%llx is not a reference to an object of this heap",
                   (unsigned long long)ref);
        return MH_ERROR;
    }
    return handle_new(h, ref);
}
