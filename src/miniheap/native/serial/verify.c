/*
 * verify.c: check the heap's invariants without changing anything.
 *
 * Pass 1 walks every space linearly, checks each header, and records object
 * starts in a scratch bitmap. Pass 2 checks every reference (slots and
 * handles): an address in the heap's one view at the start of an object in
 * use, and a dirty card for every old-to-young reference.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"
#include "card.h"
#include "forwarding.h"
#include "mutator.h"

typedef struct verifier {
    mh_heap *h;
    uint64_t *starts;             /* object starts below `covered`: the regions in use */
    uint64_t covered;
    uint32_t problems;
    char first[MH_MESSAGE_LEN - 64];
} verifier;

static void problem(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verifier *v, const char *fmt, ...)
{
    if (v->problems++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->first, sizeof v->first, fmt, ap);
        va_end(ap);
    }
}

static void start_set(verifier *v, uint64_t off) { v->starts[off >> 9] |= 1ull << ((off >> 3) & 63); }
static bool start_test(const verifier *v, uint64_t off) { return (v->starts[off >> 9] >> ((off >> 3) & 63)) & 1; }

/* Pass 1 (check_slots false) or pass 2 over the objects of [start, end). */
static void walk_space(verifier *v, const char *space, uint64_t start, uint64_t end, bool check_slots);

static void check_ref(verifier *v, mh_ref r, const char *what, uint64_t where, bool from_old)
{
    mh_heap *h = v->h;
    if (!r)
        return;
    int c = ref_color(&h->views, r);
    uint64_t off = ref_offset(&h->views, r);
    if (c < 0 || off >= h->heap_size || (off & 7)) {
        problem(v, "%s %llu holds 0x%llx, which is not an object address in any view "
                   "of the heap", what, (unsigned long long)where, (unsigned long long)r);
        return;
    }
    if (off >= v->covered || !start_test(v, off)) {
        problem(v, "%s %llu refers to offset %llu, which is not the start of a live "
                   "object in a used part of the heap", what, (unsigned long long)where,
                (unsigned long long)off);
        return;
    }
    if (from_old && is_young(h, off) && !card_is_dirty(h, where))
        problem(v, "%s %llu refers to young offset %llu but its card is clean: the "
                   "write barrier missed it", what, (unsigned long long)where, (unsigned long long)off);
}

static void walk_space(verifier *v, const char *space, uint64_t start, uint64_t end, bool check_slots)
{
    mh_heap *h = v->h;
    bool old = !is_young(h, start);
    for (uint64_t off = start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        if (!check_slots) {
            const char *bad = NULL;
            if (obj_is_forwarded(o))
                bad = "is still marked forwarded after a collection";
            else if (!obj_header_sane(o))
                bad = "is not a valid header (magic wrong)";
            else if (size > end - off)
                bad = "claims a size running past the space's top";
            else if (obj_is_self_forwarded(o))
                bad = "is still marked forwarded to itself after a collection";
            else if (!obj_is_humongous(o) && size > h->region_size / 2)
                bad = "is larger than half a region but not humongous";
            if (bad) {
                problem(v, "the object at offset %llu in %s %s", (unsigned long long)off, space, bad);
                return;
            }
            if (!obj_is_filler(o))
                start_set(v, off);
        } else {
            if (!obj_header_sane(o) || size > end - off)
                return; /* reported by pass 1 */
            mh_ref *slots = obj_slots(o);
            for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++)
                check_ref(v, slots[i], "the slot at offset", off + obj_slot_offset(i), old);
        }
        off += size;
    }
}

static void check_humongous(verifier *v, uint32_t r)
{
    mh_heap *h = v->h;
    mh_object *o = heap_addr(h, region_base(h, r));
    if (!obj_header_sane(o) || !obj_is_humongous(o)) {
        problem(v, "region %u starts a humongous object but holds no humongous header", r);
        return;
    }
    uint64_t size = obj_size(o);
    uint64_t n = (size + h->region_size - 1) >> h->region_shift;
    if (r + n > h->nregions) {
        problem(v, "the humongous object in region %u claims %llu bytes, past the heap's end", r,
                (unsigned long long)size);
        return;
    }
    for (uint32_t i = r + 1; i < r + n; i++)
        if (h->regions[i].state != REGION_HUMONGOUS_CONT || h->regions[i].humongous_start != r)
            problem(v, "region %u should continue the humongous object of region %u", i, r);
}

static void walk_all(verifier *v, bool check_slots)
{
    mh_heap *h = v->h;
    walk_space(v, "eden", 0, h->eden_top, check_slots);
    walk_space(v, "the from-survivor", from_base(h), from_base(h) + h->from_top, check_slots);
    /* the to-survivor holds objects only between a failed promotion and the full collection */
    walk_space(v, "the to-survivor", to_base(h), to_base(h) + h->to_top, check_slots);
    for (uint32_t r = h->young_regions, end = regions_end(h); r < end; r++) {
        const mh_region *reg = &h->regions[r];
        uint64_t base = region_base(h, r);
        if (reg->state == REGION_OLD) {
            walk_space(v, "an old region", base, base + reg->top, check_slots);
        } else if (reg->state == REGION_HUMONGOUS_START) {
            if (!check_slots)
                check_humongous(v, r);
            uint64_t end = base + obj_size(heap_addr(h, base));
            walk_space(v, "a humongous region", base, end < h->heap_size ? end : h->heap_size, check_slots);
        }
    }
}

static void check_geometry(verifier *v)
{
    mh_heap *h = v->h;
    if (h->eden_top > h->eden_end || h->from_top > h->survivor_size || h->to_top > h->survivor_size)
        problem(v, "young tops are inconsistent: eden %llu of %llu, from-survivor %llu of %llu, "
                   "to-survivor %llu", (unsigned long long)h->eden_top,
                (unsigned long long)h->eden_end, (unsigned long long)h->from_top,
                (unsigned long long)h->survivor_size, (unsigned long long)h->to_top);
    uint64_t used = 0;
    uint32_t end = regions_end(h);
    uint32_t free_count = h->nregions - end; /* all free, by the invariant checked next */
    if (h->used_end > h->young_regions && h->regions[h->used_end - 1].state == REGION_FREE)
        problem(v, "region %u, the highest in use (used_end), is free", h->used_end - 1);
    if (h->committed_end > h->young_regions && !h->regions[h->committed_end - 1].committed)
        problem(v, "region %u, the highest committed (committed_end), is not committed",
                h->committed_end - 1);
    for (uint32_t r = h->young_regions; r < end; r++) {
        const mh_region *reg = &h->regions[r];
        if (reg->top > h->region_size)
            problem(v, "region %u has top %llu beyond the region size", r, (unsigned long long)reg->top);
        if (reg->state == REGION_FREE) {
            free_count++;
            if (reg->top != 0)
                problem(v, "free region %u has top %llu, not 0", r, (unsigned long long)reg->top);
        }
        if (reg->state == REGION_HUMONGOUS_CONT &&
            (reg->humongous_start >= r || h->regions[reg->humongous_start].state != REGION_HUMONGOUS_START))
            problem(v, "region %u continues a humongous object but region %u does not start one", r,
                    reg->humongous_start);
        used += reg->top;
    }
    if (used != h->old_used)
        problem(v, "old regions hold %llu bytes but old_used says %llu", (unsigned long long)used,
                (unsigned long long)h->old_used);
    if (free_count != h->free_regions)
        problem(v, "%u regions are free but the free count says %u", free_count, h->free_regions);
}

int serial_verify(mh_heap *h)
{
    /* scratch for the regions in use only: every region above is free and holds nothing */
    verifier v = {.h = h, .covered = region_base(h, regions_end(h))};
    v.starts = calloc(v.covered / 512 + 1, sizeof(uint64_t));
    if (!v.starts) {
        heap_error(h, MH_E_NO_MEMORY, "verify needs %llu bytes of scratch memory and could not "
                   "get them; nothing was checked; free memory on the machine",
                   (unsigned long long)(v.covered / 64));
        return MH_ERROR; /* not a count of problems: none was looked for */
    }
    check_geometry(&v);
    walk_all(&v, false);
    walk_all(&v, true);
    for (uint32_t i = 0; i < h->handle_hwm; i++) {
        if (!handle_live(h, i))
            continue;
        if (!h->handles[i] || ref_is_stale(&h->views, h->handles[i]))
            problem(&v, "handle %u holds 0x%llx: handles must hold good-coloured, non-null "
                        "references", i, (unsigned long long)h->handles[i]);
        check_ref(&v, h->handles[i], "handle", i, false);
    }
    uint32_t record = 0;
    for (mh_mutator *m = h->mutators; m; m = m->next, record++) {
        for (uint32_t i = 0; i < m->nroots; i++) {
            if (ref_is_stale(&h->views, m->roots[i]))
                problem(&v, "root %u of mutator record %u holds 0x%llx: roots must hold good-coloured "
                            "references", i, record, (unsigned long long)m->roots[i]);
            check_ref(&v, m->roots[i], "shadow-stack root", i, false);
        }
    }
    free(v.starts);
    if (v.problems)
        heap_error(h, MH_E_VERIFY, "verify found %u problem%s; the first: %s", v.problems,
                   v.problems == 1 ? "" : "s", v.first);
    return (int)v.problems;
}
