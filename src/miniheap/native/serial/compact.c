/*
 * compact.c: the last resort before "heap exhausted": a full collection that
 * slides every live object of old (and of young) down to the lowest regions,
 * as SerialGC's mark-compact does, so all free space ends up in one run at
 * the top.
 *
 * The ordinary full collection (full.c) evacuates only sparse regions, so a
 * heap whose regions alternate dense and free stays that way: a humongous
 * object needing two adjacent free regions fails while half of old is free.
 * After a compaction an allocation fails only when the live bytes, rounded
 * to whole regions where objects must (a humongous object starts a region
 * and owns its regions; an ordinary object never crosses one), plus the
 * request exceed the heap.
 *
 * Four phases, after a marking (full_mark):
 *   plan     walk the live objects in address order (old regions first, then
 *            young) and give each the next free address; record the move in
 *            the off-heap forwarding table of its source region. An old
 *            object never moves up: packing a prefix of the objects in their
 *            own order needs no more room than they had (the constraints,
 *            region starts for humongous objects, no crossing, are the same).
 *   commit   every destination region (the embedder may refuse: then nothing
 *            has moved and the heap is as the marking left it).
 *   move     memmove each object, in the same order, so no object is
 *            overwritten before it has moved; rebuild the block offsets.
 *   remap    every reference (handles, slots) through the tables, eagerly.
 */
#include <stdlib.h>
#include "internal.h"
#include "card.h"
#include "forwarding.h"
#include "mark.h"
#include "mutator.h"
#include "poison.h"
#include "side.h"

typedef struct dest_region {
    uint64_t top;
    uint8_t state;
    uint32_t humongous_start;
} dest_region;

typedef struct compactor {
    mh_heap *h;
    uint64_t dst;          /* next free offset */
    dest_region *dest;     /* indexed by region - young_regions */
    uint32_t ndest;        /* capacity of dest */
    bool overflow;         /* the live data does not fit the heap */
} compactor;

static uint64_t align_region(const mh_heap *h, uint64_t off)
{
    return (off + h->region_size - 1) & ~(h->region_size - 1);
}

/* Where an object of `size` bytes goes; advances the cursor. */
static uint64_t place(compactor *c, uint64_t size, bool humongous)
{
    mh_heap *h = c->h;
    uint64_t in_region = c->dst & (h->region_size - 1);
    if (humongous || in_region + size > h->region_size)
        c->dst = align_region(h, c->dst);
    uint64_t at = c->dst;
    if (at + size > h->heap_size) {
        c->overflow = true;
        return at;
    }
    uint32_t first = region_of(h, at) - h->young_regions;
    uint32_t n = humongous ? (uint32_t)((size + h->region_size - 1) >> h->region_shift) : 1;
    if (first + n > c->ndest) { /* cannot happen (see compact_phases); refuse rather than overrun */
        c->overflow = true;
        return at;
    }
    if (humongous) {
        uint64_t left = size;
        for (uint32_t i = 0; i < n; i++) {
            dest_region *d = &c->dest[first + i];
            d->state = i == 0 ? REGION_HUMONGOUS_START : REGION_HUMONGOUS_CONT;
            d->humongous_start = first + h->young_regions;
            d->top = left < h->region_size ? left : h->region_size;
            left -= d->top;
        }
        c->dst = align_region(h, at + size);
    } else {
        c->dest[first].state = REGION_OLD;
        c->dest[first].top = (at & (h->region_size - 1)) + size;
        c->dst = at + size;
    }
    return at;
}

/* Visit the live objects of [start, end) in address order. */
typedef void (*live_fn)(compactor *c, uint64_t off, mh_object *o, uint64_t size);

static void each_live(compactor *c, uint64_t start, uint64_t end, live_fn fn)
{
    mh_heap *h = c->h;
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        if (!obj_is_filler(o) && mark_test(h, off))
            fn(c, off, o, size);
        off += size;
    }
}

/* Old regions in address order, then young: the order of both plan and move. */
static void each_live_everywhere(compactor *c, uint32_t end, live_fn fn)
{
    mh_heap *h = c->h;
    for (uint32_t r = h->young_regions; r < end; r++) {
        const mh_region *reg = &h->regions[r];
        uint64_t base = region_base(h, r);
        if (reg->state == REGION_OLD)
            each_live(c, base, base + reg->top, fn);
        else if (reg->state == REGION_HUMONGOUS_START && mark_test(h, base))
            fn(c, base, heap_addr(h, base), obj_size(heap_addr(h, base)));
    }
    each_live(c, 0, h->eden_top, fn);
    each_live(c, from_base(h), from_base(h) + h->from_top, fn);
    each_live(c, to_base(h), to_base(h) + h->to_top, fn);
}

static void plan_one(compactor *c, uint64_t off, mh_object *o, uint64_t size)
{
    uint64_t to = place(c, size, obj_is_humongous(o));
    if (!c->overflow)
        fwd_add(c->h->fwd[region_of(c->h, off)], off, to);
}

static void move_one(compactor *c, uint64_t off, mh_object *o, uint64_t size)
{
    mh_heap *h = c->h;
    uint64_t to = fwd_resolve(h, off);
    space_unpoison(h, to, size);
    if (to != off)
        memmove(heap_addr(h, to), o, size); /* sliding down: the two may overlap */
    if (!obj_is_humongous(heap_addr(h, to)))
        bot_record(h, to, size);
    h->ev.objects_copied += to != off;
    h->ev.bytes_copied += to != off ? size : 0;
    if (is_young(h, off))
        h->ev.bytes_promoted += size;
}

static bool make_tables(mh_heap *h, uint32_t end)
{
    h->fwd_end = end;
    for (uint32_t r = 0; r < end; r++) {
        const mh_region *reg = &h->regions[r];
        if (!reg->live_objects)
            continue;
        if (!(h->fwd[r] = fwd_table_new(reg->live_objects))) {
            fwd_drop_all(h);
            heap_error(h, MH_E_NO_MEMORY, "out of memory for the forwarding tables of a "
                       "compaction; nothing was moved; free memory on the machine");
            return false;
        }
    }
    return true;
}

static void remap_slot(mh_heap *h, mh_ref *slot)
{
    if (*slot)
        *slot = ref_good(&h->views, fwd_resolve(h, ref_offset(&h->views, *slot)));
}

/* Rebuild the region table from the plan; returns the new end of used regions. */
static void rebuild_regions(compactor *c, uint32_t old_end)
{
    mh_heap *h = c->h;
    uint32_t new_end = region_of(h, align_region(h, c->dst));
    uint32_t end = old_end > new_end ? old_end : new_end;
    h->old_used = 0;
    h->free_regions = h->nregions - h->young_regions;
    h->used_end = h->young_regions;
    for (uint32_t r = h->young_regions; r < end; r++) {
        mh_region *reg = &h->regions[r];
        const dest_region *d = &c->dest[r - h->young_regions];
        uint64_t base = region_base(h, r);
        reg->state = d->state;
        reg->top = d->top;
        reg->humongous_start = d->humongous_start;
        reg->filler_bytes = 0;
        reg->in_cset = 0;
        if (d->state == REGION_FREE) {
            if (reg->committed)
                space_poison(h, base, h->region_size);
            continue;
        }
        h->free_regions--;
        h->old_used += d->top;
        h->used_end = r + 1;
        space_poison(h, base + d->top, h->region_size - d->top);
    }
    h->promo_region = -1;
}

int compact_phases(mh_heap *h)
{
    uint64_t t = clock_ns();
    full_mark(h);
    h->ev.ns_mark = clock_ns() - t;
    t = clock_ns();

    uint32_t end = regions_end(h);
    compactor c = {.h = h, .dst = region_base(h, h->young_regions)};
    /* Old objects never move up, so they stay below end; young ones (none larger than half a
     * region, so every region they close is more than half full) need at most twice the young
     * regions, plus one partly filled. */
    c.ndest = h->nregions - h->young_regions;
    uint64_t reach = (uint64_t)end - h->young_regions + 2ull * h->young_regions + 2;
    if (reach < c.ndest)
        c.ndest = (uint32_t)reach;
    c.dest = calloc(c.ndest, sizeof *c.dest);
    if (!c.dest || !make_tables(h, end)) {
        free(c.dest);
        if (!c.dest)
            heap_error(h, MH_E_NO_MEMORY, "out of memory for the plan of a compaction; nothing "
                       "was moved; free memory on the machine");
        return -1;
    }
    each_live_everywhere(&c, end, plan_one);
    if (c.overflow) {
        fwd_drop_all(h);
        free(c.dest);
        heap_error(h, MH_E_EXHAUSTED,
                   "heap exhausted: even compacted, the %llu live bytes need more than the heap's "
                   "%llu bytes (objects do not cross regions, humongous ones take whole regions); "
                   "release handles or raise heap_size",
                   (unsigned long long)h->ev.bytes_marked, (unsigned long long)h->heap_size);
        return -1;
    }
    /* every destination committed before a byte moves */
    for (uint32_t i = 0; i < c.ndest; i++) {
        if (c.dest[i].state != REGION_FREE && region_commit(h, h->young_regions + i) != 0) {
            fwd_drop_all(h);
            free(c.dest);
            return -1; /* the error (MH_E_COMMIT or MH_E_NO_MEMORY) says why; nothing moved */
        }
    }
    each_live_everywhere(&c, end, move_one);
    rebuild_regions(&c, end);
    free(c.dest);
    h->eden_top = h->from_top = h->to_top = 0;
    space_poison(h, 0, h->young_end);
    h->young_max_size = 0;
    h->young_unsafe = false; /* young is empty: the next young collection promotes nothing old */
    h->ev.ns_evacuate = clock_ns() - t;

    t = clock_ns();
    /* eagerly: no reference is stale afterwards */
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            remap_slot(h, &h->handles[i]);
    for (mh_mutator *m = h->mutators; m; m = m->next) /* the shadow stacks are roots too */
        for (uint32_t i = 0; i < m->nroots; i++)
            remap_slot(h, &m->roots[i]);
    for (uint32_t r = h->young_regions; r < h->used_end; r++) {
        const mh_region *reg = &h->regions[r];
        if (reg->state != REGION_OLD && reg->state != REGION_HUMONGOUS_START)
            continue;
        uint64_t base = region_base(h, r);
        uint64_t stop = reg->state == REGION_OLD ? base + reg->top : base + obj_size(heap_addr(h, base));
        for (uint64_t off = base; off < stop;) {
            mh_object *o = heap_addr(h, off);
            mh_ref *slots = obj_slots(o);
            for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++)
                remap_slot(h, &slots[i]);
            off += obj_size(o);
        }
    }
    fwd_drop_all(h);
    h->ev.ns_remap = clock_ns() - t;
    cards_clear_all(h); /* young is empty: no old-to-young reference */
    regions_uncommit_free(h);
    return 0;
}

int collect_compact(mh_heap *h, int cause)
{
    uint64_t t0 = gc_begin(h, MH_GC_FULL, cause);
    int rc = compact_phases(h);
    gc_end(h, t0);
    return rc == 0 ? 0 : MH_ERROR;
}
