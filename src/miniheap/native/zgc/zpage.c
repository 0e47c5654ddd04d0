/*
 * zpage.c: granules, pages and the page allocator (see zpage.h).
 *
 * Mutators allocate pages; only the GC thread frees them (empty pages at
 * Select Relocation Set, relocated pages during Concurrent Relocate) and
 * takes target pages for its copies. Both change the tables under the page
 * lock, held for a scan of the granule table at most; committing, which
 * calls the embedder, happens outside it on the mutator's own thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include "zgc.h"
#include "poison.h"

static uint64_t round_down_pow2(uint64_t x)
{
    return x ? 1ull << (63 - __builtin_clzll(x)) : 0;
}

/* JDK 17's medium page size for a heap, in units of its granule. */
static void page_sizes(zpages *p, uint64_t heap_size)
{
    p->small_limit = p->granule / 8;
    uint64_t unclamped = heap_size / 32; /* 3.125 % */
    uint64_t lo = p->granule, hi = p->granule * 16;
    uint64_t clamped = unclamped < lo ? lo : unclamped > hi ? hi : unclamped;
    uint64_t medium = round_down_pow2(clamped);
    if (medium > p->granule) {
        p->medium_size = medium;
        p->medium_granules = (uint32_t)(medium / p->granule);
        p->medium_limit = medium / 8;
    }
}

static inline void set_page(zpages *p, uint32_t g, zpage *page)
{
    __atomic_store_n(&p->page_of[g], page, __ATOMIC_RELEASE);
}

/* Under the lock: granules below this are the only ones ever used. */
static inline void raise_end(zpages *p, uint32_t end)
{
    if (end > p->end)
        p->end = end;
}

static bool granule_commit(zheap *z, uint32_t first, uint32_t n)
{
    mh_heap *h = z->h;
    zpages *p = &z->pages;
    for (uint32_t g = first; g < first + n; g++) {
        if (p->committed[g])
            continue;
        if (embedder_commit(h, (uint64_t)g << p->granule_shift, p->granule) != 0) {
            h->stats.commit_failures++;
            heap_error(h, MH_E_COMMIT, "the embedder could not commit granule %u (offset %llu, "
                       "%llu bytes); the heap stays as it was; free memory on the machine or "
                       "lower heap_size", g, (unsigned long long)g << p->granule_shift,
                       (unsigned long long)p->granule);
            return false;
        }
        zviews_committed(z, (uint64_t)g << p->granule_shift, p->granule);
        pthread_mutex_lock(&p->lock);
        p->committed[g] = 1;
        p->ncommitted++;
        raise_end(p, g + 1);
        pthread_mutex_unlock(&p->lock);
        h->stats.regions_committed++;
    }
    return true;
}

/* Under the lock: a run of n granules in state `want` (aligned to `align`
 * granules), preferring committed ones when asked; -1 if none. */
static int64_t find_run(zpages *p, uint32_t n, uint32_t align, uint8_t want, bool committed_only,
                        bool prefer_committed)
{
    int64_t fallback = -1;
    /* every granule from p->end on is free and uncommitted: a run found there is as good as any
     * above it, so the scan stops once it is past p->end (a 4T heap is two million granules) */
    uint64_t limit = (uint64_t)p->end + n + align;
    for (uint32_t g = 0; g + n <= p->ngranules && g <= limit; g += align) {
        uint32_t i = 0;
        bool all_committed = true;
        for (; i < n; i++) {
            uint32_t k = g + i;
            if (p->page_of[k] || p->state[k] != want)
                break;
            if (!p->committed[k]) {
                all_committed = false;
                if (committed_only)
                    break;
            }
        }
        if (i < n) {
            if (align == 1)
                g += i; /* the next candidate starts after the granule that failed */
            continue;
        }
        if (all_committed || !prefer_committed)
            return g;
        if (fallback < 0)
            fallback = g;
    }
    return fallback;
}

static void page_delete(zpage *page)
{
    free(page->livemap);
    free(page);
}

static zpage *page_new(zheap *z, int type, uint32_t first, uint32_t n)
{
    zpages *p = &z->pages;
    zpage *page = calloc(1, sizeof *page);
    if (!page)
        return NULL;
    page->type = (uint8_t)type;
    page->first = first;
    page->ngranules = n;
    page->start = (uint64_t)first << p->granule_shift;
    page->size = (uint64_t)n << p->granule_shift;
    page->top = page->start;
    page->seqnum = z->seqnum;
    if (livemap_alloc(page) != 0) {
        free(page);
        return NULL;
    }
    return page;
}

/* Under the lock: the granules of a new page leave their state. */
static void claim(zpages *p, zpage *page)
{
    raise_end(p, page->first + page->ngranules);
    for (uint32_t g = page->first; g < page->first + page->ngranules; g++) {
        if (p->state[g] == ZGRANULE_FREE)
            p->nfree--;
        else if (p->state[g] == ZGRANULE_RESERVED)
            p->nreserved--;
        p->state[g] = ZGRANULE_FREE;
        set_page(p, g, page);
    }
    __atomic_add_fetch(&p->used, page->size, __ATOMIC_RELAXED);
}

static uint32_t granules_for(const zpages *p, int type, uint64_t size)
{
    if (type == ZPAGE_SMALL)
        return 1;
    if (type == ZPAGE_MEDIUM)
        return p->medium_granules;
    return (uint32_t)((size + p->granule - 1) >> p->granule_shift);
}

static void top_up_reserve(zpages *p);

/* On a mutator thread, before it takes a page: make the relocation reserve
 * whole again. The GC thread refills it only from committed free granules
 * (it never commits), so a reserve its target pages took when no page was
 * freed after (Pause Relocate Start copying many roots' objects, each page
 * keeping one it had no target for) would stay short while the only free
 * granules are uncommitted, and Select would choose nothing ever after. A
 * mutator may commit: it reserves a free granule and commits it. A granule
 * reserved but not yet committed is not a target for the GC thread (it takes
 * committed ones only); if the commit fails, it is free again and the
 * mutator's own allocation goes on (it will most likely fail to commit too,
 * and say so). */
static void refill_reserve(zheap *z)
{
    zpages *p = &z->pages;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->nreserved >= p->reserve_small) {
            pthread_mutex_unlock(&p->lock);
            return;
        }
        top_up_reserve(p); /* committed free granules first */
        int64_t g = -1;
        if (p->nreserved < p->reserve_small)
            g = find_run(p, 1, 1, ZGRANULE_FREE, false, false);
        if (g >= 0) {
            p->state[g] = ZGRANULE_RESERVED;
            p->nfree--;
            p->nreserved++;
            raise_end(p, (uint32_t)g + 1);
        }
        pthread_mutex_unlock(&p->lock);
        if (g < 0)
            return;
        int saved = z->h->error;
        bool ok = granule_commit(z, (uint32_t)g, 1);
        z->h->error = saved;
        if (!ok) {
            pthread_mutex_lock(&p->lock);
            if (!p->page_of[g] && p->state[g] == ZGRANULE_RESERVED && !p->committed[g]) {
                p->state[g] = ZGRANULE_FREE;
                p->nreserved--;
                p->nfree++;
            }
            pthread_mutex_unlock(&p->lock);
            return;
        }
    }
}

zpage *zpage_alloc_mutator(zheap *z, int type, uint64_t size)
{
    zpages *p = &z->pages;
    refill_reserve(z);
    uint32_t n = granules_for(p, type, size);
    uint32_t align = type == ZPAGE_MEDIUM ? n : 1;
    zpage *page = page_new(z, type, 0, n);
    if (!page) {
        heap_error(z->h, MH_E_NO_MEMORY, "out of memory for a page record; free memory on the machine");
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    int64_t g = find_run(p, n, align, ZGRANULE_FREE, false, true);
    if (g < 0) {
        pthread_mutex_unlock(&p->lock);
        page_delete(page);
        return NULL;
    }
    page->first = (uint32_t)g;
    page->start = page->top = (uint64_t)g << p->granule_shift;
    claim(p, page);
    pthread_mutex_unlock(&p->lock);
    if (!granule_commit(z, page->first, n)) {
        zpage_free(z, page, false);
        return NULL;
    }
    __atomic_add_fetch(&p->allocated, page->size, __ATOMIC_RELAXED);
    return page;
}

zpage *zpage_alloc_gc(zheap *z, int type)
{
    zpages *p = &z->pages;
    uint32_t n = granules_for(p, type, 0);
    zpage *page = page_new(z, type, 0, n);
    if (!page)
        return NULL;
    pthread_mutex_lock(&p->lock);
    uint8_t reserved = type == ZPAGE_SMALL ? ZGRANULE_RESERVED : ZGRANULE_RESERVED_MEDIUM;
    int64_t g = find_run(p, n, n, reserved, true, false);
    if (g >= 0 && type == ZPAGE_MEDIUM)
        p->nreserved_medium--;
    if (g < 0)
        g = find_run(p, n, n, ZGRANULE_FREE, true, false);
    if (g < 0) {
        pthread_mutex_unlock(&p->lock);
        page_delete(page);
        return NULL;
    }
    page->first = (uint32_t)g;
    page->start = page->top = (uint64_t)g << p->granule_shift;
    claim(p, page);
    pthread_mutex_unlock(&p->lock);
    __atomic_add_fetch(&p->gc_allocated, page->size, __ATOMIC_RELAXED);
    return page;
}

/* Under the lock: make the reserve whole again from free committed granules. */
static void top_up_reserve(zpages *p)
{
    /* medium runs first: a small reservation could break the only aligned run */
    while (p->nreserved_medium < p->reserve_medium) {
        int64_t g = find_run(p, p->medium_granules, p->medium_granules, ZGRANULE_FREE, true, false);
        if (g < 0)
            break;
        for (uint32_t k = (uint32_t)g; k < (uint32_t)g + p->medium_granules; k++)
            p->state[k] = ZGRANULE_RESERVED_MEDIUM;
        p->nfree -= p->medium_granules;
        p->nreserved_medium++;
    }
    for (uint32_t g = 0; g < p->end && p->nreserved < p->reserve_small; g++) {
        /* only committed granules (all below end) can be reserved: the GC thread never commits */
        if (!p->page_of[g] && p->state[g] == ZGRANULE_FREE && p->committed[g]) {
            p->state[g] = ZGRANULE_RESERVED;
            p->nfree--;
            p->nreserved++;
        }
    }
}

void zpage_free(zheap *z, zpage *page, bool to_reserve)
{
    zpages *p = &z->pages;
    space_poison(z->h, page->start, page->size);
    pthread_mutex_lock(&p->lock);
    uint8_t state = ZGRANULE_FREE;
    if (to_reserve && page->type != ZPAGE_LARGE)
        state = page->type == ZPAGE_SMALL ? ZGRANULE_RESERVED : ZGRANULE_RESERVED_MEDIUM;
    for (uint32_t g = page->first; g < page->first + page->ngranules; g++) {
        set_page(p, g, NULL);
        p->state[g] = state;
    }
    if (state == ZGRANULE_FREE)
        p->nfree += page->ngranules;
    else if (state == ZGRANULE_RESERVED)
        p->nreserved += page->ngranules;
    else
        p->nreserved_medium++;
    if (!to_reserve)
        top_up_reserve(p);
    __atomic_sub_fetch(&p->used, page->size, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->freed, page->size, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->lock);
    page_delete(page);
}

void zpages_trim_reserve(zheap *z)
{
    zpages *p = &z->pages;
    pthread_mutex_lock(&p->lock);
    for (uint32_t g = 0; g < p->end && p->nreserved > p->reserve_small; g++) {
        if (!p->page_of[g] && p->state[g] == ZGRANULE_RESERVED) {
            p->state[g] = ZGRANULE_FREE;
            p->nreserved--;
            p->nfree++;
        }
    }
    for (uint32_t g = 0; g < p->end && p->nreserved_medium > p->reserve_medium;
         g += p->medium_granules ? p->medium_granules : 1) {
        if (!p->page_of[g] && p->state[g] == ZGRANULE_RESERVED_MEDIUM) {
            for (uint32_t k = g; k < g + p->medium_granules; k++)
                p->state[k] = ZGRANULE_FREE;
            p->nreserved_medium--;
            p->nfree += p->medium_granules;
        }
    }
    top_up_reserve(p);
    pthread_mutex_unlock(&p->lock);
}

uint32_t zpages_reserved_targets(zheap *z, int type)
{
    zpages *p = &z->pages;
    pthread_mutex_lock(&p->lock);
    uint32_t n = type == ZPAGE_SMALL ? p->nreserved : p->nreserved_medium;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void zpages_free_runs(zheap *z, uint32_t *nfree, uint32_t *longest)
{
    zpages *p = &z->pages;
    uint32_t run = 0, best = 0, n = 0;
    pthread_mutex_lock(&p->lock);
    for (uint32_t g = 0; g < p->ngranules; g++) {
        if (!p->page_of[g] && p->state[g] == ZGRANULE_FREE) {
            n++;
            if (++run > best)
                best = run;
        } else {
            run = 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
    *nfree = n;
    *longest = best;
}

zpage **zpages_snapshot(zheap *z, uint32_t *n)
{
    zpages *p = &z->pages;
    pthread_mutex_lock(&p->lock);
    uint32_t count = 0;
    for (uint32_t g = 0; g < p->end; g++)
        if (p->page_of[g] && p->page_of[g]->first == g)
            count++;
    zpage **all = malloc((count ? count : 1) * sizeof *all);
    if (all) {
        count = 0;
        for (uint32_t g = 0; g < p->end; g++)
            if (p->page_of[g] && p->page_of[g]->first == g)
                all[count++] = p->page_of[g];
    }
    pthread_mutex_unlock(&p->lock);
    *n = all ? count : 0;
    return all;
}

/* At creation, on the creating thread. */
static bool commit_range(mh_heap *h, zpages *p, uint32_t first, uint32_t n)
{
    if (embedder_commit(h, (uint64_t)first << p->granule_shift, (uint64_t)n << p->granule_shift) != 0)
        return false;
    for (uint32_t g = first; g < first + n; g++)
        p->committed[g] = 1;
    p->ncommitted += n;
    raise_end(p, first + n);
    return true;
}

int zpages_init(zheap *z, char *err, size_t errlen)
{
    mh_heap *h = z->h;
    zpages *p = &z->pages;
    p->granule = h->region_size;
    p->granule_shift = h->region_shift;
    p->ngranules = h->nregions;
    page_sizes(p, h->heap_size);
    pthread_mutex_init(&p->lock, NULL);
    p->page_of = calloc(p->ngranules, sizeof *p->page_of);
    p->state = calloc(p->ngranules, 1);
    p->committed = calloc(p->ngranules, 1);
    if (!p->page_of || !p->state || !p->committed) {
        snprintf(err, errlen, "out of memory for the page table (%u granules)", p->ngranules);
        return -1;
    }
    p->nfree = p->ngranules;
    /* two small targets (the GC thread's and the one it frees next), one
     * medium: enough to start relocating whatever the relocation set is
     * (select.c); a tiny heap keeps what it can */
    p->reserve_small = 2;
    p->reserve_medium = p->medium_size ? 1 : 0;
    uint32_t reserve = p->reserve_small + p->reserve_medium * p->medium_granules;
    if (reserve + 1 > p->ngranules) {
        snprintf(err, errlen, "heap_size %llu holds only %u granules of %llu bytes: the zgc "
                 "collector needs at least %u (%u for its relocation reserve, and one to "
                 "allocate in); raise heap_size or lower region_size",
                 (unsigned long long)h->heap_size, p->ngranules, (unsigned long long)p->granule,
                 reserve + 1, reserve);
        return -1;
    }
    /* the reserve is committed here, on the creating thread: the GC thread never commits */
    uint64_t commit_bytes = h->config.keep_committed ? h->heap_size : 0;
    if (commit_bytes && embedder_commit(h, 0, commit_bytes) != 0) {
        snprintf(err, errlen, "the embedder could not commit the whole heap (%llu bytes); free "
                 "memory or lower heap_size", (unsigned long long)commit_bytes);
        return -1;
    }
    if (commit_bytes) {
        memset(p->committed, 1, p->ngranules);
        p->ncommitted = p->ngranules;
        p->end = p->ngranules;
    } else {
        /* the reserve sits at the bottom of the heap (the medium run first, aligned), so the
         * granules in use stay a prefix of the heap however large it is */
        uint32_t medium_first = 0;
        uint32_t small_first = p->reserve_medium * p->medium_granules;
        if (!commit_range(h, p, small_first, p->reserve_small) ||
            (p->reserve_medium && !commit_range(h, p, medium_first, p->medium_granules))) {
            snprintf(err, errlen, "the embedder could not commit the relocation reserve (%u "
                     "granules of %llu bytes); free memory on the machine", reserve,
                     (unsigned long long)p->granule);
            return -1;
        }
    }
    h->stats.regions_committed = p->ncommitted;
    top_up_reserve(p);
    return 0;
}

void zpages_free(zheap *z)
{
    zpages *p = &z->pages;
    if (p->page_of) {
        for (uint32_t g = 0; g < p->end;) {
            zpage *pg = p->page_of[g];
            if (!pg) {
                g++;
                continue;
            }
            g = pg->first + pg->ngranules; /* past the page, before freeing it */
            page_delete(pg);
        }
    }
    free(p->page_of);
    free(p->state);
    free(p->committed);
    pthread_mutex_destroy(&p->lock);
}
