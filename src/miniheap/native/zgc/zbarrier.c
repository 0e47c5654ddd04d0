/*
 * zbarrier.c: the load barrier's slow path, a mutator's share of the work.
 *
 * The fast path (core/barrier.h) is ZGC's: a reference with none of the bad
 * colour bits is used as it is. A stale one comes here, and what is done
 * depends on the phase, as in JDK 17's ZBarrier::relocate_or_mark:
 *   marking      mark the object (and push it for the GC thread to trace),
 *                after remapping it if it carries the last cycle's colour
 *   relocating   relocate or remap: forward through the relocation set's
 *                table, copying the object first if nobody has yet
 * and then heal: write the good reference back into the field, with a
 * compare-and-swap so a store made meanwhile is not undone, and the next
 * load of that field is fast.
 *
 * Never a safepoint: the caller holds a raw pointer to the object whose
 * field this is. A relocation stall waits holding the heap (the GC thread
 * needs no pause to finish a page).
 */
#include "zgc.h"
#include "barrier.h"

mh_ref zload_slow(mh_heap *h, mh_ref *field, mh_ref stale)
{
    zheap *z = h->z;
    h->stats.loads_slow++;
    __atomic_add_fetch(&z->mut_loads_slow, 1, __ATOMIC_RELAXED);
    mh_ref good;
    switch (z->phase) {
    case ZPHASE_MARK:
        good = zmark_barrier(z, stale);
        break;
    case ZPHASE_MARK_COMPLETED: /* nothing reachable is stale now; remap all the same */
        good = zmark_remap(z, stale);
        break;
    default:
        good = zgood(h, zrelocate_or_remap(z, ZWORKER_MUTATOR, zoff(h, stale)));
        break;
    }
#ifndef MH_TEST_NO_HEAL
    mh_ref expected = stale;
    if (__atomic_compare_exchange_n(field, &expected, good, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        h->stats.loads_healed++;
#endif
    return good;
}
