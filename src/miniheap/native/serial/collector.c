/*
 * collector.c: the generational copying collector behind the core's
 * collector record: configuration, geometry, metadata, the entry points,
 * and the event of each collection (one pause).
 */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"
#include "collector.h"
#include "card.h"
#include "forwarding.h"
#include "mark.h"
#include "poison.h"
#include "serial.h"
#include "mutator.h"

_Static_assert(MH_CARD_SHIFT == CARD_SHIFT && MH_CARD_DIRTY == CARD_DIRTY,
               "miniheap-inline.h must mark cards as the collector reads them");

#define BAD(...)                                                  \
    do {                                                          \
        if (err && errlen)                                        \
            snprintf(err, errlen, __VA_ARGS__);                   \
        return false;                                             \
    } while (0)

static bool serial_config_valid(const mh_config *c, char *err, size_t errlen)
{
    if (c->colored != MH_VIEWS_ONE)
        BAD("the serial collector has one view (colored = 0): the coloured views are the zgc "
            "collector's (collector = MH_COLLECTOR_ZGC), as no JDK collector is generational with "
            "coloured pointers");
    if (c->young_size % c->region_size || c->young_size < 3 * c->region_size)
        BAD("young_size %llu must be a multiple of region_size %llu holding at least 3 regions "
            "(eden and two survivor spaces)",
            (unsigned long long)c->young_size, (unsigned long long)c->region_size);
    if (c->young_size >= c->heap_size)
        BAD("young_size %llu must leave at least one old region in heap_size %llu; raise "
            "heap_size or lower young_size",
            (unsigned long long)c->young_size, (unsigned long long)c->heap_size);
    if (c->survivor_ratio < 1)
        BAD("survivor_ratio %u must be at least 1 (eden : one survivor space, 8 is usual)",
            c->survivor_ratio);
    if (c->tenuring_threshold > OBJ_MAX_AGE)
        BAD("tenuring_threshold %u must be between 0 and %u: the age has 4 bits",
            c->tenuring_threshold, OBJ_MAX_AGE);
    return true;
}

static void serial_geometry(mh_heap *h, const mh_config *c)
{
    h->young_regions = (uint32_t)(c->young_size >> h->region_shift);
    uint32_t s = h->young_regions / (c->survivor_ratio + 2);
    h->survivor_regions = s ? s : 1;
    h->eden_regions = h->young_regions - 2 * h->survivor_regions;
    h->eden_end = (uint64_t)h->eden_regions << h->region_shift;
    h->survivor_size = (uint64_t)h->survivor_regions << h->region_shift;
    h->survivor_base[0] = h->eden_end;
    h->survivor_base[1] = h->eden_end + h->survivor_size;
    h->young_end = c->young_size;
    h->card_from = h->young_end;
    h->tenuring_threshold = c->tenuring_threshold;
    /* mh_alloc's fast path takes objects up to this size: not humongous, no
     * larger than old, and (so it needs no slot-count check) at most
     * OBJ_MAX_NREFS slots */
    h->small_max = h->region_size / 2;
    if (h->heap_size - h->young_end < h->small_max)
        h->small_max = h->heap_size - h->young_end;
    if (obj_size_for(OBJ_MAX_NREFS, 0) < h->small_max)
        h->small_max = obj_size_for(OBJ_MAX_NREFS, 0);
}

static void serial_release(mh_heap *h)
{
    if (h->fwd)
        fwd_drop_all(h);
    free(h->fwd);
    free(h->regions);
    free(h->reserved);
    free(h->scan_regions);
    cards_free(h);
    mark_free(h);
    h->fwd = NULL;
    h->regions = NULL;
    h->reserved = h->scan_regions = NULL;
}

static int serial_init(mh_heap *h, char *err, size_t errlen)
{
    const mh_config *config = &h->config;
    serial_geometry(h, config);
    h->fwd = calloc(h->nregions, sizeof *h->fwd);
    if (!h->fwd || regions_init(h) || cards_init(h) || mark_init(h)) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory for collector metadata (about %llu bytes for a "
                     "heap of %llu bytes); lower heap_size",
                     (unsigned long long)((uint64_t)h->nregions * (sizeof(mh_region) + 32) + h->heap_size / 512),
                     (unsigned long long)h->heap_size);
        return -1;
    }
    uint64_t committed = config->keep_committed ? h->heap_size : h->young_end;
    if (embedder_commit(h, 0, committed) != 0) {
        if (err && errlen && (h->deferred & DEFER_INTERRUPT))
            snprintf(err, errlen, "interrupted: the commit callback called mh_interrupt while "
                     "the heap was being built; nothing was built");
        else if (err && errlen)
            snprintf(err, errlen, "the embedder could not commit %s (offset 0, %llu bytes); free "
                     "memory or lower %s", config->keep_committed ? "the whole heap" : "the young "
                     "generation", (unsigned long long)committed,
                     config->keep_committed ? "heap_size" : "young_size");
        return -1;
    }
    /* (embedder_commit poisoned what it committed: nothing is allocated yet) */
    if (regions_committed_at_start(h, (uint32_t)(committed >> h->region_shift)) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory for the side tables of the %llu committed bytes "
                     "(%llu bytes per region); free memory or lower %s", (unsigned long long)committed,
                     (unsigned long long)h->side_bytes, config->keep_committed ? "heap_size" : "young_size");
        if (h->config.uncommit)
            h->config.uncommit(h->config.ctx, 0, committed);
        return -1;
    }
    return 0;
}

/* No threads of its own: every collection runs on the mutator that needs it. */
static int serial_start(mh_heap *h, char *err, size_t errlen) { return 0; }
static void serial_stop(mh_heap *h) {}

/* One view: no reference is ever stale (bad_mask is 0), so the load barrier
 * never comes here. */
static mh_ref serial_load_slow(mh_heap *h, mh_ref *field, mh_ref stale)
{
    (void)h, (void)field;
    return stale;
}

static int serial_collect(mh_heap *h, int full)
{
    int rc = full ? collect_full(h, MH_CAUSE_EXPLICIT) : collect_young(h, MH_CAUSE_EXPLICIT);
    /* young could not be emptied into scattered free space: compact, as the JDK's full GC does */
    if (rc != 0 && full && h->error == MH_E_EXHAUSTED && !(h->deferred & (DEFER_CLOSE | DEFER_INTERRUPT)))
        rc = collect_compact(h, MH_CAUSE_EXPLICIT);
    return rc;
}

static uint32_t serial_regions_in_use(mh_heap *h) { return regions_end(h); }

static uint64_t serial_used(mh_heap *h) { return young_used(h) + h->old_used; }

static int serial_space_of(mh_heap *h, uint64_t off)
{
    if (off < h->eden_end)
        return MH_SPACE_EDEN;
    if (off < h->young_end)
        return MH_SPACE_SURVIVOR;
    return h->regions[region_of(h, off)].state == REGION_OLD ? MH_SPACE_OLD : MH_SPACE_HUMONGOUS;
}

/* ---- mutator records (core/mutator.c) ---------------------------------- */

/* An attached record's buffer is eden itself: top and limit are eden's bump
 * pointer and end as addresses in the allocation view, the view whose
 * addresses are the good references between collections (the single view, or
 * Remapped in the coloured layout: a full collection ends with Remapped good),
 * so a new object's reference is its address and ref_bits is 0. At most one
 * record is attached (attaching holds the heap), and it owns eden. */
static inline uint64_t alloc_base(const mh_heap *h) { return (uint64_t)(uintptr_t)heap_addr(h, 0); }

static void serial_mutators_in(mh_heap *h)
{
    for (mh_mutator *m = h->mutators; m; m = m->next)
        h->eden_top = m->top - alloc_base(h);
}

static void serial_mutators_out(mh_heap *h)
{
    uint64_t base = alloc_base(h);
    /* the inline path allocates objects of up to MH_INLINE_MAX_BYTES without telling
     * anyone their size: the bound on young objects (promotion's waste estimate) */
    if (h->young_max_size < MH_INLINE_MAX_BYTES)
        h->young_max_size = MH_INLINE_MAX_BYTES;
    for (mh_mutator *m = h->mutators; m; m = m->next) {
        m->top = base + h->eden_top;
        m->limit = mutator_forced_slow(m) ? 0 : base + h->eden_end;
        m->ref_bits = 0;
        m->bad_mask = h->views.bad_mask;
        m->addr_base = 0;
        m->addr_shift = 0;
        /* a slot's card: cards[offset >> 9] with offset = address - base */
        m->card_base = (uintptr_t)h->cards - (uintptr_t)(base >> CARD_SHIFT);
        m->card_from = base + h->young_end;
    }
}

/* ---- events ------------------------------------------------------------ */

uint64_t gc_begin(mh_heap *h, int kind, int cause)
{
    mh_gc_event *ev = &h->ev;
    h->busy = BUSY_GC;
    memset(ev, 0, sizeof *ev);
    ev->id = h->gc_count++;
    ev->kind = kind;
    ev->cause = cause;
    ev->capacity = h->heap_size;
    ev->eden_capacity = h->eden_end;
    ev->survivor_capacity = h->survivor_size;
    ev->old_capacity = h->heap_size - h->young_end;
    ev->eden_before = h->eden_top;
    ev->survivor_before = h->from_top + h->to_top;
    ev->old_before = h->old_used;
    ev->used_before = young_used(h) + h->old_used;
    ev->tenuring_threshold = h->tenuring_threshold;
    /* allocated bytes, from eden's bump pointer: nothing counts them one by one */
    h->bytes_retired += h->eden_top - h->eden_mark;
    h->eden_mark = h->eden_top;
    return clock_ns();
}

void gc_end(mh_heap *h, uint64_t t0)
{
    mh_gc_event *ev = &h->ev;
    ev->ns_total = clock_ns() - t0;
    ev->eden_after = h->eden_top;
    ev->survivor_after = h->from_top + h->to_top;
    ev->old_after = h->old_used;
    ev->used_after = young_used(h) + h->old_used;
    ev->good_color = h->views.good;
    ev->tenuring_threshold_new = h->tenuring_threshold;
    mh_stats *s = &h->stats;
    if (ev->kind == MH_GC_FULL)
        s->full_collections++;
    else
        s->young_collections++;
    s->bytes_copied += ev->bytes_copied;
    s->bytes_promoted += ev->bytes_promoted;
    s->total_pause_ns += ev->ns_total;
    s->pauses++;
    if (ev->ns_total > s->max_pause_ns)
        s->max_pause_ns = ev->ns_total;
    h->last_gc_full = ev->kind == MH_GC_FULL;
    /* one phase, the whole pause, run by the mutator that triggered it */
    ev->collector = MH_COLLECTOR_SERIAL;
    ev->start_ns = t0;
    ev->nphases = 1;
    ev->phases[0] = (mh_gc_phase){ev->kind == MH_GC_FULL ? "Pause Full" : "Pause Young", t0,
                                  ev->ns_total, 1, MH_THREAD_MUTATOR};
    h->eden_mark = h->eden_top; /* eden restarts (from 0, or where a failed collection left it) */
    /* The listener reads a whole heap and an event record nothing overwrites:
     * it may make read-only calls, and nothing it calls can collect again. */
    h->busy = BUSY_LISTENER;
    if (h->config.on_gc)
        h->config.on_gc(h->config.ctx, ev);
    h->busy = 0;
}

/* ---- regions, for teaching output -------------------------------------- */

static uint64_t clamp_used(uint64_t top, uint64_t base, uint64_t size)
{
    if (top <= base)
        return 0;
    return top - base < size ? top - base : size;
}

static int serial_region_info(mh_heap *h, uint32_t region, uint64_t *used)
{
    uint64_t base = region_base(h, region), u;
    int state;
    if (base < h->eden_end) {
        state = 1;
        u = clamp_used(h->eden_top, base, h->region_size);
    } else if (base < h->young_end) {
        bool from = base - from_base(h) < h->survivor_size;
        state = from ? 2 : 3;
        /* the to-survivor is empty except after a failed promotion */
        u = clamp_used(from ? from_base(h) + h->from_top : to_base(h) + h->to_top, base, h->region_size);
    } else {
        static const int states[] = {[REGION_FREE] = 0, [REGION_OLD] = 4,
                                     [REGION_HUMONGOUS_START] = 5, [REGION_HUMONGOUS_CONT] = 6};
        state = states[h->regions[region].state];
        u = h->regions[region].top;
    }
    *used = u;
    return state;
}

const mh_collector serial_collector = {
    .name = "serial",
    .kind = MH_COLLECTOR_SERIAL,
    .config_valid = serial_config_valid,
    .init = serial_init,
    .start = serial_start,
    .stop = serial_stop,
    .release = serial_release,
    .alloc = serial_alloc,
    .alloc_try = serial_alloc_try,
    .alloc_object = alloc_object,
    .mutators_in = serial_mutators_in,
    .mutators_out = serial_mutators_out,
    .load_slow = serial_load_slow,
    .collect = serial_collect,
    .verify = serial_verify,
    .used = serial_used,
    .regions_in_use = serial_regions_in_use,
    .region_info = serial_region_info,
    .space_of = serial_space_of,
};
