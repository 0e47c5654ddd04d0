/*
 * barrier.h: the load barrier's fast path, shared by every collector.
 *
 * Fast path: the reference has no bad colour bit (null included): use it.
 * That is ZGC's test, one AND and a branch (ref_is_stale); in the single
 * view the bad mask is 0 and the slow path is never taken. Slow path: the
 * collector's (zgc: mark, relocate or remap, then heal the field), reached
 * through the collector record.
 *
 * The field is read with acquire ordering: a concurrent collector may have
 * healed it with a reference to a copy it just made, and the copy's words
 * must be visible before the reference is (on x86-64 an acquire load is a
 * plain load).
 */
#ifndef MH_BARRIER_H
#define MH_BARRIER_H

#include "internal.h"
#include "collector.h"

static inline mh_ref field_load(mh_ref *field)
{
    return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

/* A reference store into a heap field: release, so that a concurrent
 * collector that reads the field sees the referent's header initialised. */
static inline void field_store(mh_ref *field, mh_ref v)
{
    __atomic_store_n(field, v, __ATOMIC_RELEASE);
}

/* Mutator loads: counted in loads_fast (the slow path counts itself). */
static inline mh_ref load_barrier(mh_heap *h, mh_ref *field)
{
    mh_ref v = field_load(field);
    if (MH_LIKELY(!ref_is_stale(&h->views, v))) {
        h->stats.loads_fast++;
        return v;
    }
    return h->collector->load_slow(h, field, v);
}

/* Collector loads (card scanning): heal the same way, counted only in the slow path. */
static inline mh_ref load_barrier_internal(mh_heap *h, mh_ref *field)
{
    mh_ref v = field_load(field);
    if (!ref_is_stale(&h->views, v))
        return v;
    return h->collector->load_slow(h, field, v);
}

#endif
