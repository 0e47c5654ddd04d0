/*
 * full.c: the full collection, shaped like ZGC's cycle but stop-the-world:
 *
 *   1. mark      from the handles, with the mark bitmap; live bytes per region
 *   2. free      old regions with nothing live, unreachable humongous objects
 *   3. select    the evacuation set: all live young objects (young ends up
 *                empty) plus the sparsest old regions, only as much as
 *                provably fits in the free regions, reserved before copying
 *   4. evacuate  copy the set into fresh old regions, recording each move in
 *                an off-heap forwarding table; free the emptied regions
 *   5. remap     single view: fix every reference now; coloured: fix the
 *                roots only and let the load barrier heal the rest lazily
 *
 * Dead objects left in retained old regions become fillers, so that no
 * later card scan or verification reads the stale references inside them.
 */
#include <stdlib.h>
#include "internal.h"
#include "barrier.h"
#include "card.h"
#include "forwarding.h"
#include "mark.h"

int full_phases(mh_heap *h);

typedef struct cset_candidate {
    uint64_t live;
    uint32_t region;
} cset_candidate;

static void full_mark(mh_heap *h)
{
    views_set_good(&h->views, h->mark_color);
    mark_clear(h);
    for (uint32_t r = 0; r < h->nregions; r++) {
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
    /* Every live reference now has the marking colour and the current
     * address of its object: the previous cycle's tables have done their job. */
    fwd_drop_all(h);
    if (h->views.colored) {
        h->stale_color = h->mark_color;
        h->mark_color = h->mark_color == MH_COLOR_MARKED0 ? MH_COLOR_MARKED1 : MH_COLOR_MARKED0;
    }
    h->last_live = h->ev.bytes_marked;
}

static void free_dead_regions(mh_heap *h)
{
    for (uint32_t r = h->young_regions; r < h->nregions; r++) {
        mh_region *reg = &h->regions[r];
        if (reg->state == REGION_OLD && reg->live_bytes == 0) {
            region_free(h, r, true);
            h->ev.regions_freed++;
        } else if (reg->state == REGION_HUMONGOUS_START && !mark_test(h, region_base(h, r))) {
            uint32_t e = r;
            do {
                region_free(h, e, true);
                h->ev.regions_freed++;
                e++;
            } while (e < h->nregions && h->regions[e].state == REGION_HUMONGOUS_CONT &&
                     h->regions[e].humongous_start == r);
        }
    }
}

static void zap_range(mh_heap *h, uint64_t start, uint64_t end)
{
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        if (!obj_is_filler(o) && !mark_test(h, off))
            obj_make_filler(o, size);
        off += size;
    }
}

static void zap_dead(mh_heap *h, bool young_too)
{
    for (uint32_t r = h->young_regions; r < h->nregions; r++) {
        const mh_region *reg = &h->regions[r];
        if (reg->state == REGION_OLD && !reg->in_cset)
            zap_range(h, region_base(h, r), region_base(h, r) + reg->top);
    }
    if (young_too) {
        zap_range(h, 0, h->eden_top);
        zap_range(h, from_base(h), from_base(h) + h->from_top);
    }
}

static int by_live(const void *a, const void *b)
{
    const cset_candidate *x = a, *y = b;
    if (x->live != y->live)
        return x->live < y->live ? -1 : 1;
    return x->region < y->region ? -1 : x->region > y->region;
}

static uint64_t max_size_of(const mh_heap *h, uint64_t young_max, const cset_candidate *c, uint32_t n)
{
    uint64_t m = young_max;
    for (uint32_t i = 0; i < n; i++)
        if (h->regions[c[i].region].max_live_size > m)
            m = h->regions[c[i].region].max_live_size;
    return m;
}

/* Decide what to evacuate and secure everything copying needs (destination
 * regions, forwarding tables) before a single byte moves. */
static int select_cset(mh_heap *h, cset_candidate *cand, uint32_t *ncset)
{
    uint64_t young_live = 0, young_max = 0;
    for (uint32_t r = 0; r < h->young_regions; r++) {
        young_live += h->regions[r].live_bytes;
        if (h->regions[r].max_live_size > young_max)
            young_max = h->regions[r].max_live_size;
    }
    uint32_t young_need = regions_needed(young_live, young_max, h->region_size);
    if (young_need > h->free_regions) {
        heap_error(h, MH_E_EXHAUSTED,
                   "heap exhausted: the full collection found %llu live young bytes, which need "
                   "%u free old regions, but only %u are free (heap %llu bytes, live %llu bytes); "
                   "nothing was moved; release handles or raise heap_size",
                   (unsigned long long)young_live, young_need, h->free_regions,
                   (unsigned long long)h->heap_size, (unsigned long long)h->last_live);
        return -1;
    }

    uint32_t n = 0;
    for (uint32_t r = h->young_regions; cand && r < h->nregions; r++) {
        const mh_region *reg = &h->regions[r];
        if (reg->state == REGION_OLD && reg->live_bytes > 0 && reg->live_bytes < h->region_size / 4 * 3)
            cand[n++] = (cset_candidate){reg->live_bytes, r};
    }
    if (n > 1)
        qsort(cand, n, sizeof *cand, by_live);

    uint64_t bytes = young_live, max = young_max;
    uint32_t chosen = 0;
    for (; chosen < n; chosen++) {
        uint64_t b = bytes + cand[chosen].live;
        uint64_t m = max > h->regions[cand[chosen].region].max_live_size
                         ? max : h->regions[cand[chosen].region].max_live_size;
        if (regions_needed(b, m, h->region_size) > h->free_regions)
            break;
        bytes = b;
        max = m;
    }

    uint32_t got = regions_reserve(h, regions_needed(bytes, max, h->region_size));
    while (chosen > 0 && regions_needed(bytes, max, h->region_size) > got) {
        chosen--;
        bytes -= cand[chosen].live;
        max = max_size_of(h, young_max, cand, chosen);
    }
    if (got < young_need) /* region_commit has said why */
        goto fail;

    for (uint32_t r = 0; r < h->young_regions; r++) {
        if (h->regions[r].live_objects == 0)
            continue;
        if (!(h->fwd[r] = fwd_table_new(h->regions[r].live_objects))) {
            heap_error(h, MH_E_NO_MEMORY,
                       "out of memory for a forwarding table of %u entries; nothing was moved; "
                       "free memory on the machine", h->regions[r].live_objects);
            fwd_drop_all(h);
            goto fail;
        }
    }
    for (uint32_t i = 0; i < chosen; i++) {
        uint32_t r = cand[i].region;
        if (!(h->fwd[r] = fwd_table_new(h->regions[r].live_objects))) {
            chosen = i; /* evacuate fewer old regions; the spare reservation goes back */
            break;
        }
        h->regions[r].in_cset = 1;
    }
    *ncset = chosen;
    h->ev.regions_evacuated = chosen;
    return 0;
fail:
    regions_release_reserved(h);
    return -1;
}

static void evacuate_range(mh_heap *h, uint64_t start, uint64_t end, bool young)
{
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        if (!obj_is_filler(o) && mark_test(h, off)) {
            uint64_t to = old_bump(h, size);
            memcpy(heap_addr(h, to), o, size);
            fwd_add(h->fwd[region_of(h, off)], off, to);
            h->ev.objects_copied++;
            h->ev.bytes_copied += size;
            if (young)
                h->ev.bytes_promoted += size;
        }
        off += size;
    }
}

static void evacuate(mh_heap *h, const cset_candidate *cset, uint32_t n)
{
    /* copies go to fresh regions only: the old promotion region may be in the set */
    h->promo_region = -1;
    h->nscan = 0;
    evacuate_range(h, 0, h->eden_top, true);
    evacuate_range(h, from_base(h), from_base(h) + h->from_top, true);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t base = region_base(h, cset[i].region);
        evacuate_range(h, base, base + h->regions[cset[i].region].top, false);
    }
    /* the forwarding tables remember everything the emptied regions held */
    for (uint32_t i = 0; i < n; i++) {
        region_free(h, cset[i].region, true);
        h->ev.regions_freed++;
    }
    h->eden_top = 0;
    h->from_top = 0;
    h->young_max_size = 0;
}

static void remap_slot(mh_heap *h, mh_ref *slot)
{
    if (*slot)
        *slot = ref_good(&h->views, fwd_resolve(h, ref_offset(&h->views, *slot)));
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

static void remap_roots_lazily(mh_heap *h)
{
    views_set_good(&h->views, MH_COLOR_REMAPPED);
    for (uint32_t i = 0; i < h->max_handles; i++)
        if (handle_live(h, i) && h->handles[i])
            h->handles[i] = barrier_remap(h, h->handles[i]);
}

static void remap(mh_heap *h)
{
    if (h->views.colored) {
        remap_roots_lazily(h);
        return;
    }
    for (uint32_t i = 0; i < h->max_handles; i++)
        if (handle_live(h, i))
            remap_slot(h, &h->handles[i]);
    for (uint32_t r = h->young_regions; r < h->nregions; r++) {
        const mh_region *reg = &h->regions[r];
        if (reg->state == REGION_OLD || reg->state == REGION_HUMONGOUS_START)
            remap_range(h, region_base(h, r), region_base(h, r) + reg->top);
    }
    /* single view: nothing stale is left, so nothing needs the tables */
    fwd_drop_all(h);
}

/* Evacuation impossible: the heap stays as marking left it, made safe. */
static void full_abandon(mh_heap *h)
{
    zap_dead(h, true);
    if (h->views.colored)
        remap_roots_lazily(h);
    regions_uncommit_free(h);
}

int full_phases(mh_heap *h)
{
    uint64_t t = clock_ns();
    full_mark(h);
    h->ev.ns_mark = clock_ns() - t;

    free_dead_regions(h);
    cset_candidate *cand = malloc(h->nregions * sizeof *cand);
    uint32_t n = 0;
    if (select_cset(h, cand, &n) != 0) {
        free(cand);
        full_abandon(h);
        return -1;
    }
    zap_dead(h, false);

    t = clock_ns();
    evacuate(h, cand, n);
    h->ev.ns_evacuate = clock_ns() - t;

    t = clock_ns();
    remap(h);
    h->ev.ns_remap = clock_ns() - t;

    free(cand);
    regions_release_reserved(h);
    regions_uncommit_free(h);
    /* young is empty, so no old-to-young reference exists */
    cards_clear_all(h);
    return 0;
}

int collect_full(mh_heap *h, int cause)
{
    uint64_t t0 = gc_begin(h, MH_GC_FULL, cause);
    int rc = full_phases(h);
    gc_end(h, t0);
    return rc == 0 ? 0 : MH_ERROR;
}
