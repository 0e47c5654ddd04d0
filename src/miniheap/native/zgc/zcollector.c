/*
 * zcollector.c: the concurrent collector behind the core's collector record:
 * configuration, setup and teardown, and the entry points the core calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include "zgc.h"
#include "safepoint.h"
#include "poison.h"

#define BAD(...)                                                  \
    do {                                                          \
        if (err && errlen)                                        \
            snprintf(err, errlen, __VA_ARGS__);                   \
        return false;                                             \
    } while (0)

static bool zgc_config_valid(const mh_config *c, char *err, size_t errlen)
{
    if (c->colored == MH_VIEWS_ONE)
        BAD("the zgc collector needs coloured references: its load barrier tells stale references "
            "by their colour; map Marked0, Marked1 and Remapped views (colored = MH_VIEWS_MULTI, "
            "JDK 17) or one view with the colour in the low bits (MH_VIEWS_LOW_BITS, JDK 21+)");
    if (c->region_size > (8u << 20))
        BAD("region_size %llu is too large for zgc: its granule (the small page) may be at most "
            "8 MiB (JDK 17's is 2 MiB); use 2M", (unsigned long long)c->region_size);
    if (c->stepping != 0 && c->stepping != 1)
        BAD("stepping %d must be 0 (a GC thread) or 1 (cycles run on the caller)", c->stepping);
    return true;
}

/* At close: every table. The record (its locks and condition variables)
 * stays until the heap's record is freed: a thread that let go of the heap to
 * wait (a stall, collect, verify) may still be waiting on them, and finds the
 * heap closed when it takes the heap back. */
static void zgc_release(mh_heap *h)
{
    zheap *z = h->z;
    if (!z || z->released)
        return;
    z->released = true;
    zreset_relocation_set(z);
    free(z->relocation_set);
    z->relocation_set = NULL;
    free(z->fwd_of_granule);
    z->fwd_of_granule = NULL;
    zstack_free(&z->gc_stack);
    zstack_free(&z->mut_stack);
    zpublished_free(&z->published);
    zpages_free(z);
}

static void zgc_free_record(mh_heap *h)
{
    zheap *z = h->z;
    if (!z)
        return;
    zgc_release(h);
    pthread_mutex_destroy(&z->ctl_lock);
    pthread_cond_destroy(&z->ctl_cond);
    pthread_mutex_destroy(&z->cycle_lock);
    free(z);
    h->z = NULL;
}

static int zgc_init(mh_heap *h, char *err, size_t errlen)
{
    zheap *z = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, errlen, "out of memory for the collector's record");
        return -1;
    }
    h->z = z;
    z->h = h;
    z->stepping = h->config.stepping;
    z->requested_cause = -1;
    /* JDK 17 starts in the relocation phase with Remapped good; the first
     * Mark Start flips the marking colour to Marked1 */
    z->phase = ZPHASE_RELOCATE;
    z->mark_color = MH_COLOR_MARKED0;
    z->prev_mark_color = MH_COLOR_MARKED1;
    h->card_from = UINT64_MAX; /* no write barrier */
    pthread_mutex_init(&z->ctl_lock, NULL);
    pthread_mutex_init(&z->cycle_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&z->ctl_cond, &attr);
    pthread_condattr_destroy(&attr);
    zpublished_init(&z->published);
    /* A pause allocates nothing (as JDK ZGC's mark stacks come from space
     * reserved up front): Pause Mark Start pushes the roots' objects onto a
     * stack that is already there. A malloc there was the longest pause of
     * bench zgc-latency: the GC thread's first malloc builds its glibc arena,
     * about 50 us. */
    z->fwd_of_granule = calloc(h->nregions, sizeof *z->fwd_of_granule);
    if (!z->fwd_of_granule || !zstack_reserve(&z->gc_stack, ZMARK_STACK_MIN)) {
        snprintf(err, errlen, "out of memory for collector metadata (about %llu bytes for a heap "
                 "of %llu bytes); lower heap_size", (unsigned long long)(h->heap_size / 64),
                 (unsigned long long)h->heap_size);
        return -1;
    }
    space_poison(h, 0, h->heap_size); /* nothing is allocated yet */
    if (zpages_init(z, err, errlen) != 0)
        return -1;
    zviews_init(z); /* after the commits of zpages_init, which an embedder may map in every view */
    return 0;
}

static int zgc_start(mh_heap *h, char *err, size_t errlen)
{
    return h->z->stepping ? 0 : zthread_start(h, err, errlen);
}

static void zgc_stop(mh_heap *h) { zthread_stop(h); }

static int zgc_collect(mh_heap *h, int full)
{
    zheap *z = h->z;
    if (z->stepping)
        zdriver_cycle(z, MH_CAUSE_EXPLICIT);
    else
        zthread_collect_and_wait(h, MH_CAUSE_EXPLICIT);
    return heap_still_open(h) ? 0 : MH_ERROR;
}

static uint64_t zgc_used(mh_heap *h) { return __atomic_load_n(&h->z->pages.used, __ATOMIC_RELAXED); }

/* Granule states for mh_region_info (teaching output): 0 free, and */
#define ZREGION_SMALL 7
#define ZREGION_MEDIUM 8
#define ZREGION_MEDIUM_CONT 9
#define ZREGION_LARGE 10
#define ZREGION_LARGE_CONT 11
#define ZREGION_RESERVED 12
#define ZREGION_RELOCATING 13

static int zgc_region_info(mh_heap *h, uint32_t g, uint64_t *used)
{
    zpages *p = &h->z->pages;
    pthread_mutex_lock(&p->lock); /* the GC thread may free the page meanwhile */
    zpage *pg = p->page_of[g];
    int state;
    uint64_t u = 0;
    if (!pg) {
        state = p->state[g] == ZGRANULE_FREE ? 0 : ZREGION_RESERVED;
    } else {
        uint64_t base = (uint64_t)g << p->granule_shift, top = zpage_top(pg);
        u = top <= base ? 0 : top - base < p->granule ? top - base : p->granule;
        if (pg->relocating && zforwarding_of(h->z, base))
            state = ZREGION_RELOCATING;
        else if (pg->type == ZPAGE_SMALL)
            state = ZREGION_SMALL;
        else if (pg->type == ZPAGE_MEDIUM)
            state = pg->first == g ? ZREGION_MEDIUM : ZREGION_MEDIUM_CONT;
        else
            state = pg->first == g ? ZREGION_LARGE : ZREGION_LARGE_CONT;
    }
    pthread_mutex_unlock(&p->lock);
    *used = u;
    return state;
}

static uint32_t zgc_regions_in_use(mh_heap *h)
{
    zpages *p = &h->z->pages;
    pthread_mutex_lock(&p->lock);
    uint32_t end = p->end;
    pthread_mutex_unlock(&p->lock);
    return end;
}

static int zgc_space_of(mh_heap *h, uint64_t off)
{
    zpage *pg = zpage_of(&h->z->pages, off);
    if (!pg)
        return MH_ERROR;
    return pg->type == ZPAGE_SMALL ? MH_SPACE_SMALL : pg->type == ZPAGE_MEDIUM ? MH_SPACE_MEDIUM
                                                                               : MH_SPACE_LARGE;
}

const mh_collector zgc_collector = {
    .name = "zgc",
    .kind = MH_COLLECTOR_ZGC,
    .config_valid = zgc_config_valid,
    .init = zgc_init,
    .start = zgc_start,
    .stop = zgc_stop,
    .release = zgc_release,
    .free_record = zgc_free_record,
    .alloc = zalloc,
    .alloc_object = zalloc_object,
    .mutators_in = zmutators_in,
    .mutators_out = zmutators_out,
    .load_slow = zload_slow,
    .collect = zgc_collect,
    .verify = zverify,
    .used = zgc_used,
    .regions_in_use = zgc_regions_in_use,
    .region_info = zgc_region_info,
    .space_of = zgc_space_of,
};
