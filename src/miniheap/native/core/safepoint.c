/*
 * safepoint.c: pauses of a concurrent collector (see safepoint.h).
 */
#include "safepoint.h"
#include "mutator.h"

int safepoint_init(mh_heap *h)
{
    if (pthread_mutex_init(&h->sp_lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&h->sp_cond, NULL) != 0) {
        pthread_mutex_destroy(&h->sp_lock);
        return -1;
    }
    return 0;
}

void safepoint_destroy(mh_heap *h)
{
    pthread_cond_destroy(&h->sp_cond);
    pthread_mutex_destroy(&h->sp_lock);
}

void safepoint_begin(mh_heap *h)
{
    pthread_mutex_lock(&h->sp_lock);
    __atomic_or_fetch(&h->attention, MH_ATTN_SAFEPOINT, __ATOMIC_SEQ_CST);
    /* every attached record's next allocation or poll takes its slow path
     * (a collector's mutators_out leaves limit 0 while a pause is pending) */
    for (mh_mutator *m = h->mutators; m; m = m->next)
        __atomic_store_n(&m->limit, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&h->sp_lock);
    pthread_mutex_lock(&h->lock);
    __atomic_store_n(&h->owner, thread_id(), __ATOMIC_RELAXED);
    h->holds = 1;
    h->user_holds = 0;
}

void safepoint_end(mh_heap *h)
{
    __atomic_store_n(&h->owner, 0, __ATOMIC_RELAXED);
    h->holds = 0;
    pthread_mutex_lock(&h->sp_lock);
    __atomic_and_fetch(&h->attention, ~MH_ATTN_SAFEPOINT, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&h->sp_cond);
    pthread_mutex_unlock(&h->sp_lock);
    pthread_mutex_unlock(&h->lock);
}

void safepoint_wait(mh_heap *h)
{
    if (!(__atomic_load_n(&h->attention, __ATOMIC_ACQUIRE) & MH_ATTN_SAFEPOINT))
        return;
    pthread_mutex_lock(&h->sp_lock);
    while (__atomic_load_n(&h->attention, __ATOMIC_ACQUIRE) & MH_ATTN_SAFEPOINT)
        pthread_cond_wait(&h->sp_cond, &h->sp_lock);
    pthread_mutex_unlock(&h->sp_lock);
}

heap_hold heap_let_go(mh_heap *h)
{
    heap_hold saved = {h->holds, h->user_holds};
    __atomic_store_n(&h->owner, 0, __ATOMIC_RELAXED);
    h->holds = h->user_holds = 0;
    pthread_mutex_unlock(&h->lock);
    return saved;
}

void heap_take_back(mh_heap *h, heap_hold saved)
{
    safepoint_wait(h);
    pthread_mutex_lock(&h->lock);
    __atomic_store_n(&h->owner, thread_id(), __ATOMIC_RELAXED);
    h->holds = saved.holds;
    h->user_holds = saved.user_holds;
}

void heap_attend(mh_heap *h)
{
    uint32_t a = __atomic_load_n(&h->attention, __ATOMIC_ACQUIRE);
    /* Not from inside a call's callback (on_gc, commit): a call nested there (a Python
     * release in a __del__, say) is no safepoint. Letting go in the middle of the outer
     * call let the pause run, and then another mutator in, which found the heap busy
     * (MH_E_BUSY for an ordinary store). The pause waits for the outer call's end. */
    if ((a & MH_ATTN_SAFEPOINT) && !h->busy)
        heap_take_back(h, heap_let_go(h));
    if ((a & MH_ATTN_EVENTS) && !h->busy) {
        heap_events_deliver(h);
        /* what an on_gc listener asked for (a release, a close: teardown.c) happens now; the
         * caller finds the heap closed (heap_ok) if it was. An interrupt waits for the end of a
         * call that can fail with it (mh_collect, an allocation): consumed here, at a poll whose
         * caller returns success, it was lost (a Ctrl-C during zgc's System.gc() never raised). */
        uint8_t interrupt = h->deferred & DEFER_INTERRUPT;
        h->deferred &= (uint8_t)~DEFER_INTERRUPT;
        if (h->deferred && heap_ok(h))
            heap_call_end(h);
        if (interrupt && heap_ok(h))
            h->deferred |= interrupt;
    }
}
