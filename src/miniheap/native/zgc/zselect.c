/*
 * zselect.c: Concurrent Reset Relocation Set and Concurrent Select
 * Relocation Set.
 *
 * Reset drops the last cycle's forwarding tables: marking has just healed
 * every reachable reference that could still need them.
 *
 * Select, as JDK 17's ZRelocationSetSelector: pages allocated before this
 * cycle's Mark Start with nothing marked are freed at once ("Empty"); the
 * small and medium ones whose garbage exceeds the fragmentation limit (25 %
 * of the page, -XX:ZFragmentationLimit) are candidates, sorted by live
 * bytes. Adding candidates one by one, the JDK computes how many pages
 * their live objects need at worst (each target page wastes less than the
 * largest object of its type) and takes the longest prefix that frees at
 * least 25 % of the pages it adds over the last prefix taken. Large pages
 * are never relocated, only freed when dead.
 *
 * miniheap adds one check the JDK does not need (it relocates in place when
 * no page is free): the GC thread must always find a target page, so a
 * prefix of k pages may need at most the reserve plus the k - 1 pages
 * relocated before the last (each is reused as soon as it is empty).
 */
#include <stdlib.h>
#include "zgc.h"

#define FRAGMENTATION_LIMIT 25 /* percent, -XX:ZFragmentationLimit */

void zreset_relocation_set(zheap *z)
{
    zpages *p = &z->pages;
    for (uint32_t i = 0; i < z->nrelocation; i++) {
        zforwarding *f = z->relocation_set[i];
        uint32_t first = (uint32_t)(f->start >> p->granule_shift);
        uint32_t n = (uint32_t)(f->size >> p->granule_shift);
        for (uint32_t g = first; g < first + n; g++)
            __atomic_store_n(&z->fwd_of_granule[g], NULL, __ATOMIC_RELEASE);
        free(f);
    }
    z->nrelocation = 0;
    z->relocate_next = 0;
    z->relocate_cursor = 0;
    z->relocation_left[0] = z->relocation_left[1] = 0;
}

typedef struct candidate {
    zpage *page;
    uint64_t live;
} candidate;

static int by_live(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->live != y->live)
        return x->live < y->live ? -1 : 1;
    return x->page->start < y->page->start ? -1 : x->page->start > y->page->start;
}

/* The number of candidates (a prefix of c, sorted) to relocate. */
static uint32_t select_prefix(const zpages *p, int type, const candidate *c, uint32_t n,
                              uint32_t reserve)
{
    uint32_t selected_from = 0, selected_to = 0;
    uint64_t live = 0;
    for (uint32_t from = 1; from <= n; from++) {
        live += c[from - 1].live;
        uint32_t to = zpages_needed(p, type, live);
        if (to > reserve + from - 1)
            break; /* the GC thread could run out of target pages */
        uint32_t diff_from = from - selected_from, diff_to = to - selected_to;
        double diff_reclaimable = 100.0 - 100.0 * diff_to / diff_from;
        if (diff_reclaimable > FRAGMENTATION_LIMIT) {
            selected_from = from;
            selected_to = to;
        }
    }
    return selected_from;
}

static bool add_to_set(zheap *z, zpage *pg)
{
    zforwarding *f = zforwarding_new(pg, pg->live_objects, pg->live_bytes);
    if (!f)
        return false; /* out of memory: the page simply stays where it is */
    pg->relocating = true;
    z->relocation_set[z->nrelocation++] = f;
    z->cycle.relocate_bytes[pg->type] += pg->live_bytes;
    z->cycle.relocate_pages[pg->type]++;
    z->relocation_left[pg->type] += pg->live_bytes;
    z->cycle.forwarding_bytes += zforwarding_bytes(f);
    uint32_t first = pg->first;
    for (uint32_t g = first; g < first + pg->ngranules; g++)
        __atomic_store_n(&z->fwd_of_granule[g], f, __ATOMIC_RELEASE);
    return true;
}

void zselect_relocation_set(zheap *z)
{
    zpages *p = &z->pages;
    uint32_t n;
    zpage **pages = zpages_snapshot(z, &n);
    candidate *cand[2] = {malloc((n + 1) * sizeof(candidate)), malloc((n + 1) * sizeof(candidate))};
    uint32_t ncand[2] = {0, 0};
    free(z->relocation_set);
    z->relocation_set = malloc((n + 1) * sizeof *z->relocation_set);
    if (!pages || !cand[0] || !cand[1] || !z->relocation_set) {
        /* out of memory: relocate nothing this cycle; pages stay as they are */
        free(pages), free(cand[0]), free(cand[1]);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        zpage *pg = pages[i];
        if (pg->seqnum == z->seqnum)
            continue; /* allocated during this cycle: not marked, live by definition */
        int t = pg->type;
        uint64_t live = __atomic_load_n(&pg->live_bytes, __ATOMIC_RELAXED);
        z->cycle.pages[t]++;
        z->cycle.page_bytes[t] += pg->size;
        z->cycle.live_bytes += live;
        if (live == 0) {
            z->cycle.empty_bytes[t] += pg->size;
            zpage_free(z, pg, false);
            continue;
        }
        if (t != ZPAGE_LARGE && (pg->size - live) * 100 > pg->size * FRAGMENTATION_LIMIT)
            cand[t][ncand[t]++] = (candidate){pg, live};
    }
    for (int t = ZPAGE_SMALL; t <= ZPAGE_MEDIUM; t++) {
        if (ncand[t] == 0)
            continue;
        qsort(cand[t], ncand[t], sizeof(candidate), by_live);
        uint32_t k = select_prefix(p, t, cand[t], ncand[t], zpages_reserved_targets(z, t));
        for (uint32_t i = 0; i < k; i++)
            if (!add_to_set(z, cand[t][i].page))
                break;
    }
    zrelocate_note_slack(z);
    free(pages);
    free(cand[0]);
    free(cand[1]);
}
