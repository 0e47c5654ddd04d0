/*
 * mark.c: mark bitmap, mark stack, tracing.
 */
#include <stdlib.h>
#include "mark.h"
#include "barrier.h"
#include "mutator.h"
#include "side.h"

/* The bitmap lives in each region's side block (core/side.h): one bit per
 * 8-byte word, region_size / 64 bytes per region, only for committed regions. */
static inline uint64_t *mark_word(const mh_heap *h, uint64_t offset)
{
    uint64_t word = (offset & (h->region_size - 1)) >> 3;
    return (uint64_t *)region_side(h, region_of(h, offset), h->mark_side) + (word >> 6);
}

int mark_init(mh_heap *h)
{
    h->mark_side = side_reserve(h, h->region_size / 64);
    h->mark_cap = 1024;
    h->mark_stack = malloc(h->mark_cap * sizeof *h->mark_stack);
    return h->mark_stack ? 0 : -1;
}

void mark_free(mh_heap *h)
{
    free(h->mark_stack);
}

/* Only the regions in use: the work follows the heap's use, not its size. */
void mark_clear(mh_heap *h)
{
    for (uint32_t r = 0, end = regions_end(h); r < end; r++)
        if (h->side[r])
            memset(region_side(h, r, h->mark_side), 0, h->region_size / 64);
    h->mark_top = 0;
    h->mark_overflow = false;
}

bool mark_test(const mh_heap *h, uint64_t offset)
{
    return (*mark_word(h, offset) >> ((offset >> 3) & 63)) & 1;
}

/* A full stack is not an error: the object stays marked, and the overflow
 * flag makes mark_drain rescan marked objects linearly later. */
void mark_push(mh_heap *h, mh_ref ref)
{
#ifdef MH_TEST_MARK_STACK_CAP /* tests: a tiny stack, to exercise overflow */
    if (h->mark_top >= MH_TEST_MARK_STACK_CAP) {
        h->mark_overflow = true;
        return;
    }
#endif
    if (h->mark_top == h->mark_cap) {
        mh_ref *bigger = realloc(h->mark_stack, 2 * h->mark_cap * sizeof *bigger);
        if (!bigger) {
            h->mark_overflow = true;
            return;
        }
        h->mark_stack = bigger;
        h->mark_cap *= 2;
    }
    h->mark_stack[h->mark_top++] = ref;
}

/* Found a reference to ref: mark it and queue it, unless it is marked already.
 * Nothing of the object is read here (its header is read when it is scanned,
 * after a prefetch, see mark_drain). If the stack cannot take it, the mark is
 * taken back and the overflow flag set: the object is found again when its
 * referrers are rescanned. */
static inline void mark_discover(mh_heap *h, mh_ref ref)
{
    uint64_t offset = ref_offset(&h->views, ref);
    uint64_t bit = 1ull << ((offset >> 3) & 63);
    uint64_t *w = mark_word(h, offset);
    if (*w & bit)
        return;
    *w |= bit;
    size_t top = h->mark_top;
    mark_push(h, ref);
    if (MH_UNLIKELY(h->mark_top == top))
        *w &= ~bit;
}

/* A marked object, scanned once: it counts as live in its region. */
static inline void mark_account(mh_heap *h, mh_ref ref, uint64_t size)
{
    mh_region *reg = &h->regions[region_of(h, ref_offset(&h->views, ref))];
    reg->live_bytes += size;
    reg->live_objects++;
    if (size > reg->max_live_size)
        reg->max_live_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size);
    h->ev.bytes_marked += size;
}

/* A field's reference (the single view has no stale colour to heal). */
static inline mh_ref mark_heal(mh_heap *h, mh_ref *field)
{
    (void)h;
    return *field;
}

/* Trace an object's slots. */
static inline void mark_scan(mh_heap *h, mh_object *o)
{
    mh_ref *slots = obj_slots(o);
    for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++) {
        mh_ref v = mark_heal(h, &slots[i]);
        if (v)
            mark_discover(h, v);
    }
}

void mark_roots(mh_heap *h)
{
    for (uint32_t i = 0; i < h->handle_hwm; i++) {
        if (!handle_live(h, i))
            continue;
        mh_ref v = mark_heal(h, &h->handles[i]);
        if (v)
            mark_discover(h, v);
    }
    for (mh_mutator *m = h->mutators; m; m = m->next) {
        for (uint32_t i = 0; i < m->nroots; i++) {
            mh_ref v = mark_heal(h, &m->roots[i]);
            if (v)
                mark_discover(h, v);
        }
    }
}

static void rescan_range(mh_heap *h, uint64_t start, uint64_t end)
{
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        if (!obj_is_filler(o) && mark_test(h, off))
            mark_scan(h, o);
        off += obj_size(o);
    }
}

/* After an overflow some objects were found but not marked (their mark was
 * taken back): tracing every marked object again finds them. Tracing is
 * idempotent and accounts nothing (every marked object was, or will be,
 * scanned and accounted from the stack). */
static void rescan_marked(mh_heap *h)
{
    mark_roots(h); /* a root may have been found and not marked, too */
    rescan_range(h, 0, h->eden_top);
    rescan_range(h, from_base(h), from_base(h) + h->from_top);
    rescan_range(h, to_base(h), to_base(h) + h->to_top);
    for (uint32_t r = h->young_regions, end = regions_end(h); r < end; r++) {
        uint8_t s = h->regions[r].state;
        if (s == REGION_OLD || s == REGION_HUMONGOUS_START)
            rescan_range(h, region_base(h, r), region_base(h, r) + h->regions[r].top);
    }
}

/* Marking is bound by the cache misses on objects it reaches in no useful
 * order. So a popped reference is prefetched and parked in a small ring, and
 * the object scanned is the one parked MARK_AHEAD pops earlier: its header and
 * slots have had that long to arrive (software prefetching for marking, as in
 * Cher, Hosking and Vijaykumar, ASPLOS 2004). */
#define MARK_AHEAD 8

static inline void mark_visit(mh_heap *h, mh_ref ref)
{
    mh_object *o = ref_addr(&h->views, ref);
    mark_account(h, ref, obj_size(o));
    mark_scan(h, o);
}

void mark_drain(mh_heap *h)
{
    mh_ref ring[MARK_AHEAD];
    for (;;) {
        unsigned parked = 0, next = 0;
        while (h->mark_top > 0 || parked > 0) {
            if (h->mark_top > 0) {
                mh_ref ref = h->mark_stack[--h->mark_top];
                __builtin_prefetch(ref_addr(&h->views, ref), 1, 3);
                if (parked < MARK_AHEAD) {
                    ring[(next + parked++) % MARK_AHEAD] = ref;
                    continue;
                }
                mh_ref oldest = ring[next];
                ring[next] = ref;
                next = (next + 1) % MARK_AHEAD;
                mark_visit(h, oldest);
            } else {
                mark_visit(h, ring[next]);
                next = (next + 1) % MARK_AHEAD;
                parked--;
            }
        }
        if (!h->mark_overflow)
            return;
        h->mark_overflow = false;
        rescan_marked(h);
    }
}
