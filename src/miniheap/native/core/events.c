/*
 * events.c: collections finished on another thread, waiting for a mutator
 * to hand them to the embedder's on_gc.
 *
 * A bounded ring under its own small lock: the GC thread posts (it never
 * blocks on the heap or calls the embedder), and the thread holding the
 * heap delivers at its next poll or public call (safepoint.h), or when the
 * embedder asks (mh_drain_events). If nobody delivers for a long time the
 * oldest events are dropped and counted (events_dropped). Delivery also
 * folds each event into the heap's statistics, which only mutators write.
 */
#include <stdlib.h>
#include "safepoint.h"

#define RING 64

int events_init(mh_heap *h)
{
    h->ring = calloc(RING, sizeof *h->ring);
    if (!h->ring || pthread_mutex_init(&h->event_lock, NULL) != 0) {
        free(h->ring);
        h->ring = NULL;
        return -1;
    }
    return 0;
}

void events_free(mh_heap *h)
{
    if (!h->ring)
        return;
    free(h->ring);
    h->ring = NULL;
    pthread_mutex_destroy(&h->event_lock);
}

void heap_event_post(mh_heap *h, const mh_gc_event *ev)
{
    pthread_mutex_lock(&h->event_lock);
    if (h->ring_count == RING) { /* full: the oldest goes */
        h->ring_head = (h->ring_head + 1) % RING;
        h->ring_count--;
        h->ring_dropped++;
    }
    h->ring[(h->ring_head + h->ring_count) % RING] = *ev;
    h->ring_count++;
    __atomic_or_fetch(&h->attention, MH_ATTN_EVENTS, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&h->event_lock);
}

static void fold(mh_heap *h, const mh_gc_event *ev)
{
    mh_stats *s = &h->stats;
    if (ev->kind != MH_GC_ZGC)
        return; /* stalls are counted where they happen */
    s->zgc_cycles++;
    s->bytes_copied += ev->bytes_copied;
    s->objects_relocated_by_gc += ev->objects_relocated_by_gc;
    s->objects_relocated_by_mutator += ev->objects_relocated_by_mutator;
    for (uint32_t i = 0; i < ev->nphases; i++) {
        uint64_t d = ev->phases[i].duration_ns;
        if (ev->phases[i].pause) {
            s->pauses++;
            s->total_pause_ns += d;
            if (d > s->max_pause_ns)
                s->max_pause_ns = d;
        } else {
            s->concurrent_ns += d;
        }
    }
}

void heap_events_deliver(mh_heap *h)
{
    for (;;) {
        mh_gc_event ev;
        pthread_mutex_lock(&h->event_lock);
        h->stats.events_dropped = h->ring_dropped;
        if (h->ring_count == 0) {
            __atomic_and_fetch(&h->attention, ~MH_ATTN_EVENTS, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&h->event_lock);
            return;
        }
        ev = h->ring[h->ring_head];
        h->ring_head = (h->ring_head + 1) % RING;
        h->ring_count--;
        pthread_mutex_unlock(&h->event_lock);
        fold(h, &ev);
        if (h->config.on_gc) {
            /* the listener contract (miniheap.h): read-only calls, nothing that changes the heap */
            uint8_t busy = h->busy;
            h->busy = BUSY_LISTENER;
            h->config.on_gc(h->config.ctx, &ev);
            h->busy = busy;
        }
    }
}
