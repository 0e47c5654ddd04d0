/*
 * young.c: the young collection, a Cheney copying collection of eden and
 * the from-survivor into the to-survivor and the old generation.
 *
 * Roots are the handles, the mutators' shadow stacks and the dirty cards of
 * the old generation. The to-survivor is its own Cheney queue (scan pointer
 * chasing the allocation top); promoted objects are queued the same way
 * through the list of old regions they were copied into. Forwarding
 * addresses live in the from-space headers, which nobody reads once the
 * collection ends.
 *
 * Whether to try at all is HotSpot Serial's rule (promotion.c): a young
 * collection is attempted when old can take the padded average of what
 * young collections promote, or all of young. Old regions are then taken
 * one by one as copies need them. If old runs out anyway (or the embedder
 * refuses a commit), promotion fails: an object that cannot be copied is
 * forwarded to itself and stays where it is, its slots are scanned like any
 * copy's, the collection finishes, and a full collection follows (JDK 17 logs
 * "Promotion failed", then "Pause Full"). Until that full collection, young
 * holds live objects in eden, the from-survivor and the to-survivor at once.
 *
 * The copy loop keeps everything it updates per object (the bump pointers,
 * the scan pointers, the counters) in a struct on its stack that only inlined
 * functions see, so the compiler keeps its fields in registers. The rare paths
 * (a new promotion region, a failed promotion) are out of line and get values,
 * not the struct: if the struct's address escaped to any call, every store
 * into a copied object could alias it (the heap is reached through computed
 * addresses, and the build does not use type-based aliasing), and each field
 * would be reloaded and stored again around every copy. The same holds for
 * the heap record, so what the loop reads from it is copied into the struct
 * first.
 */
#include "internal.h"
#include "poison.h"
#include "barrier.h"
#include "card.h"
#include "mark.h"
#include "mutator.h"
#include "promotion.h"

#define INLINE static inline __attribute__((always_inline))

/* The old region copies are promoted into: bump between top and end. */
typedef struct promo_buffer {
    int32_t region;           /* -1: none */
    uint64_t top, end;
} promo_buffer;

typedef struct copier {
    mh_heap *h;
    uint8_t *walk;            /* address of heap offset 0 in the view the collector reads */
    uint64_t good_base;       /* good reference = good_base + offset */
    uint64_t ref_sub, ref_mask; /* offset = (ref - ref_sub) & ref_mask, for any colour */
    uint64_t eden_end, from_lo, survivor_size, young_end;
    uint8_t *cards;
    uint32_t *bot;            /* the promotion region's block-offset table (in its side block) */
    uint64_t region_mask;
    uint64_t to_lo, to_top, to_end;           /* the to-survivor: [to_lo, to_top) used */
    uint64_t to_scan;                         /* Cheney's scan pointer in the to-survivor */
    uint64_t to_ahead, promo_ahead;           /* prefetch pointers, running ahead of the scans */
    promo_buffer promo;
    uint32_t scan_index;                      /* promoted objects: h->scan_regions[scan_index] ... */
    uint64_t scan_offset;                     /* ... scanned up to here (UINT64_MAX: from its base) */
    unsigned threshold;
    bool failed;                              /* a promotion failed: objects forwarded to themselves */
    uint64_t objects, promoted, overflow, max_size, failed_objects, failed_bytes;
    uint64_t by_age[16];
} copier;

INLINE mh_object *at(const copier *c, uint64_t offset) { return (mh_object *)(c->walk + offset); }
INLINE uint64_t offset_of(const copier *c, mh_ref r) { return (r - c->ref_sub) & c->ref_mask; }

INLINE bool in_from_space(const copier *c, uint64_t offset)
{
    return offset < c->eden_end || offset - c->from_lo < c->survivor_size;
}

/* The promotion region is full: hand its top back to the heap record and take
 * the next region (its region is -1 when old has none left to give, or its
 * commit was refused). */
static promo_buffer __attribute__((noinline)) promo_next(mh_heap *h, promo_buffer cur)
{
    if (cur.region >= 0) {
        uint64_t base = region_base(h, (uint32_t)cur.region);
        h->old_used += cur.top - (base + h->regions[cur.region].top);
        h->regions[cur.region].top = cur.top - base;
    }
    int32_t r = region_take(h);
    if (r < 0)
        return (promo_buffer){-1, 0, 0};
    h->scan_regions[h->nscan++] = r;
    uint64_t base = region_base(h, (uint32_t)r);
    return (promo_buffer){r, base, base + h->region_size};
}

/* The block-offset table learns where each promoted object starts (card.h's
 * bot_record, with the promotion region's table and the mask from the struct). */
INLINE void bot_note(copier *c, uint64_t offset, uint64_t size)
{
    uint64_t in_region = offset & c->region_mask;
    uint64_t first = (in_region + CARD_SIZE - 1) >> CARD_SHIFT;
    uint64_t last = (in_region + size - 1) >> CARD_SHIFT;
    uint32_t word = (uint32_t)(in_region >> 3);
    for (uint64_t card = first; card <= last; card++)
        c->bot[card] = word;
}

/* Where a promoted copy goes, or UINT64_MAX when old is full. */
INLINE uint64_t promote_bump(copier *c, uint64_t size)
{
    if (MH_UNLIKELY(c->promo.top + size > c->promo.end)) {
        promo_buffer next = promo_next(c->h, c->promo);
        if (next.region < 0)
            return UINT64_MAX;
        c->promo = next;
        c->bot = region_bot(c->h, (uint32_t)next.region);
    }
    uint64_t to = c->promo.top;
    c->promo.top += size;
    bot_note(c, to, size);
    space_unpoison(c->h, to, size);
    return to;
}

/* HotSpot's handle_promotion_failure: the object stays, forwarded to itself,
 * and is queued so that its slots are traced as a copy's would be. The mark
 * stack is free during a young collection; if it cannot grow, the queue is
 * rebuilt by walking young (drain_failed). */
static void __attribute__((noinline, cold)) self_forward(mh_heap *h, mh_object *o, mh_ref ref)
{
    obj_self_forward(o);
    mark_push(h, ref);
}

/* Copy a word-aligned object of `words` words (the header excluded), with a
 * fixed-width move for the small sizes that make up most of a heap, and
 * prefetch the referents of its slots: the scan reaches this copy after
 * everything queued before it, so they have time to arrive. */
INLINE void copy_body(uint64_t *dst, const uint64_t *src, uint64_t words, uint32_t nrefs)
{
    switch (words) {
    case 8: dst[7] = src[7]; /* fall through */
    case 7: dst[6] = src[6]; /* fall through */
    case 6: dst[5] = src[5]; /* fall through */
    case 5: dst[4] = src[4]; /* fall through */
    case 4: dst[3] = src[3]; /* fall through */
    case 3: dst[2] = src[2]; /* fall through */
    case 2: dst[1] = src[1]; /* fall through */
    case 1: dst[0] = src[0]; /* fall through */
    case 0: break;
    default: memcpy(dst, src, words << 3);
    }
    uint32_t n = nrefs < 4 ? nrefs : 4;
    for (uint32_t i = 0; i < n; i++)
        if (src[i])
            __builtin_prefetch((const void *)(uintptr_t)src[i], 0, 3);
}

/* Copy a from-space object (or find its copy). The header is read once: the
 * copy's header and the forwarding word are computed from it, not re-read
 * (re-reading what a wide store just wrote stalls on store forwarding). */
INLINE mh_ref young_copy(copier *c, mh_ref ref)
{
    mh_object *o = ref_addr(&c->h->views, ref);
    uint64_t w = obj_header(o);
    if (hdr_is_forwarded(w))
        return c->good_base + hdr_forwardee(w);
    if (MH_UNLIKELY(hdr_is_self_forwarded(w)))
        return c->good_base + offset_of(c, ref);
    uint64_t size = hdr_size(w);
    uint64_t older = hdr_older(w);
    uint64_t to;
    if (MH_LIKELY(hdr_age(w) < c->threshold && size <= c->to_end - c->to_top)) {
        to = c->to_top;
        c->to_top += size;
        space_unpoison(c->h, to, size);
        c->by_age[hdr_age(older)] += size;
        if (size > c->max_size)
            c->max_size = size;
    } else {
        if (hdr_age(w) < c->threshold)
            c->overflow += size;
        to = promote_bump(c, size);
        if (MH_UNLIKELY(to == UINT64_MAX)) {
            self_forward(c->h, o, ref);
            c->failed = true;
            c->failed_objects++;
            c->failed_bytes += size;
            return c->good_base + offset_of(c, ref);
        }
        c->promoted += size;
    }
    mh_object *copy = at(c, to);
    obj_set_header(copy, older);
    copy_body((uint64_t *)(copy + 1), (const uint64_t *)(o + 1), (size >> 3) - 1, hdr_nrefs(w));
    obj_forward_to(o, to);
    c->objects++;
    return c->good_base + to;
}

/* Copy the referent of a slot if it is in from-space; true if it is young afterwards. */
INLINE bool young_trace(copier *c, mh_ref *slot, mh_ref v)
{
    if (!v)
        return false;
    uint64_t offset = offset_of(c, v);
    if (in_from_space(c, offset)) {
        v = young_copy(c, v);
        *slot = v;
        offset = v - c->good_base;
    }
    return offset < c->young_end;
}

/* The scan pointers are followed by prefetch pointers that walk the queued
 * copies LOOKAHEAD bytes ahead and prefetch what their slots refer to, so the
 * from-space objects the scan is about to copy are in the cache when it gets
 * there. (Prefetching when a copy is queued is too early when the queue is
 * long, as it is when a wide tree is copied breadth-first: the lines are
 * evicted before they are used.) */
#define LOOKAHEAD 1024

INLINE void prefetch_ahead(copier *c, uint64_t *ahead, uint64_t scan, uint64_t top)
{
    if (*ahead < scan || *ahead > scan + LOOKAHEAD) /* behind, or left in another region */
        *ahead = scan;
    uint64_t until = scan + LOOKAHEAD < top ? scan + LOOKAHEAD : top;
    while (*ahead < until) {
        mh_object *o = at(c, *ahead);
        uint64_t w = obj_header(o);
        const mh_ref *slots = obj_slots(o);
        for (uint32_t i = 0, n = hdr_nrefs(w) < 4 ? hdr_nrefs(w) : 4; i < n; i++)
            if (slots[i])
                __builtin_prefetch((const void *)(uintptr_t)slots[i], 0, 3);
        *ahead += hdr_size(w);
    }
}

/* Trace the slots of the object at offset; returns its size. Slots of an old
 * object still referring to young afterwards keep its card dirty. */
INLINE uint64_t scan_object(copier *c, uint64_t offset, bool old)
{
    mh_object *o = at(c, offset);
    uint64_t w = obj_header(o);
    mh_ref *slots = obj_slots(o);
    for (uint32_t i = 0, n = hdr_nrefs(w); i < n; i++)
        if (young_trace(c, &slots[i], slots[i]) && old)
            c->cards[(offset + obj_slot_offset(i)) >> CARD_SHIFT] = CARD_DIRTY;
    return hdr_size(w);
}

/* The dirty cards of old: the slots of each that lie inside it. Old-to-old
 * references may be stale in coloured mode: they are healed in passing. */
INLINE uint32_t scan_cards(copier *c)
{
    mh_heap *h = c->h;
    card_cursor cursor = {0, 0};
    card_span span;
    uint32_t scanned = 0;
    while (cards_next_dirty(h, &cursor, &span)) {
        scanned++;
        uint64_t card_end = span.card + CARD_SIZE;
        bool young = false;
        for (uint64_t obj = span.first_object; obj < card_end && obj < span.limit;) {
            mh_object *o = at(c, obj);
            uint64_t first = obj + obj_slot_offset(0);
            uint64_t end = first + 8ull * obj_nrefs(o);
            uint64_t lo = first > span.card ? first : span.card;
            uint64_t hi = end < card_end ? end : card_end;
            for (uint64_t s = lo; s < hi; s += 8) {
                mh_ref *slot = (mh_ref *)(c->walk + s);
                young |= young_trace(c, slot, load_barrier_internal(h, slot));
            }
            obj += obj_size(o);
        }
        if (young)
            c->cards[span.card >> CARD_SHIFT] = CARD_DIRTY;
    }
    return scanned;
}

/* Where the objects promoted into region r end: the bump pointer for the
 * current promotion region, the region's top for the regions filled before. */
INLINE uint64_t promoted_top(const copier *c, int32_t r)
{
    return r == c->promo.region ? c->promo.top : region_base(c->h, (uint32_t)r) + c->h->regions[r].top;
}

/* Scan what has been promoted since the last call; true if anything was. */
INLINE bool scan_promoted(copier *c)
{
    mh_heap *h = c->h;
    bool progress = false;
    while (c->scan_index < h->nscan) {
        int32_t r = h->scan_regions[c->scan_index];
        if (c->scan_offset == UINT64_MAX)
            c->scan_offset = region_base(h, (uint32_t)r);
        if (c->scan_offset < promoted_top(c, r)) {
            do {
                prefetch_ahead(c, &c->promo_ahead, c->scan_offset, promoted_top(c, r));
                c->scan_offset += scan_object(c, c->scan_offset, true);
            } while (c->scan_offset < promoted_top(c, r));
            progress = true;
        } else if (c->scan_index + 1 < h->nscan) {
            c->scan_index++;
            c->scan_offset = UINT64_MAX;
        } else {
            break;
        }
    }
    return progress;
}

/* The size of an object in from-space after (part of) a young collection:
 * a forwarded header has given its shape to the copy. */
INLINE uint64_t from_size(const uint8_t *walk, const mh_object *o)
{
    uint64_t w = obj_header(o);
    return hdr_is_forwarded(w) ? obj_size((const mh_object *)(walk + hdr_forwardee(w))) : hdr_size(w);
}

/* Objects that could not be promoted were queued on the mark stack; an
 * overflowed stack is rebuilt from the self-forwarded objects of young
 * (scanning one twice is harmless: its referents are forwarded by then). */
INLINE bool drain_failed(copier *c)
{
    mh_heap *h = c->h;
    bool progress = false;
    for (;;) {
        while (h->mark_top > 0) {
            scan_object(c, offset_of(c, h->mark_stack[--h->mark_top]), false);
            progress = true;
        }
        if (!h->mark_overflow)
            return progress;
        h->mark_overflow = false;
        uint64_t ranges[2][2] = {{0, h->eden_top}, {c->from_lo, c->from_lo + h->from_top}};
        for (int i = 0; i < 2; i++) {
            for (uint64_t off = ranges[i][0]; off < ranges[i][1];) {
                mh_object *o = at(c, off);
                uint64_t size = from_size(c->walk, o);
                if (obj_is_self_forwarded(o))
                    scan_object(c, off, false);
                off += size;
            }
        }
    }
}

INLINE void cheney_scan(copier *c)
{
    bool progress = true;
    while (progress) {
        progress = false;
        while (c->to_scan < c->to_top) {
            prefetch_ahead(c, &c->to_ahead, c->to_scan, c->to_top);
            c->to_scan += scan_object(c, c->to_scan, false);
            progress = true;
        }
        progress |= scan_promoted(c);
        if (MH_UNLIKELY(c->failed))
            progress |= drain_failed(c);
    }
}

/* After a failed promotion, from-space stays in use: forwarded objects become
 * fillers (their copies live on), objects forwarded to themselves become
 * ordinary objects again, and everything else there is dead and becomes a
 * filler too, so eden and the from-survivor hold only live objects and
 * parsable gaps (HotSpot's remove_forwarding_pointers). */
static void unforward_range(const uint8_t *walk, uint64_t start, uint64_t end)
{
    for (uint64_t off = start; off < end;) {
        mh_object *o = (mh_object *)(walk + off);
        uint64_t size = from_size(walk, o);
        if (obj_is_self_forwarded(o))
            obj_clear_self_forward(o);
        else
            obj_make_filler(o, size);
        off += size;
    }
}

/* Returns true if a promotion failed. */
static bool young_phases(mh_heap *h)
{
    mh_gc_event *ev = &h->ev;
    copier c = {
        .h = h,
        .walk = heap_addr(h, 0),
        .good_base = ref_good(&h->views, 0),
        .ref_sub = h->views.base[0], /* one view: offset = ref - base */
        .ref_mask = UINT64_MAX,
        .eden_end = h->eden_end,
        .from_lo = from_base(h),
        .survivor_size = h->survivor_size,
        .young_end = h->young_end,
        .cards = h->cards,
        .bot = h->promo_region >= 0 ? region_bot(h, (uint32_t)h->promo_region) : NULL,
        .region_mask = h->region_size - 1,
        .to_lo = to_base(h),
        .to_top = to_base(h),
        .to_end = to_base(h) + h->survivor_size,
        .to_scan = to_base(h),
        .promo = {h->promo_region, 0, 0},
        .scan_offset = UINT64_MAX,
        .threshold = h->tenuring_threshold,
    };
    uint64_t max_before = h->young_max_size;
    h->nscan = 0;
    h->mark_top = 0;
    h->mark_overflow = false;
    if (c.promo.region >= 0) {
        uint64_t base = region_base(h, (uint32_t)c.promo.region);
        c.promo.top = base + h->regions[c.promo.region].top;
        c.promo.end = base + h->region_size;
        h->scan_regions[h->nscan++] = c.promo.region;
        c.scan_offset = c.promo.top;
    }

    uint64_t t = clock_ns();
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            young_trace(&c, &h->handles[i], h->handles[i]);
    for (mh_mutator *m = h->mutators; m; m = m->next)
        for (uint32_t i = 0; i < m->nroots; i++)
            young_trace(&c, &m->roots[i], m->roots[i]);
    ev->ns_roots = clock_ns() - t;

    t = clock_ns();
    ev->cards_scanned = scan_cards(&c);
    ev->ns_cards = clock_ns() - t;

    t = clock_ns();
    cheney_scan(&c);
    ev->ns_evacuate = clock_ns() - t;

    /* the copier's state back into the heap record, once */
    if (c.promo.region >= 0) {
        uint64_t base = region_base(h, (uint32_t)c.promo.region);
        h->old_used += c.promo.top - (base + h->regions[c.promo.region].top);
        h->regions[c.promo.region].top = c.promo.top - base;
    }
    h->promo_region = c.promo.region;
    ev->objects_copied = c.objects;
    ev->bytes_copied = (c.to_top - c.to_lo) + c.promoted;
    ev->bytes_promoted = c.promoted;
    ev->survivor_overflow_bytes = c.overflow;
    ev->promotion_failed_objects = (uint32_t)c.failed_objects;
    ev->promotion_failed_bytes = c.failed_bytes;
    memcpy(ev->bytes_by_age, c.by_age, sizeof c.by_age);
    h->young_max_size = c.max_size;

    if (c.failed) {
        /* young keeps its three spaces until the full collection that follows */
        unforward_range(c.walk, 0, h->eden_top);
        unforward_range(c.walk, c.from_lo, c.from_lo + h->from_top);
        h->to_top = c.to_top - c.to_lo;
        /* the objects left in eden and the from-survivor count too */
        if (h->young_max_size < max_before)
            h->young_max_size = max_before;
        return true;
    }
    ev->survivor_desired = tenuring_adjust(h, c.by_age);
    h->from = !h->from;
    h->from_top = c.to_top - c.to_lo;
    h->to_top = 0;
    h->eden_top = 0;
    /* eden and the old from-space are dead now: a read of either is a stale read */
    space_poison(h, 0, h->eden_end);
    space_poison(h, to_base(h), h->survivor_size);
    return false;
}

int collect_young(mh_heap *h, int cause)
{
    /* HotSpot's incremental_collection_will_fail: the last collection left
     * young in a state a young collection cannot handle, so go straight to a
     * full one (JDK 17 logs only the "Pause Full") */
    if (h->young_unsafe)
        return collect_full(h, cause);
    uint64_t t0 = gc_begin(h, MH_GC_YOUNG, cause);
    if (!promotion_attempt_is_safe(h, &h->ev)) {
        /* JDK 17 logs an empty "Pause Young", then the "Pause Full"; and it samples what old
         * grew by, 0, as after any young collection (TenuredGeneration::update_gc_stats), so
         * the padded average drops and a later young collection is tried again */
        h->ev.young_skipped = 1;
        promotion_sample(h, 0);
        gc_end(h, t0);
        h->young_unsafe = true;
        return collect_full(h, cause);
    }
    bool failed = young_phases(h);
    promotion_sample(h, h->ev.bytes_promoted);
    gc_end(h, t0);
    if (failed) {
        h->young_unsafe = true;
        return collect_full(h, cause);
    }
    return 0;
}
