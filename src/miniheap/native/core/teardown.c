/*
 * teardown.c: closing and freeing a heap, and what a callback asks for that
 * can only happen once the call that ran it has left the heap whole.
 *
 * Closing and freeing are two steps, so that no thread ever touches freed
 * memory:
 *
 *   mh_heap_close  stops the collector (its stop hook, before anything is
 *                  freed), then, holding the heap's lock, frees every table
 *                  and marks the record closed. A thread inside a call
 *                  finishes it first (close waits for the lock); a thread
 *                  waiting for the lock gets it afterwards, sees the closed
 *                  record and fails with MH_E_CLOSED; so does every later call.
 *   mh_heap_free   frees the record itself (and closes first if needed). The
 *                  embedder calls it once no thread can call into the heap any
 *                  more: Python does it when its Heap object is finalized,
 *                  which cannot happen while a thread is using that object.
 *
 * Inside a callback of this heap on this thread (commit, uncommit, on_gc)
 * the call that ran the callback is still using the heap, so a close is
 * deferred: the call finishes the collection, then closes the heap and fails
 * with MH_E_CLOSED. A release is queued the same way (handles.c), and
 * mh_interrupt makes the call fail with MH_E_INTERRUPTED. This is what lets a
 * Python signal handler, which may run inside any callback, close the heap.
 */
#include "internal.h"
#include "poison.h"

/* Under the lock: the collector is stopped; free everything but the record. */
static void heap_close_now(mh_heap *h)
{
    /* a close deferred from a callback has not stopped the collector yet (its stop hook may let go
     * of the heap while it waits for a GC thread: nothing of the heap is touched meanwhile) */
    if (!__atomic_exchange_n(&h->stopped, true, __ATOMIC_ACQ_REL)) {
        h->collector->stop(h);
        if (!heap_ok(h))
            return; /* another thread closed it meanwhile: everything is freed already */
    }
    __atomic_store_n(&h->magic, MH_HEAP_CLOSED, __ATOMIC_RELEASE);
    /* the embedder will unmap these addresses, and whatever is mapped there next is alive;
     * nothing above the regions ever committed was poisoned */
    space_unpoison(h, 0, region_base(h, h->poisoned_end));
    heap_release_contents(h);
    h->deferred = 0;
    h->release_pending = HANDLE_END;
}

MH_API int mh_heap_close(mh_heap *h)
{
    if (heap_closed(h))
        return 0;
    if (!heap_ok(h))
        return MH_ERROR;
    if (heap_held(h) && h->busy) { /* inside a callback of a call this thread is making */
        h->deferred |= DEFER_CLOSE;
        return MH_CLOSE_DEFERRED;
    }
    /* Stop the collector's own threads (collector.h's stop hook: zgc's GC
     * thread) before anything is freed, once, without the lock (a GC thread may
     * be waiting for it to begin a pause). */
    if (!__atomic_exchange_n(&h->stopped, true, __ATOMIC_ACQ_REL))
        h->collector->stop(h);
    mh_heap *locked = heap_lock(h); /* waits for a call in progress on another thread */
    if (!locked)
        return 0; /* closed by another thread before this one asked for the lock */
    if (heap_ok(h)) /* or while this one waited for it: closing twice would free twice */
        heap_close_now(h);
    heap_unlock(h);
    return 0;
}

MH_API void mh_heap_free(mh_heap *h)
{
    if (!h)
        return;
    if (heap_ok(h) && mh_heap_close(h) == MH_CLOSE_DEFERRED)
        return; /* inside a callback: closed when the call returns; free the record afterwards */
    if (!heap_closed(h))
        return;
    /* a holder (mh_lock) that closed its heap may free it without unlocking */
    if (heap_held(h)) {
        __atomic_store_n(&h->owner, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&h->lock);
    }
    heap_free_record(h);
}

MH_API void mh_interrupt(mh_heap *h)
{
    if (!heap_ok(h))
        return;
    if (!heap_held(h) || !h->busy) {
        heap_error(h, MH_E_BAD_ARGUMENT,
                   "mh_interrupt outside a callback: it makes the call that ran a commit, "
                   "uncommit or on_gc callback fail, so call it from inside one");
        return;
    }
    h->deferred |= DEFER_INTERRUPT;
}

bool heap_call_end(mh_heap *h)
{
    if (h->busy)
        return true; /* a nested end: the outermost call does the work */
    uint8_t d = h->deferred;
    h->deferred = 0;
    if (d & DEFER_RELEASE)
        handles_release_queued(h);
    if (d & DEFER_CLOSE) {
        heap_close_now(h);
        heap_error(h, MH_E_CLOSED, "the heap was closed by a callback during this call; its "
                   "objects and handles are gone; create a new heap");
        return false;
    }
    if (d & DEFER_INTERRUPT) {
        heap_error(h, MH_E_INTERRUPTED,
                   "interrupted: a callback (commit, uncommit or on_gc) called mh_interrupt during "
                   "this call, e.g. a signal arrived; the heap is whole; the call had no effect "
                   "except collections it ran");
        return false;
    }
    return true;
}
