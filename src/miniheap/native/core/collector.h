/*
 * collector.h: what the core asks of a collector.
 *
 * A heap has one collector, chosen at mh_heap_new from mh_config.collector
 * and never changed: the generational copying collector (serial/, SerialGC's
 * shape) or the concurrent one (zgc/, JDK 17's non-generational ZGC). The
 * core (lifecycle, handles, field access, the public API, safepoints, events)
 * calls a collector only through this record, so nothing in core/ knows
 * which one runs, and a collector's files never include the other's headers.
 *
 * Every hook is called by a mutator thread holding the heap, except `stop`
 * (called by the closing thread before the heap lock is taken, so that a GC
 * thread waiting for a pause can finish) and `release`.
 */
#ifndef MH_COLLECTOR_H
#define MH_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "miniheap.h"

typedef struct mh_collector {
    const char *name;   /* "serial", "zgc": for messages */
    int kind;           /* MH_COLLECTOR_* */
    /* Check the parts of the configuration only this collector reads; NULL err
     * text means fine. Called before anything is allocated. */
    bool (*config_valid)(const mh_config *c, char *err, size_t errlen);
    /* Metadata, initial commit; 0, or -1 with err filled. The heap record's
     * geometry (regions, views) is set. */
    int (*init)(mh_heap *h, char *err, size_t errlen);
    /* Start the collector's threads (zgc: the GC thread); 0 or -1 with err. */
    int (*start)(mh_heap *h, char *err, size_t errlen);
    /* Stop them, before anything is freed. The caller does not hold the heap. */
    void (*stop)(mh_heap *h);
    /* Free the collector's metadata (after stop), at close. */
    void (*release)(mh_heap *h);
    /* Free what a thread still waiting in a call may touch after the close
     * (zgc: the locks and condition variables its waits use), when the heap's
     * record is freed; NULL if nothing. */
    void (*free_record)(mh_heap *h);
    /* mh_alloc: a new object, its handle or MH_ERROR. */
    mh_handle (*alloc)(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
    /* The C-level Python Ref's allocation (miniheap-pyapi.h), called holding the
     * heap: a new object's handle if the fast path can make it; MH_WOULD_BLOCK
     * for anything that might collect or wait (the caller then calls mh_alloc
     * with the GIL released). NULL: always MH_WOULD_BLOCK. */
    mh_handle (*alloc_try)(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
    /* The inline path's slow path (mh_new): a new object's heap offset, or
     * UINT64_MAX with the error set. */
    uint64_t (*alloc_object)(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
    /* Mutator records (core/mutator.c): bring the attached records'
     * allocation pointers into the collector's bookkeeping (in), and hand its
     * allocation buffer and barrier state back out to them (out). */
    void (*mutators_in)(mh_heap *h);
    void (*mutators_out)(mh_heap *h);
    /* The load barrier's slow path: `stale` was read from *field and has a bad
     * colour (ref_is_stale). Returns the good reference, healing the field. */
    mh_ref (*load_slow)(mh_heap *h, mh_ref *field, mh_ref stale);
    /* mh_collect: full = 0 young, 1 full (zgc: a whole cycle either way). */
    int (*collect)(mh_heap *h, int full);
    /* mh_verify: the number of problems (first in the heap's message). */
    int (*verify)(mh_heap *h);
    /* Bytes in use, as the collector counts them (zgc: pages allocated). */
    uint64_t (*used)(mh_heap *h);
    /* mh_regions_in_use: every region from this one on is free and uncommitted. */
    uint32_t (*regions_in_use)(mh_heap *h);
    /* mh_region_info: the state of one region (granule) and its used bytes. */
    int (*region_info)(mh_heap *h, uint32_t region, uint64_t *used);
    /* mh_space_of: MH_SPACE_* of the object at a heap offset. */
    int (*space_of)(mh_heap *h, uint64_t offset);
} mh_collector;

extern const mh_collector serial_collector;
extern const mh_collector zgc_collector;

#endif
