/*
 * young.c: the young collection, a Cheney copying collection of eden and
 * the from-survivor into the to-survivor and the old generation.
 *
 * Roots are the handles and the dirty cards of the old generation. The
 * to-survivor is its own Cheney queue (scan pointer chasing the allocation
 * top); promoted objects are queued the same way through the list of old
 * regions they were copied into. Forwarding addresses live in the from-space
 * headers, which nobody reads once the collection ends.
 *
 * Before anything is copied, the promotion guarantee takes and commits
 * enough old regions for the worst case (every young byte promoted): copying
 * can then never fail half-way. If they cannot be had, a full collection
 * runs instead.
 */
#include "internal.h"
#include "poison.h"
#include "barrier.h"
#include "card.h"
#include "bump.h"

int full_phases(mh_heap *h);

static inline bool in_from_space(const mh_heap *h, uint64_t offset)
{
    return offset < h->eden_end || offset - from_base(h) < h->survivor_size;
}

/* Promotion: bump in the current promotion region; old_bump takes the next
 * reserved region when it is full. */
static inline uint64_t promote_bump(mh_heap *h, uint64_t size)
{
    int32_t r = h->promo_region;
    if (MH_LIKELY(r >= 0 && h->regions[r].top + size <= h->region_size))
        return region_bump(h, r, size);
    return old_bump(h, size);
}

/* Copy a from-space object (or find its copy). The header is read once: the
 * copy's header and the forwarding header are computed from it, not re-read
 * (re-reading what a wide memcpy store just wrote stalls on store
 * forwarding). Small objects are copied word by word, and the referents of
 * the slots are prefetched: the scan reaches this copy after everything
 * already queued, so they have time to arrive. */
static inline __attribute__((always_inline)) mh_ref young_copy(mh_heap *h, mh_ref ref)
{
    mh_object *o = ref_addr(ref);
    uint64_t meta = o->meta;
    if (meta & OBJ_FORWARDED)
        return ref_good(&h->views, (meta >> 16) << 3);
    uint64_t shape = o->shape;
    uint32_t nrefs = (uint32_t)shape;
    uint64_t size = obj_size_for(nrefs, (uint32_t)(shape >> 32));
    unsigned age = (unsigned)(meta & OBJ_AGE_MASK);
    unsigned new_age = age + 1 > OBJ_MAX_AGE ? OBJ_MAX_AGE : age + 1;
    uint64_t to;
    if (age < h->tenuring_threshold && size <= h->survivor_size - h->to_top) {
        to = to_base(h) + h->to_top;
        h->to_top += size;
        space_unpoison(h, to, size);
        h->ev.bytes_by_age[new_age] += size;
        if (size > h->young_max_size)
            h->young_max_size = size;
    } else {
        if (age < h->tenuring_threshold)
            h->ev.survivor_overflow_bytes += size;
        /* cannot fail: the promotion guarantee reserved room for all of young */
        to = promote_bump(h, size);
        h->ev.bytes_promoted += size;
    }
    mh_object *copy = heap_addr(h, to);
    copy->shape = shape;
    copy->meta = (meta & ~OBJ_AGE_MASK) | new_age;
    const uint64_t *src = (const uint64_t *)(o + 1);
    uint64_t *dst = (uint64_t *)(copy + 1);
    uint64_t words = (size - OBJ_HEADER_BYTES) >> 3;
    if (words <= 8) {
        for (uint64_t i = 0; i < words; i++) {
            __asm__("" : "+r"(i)); /* a loop of word moves, not a call to memcpy */
            uint64_t w = src[i];
            dst[i] = w;
            if (i < nrefs && w)
                __builtin_prefetch(ref_addr(w), 0, 3);
        }
    } else {
        memcpy(dst, src, words << 3);
        for (uint32_t i = 0; i < nrefs && i < 8; i++)
            if (src[i])
                __builtin_prefetch(ref_addr(src[i]), 0, 3);
    }
    o->meta = (meta & 0xffffull) | OBJ_FORWARDED | ((to >> 3) << 16); /* obj_forward_to */
    h->ev.objects_copied++;
    h->ev.bytes_copied += size;
    return ref_good(&h->views, to);
}

/* Copy the referent of a slot if it is in from-space; true if it is young afterwards. */
static inline bool young_trace(mh_heap *h, mh_ref *slot, mh_ref v)
{
    if (!v)
        return false;
    uint64_t offset = ref_offset(&h->views, v);
    if (in_from_space(h, offset)) {
        v = young_copy(h, v);
        *slot = v;
        offset = ref_offset(&h->views, v);
    }
    return is_young(h, offset);
}

static bool card_slot(mh_heap *h, mh_ref *slot)
{
    /* old-to-old references may be stale in coloured mode: heal them in passing */
    return young_trace(h, slot, load_barrier_internal(h, slot));
}

static uint64_t scan_object(mh_heap *h, uint64_t offset, bool old)
{
    mh_object *o = heap_addr(h, offset);
    mh_ref *slots = obj_slots(o);
    for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++)
        if (young_trace(h, &slots[i], slots[i]) && old)
            card_dirty(h, offset + obj_slot_offset(i));
    return obj_size(o);
}

static bool scan_promoted(mh_heap *h)
{
    bool progress = false;
    while (h->scan_index < h->nscan) {
        uint32_t r = (uint32_t)h->scan_regions[h->scan_index];
        if (h->scan_offset == UINT64_MAX)
            h->scan_offset = region_base(h, r);
        if (h->scan_offset < region_base(h, r) + h->regions[r].top) {
            h->scan_offset += scan_object(h, h->scan_offset, true);
            progress = true;
        } else if (h->scan_index + 1 < h->nscan) {
            h->scan_index++;
            h->scan_offset = UINT64_MAX;
        } else {
            break;
        }
    }
    return progress;
}

static void cheney_scan(mh_heap *h)
{
    uint64_t scan = 0;
    bool progress = true;
    while (progress) {
        progress = false;
        while (scan < h->to_top) {
            scan += scan_object(h, to_base(h) + scan, false);
            progress = true;
        }
        progress |= scan_promoted(h);
    }
}

static void young_phases(mh_heap *h)
{
    mh_gc_event *ev = &h->ev;
    h->to_top = 0;
    h->young_max_size = 0;
    h->nscan = h->scan_index = 0;
    h->scan_offset = UINT64_MAX;
    if (h->promo_region >= 0) {
        h->scan_regions[h->nscan++] = h->promo_region;
        h->scan_offset = region_base(h, (uint32_t)h->promo_region) + h->regions[h->promo_region].top;
    }

    uint64_t t = clock_ns();
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            young_trace(h, &h->handles[i], h->handles[i]);
    ev->ns_roots = clock_ns() - t;

    t = clock_ns();
    ev->cards_scanned = cards_scan_dirty(h, card_slot);
    ev->ns_cards = clock_ns() - t;

    t = clock_ns();
    cheney_scan(h);
    ev->ns_evacuate = clock_ns() - t;

    h->from = !h->from;
    h->from_top = h->to_top;
    h->to_top = 0;
    h->eden_top = 0;
    /* eden and the old from-space are dead now: a read of either is a stale read */
    space_poison(h, 0, h->eden_end);
    space_poison(h, to_base(h), h->survivor_size);
    regions_release_reserved(h);
}

int collect_young(mh_heap *h, int cause)
{
    uint64_t t0 = gc_begin(h, MH_GC_YOUNG, cause);
    uint32_t need = regions_needed(h->eden_top + h->from_top, h->young_max_size, h->region_size);
    if (need > h->free_regions || regions_reserve(h, need) < need) {
        regions_release_reserved(h);
        h->ev.kind = MH_GC_FULL;
        h->ev.cause = MH_CAUSE_PROMOTION_GUARANTEE;
        int rc = full_phases(h);
        gc_end(h, t0);
        return rc == 0 ? 0 : MH_ERROR;
    }
    young_phases(h);
    gc_end(h, t0);
    return 0;
}
