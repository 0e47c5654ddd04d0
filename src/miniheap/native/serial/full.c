/*
 * full.c: the full collection, stop-the-world:
 *
 *   1. mark      from the handles, with the mark bitmap; live bytes per region
 *   2. free      old regions with nothing live, unreachable humongous objects
 *   3. select    the evacuation set: all live young objects (young ends up
 *                empty) plus the sparsest old regions, only as much as
 *                provably fits in the free regions, reserved before copying
 *   4. evacuate  copy the set into fresh old regions, recording each move in
 *                an off-heap forwarding table; free the emptied regions
 *   5. remap     fix every reference now (the roots, and every slot that can
 *                refer to what moved)
 *
 * Dead objects left in retained old regions become fillers, so that no
 * later card scan or verification reads the stale references inside them.
 */
#include <stdlib.h>
#include "internal.h"
#include "poison.h"
#include "barrier.h"
#include "card.h"
#include "forwarding.h"
#include "mark.h"
#include "mutator.h"
#include "promotion.h"

int full_phases(mh_heap *h);

typedef struct cset_candidate {
    uint64_t live;
    uint32_t region;
} cset_candidate;

void full_mark(mh_heap *h)
{
    mark_clear(h);
    for (uint32_t r = 0, end = regions_end(h); r < end; r++) {
        mh_region *reg = &h->regions[r];
        reg->live_bytes = 0;
        reg->live_objects = 0;
        reg->max_live_size = 0;
        reg->in_cset = 0;
    }
    uint64_t t = clock_ns();
    mark_roots(h);
    h->ev.ns_roots = clock_ns() - t;
    mark_drain(h);
    h->last_live = h->ev.bytes_marked;
}

static void free_dead_regions(mh_heap *h)
{
    for (uint32_t r = h->young_regions, end = regions_end(h); r < end; r++) {
        mh_region *reg = &h->regions[r];
        if (reg->state == REGION_OLD && reg->live_bytes == 0) {
            region_free(h, r, false); /* regions_uncommit_free decides at the end */
            h->ev.regions_freed++;
        } else if (reg->state == REGION_HUMONGOUS_START && !mark_test(h, region_base(h, r))) {
            uint32_t e = r;
            do {
                region_free(h, e, false);
                h->ev.regions_freed++;
                e++;
            } while (e < h->nregions && h->regions[e].state == REGION_HUMONGOUS_CONT &&
                     h->regions[e].humongous_start == r);
        }
    }
}

/* Returns the bytes turned into fillers. */
static uint64_t zap_range(mh_heap *h, uint64_t start, uint64_t end)
{
    uint64_t zapped = 0;
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        if (!obj_is_filler(o) && !mark_test(h, off)) {
            obj_make_filler(o, size);
            zapped += size;
        }
        off += size;
    }
    return zapped;
}

/* Before evacuation only: afterwards the copies, unmarked at their new
 * addresses, would look dead. */
static void zap_old(mh_heap *h)
{
    for (uint32_t r = h->young_regions, end = regions_end(h); r < end; r++) {
        mh_region *reg = &h->regions[r];
        /* a region whose every byte is live or filler has nothing to zap */
        if (reg->state == REGION_OLD && !reg->in_cset && reg->live_bytes + reg->filler_bytes < reg->top)
            reg->filler_bytes += zap_range(h, region_base(h, r), region_base(h, r) + reg->top);
    }
}

static void zap_young(mh_heap *h)
{
    zap_range(h, 0, h->eden_top);
    zap_range(h, from_base(h), from_base(h) + h->from_top);
    zap_range(h, to_base(h), to_base(h) + h->to_top); /* empty unless a promotion failed */
}

static int by_live(const void *a, const void *b)
{
    const cset_candidate *x = a, *y = b;
    if (x->live != y->live)
        return x->live < y->live ? -1 : 1;
    return x->region < y->region ? -1 : x->region > y->region;
}

/*
 * The evacuation plan: sparse old regions first (sparsest first), then all
 * of young, copied as one stream into fresh regions. A source region is free
 * again as soon as its objects are copied, so the stream may reuse it: with
 * F regions free at the start, the first k units may need at most F + k - 1
 * regions once the k-th is copied. regions_needed bounds what any prefix of
 * the stream needs, from exact live bytes and the largest object, so the
 * plan is proven to fit before a byte moves; compacting old regions first is
 * what lets the young data in when old is full of dead space.
 *
 * With no free region at all, the first unit is compacted in place (as ZGC
 * relocates a page in place when it cannot allocate one): its live objects
 * slide down to the region's start, and the stream continues in its tail.
 */
typedef struct evac_plan {
    cset_candidate *units;   /* old regions to evacuate, in copy order */
    uint32_t n;
    uint64_t max_size;       /* bound on every object the stream copies */
    uint64_t young_live;
    bool in_place;           /* units[0] is compacted within its own region */
} evac_plan;

static uint32_t stream_needs(const mh_heap *h, const evac_plan *p, uint64_t bytes)
{
    return regions_needed(bytes, p->max_size, h->region_size);
}

static int plan_evacuation(mh_heap *h, evac_plan *p)
{
    p->young_live = 0;
    p->max_size = 0;
    for (uint32_t r = 0; r < h->young_regions; r++) {
        p->young_live += h->regions[r].live_bytes;
        if (h->regions[r].max_live_size > p->max_size)
            p->max_size = h->regions[r].max_live_size;
    }
    uint32_t n = 0;
    for (uint32_t r = h->young_regions, end = regions_end(h); p->units && r < end; r++) {
        const mh_region *reg = &h->regions[r];
        /* worth copying: it frees more than a quarter of a region of dead space (a
         * partly filled region whose objects all live is left alone) */
        if (reg->state == REGION_OLD && reg->live_bytes > 0 && reg->top - reg->live_bytes > h->region_size / 4) {
            p->units[n++] = (cset_candidate){reg->live_bytes, r};
            if (reg->max_live_size > p->max_size)
                p->max_size = reg->max_live_size;
        }
    }
    if (n > 1)
        qsort(p->units, n, sizeof *p->units, by_live);

    /* the longest prefix of old units that always fits, then the longest
     * one after which young fits too */
    uint64_t free0 = h->free_regions, bytes = 0;
    uint32_t k = 0;
    p->in_place = free0 == 0;
    /* before unit k is copied, the stream may use the free regions and the
     * k regions of the units before it (freed, or compacted in place) */
    while (k < n && stream_needs(h, p, bytes + p->units[k].live) <= free0 + k + (p->in_place && k == 0))
        bytes += p->units[k++].live;
    while (stream_needs(h, p, bytes + p->young_live) > free0 + k && k > 0)
        bytes -= p->units[--k].live;
    if (stream_needs(h, p, bytes + p->young_live) > free0 + k) {
        heap_error(h, MH_E_EXHAUSTED,
                   "heap exhausted: the full collection found %llu live young bytes and cannot "
                   "promote them: old has %u free regions of %llu bytes (heap %llu bytes, live %llu "
                   "bytes); nothing was moved; release handles or raise heap_size",
                   (unsigned long long)p->young_live, h->free_regions,
                   (unsigned long long)h->region_size, (unsigned long long)h->heap_size,
                   (unsigned long long)h->last_live);
        return -1;
    }
    p->n = k;

    /* forwarding tables too are secured before copying (young objects forward in their
     * headers, see evacuate_range) */
    h->fwd_end = regions_end(h); /* every table made here is for a region below this */
    for (uint32_t i = 0; i < p->n; i++) {
        uint32_t r = p->units[i].region;
        if (!(h->fwd[r] = fwd_table_new(h->regions[r].live_objects))) {
            fwd_drop_all(h);
            heap_error(h, MH_E_NO_MEMORY, "out of memory for a forwarding table of %u entries; "
                       "nothing was moved; free memory on the machine", h->regions[r].live_objects);
            return -1;
        }
    }
    for (uint32_t i = 0; i < p->n; i++)
        h->regions[p->units[i].region].in_cset = 1;
    return 0;
}

/* Take regions until `total` are reserved for the stream. Fails only when
 * the embedder refuses a commit (the plan proved the regions are free). */
static bool reserve_upto(mh_heap *h, uint32_t total)
{
    while (h->nreserved < total) {
        int32_t r = region_take(h);
        if (r < 0)
            return false;
        h->reserved[h->nreserved++] = r;
    }
    return true;
}

static void evacuate_range(mh_heap *h, uint64_t start, uint64_t end, bool young)
{
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        if (!obj_is_filler(o) && mark_test(h, off)) {
            uint64_t to = old_bump(h, size);
            mh_object *copy = heap_addr(h, to);
            memmove(copy, o, size); /* in place, a copy may overlap its original */
            /* A young object forwards in its old header, as in a young collection:
             * young is not reused before the remap has read every header (it is
             * emptied afterwards), and every reference is remapped in the pause. */
            if (young)
                obj_forward_to(o, to);
            else
                fwd_add(h->fwd[region_of(h, off)], off, to);
            h->ev.objects_copied++;
            h->ev.bytes_copied += size;
            if (young) {
                h->ev.bytes_promoted += size;
            } else {
                /* young may yet fail to move: keep the remembered set right for the copy */
                mh_ref *slots = obj_slots(copy);
                for (uint32_t i = 0, n = obj_nrefs(copy); i < n; i++)
                    if (slots[i] && is_young(h, ref_offset(&h->views, slots[i])))
                        card_dirty(h, to + obj_slot_offset(i));
            }
        }
        off += size;
    }
}

/* A planned unit that will not be copied after all: make it an ordinary
 * retained region again. */
static void unplan_region(mh_heap *h, uint32_t r)
{
    free(h->fwd[r]);
    h->fwd[r] = NULL;
    h->regions[r].in_cset = 0;
    h->regions[r].filler_bytes += zap_range(h, region_base(h, r), region_base(h, r) + h->regions[r].top);
}

/* Where the copies of young objects went: from `start` (an offset in the
 * promotion region's tail, or UINT64_MAX) to its top, then every region of
 * h->scan_regions from `first_region` on. */
typedef struct young_copies {
    uint64_t start;
    uint32_t first_region;
} young_copies;

/* Returns whether young was evacuated (it always is, unless a commit fails). */
static bool evacuate(mh_heap *h, const evac_plan *p, young_copies *copies)
{
    /* the stream starts in the promotion region's tail unless that region moves */
    if (h->promo_region >= 0 && h->regions[h->promo_region].in_cset)
        h->promo_region = -1;
    h->nscan = 0;
    h->nreserved = h->reserved_used = 0;
    uint64_t bytes = 0;
    uint32_t i = 0, own = 0; /* own: stream regions that need no reservation */
    if (p->n > 0 && p->in_place) {
        uint32_t r = p->units[0].region;
        uint64_t end = region_base(h, r) + h->regions[r].top;
        h->old_used -= h->regions[r].top;
        h->regions[r].top = 0;
        h->regions[r].filler_bytes = 0;
        h->promo_region = (int32_t)r;
        evacuate_range(h, region_base(h, r), end, false);
        bytes = p->units[0].live;
        h->ev.regions_evacuated++;
        own = 1;
        i = 1;
    }
    for (; i < p->n; i++) {
        uint32_t r = p->units[i].region;
        if (!reserve_upto(h, stream_needs(h, p, bytes + p->units[i].live) - own))
            break;
        bytes += p->units[i].live;
        evacuate_range(h, region_base(h, r), region_base(h, r) + h->regions[r].top, false);
        /* the forwarding table remembers everything the region held */
        region_free(h, r, false);
        h->ev.regions_freed++;
        h->ev.regions_evacuated++;
    }
    for (uint32_t j = i; j < p->n; j++)
        unplan_region(h, p->units[j].region);
    if (i < p->n || !reserve_upto(h, stream_needs(h, p, bytes + p->young_live) - own)) {
        for (uint32_t r = 0; r < h->young_regions; r++) {
            free(h->fwd[r]);
            h->fwd[r] = NULL;
        }
        return false;
    }
    copies->start = h->promo_region >= 0 ? region_base(h, (uint32_t)h->promo_region) +
                                               h->regions[h->promo_region].top : UINT64_MAX;
    copies->first_region = h->nscan;
    evacuate_range(h, 0, h->eden_top, true);
    evacuate_range(h, from_base(h), from_base(h) + h->from_top, true);
    evacuate_range(h, to_base(h), to_base(h) + h->to_top, true); /* after a failed promotion */
    /* young is dead now (every live object left it), but its headers forward to the
     * copies until the remap is done: full_phases empties it afterwards */
    return true;
}

static void young_empty(mh_heap *h)
{
    h->eden_top = 0;
    h->from_top = 0;
    h->to_top = 0;
    space_poison(h, 0, h->young_end);
    h->young_max_size = 0;
}

/* A young object's new offset is in its old header; anything else that moved is in a
 * forwarding table. */
static void remap_slot(mh_heap *h, mh_ref *slot)
{
    mh_ref v = *slot;
    if (!v)
        return;
    uint64_t off = ref_offset(&h->views, v);
    if (is_young(h, off)) {
        uint64_t w = obj_header(heap_addr(h, off));
        if (hdr_is_forwarded(w))
            *slot = ref_good(&h->views, hdr_forwardee(w));
        return;
    }
    *slot = ref_good(&h->views, fwd_resolve(h, off));
}

static void remap_range(mh_heap *h, uint64_t start, uint64_t end)
{
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        mh_ref *slots = obj_slots(o);
        for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++)
            remap_slot(h, &slots[i]);
        off += obj_size(o);
    }
}

/* The slots of the dirty cards: every old-to-young reference is in one (the
 * write barrier's invariant, which mh_verify checks). The cards are cleaned on
 * the way: young is about to be empty. */
static void remap_dirty_cards(mh_heap *h)
{
    card_cursor cursor = {0, 0};
    card_span span;
    while (cards_next_dirty(h, &cursor, &span)) {
        uint64_t card_end = span.card + CARD_SIZE;
        for (uint64_t obj = span.first_object; obj < card_end && obj < span.limit;) {
            mh_object *o = heap_addr(h, obj);
            uint64_t first = obj + obj_slot_offset(0);
            uint64_t end = first + 8ull * obj_nrefs(o);
            for (uint64_t s = first > span.card ? first : span.card; s < end && s < card_end; s += 8)
                remap_slot(h, heap_addr(h, s));
            obj += obj_size(o);
        }
    }
}

static void remap_copies(mh_heap *h, const young_copies *copies)
{
    if (copies->start != UINT64_MAX) {
        uint32_t r = region_of(h, copies->start);
        remap_range(h, copies->start, region_base(h, r) + h->regions[r].top);
    }
    for (uint32_t i = copies->first_region; i < h->nscan; i++) {
        uint32_t r = (uint32_t)h->scan_regions[i];
        remap_range(h, region_base(h, r), region_base(h, r) + h->regions[r].top);
    }
}

static void remap(mh_heap *h, bool young_moved, const young_copies *copies)
{
    if (h->ev.objects_copied == 0)
        return; /* nothing moved: no reference to fix */
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            remap_slot(h, &h->handles[i]);
    for (mh_mutator *m = h->mutators; m; m = m->next)
        for (uint32_t i = 0; i < m->nroots; i++)
            remap_slot(h, &m->roots[i]);
    if (young_moved && h->ev.regions_evacuated == 0) {
        /* Only young moved. What can refer to it: the roots, the old objects with a
         * dirty card, and the copies themselves; the rest of old need not be read. */
        remap_dirty_cards(h);
        remap_copies(h, copies);
    } else {
        if (!young_moved) {
            remap_range(h, 0, h->eden_top);
            remap_range(h, from_base(h), from_base(h) + h->from_top);
            remap_range(h, to_base(h), to_base(h) + h->to_top);
        }
        for (uint32_t r = h->young_regions, end = regions_end(h); r < end; r++) {
            const mh_region *reg = &h->regions[r];
            if (reg->state == REGION_OLD || reg->state == REGION_HUMONGOUS_START)
                remap_range(h, region_base(h, r), region_base(h, r) + reg->top);
        }
    }
    /* single view: nothing stale is left, so nothing needs the tables */
    fwd_drop_all(h);
}

int full_phases(mh_heap *h)
{
    uint64_t t = clock_ns();
    full_mark(h);
    h->ev.ns_mark = clock_ns() - t;

    free_dead_regions(h);
    evac_plan plan = {.units = malloc(((size_t)regions_end(h) + 1) * sizeof(cset_candidate))};
    int planned = plan_evacuation(h, &plan);
    /* dead objects of every region that stays become fillers */
    zap_old(h);
    bool young_moved = false;
    young_copies copies = {UINT64_MAX, 0};
    if (planned == 0) {
        t = clock_ns();
        young_moved = evacuate(h, &plan, &copies);
        h->ev.ns_evacuate = clock_ns() - t;
    }
    if (!young_moved)
        zap_young(h);
    free(plan.units);

    t = clock_ns();
    remap(h, young_moved, &copies);
    h->ev.ns_remap = clock_ns() - t;
    if (young_moved)
        young_empty(h);

    regions_release_reserved(h);
    regions_uncommit_free(h);
    if (young_moved) /* young is empty, so no old-to-young reference exists */
        cards_clear_all(h);
    return young_moved ? 0 : -1;
}

int collect_full(mh_heap *h, int cause)
{
    uint64_t t0 = gc_begin(h, MH_GC_FULL, cause);
    int rc = full_phases(h);
    /* HotSpot's gc_epilogue(full): if young could not be emptied and a young
     * collection would not be safe, the next collection is a full one again */
    h->young_unsafe = h->eden_top != 0 && !promotion_attempt_is_safe(h, NULL);
    gc_end(h, t0);
    return rc == 0 ? 0 : MH_ERROR;
}
