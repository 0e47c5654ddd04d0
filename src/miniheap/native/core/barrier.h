/*
 * barrier.h: the load barrier (coloured mode; a no-op test in single view).
 *
 * Fast path: the reference has no bad colour bit (null included): use it.
 * Slow path: find where the object is now (the forwarding table of the last
 * evacuation if the reference predates it), make a good-coloured reference,
 * write it back into the field so the next load is fast ("self-healing"),
 * and return it.
 */
#ifndef MH_BARRIER_H
#define MH_BARRIER_H

#include "internal.h"

/* The good-coloured reference a stale one stands for. Never touches the heap. */
mh_ref barrier_remap(const mh_heap *h, mh_ref stale);
mh_ref barrier_slow(mh_heap *h, mh_ref *field, mh_ref stale);

/* Mutator loads: counted in loads_fast / loads_slow / loads_healed. */
static inline mh_ref load_barrier(mh_heap *h, mh_ref *field)
{
    mh_ref v = *field;
    if (__builtin_expect(!ref_is_stale(&h->views, v), 1)) {
        h->stats.loads_fast++;
        return v;
    }
    return barrier_slow(h, field, v);
}

/* Collector loads (card scanning): heal the same way, count only the slow path. */
static inline mh_ref load_barrier_internal(mh_heap *h, mh_ref *field)
{
    mh_ref v = *field;
    if (!ref_is_stale(&h->views, v))
        return v;
    return barrier_slow(h, field, v);
}

#endif
