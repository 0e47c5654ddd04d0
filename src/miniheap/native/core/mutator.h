/*
 * mutator.h: the core's side of the mutator records of miniheap-inline.h.
 *
 * While a record is attached, the allocation pointer lives in it (the inline
 * fast path bumps it there) and the heap record's copy is stale. The two
 * meet at every way into the core from the attached thread: a slow path of
 * the record, or a public call (MH_LOCKED in internal.h). mutators_retire
 * brings the records' pointers back into the heap record before the call,
 * mutators_refill hands the (possibly moved) buffer back after it. The
 * collectors scan every attached record's shadow stack as roots.
 */
#ifndef MH_MUTATOR_H
#define MH_MUTATOR_H

#include "internal.h"
#include "miniheap-inline.h"

/* A sanitizer build of the core cannot let inline code it did not see built
 * with ASan allocate: that code would not mark its objects addressable and the
 * core's own reads of them would be reported. Such records always take the
 * slow path (limit 0). */
static inline bool mutator_forced_slow(const mh_mutator *m)
{
#if defined(__SANITIZE_ADDRESS__)
    return !(m->flags & MH_ATTACH_SANITIZED);
#else
    (void)m;
    return false;
#endif
}

void mutators_retire_slow(mh_heap *h);
void mutators_refill_slow(mh_heap *h);
void mutators_free(mh_heap *h);
void mutators_close(mh_heap *h); /* the heap closes: every record's fast path off (teardown.c) */

static inline void mutators_retire(mh_heap *h)
{
    if (MH_UNLIKELY(h->mutators != NULL))
        mutators_retire_slow(h);
}

static inline void mutators_refill(mh_heap *h)
{
    if (MH_UNLIKELY(h->mutators != NULL))
        mutators_refill_slow(h);
}

/* Visit every root of every attached record's shadow stack:
 *     for (mh_mutator *m = h->mutators; m; m = m->next)
 *         for (uint32_t i = 0; i < m->nroots; i++) visit(&m->roots[i]);
 * (null roots included: skip them). */

#endif
