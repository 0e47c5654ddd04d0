/*
 * safepoint.h: stopping the mutators for a pause, and letting go of the
 * heap while waiting.
 *
 * Mutators enter the heap one at a time: a public call takes the heap's
 * mutex unless its thread holds the heap already (internal.h, heap_lock).
 * A concurrent collector's pause is the same mutex taken by its GC thread
 * (safepoint_begin): it first raises MH_ATTN_SAFEPOINT in h->attention,
 * then locks. A thread that is not inside a call does not hold the mutex,
 * so it is already stopped; a thread holding the heap (a call in progress,
 * or mh_lock) stops at its next poll: the start of a public call, or an
 * allocation's slow path (heap_poll), where it holds no raw reference (not
 * a call nested in a callback: the outer call is half done). It
 * lets go of the mutex entirely, waits for the pause to end and takes the
 * heap back with the same holds (heap_let_go / heap_take_back). New callers
 * wait while a safepoint is pending, so a stream of short calls cannot
 * starve the GC thread.
 *
 * The load barrier's slow path is not a poll: its caller holds a raw
 * pointer to the object whose field it loads, which a pause may move.
 *
 * h->attention also carries MH_ATTN_EVENTS: events posted by the GC thread
 * wait in a ring (events.c) until a mutator delivers them to on_gc at a
 * poll; the GC thread never calls the embedder.
 */
#ifndef MH_SAFEPOINT_H
#define MH_SAFEPOINT_H

#include "internal.h"

#define MH_ATTN_SAFEPOINT 1u
#define MH_ATTN_EVENTS 2u

typedef struct heap_hold {
    uint32_t holds, user_holds;
} heap_hold;

int safepoint_init(mh_heap *h);
void safepoint_destroy(mh_heap *h);

/* The GC thread: stop the mutators and hold the heap; let them go. */
void safepoint_begin(mh_heap *h);
void safepoint_end(mh_heap *h);

/* The thread holding the heap: let go of it entirely (to wait for something
 * that needs a pause), and take it back, waiting for a pending pause first. */
heap_hold heap_let_go(mh_heap *h);
void heap_take_back(mh_heap *h, heap_hold saved);
/* Wait while a safepoint is pending (a thread not holding the heap). */
void safepoint_wait(mh_heap *h);

/* At a poll: stop for a pending pause, deliver pending events. */
void heap_attend(mh_heap *h);
static inline void heap_poll(mh_heap *h)
{
    if (MH_UNLIKELY(__atomic_load_n(&h->attention, __ATOMIC_ACQUIRE)))
        heap_attend(h);
}

/* events.c: a finished collection (or stall) posted from any thread, and
 * the delivery of posted events to on_gc by a mutator. */
int events_init(mh_heap *h);
void events_free(mh_heap *h);
void heap_event_post(mh_heap *h, const mh_gc_event *ev);
void heap_events_deliver(mh_heap *h);

#endif
