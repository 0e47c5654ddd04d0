/*
 * zverify.c: check a zgc heap's invariants without changing anything.
 *
 * With a GC thread, verification waits for the end of the cycle in
 * progress (the heap let go meanwhile) and keeps the next from starting;
 * in stepping mode it checks whatever the phase is.
 *
 *  1. the page table: every granule is in one page or free or reserved,
 *     the counts agree, used is the sum of the pages;
 *  2. every page parses from its start to its top: sane headers, sizes of
 *     the page's type, a large page holding exactly one object;
 *  3. from the roots, every reachable object: each reference has a colour
 *     the phase allows, and resolves (through the forwarding tables where
 *     the phase says it may still need them) to the start of an object on
 *     a page in use. Roots must have the good colour.
 * Stale references are resolved, never healed, so verifying does not hide
 * what the barrier still has to do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "zgc.h"
#include "safepoint.h"
#include "mutator.h"

typedef struct zverifier {
    mh_heap *h;
    zheap *z;
    uint64_t **starts;   /* per page (by its first granule): object starts found by parsing */
    uint64_t **visited;  /* per page: objects reached from the roots */
    uint64_t *stack;
    size_t top, cap;
    uint32_t problems;
    char first[MH_MESSAGE_LEN - 64];
} zverifier;

static void problem(zverifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(zverifier *v, const char *fmt, ...)
{
    if (v->problems++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->first, sizeof v->first, fmt, ap);
        va_end(ap);
    }
}

/* One bit per 8-byte word of a page, in a map of that page's own (a large page: one word), made
 * when the page is parsed: the scratch memory follows the pages in use, not the heap's size. */
static size_t map_words(const zpage *pg) { return pg->type == ZPAGE_LARGE ? 1 : (size_t)(pg->size >> 9); }

static bool bit_op(uint64_t **maps, const zpage *pg, uint64_t off, bool set)
{
    uint64_t *map = maps[pg->first];
    if (!map)
        return false;
    uint64_t w = (off - pg->start) >> 3;
    if ((w >> 6) >= map_words(pg))
        return false;
    bool was = (map[w >> 6] >> (w & 63)) & 1;
    if (set)
        map[w >> 6] |= 1ull << (w & 63);
    return was;
}

static const char *type_name(int t) { return t == ZPAGE_SMALL ? "small" : t == ZPAGE_MEDIUM ? "medium" : "large"; }

static void check_pages(zverifier *v)
{
    zheap *z = v->z;
    zpages *p = &z->pages;
    uint32_t nfree = p->ngranules - p->end, nreserved = 0, nmedium_granules = 0;
    uint64_t used = 0;
    for (uint32_t g = p->end; g < p->ngranules && g < p->end + 1; g++)
        if (p->page_of[g] || p->state[g] != ZGRANULE_FREE || p->committed[g])
            problem(v, "granule %u, above the granules in use, is not free and uncommitted", g);
    for (uint32_t g = 0; g < p->end; g++) {
        zpage *pg = p->page_of[g];
        if (!pg) {
            if (p->state[g] == ZGRANULE_FREE)
                nfree++;
            else if (p->state[g] == ZGRANULE_RESERVED)
                nreserved++;
            else
                nmedium_granules++;
            continue;
        }
        if (g < pg->first || g >= pg->first + pg->ngranules) {
            problem(v, "granule %u is listed in the page of granules %u..%u", g, pg->first,
                    pg->first + pg->ngranules - 1);
            continue;
        }
        if (pg->first != g)
            continue;
        used += pg->size;
        uint64_t want = pg->type == ZPAGE_SMALL ? p->granule : pg->type == ZPAGE_MEDIUM ? p->medium_size : 0;
        if ((want && pg->size != want) || pg->start != (uint64_t)g << p->granule_shift ||
            zpage_top(pg) < pg->start || zpage_top(pg) > pg->start + pg->size)
            problem(v, "the %s page at granule %u has size %llu and top %llu, which its type and "
                    "place do not allow", type_name(pg->type), g, (unsigned long long)pg->size,
                    (unsigned long long)zpage_top(pg));
    }
    if (nfree != p->nfree || nreserved != p->nreserved ||
        (p->medium_granules && nmedium_granules != p->nreserved_medium * p->medium_granules))
        problem(v, "the page table has %u free, %u reserved and %u reserved medium granules but "
                "its counts say %u, %u and %u", nfree, nreserved, nmedium_granules, p->nfree,
                p->nreserved, p->nreserved_medium * p->medium_granules);
    if (used != __atomic_load_n(&p->used, __ATOMIC_RELAXED))
        problem(v, "the pages hold %llu bytes but used says %llu", (unsigned long long)used,
                (unsigned long long)p->used);
}

static void parse_page(zverifier *v, zpage *pg)
{
    mh_heap *h = v->h;
    zpages *p = &v->z->pages;
    uint64_t end = zpage_top(pg);
    uint32_t objects = 0;
    v->starts[pg->first] = calloc(map_words(pg), sizeof(uint64_t));
    v->visited[pg->first] = calloc(map_words(pg), sizeof(uint64_t));
    if (!v->starts[pg->first] || !v->visited[pg->first]) {
        problem(v, "out of memory for verify's maps of the page at %llu; the check is incomplete",
                (unsigned long long)pg->start);
        return;
    }
    for (uint64_t off = pg->start; off < end;) {
        mh_object *o = heap_addr(h, off);
        uint64_t size = obj_size(o);
        const char *bad = NULL;
        if (!obj_header_sane(o))
            bad = "is not a valid header (magic or slot count wrong)";
        else if (size > end - off)
            bad = "claims a size running past the page's top";
        else if (!obj_is_filler(o) && zpage_type_for(p, size) != pg->type)
            bad = "has a size that belongs on another type of page";
        if (bad) {
            problem(v, "the object at offset %llu on the %s page at %llu %s",
                    (unsigned long long)off, type_name(pg->type), (unsigned long long)pg->start, bad);
            return;
        }
        if (!obj_is_filler(o)) {
            bit_op(v->starts, pg, off, true);
            objects++;
        }
        off += size;
    }
    if (pg->type == ZPAGE_LARGE && objects != 1)
        problem(v, "the large page at %llu holds %u objects, not one", (unsigned long long)pg->start,
                objects);
}

/* Where the object a reference names is now, as the barrier would find it;
 * UINT64_MAX (and a problem) if the reference is not allowed here. */
static uint64_t resolve(zverifier *v, mh_ref r, const char *what, uint64_t where)
{
    mh_heap *h = v->h;
    zheap *z = v->z;
    int c = ref_color(&h->views, r);
    uint64_t off = ref_offset(&h->views, r);
    if (c < 0 || off >= h->heap_size || (off & 7)) {
        problem(v, "%s %llu holds 0x%llx, which is not an object address in any view of the heap",
                what, (unsigned long long)where, (unsigned long long)r);
        return UINT64_MAX;
    }
    if (c == h->views.good)
        return off;
    zforwarding *f = zforwarding_of(z, off);
    if (z->phase == ZPHASE_RELOCATE) {
        if (c != z->mark_color) {
            problem(v, "%s %llu holds 0x%llx, coloured %d, during relocation: only the last "
                    "marking's colour %d may be stale", what, (unsigned long long)where,
                    (unsigned long long)r, c, z->mark_color);
            return UINT64_MAX;
        }
        if (f) {
            uint64_t to = zforwarding_find(f, off);
            if (to != UINT64_MAX)
                return to;
            if (!f->page) {
                problem(v, "%s %llu holds 0x%llx into a relocated page, but its forwarding "
                        "table does not know the object", what, (unsigned long long)where,
                        (unsigned long long)r);
                return UINT64_MAX;
            }
        }
        return off;
    }
    if (c == MH_COLOR_REMAPPED)
        return off;
    if (c == z->prev_mark_color && f) {
        uint64_t to = zforwarding_find(f, off);
        if (to == UINT64_MAX) {
            problem(v, "%s %llu holds 0x%llx of the last cycle's colour into its relocation set, "
                    "but the forwarding table does not know the object", what,
                    (unsigned long long)where, (unsigned long long)r);
            return UINT64_MAX;
        }
        return to;
    }
    return off;
}

static void visit(zverifier *v, mh_ref r, const char *what, uint64_t where)
{
    if (!r)
        return;
    uint64_t off = resolve(v, r, what, where);
    if (off == UINT64_MAX)
        return;
    zpage *pg = zpage_of(&v->z->pages, off);
    if (!pg || !bit_op(v->starts, pg, off, false)) {
        problem(v, "%s %llu refers to offset %llu, which is not the start of an object on a page "
                "in use", what, (unsigned long long)where, (unsigned long long)off);
        return;
    }
    if (bit_op(v->visited, pg, off, true))
        return;
    if (v->top == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        uint64_t *bigger = realloc(v->stack, cap * sizeof *bigger);
        if (!bigger) {
            problem(v, "out of memory for verify's stack; the check is incomplete");
            return;
        }
        v->stack = bigger;
        v->cap = cap;
    }
    v->stack[v->top++] = off;
}

static void trace(zverifier *v)
{
    mh_heap *h = v->h;
    for (uint32_t i = 0; i < h->handle_hwm; i++) {
        if (!handle_live(h, i))
            continue;
        mh_ref r = h->handles[i];
        if (!r || ref_is_stale(&h->views, r))
            problem(v, "handle %u holds 0x%llx: handles must hold good-coloured, non-null "
                    "references", i, (unsigned long long)r);
        visit(v, r, "handle", i);
    }
    for (mh_mutator *m = h->mutators; m; m = m->next)
        for (uint32_t i = 0; i < m->nroots; i++) {
            if (m->roots[i] && ref_is_stale(&h->views, m->roots[i]))
                problem(v, "shadow-stack root %u holds 0x%llx, which has a stale colour", i,
                        (unsigned long long)m->roots[i]);
            visit(v, m->roots[i], "shadow-stack root", i);
        }
    while (v->top) {
        uint64_t off = v->stack[--v->top];
        mh_object *o = heap_addr(h, off);
        mh_ref *slots = obj_slots(o);
        for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++)
            visit(v, __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE), "the slot at offset",
                  off + obj_slot_offset(i));
    }
}

static int verify_now(mh_heap *h)
{
    zverifier v = {.h = h, .z = h->z};
    uint32_t end = h->z->pages.end;
    v.starts = calloc(end + 1, sizeof *v.starts);
    v.visited = calloc(end + 1, sizeof *v.visited);
    if (!v.starts || !v.visited) {
        free(v.starts);
        free(v.visited);
        heap_error(h, MH_E_NO_MEMORY, "verify needs scratch memory for %u granules and could not "
                   "get it; nothing was checked", end);
        return 1;
    }
    char views[sizeof v.first];
    if (zviews_verify(h, views, sizeof views))
        problem(&v, "%s", views);
    check_pages(&v);
    uint32_t n;
    zpage **pages = zpages_snapshot(v.z, &n);
    for (uint32_t i = 0; pages && i < n; i++)
        parse_page(&v, pages[i]);
    free(pages);
    if (v.problems == 0)
        trace(&v);
    for (uint32_t g = 0; g < end; g++) {
        free(v.starts[g]);
        free(v.visited[g]);
    }
    free(v.starts);
    free(v.visited);
    free(v.stack);
    if (v.problems)
        heap_error(h, MH_E_VERIFY, "verify found %u problem%s; the first: %s", v.problems,
                   v.problems == 1 ? "" : "s", v.first);
    return (int)v.problems;
}

int zverify(mh_heap *h)
{
    zheap *z = h->z;
    if (z->stepping)
        return verify_now(h);
    /* between cycles: the GC thread holds cycle_lock for a whole cycle */
    heap_hold saved = heap_let_go(h);
    pthread_mutex_lock(&z->cycle_lock);
    heap_take_back(h, saved);
    if (!heap_still_open(h)) {
        pthread_mutex_unlock(&z->cycle_lock); /* (the record outlives the close) */
        return MH_ERROR;
    }
    int rc = verify_now(h);
    pthread_mutex_unlock(&z->cycle_lock);
    return rc;
}
