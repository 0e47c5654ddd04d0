/*
 * test_zgc.c: tests of the zgc collector, driven through miniheap.h and,
 * for the interleavings, through zstep.h (one phase at a time, mutator
 * operations in between).
 *
 * The test is the embedder: it maps one memfd at the three view bases
 * (1<<42.. as JDK 17 does for small heaps, or 1<<28.. under a sanitizer,
 * whose shadow memory sits up there).
 *
 *   test_zgc                 every test
 *   test_zgc NAME [ARGS]     one: mark-barrier, relocate-barrier, forwarding-race,
 *                            stale-store, remap-across-cycles, root-changes, heal,
 *                            stepping-random SEED STEPS, threads SECONDS, ...
 *
 * Each interleaving test says which duty of the load barrier it needs; built
 * with that duty removed (-DMH_TEST_NO_MARK_BARRIER, -DMH_TEST_NO_RELOCATE_BARRIER,
 * -DMH_TEST_NO_FORWARDING_CAS, -DMH_TEST_NO_REMAP, -DMH_TEST_NO_HEAL) it must
 * fail: tests/native/test_zgc_c.py checks that it does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "miniheap.h"
#include "miniheap-inline.h"
#include "zstep.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#include "check.h"

/* ---- the embedder: one memfd, three views (or one) --------------------- */

/* Which layout every heap of this run has: MH_VIEWS_MULTI (three views, JDK 17)
 * or, with MINIHEAP_TEST_VIEWS=low-bits, MH_VIEWS_LOW_BITS (one view, the colour
 * in the references' low bits, JDK 21+). Every test runs in both (test_zgc_c.py). */
static int views_layout = MH_VIEWS_MULTI;
static int nviews(void) { return views_layout == MH_VIEWS_MULTI ? 3 : 1; }

typedef struct env {
    uint64_t heap_size;
    uint64_t base[3];
    int fd;
    mh_heap *heap;
    int cycles, stalls;
    uint64_t max_pause_ns;
    mh_gc_event last;
    pthread_mutex_t lock; /* on_gc runs on whichever mutator delivers */
} env;

static int cb_commit(void *ctx, uint64_t off, uint64_t len)
{
    env *e = ctx;
    for (int i = 0; i < nviews(); i++)
        if (mprotect((void *)(uintptr_t)(e->base[i] + off), len, PROT_READ | PROT_WRITE) != 0)
            return -1;
    return 0;
}

static void cb_on_gc(void *ctx, const mh_gc_event *ev)
{
    env *e = ctx;
    pthread_mutex_lock(&e->lock);
    if (ev->kind == MH_GC_ZGC) {
        e->cycles++;
        e->last = *ev;
        for (uint32_t i = 0; i < ev->nphases; i++)
            if (ev->phases[i].pause && ev->phases[i].duration_ns > e->max_pause_ns)
                e->max_pause_ns = ev->phases[i].duration_ns;
    } else if (ev->kind == MH_GC_ALLOCATION_STALL) {
        e->stalls++;
    }
    pthread_mutex_unlock(&e->lock);
}

static int map_views(env *e, const uint64_t bases[3])
{
    for (int i = 0; i < nviews(); i++) {
        void *want = (void *)(uintptr_t)bases[i];
        void *p = mmap(want, e->heap_size, PROT_NONE, MAP_SHARED | MAP_FIXED_NOREPLACE, e->fd, 0);
        if (p != want) {
            if (p != MAP_FAILED)
                munmap(p, e->heap_size);
            for (int j = 0; j < i; j++)
                munmap((void *)(uintptr_t)bases[j], e->heap_size);
            return -1;
        }
        e->base[i] = bases[i];
    }
    return 0;
}

typedef struct options {
    uint64_t heap_size;
    uint64_t granule;
    int stepping;
    uint32_t interval_ms;
    int keep_committed;
    int verify_views;      /* 1 on, -1 off whatever MINIHEAP_TEST_VERIFY_VIEWS says */
    int (*protect)(void *, size_t, int);
} options;

static mh_heap *env_open(env *e, options o)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    e->heap_size = o.heap_size ? o.heap_size : 8 * MiB;
    e->fd = memfd_create("miniheap-zgc-test", MFD_CLOEXEC);
    if (e->fd < 0 || ftruncate(e->fd, (off_t)e->heap_size) != 0) {
        CHECK(0, "memfd: %s", strerror(errno));
        return NULL;
    }
    static const uint64_t jdk[3] = {1ull << 42, 1ull << 43, 1ull << 44};
    static const uint64_t low[3] = {1ull << 28, 1ull << 29, 1ull << 30};
    const char *bits = getenv("MINIHEAP_COLOR_BITS");
    if (!((bits == NULL && map_views(e, jdk) == 0) || map_views(e, low) == 0)) {
        CHECK(0, "cannot map the coloured views: %s", strerror(errno));
        return NULL;
    }
    mh_config c;
    memset(&c, 0, sizeof c);
    c.heap_size = e->heap_size;
    c.region_size = o.granule ? o.granule : 64 * KiB;
    c.colored = views_layout;
    c.collector = MH_COLLECTOR_ZGC;
    c.stepping = o.stepping;
    c.collection_interval_ms = o.interval_ms;
    c.keep_committed = o.keep_committed;
    c.max_handles = 1 << 16;
    /* MINIHEAP_TEST_VERIFY_VIEWS=1 runs any test with only the good view accessible */
    const char *vv = getenv("MINIHEAP_TEST_VERIFY_VIEWS");
    c.verify_views = o.verify_views ? o.verify_views > 0
                                    : vv && strcmp(vv, "1") == 0 && views_layout == MH_VIEWS_MULTI;
    c.protect = o.protect ? o.protect : mprotect;
    for (int i = 0; i < 3; i++)
        c.view_base[i] = e->base[i < nviews() ? i : 0];
    c.commit = cb_commit;
    c.on_gc = cb_on_gc;
    c.ctx = e;
    char err[512];
    e->heap = mh_heap_new(&c, err, sizeof err);
    CHECK(e->heap != NULL, "mh_heap_new: %s", err);
    return e->heap;
}

static void env_close(env *e)
{
    mh_heap_free(e->heap);
    for (int i = 0; i < nviews(); i++)
        munmap((void *)(uintptr_t)e->base[i], e->heap_size);
    close(e->fd);
    pthread_mutex_destroy(&e->lock);
}

/* ---- objects with identities ------------------------------------------ */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void set_id(mh_heap *h, mh_handle x, uint64_t id)
{
    CHECK(mh_write_payload(h, x, 0, &id, 8) == 0, "write payload: %s", mh_last_error_message(h));
}

static uint64_t get_id(mh_heap *h, mh_handle x)
{
    uint64_t id = 0;
    if (mh_read_payload(h, x, 0, &id, 8) != 0)
        return UINT64_MAX;
    return id;
}

static mh_handle object(mh_heap *h, uint32_t nrefs, uint64_t id)
{
    mh_handle x = mh_alloc(h, nrefs, 16);
    CHECK(x >= 0, "alloc: %s", mh_last_error_message(h));
    if (x >= 0)
        set_id(h, x, id);
    return x;
}

/* Garbage: objects dropped at once, so the pages they share with a test's
 * objects are sparse and get relocated. */
static void garbage(mh_heap *h, int n)
{
    for (int i = 0; i < n; i++) {
        mh_handle g = mh_alloc(h, 1, 48);
        if (g >= 0)
            mh_release(h, g);
    }
}

/* Pages with one live object each (kept by the returned object's slots),
 * the rest garbage: a relocation set needs several sparse pages (JDK 17's
 * selection moves nothing when the pages' objects would fill as many pages
 * as they came from). */
#define PAGE_OF_GARBAGE 900 /* objects of 72 bytes in a 64 KiB page */
static mh_handle spread(mh_heap *h, uint32_t pages)
{
    mh_handle keep = mh_alloc(h, pages, 8);
    for (uint32_t i = 0; i < pages; i++) {
        garbage(h, PAGE_OF_GARBAGE / 2);
        mh_handle x = object(h, 0, 1000 + i);
        mh_store(h, keep, i, x);
        mh_release(h, x);
        garbage(h, PAGE_OF_GARBAGE / 2);
    }
    return keep;
}

static uint64_t offset_of(mh_heap *h, mh_handle x) { return mh_ref_offset(h, mh_handle_ref(h, x)); }

/* Steps to the end of Concurrent Mark: everything the GC can see traced. */
static void mark_all(mh_heap *h)
{
    while (zstep_mark(h, 0))
        ;
}

static void run_cycle(mh_heap *h) { zstep_mark_start(h, MH_CAUSE_EXPLICIT); zstep_finish(h); }

static mh_handle load(mh_heap *h, mh_handle x, uint32_t slot)
{
    mh_handle y = mh_load(h, x, slot);
    CHECK(y >= 0, "load of slot %u: %s", slot, y == MH_NULL_HANDLE ? "null" : mh_last_error_message(h));
    return y;
}

/* ---- basics ------------------------------------------------------------ */

static void test_basics(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    CHECK(mh_collector_kind(h) == MH_COLLECTOR_ZGC, "collector kind %d", mh_collector_kind(h));
    CHECK(mh_good_color(h) == MH_COLOR_REMAPPED, "good colour at start %d", mh_good_color(h));
    /* a list of 500 objects, garbage between them */
    mh_handle head = object(h, 1, 0);
    mh_handle cur = mh_dup(h, head);
    for (uint64_t i = 1; i < 500; i++) {
        mh_handle next = object(h, 1, i);
        mh_store(h, cur, 0, next);
        mh_release(h, cur);
        cur = next;
        garbage(h, 3);
    }
    mh_release(h, cur);
    uint64_t before = offset_of(h, head);
    /* the reference's encoding: an address in its colour's view, or address << 16 | colour bit */
    mh_ref ref = mh_handle_ref(h, head);
    uint64_t address = e.base[views_layout == MH_VIEWS_MULTI ? MH_COLOR_REMAPPED : 0] + before;
    CHECK(mh_ref_address(h, ref) == address, "0x%llx decodes to 0x%llx, not 0x%llx", (unsigned long long)ref,
          (unsigned long long)mh_ref_address(h, ref), (unsigned long long)address);
    CHECK(ref == (views_layout == MH_VIEWS_MULTI ? address
                  : address << MH_LOW_BITS_SHIFT | (uint64_t)MH_LOW_BITS_COLOR0 << MH_COLOR_REMAPPED),
          "reference 0x%llx for the object at 0x%llx", (unsigned long long)ref, (unsigned long long)address);
    for (int cycle = 0; cycle < 4; cycle++) {
        CHECK(mh_collect(h, 1) == 0, "collect: %s", mh_last_error_message(h));
        VERIFY(h);
        cur = mh_dup(h, head);
        uint64_t i = 0;
        for (;; i++) {
            CHECK(get_id(h, cur) == i, "object %llu has id %llu", (unsigned long long)i,
                  (unsigned long long)get_id(h, cur));
            if (mh_load_into(h, cur, 0, cur) != 1)
                break;
        }
        CHECK(i == 499, "the list has %llu objects after cycle %d", (unsigned long long)i + 1, cycle);
        mh_release(h, cur);
    }
    mh_drain_events(h);
    CHECK(e.cycles == 4, "%d cycle events", e.cycles);
    CHECK(e.last.mark_ends >= 1 && e.last.nphases >= 8, "phases %u", e.last.nphases);
    CHECK(strcmp(e.last.phases[0].name, "Pause Mark Start") == 0, "first phase %s", e.last.phases[0].name);
    CHECK(e.last.live > 0 && e.last.live < 500 * 64, "live %llu", (unsigned long long)e.last.live);
    const mh_stats *s = mh_get_stats(h);
    CHECK(s->zgc_cycles == 4 && s->pauses >= 12, "cycles %llu pauses %llu",
          (unsigned long long)s->zgc_cycles, (unsigned long long)s->pauses);
    CHECK(offset_of(h, head) != before, "the head never moved: its sparse page was not relocated");
    CHECK(s->objects_relocated_by_gc > 0, "nothing relocated");
    mh_release(h, head);
    env_close(&e);
}

/* Medium and large pages: medium objects move with their sparse pages, a
 * large object's page never moves, and dead large pages are freed. */
static void test_pages(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1, .heap_size = 64 * MiB, .granule = 256 * KiB});
    if (!h)
        return;
    /* 64M / 32 = 2M medium pages for 256K granules: small objects up to 32K, medium up to 256K */
    mh_handle head = mh_alloc(h, 1, 40 * 1024);
    mh_handle cur = mh_dup(h, head);
    set_id(h, head, 0);
    for (uint64_t i = 1; i < 40; i++) {
        mh_handle x = mh_alloc(h, 1, 40 * 1024);
        CHECK(x >= 0, "medium alloc: %s", mh_last_error_message(h));
        if (x < 0)
            break;
        set_id(h, x, i);
        mh_store(h, cur, 0, x);
        mh_release(h, cur);
        cur = x;
        for (int g = 0; g < 3; g++) {
            mh_handle dead = mh_alloc(h, 0, 40 * 1024);
            mh_release(h, dead);
        }
    }
    mh_release(h, cur);
    mh_handle large = mh_alloc(h, 1, 512 * 1024);
    mh_handle dead_large = mh_alloc(h, 0, 700 * 1024);
    mh_release(h, dead_large);
    CHECK(mh_space_of(h, head) == MH_SPACE_MEDIUM && mh_space_of(h, large) == MH_SPACE_LARGE,
          "spaces %d %d", mh_space_of(h, head), mh_space_of(h, large));
    uint64_t head_at = offset_of(h, head), large_at = offset_of(h, large);
    for (int cycle = 0; cycle < 3; cycle++) {
        mh_collect(h, 1);
        VERIFY(h);
    }
    mh_drain_events(h);
    CHECK(offset_of(h, head) != head_at, "the medium list's sparse pages were never relocated");
    CHECK(offset_of(h, large) == large_at, "a large page moved");
    CHECK(e.last.pages[2] >= 1, "Select saw no large page");
    cur = mh_dup(h, head);
    uint64_t i = 0;
    for (;; i++) {
        CHECK(get_id(h, cur) == i, "medium node %llu reads %llu", (unsigned long long)i,
              (unsigned long long)get_id(h, cur));
        if (mh_load_into(h, cur, 0, cur) != 1)
            break;
    }
    CHECK(i == 39, "the medium list has %llu nodes", (unsigned long long)i + 1);
    env_close(&e);
}

/* ---- the interleavings -------------------------------------------------- */

/*
 * A load of an unmarked object during marking. B is reachable only through
 * A's field; the mutator loads it into a root and clears the field before
 * the GC thread traces A. Only the barrier's mark duty keeps B alive.
 */
static void test_mark_barrier(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 1, 1);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle b = object(h, 0, 2);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    mh_store(h, a, 0, b);
    mh_release(h, b);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    CHECK(!zstep_is_marked(h, mh_ref_offset(h, mh_peek_slot(h, a, 0))), "B marked before anyone reached it");
    b = load(h, a, 0);              /* the mutator reaches B first ... */
    mh_store(h, a, 0, MH_NULL_HANDLE); /* ... and A no longer leads to it */
    mark_all(h);
    while (!zstep_mark_end(h))
        mark_all(h);
    zstep_finish(h);
    run_cycle(h);
    VERIFY(h);
    CHECK(get_id(h, b) == 2, "B lost: id %llu", (unsigned long long)get_id(h, b));
    env_close(&e);
}

/*
 * A load into the relocation set before the GC thread copied the object:
 * the mutator must copy it itself (relocate duty), so the writes it then
 * makes land in the object's one and only new home.
 */
static void test_relocate_barrier(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 1, 1);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle b = object(h, 0, 2);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    mh_store(h, a, 0, b);
    mh_release(h, b);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    mark_all(h);
    CHECK(zstep_mark_end(h), "marking did not end");
    zstep_select(h);
    uint64_t bo = mh_ref_offset(h, mh_peek_slot(h, a, 0));
    CHECK(zstep_in_relocation_set(h, bo), "B's page is not in the relocation set");
    zstep_relocate_start(h);
    CHECK(zstep_forwarding(h, bo) == UINT64_MAX, "B was relocated before the mutator's load");
    b = load(h, a, 0);
    uint64_t now = offset_of(h, b);
    CHECK(now != bo, "the load returned B's old address");
    CHECK(zstep_forwarding(h, bo) == now, "the forwarding does not name the mutator's copy");
    set_id(h, b, 22);
    while (zstep_relocate(h, 0))
        ;
    set_id(h, b, 23); /* after the GC thread is done with the page */
    zstep_cycle_end(h);
    mh_handle again = load(h, a, 0);
    CHECK(get_id(h, again) == 23, "A.0 leads to an object with id %llu, not the mutator's 23",
          (unsigned long long)get_id(h, again));
    CHECK(mh_same(h, again, b) == 1, "two copies of B");
    VERIFY(h);
    mh_drain_events(h);
    CHECK(mh_get_stats(h)->objects_relocated_by_mutator >= 1, "the mutator's copy was not counted");
    env_close(&e);
}

/*
 * The pauses allocate nothing, as JDK ZGC's (its mark stacks and pages are
 * there before the pause): Pause Mark Start pushes the roots' objects onto a
 * stack reserved when the heap was made, and Pause Relocate Start copies a
 * root's object into a target page taken by Select. A malloc in a pause was
 * its longest part in bench zgc-latency (a new thread's first malloc builds
 * its arena: ~50 us; a page's live map: 32 KiB of fresh memory, 12-25 us).
 * malloc's own count of bytes in use (mallinfo2) must not move across either
 * pause. Meaningful in a build with glibc's malloc (a sanitizer's allocator
 * is not seen by mallinfo2, and the check then holds trivially).
 */
static size_t malloc_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void test_pauses_allocate_nothing(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 1, 1);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    size_t before = malloc_in_use();
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    size_t after = malloc_in_use();
    CHECK(after == before, "Pause Mark Start allocated %zd bytes", (ssize_t)(after - before));
    mark_all(h);
    CHECK(zstep_mark_end(h), "marking did not end");
    zstep_select(h);
    uint64_t ao = offset_of(h, a);
    CHECK(zstep_in_relocation_set(h, ao), "A's page is not in the relocation set");
    before = malloc_in_use();
    zstep_relocate_start(h);
    after = malloc_in_use();
    CHECK(after == before, "Pause Relocate Start allocated %zd bytes", (ssize_t)(after - before));
    CHECK(zstep_forwarding(h, ao) != UINT64_MAX, "the root's object was not relocated in the pause");
    CHECK(get_id(h, a) == 1, "the root's object lost its id");
    zstep_finish(h);
    VERIFY(h);
    env_close(&e);
}

/*
 * The GC thread and a mutator relocate the same object: the GC has copied
 * B but not yet installed its forwarding entry when the mutator loads B
 * (through A), copies it too and installs first, then writes to it. The
 * GC's compare-and-swap must fail and its copy be dropped; a reference to B
 * healed later (through C) must reach the mutator's copy.
 */
static void race_hook(mh_heap *h, int worker, uint64_t from, uint64_t to, void *arg)
{
    mh_handle *refs = arg; /* a, b (out), target offset */
    if (worker != 0 || from != (uint64_t)refs[3] || refs[1] >= 0)
        return;
    refs[1] = load(h, refs[0], 0);
    set_id(h, refs[1], 77);
}

static void test_forwarding_race(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 1, 1);
    mh_handle c = object(h, 1, 3);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle b = object(h, 0, 2);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    mh_store(h, a, 0, b);
    mh_store(h, c, 0, b);
    mh_release(h, b);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    mark_all(h);
    CHECK(zstep_mark_end(h), "marking did not end");
    zstep_select(h);
    uint64_t bo = mh_ref_offset(h, mh_peek_slot(h, a, 0));
    CHECK(zstep_in_relocation_set(h, bo), "B's page is not in the relocation set");
    zstep_relocate_start(h);
    mh_handle refs[4] = {a, -1, c, (mh_handle)bo};
    if (bo >= (1u << 31))
        CHECK(0, "offset too large for the hook's argument");
    zstep_set_copy_hook(h, race_hook, refs);
    while (zstep_relocate(h, 0))
        ;
    zstep_set_copy_hook(h, NULL, NULL);
    CHECK(refs[1] >= 0, "the hook never ran: the GC thread did not copy B");
    zstep_cycle_end(h);
    mh_handle via_c = load(h, c, 0);
    CHECK(get_id(h, via_c) == 77, "C.0 leads to a copy of B with id %llu: the GC thread's copy "
          "replaced the mutator's", (unsigned long long)get_id(h, via_c));
    CHECK(mh_same(h, via_c, refs[1]) == 1, "A and C lead to two different copies of B");
    VERIFY(h);
    env_close(&e);
}

/*
 * A pointer stored during marking (good then) becomes stale at Relocate
 * Start, and its object moves: the load must remap it through the
 * forwarding table (remap duty), and a pointer of the last cycle's colour
 * met during the next marking must be remapped too.
 */
static void test_stale_store(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 2, 1);
    mh_handle c = object(h, 1, 3);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle b = object(h, 0, 2);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    mh_store(h, c, 0, b);
    mh_release(h, b);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    mark_all(h);                       /* A traced: its slot 1 is null */
    b = load(h, c, 0);
    mh_store(h, a, 1, b);              /* stored good, into an object already traced */
    mh_release(h, b);
    mh_store(h, c, 0, MH_NULL_HANDLE);
    while (!zstep_mark_end(h))
        mark_all(h);
    zstep_select(h);
    uint64_t bo = mh_ref_offset(h, mh_peek_slot(h, a, 1));
    CHECK(zstep_in_relocation_set(h, bo), "B's page is not in the relocation set");
    zstep_relocate_start(h);
    CHECK(mh_ref_color(h, mh_peek_slot(h, a, 1)) != mh_good_color(h), "A.1 should be stale now");
    while (zstep_relocate(h, 0))
        ;
    zstep_cycle_end(h);                /* B moved by the GC thread; A.1 still names the old place */
    uint64_t moved = zstep_forwarding(h, bo);
    CHECK(moved != UINT64_MAX, "B was not relocated");
    /* the next marking meets A.1, of the last cycle's colour */
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    b = load(h, a, 1);
    CHECK(offset_of(h, b) == moved, "A.1 loaded as offset %llu, not B's new %llu",
          (unsigned long long)offset_of(h, b), (unsigned long long)moved);
    CHECK(get_id(h, b) == 2, "B's id %llu", (unsigned long long)get_id(h, b));
    zstep_finish(h);
    VERIFY(h);
    CHECK(get_id(h, b) == 2, "B lost after the next cycle: id %llu", (unsigned long long)get_id(h, b));
    env_close(&e);
}

/*
 * Stale references met during relocation are remapped, not copied again:
 * the GC thread relocated B, then the mutator loads A.0 (still naming B's
 * old place) and must get the GC's copy.
 */
static void test_remap_after_gc_copy(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 1, 1);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle b = object(h, 0, 2);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    mh_store(h, a, 0, b);
    mh_release(h, b);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    mark_all(h);
    CHECK(zstep_mark_end(h), "marking did not end");
    zstep_select(h);
    uint64_t bo = mh_ref_offset(h, mh_peek_slot(h, a, 0));
    CHECK(zstep_in_relocation_set(h, bo), "B's page is not in the relocation set");
    zstep_relocate_start(h);
    uint64_t moved = zstep_relocate_object(h, bo); /* the GC thread's copy */
    CHECK(moved != bo, "B did not move");
    b = load(h, a, 0);
    CHECK(offset_of(h, b) == moved, "the load gave %llu, not the GC's copy at %llu",
          (unsigned long long)offset_of(h, b), (unsigned long long)moved);
    zstep_finish(h);
    CHECK(get_id(h, b) == 2, "B's id %llu", (unsigned long long)get_id(h, b));
    VERIFY(h);
    CHECK(mh_get_stats(h)->loads_slow >= 1, "no slow path");
    env_close(&e);
}

/*
 * A root that changes during the cycle: a handle is moved (mh_load_into)
 * from A to B during marking, and B's only other referrer is cleared; then,
 * during relocation, another handle is moved into the relocation set.
 */
static void test_root_changes(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    spread(h, 4);
    mh_handle a = object(h, 1, 1);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle b = object(h, 1, 2);
    garbage(h, PAGE_OF_GARBAGE);
    mh_handle d = object(h, 0, 4);
    garbage(h, PAGE_OF_GARBAGE);
    spread(h, 4);
    mh_store(h, a, 0, b);
    mh_store(h, b, 0, d);
    mh_release(h, b);
    mh_release(h, d);
    mh_handle cursor = mh_dup(h, a);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    CHECK(mh_load_into(h, cursor, 0, cursor) == 1, "load_into");     /* the root now names B */
    mh_store(h, a, 0, MH_NULL_HANDLE);
    mark_all(h);
    while (!zstep_mark_end(h))
        mark_all(h);
    zstep_select(h);
    uint64_t dof = mh_ref_offset(h, mh_peek_slot(h, cursor, 0));
    zstep_relocate_start(h);
    mh_handle second = mh_dup(h, cursor);
    CHECK(mh_load_into(h, second, 0, second) == 1, "load_into D");   /* a root into the set */
    CHECK(zstep_in_relocation_set(h, dof), "D's page is not in the relocation set");
    CHECK(offset_of(h, second) != dof, "the new root names D's old place");
    set_id(h, second, 44);
    zstep_finish(h);
    run_cycle(h);
    VERIFY(h);
    CHECK(get_id(h, cursor) == 2, "B lost: %llu", (unsigned long long)get_id(h, cursor));
    mh_handle d2 = load(h, cursor, 0);
    CHECK(get_id(h, d2) == 44 && mh_same(h, d2, second) == 1, "D: id %llu", (unsigned long long)get_id(h, d2));
    env_close(&e);
}

/*
 * Self-healing: a stale field loaded once is good in memory afterwards, and
 * the second load takes the fast path.
 */
static void test_heal(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1});
    if (!h)
        return;
    mh_handle a = object(h, 1, 1);
    mh_handle b = object(h, 0, 2);
    mh_store(h, a, 0, b);
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    CHECK(mh_ref_color(h, mh_peek_slot(h, a, 0)) != mh_good_color(h), "A.0 is not stale after Mark Start");
    uint64_t slow = mh_get_stats(h)->loads_slow;
    mh_handle x = load(h, a, 0);
    CHECK(mh_get_stats(h)->loads_slow == slow + 1, "the first load took no slow path");
    CHECK(mh_ref_color(h, mh_peek_slot(h, a, 0)) == mh_good_color(h), "A.0 was not healed: colour %d",
          mh_ref_color(h, mh_peek_slot(h, a, 0)));
    mh_handle y = load(h, a, 0);
    CHECK(mh_get_stats(h)->loads_slow == slow + 1, "the second load of a healed field was slow");
    CHECK(mh_same(h, x, y) == 1, "two loads, two objects");
    zstep_finish(h);
    VERIFY(h);
    env_close(&e);
}

/* ---- random stepping --------------------------------------------------- */

#define NROOTS 24
#define MAXOBJ 20000

typedef struct model {
    uint32_t nrefs[MAXOBJ];
    uint32_t child[MAXOBJ][3];   /* ids, 0 for null */
} model;

static model M;

/* Check the graph from a root against the model (iterative DFS, stamps). */
static uint32_t stamp[MAXOBJ], cur_stamp;

static void check_graph(mh_heap *h, mh_handle root, uint32_t id)
{
    cur_stamp++;
    mh_handle stack[4096];
    uint32_t ids[4096];
    int top = 0;
    stack[top] = mh_dup(h, root);
    ids[top++] = id;
    while (top > 0) {
        mh_handle x = stack[--top];
        uint32_t xid = ids[top];
        uint64_t got = get_id(h, x);
        CHECK(got == xid, "object %u reads as %llu (%s)", xid, (unsigned long long)got, got == UINT64_MAX ? mh_last_error_message(h) : "");
        if (got != xid || stamp[xid] == cur_stamp) {
            mh_release(h, x);
            continue;
        }
        stamp[xid] = cur_stamp;
        for (uint32_t s = 0; s < M.nrefs[xid]; s++) {
            mh_handle y = mh_load(h, x, s);
            uint32_t want = M.child[xid][s];
            CHECK((y == MH_NULL_HANDLE) == (want == 0), "object %u slot %u: null mismatch", xid, s);
            if (y >= 0) {
                if (top < 4096) {
                    stack[top] = y;
                    ids[top++] = want;
                } else {
                    mh_release(h, y);
                }
            }
        }
        mh_release(h, x);
    }
}

/* Random mutator operations, one random GC step between each. */
static void test_stepping_random(uint64_t seed, int steps)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1, .heap_size = 4 * MiB});
    if (!h)
        return;
    rng_state = seed * 2654435761u + 1;
    mh_handle root[NROOTS];
    uint32_t root_id[NROOTS];
    uint32_t next_id = 1;
    memset(&M, 0, sizeof M);
    for (int i = 0; i < NROOTS; i++) {
        root_id[i] = next_id++;
        M.nrefs[root_id[i]] = 3;
        root[i] = object(h, 3, root_id[i]);
    }
    int cycles = 0;
    for (int step = 0; step < steps && failures == 0; step++) {
        int r = (int)(rnd() % NROOTS), q = (int)(rnd() % NROOTS);
        uint32_t slot = (uint32_t)(rnd() % 3);
        switch (rnd() % 6) {
        case 0: /* allocate into a slot */
            if (next_id < MAXOBJ) {
                uint32_t id = next_id++;
                mh_handle x = object(h, 3, id);
                if (x < 0)
                    break;
                M.nrefs[id] = 3;
                mh_store(h, root[r], slot, x);
                M.child[root_id[r]][slot] = id;
                mh_release(h, x);
            }
            break;
        case 1: /* move a root down a slot */
            if (M.child[root_id[r]][slot]) {
                CHECK(mh_load_into(h, root[r], slot, root[r]) == 1, "load_into");
                root_id[r] = M.child[root_id[r]][slot];
            }
            break;
        case 2: /* copy a reference between objects */
        {
            mh_handle y = mh_load(h, root[q], slot);
            mh_store(h, root[r], slot, y < 0 ? MH_NULL_HANDLE : y);
            M.child[root_id[r]][slot] = M.child[root_id[q]][slot];
            if (y >= 0)
                mh_release(h, y);
            break;
        }
        case 3: /* cut */
            mh_store(h, root[r], slot, MH_NULL_HANDLE);
            M.child[root_id[r]][slot] = 0;
            break;
        case 4: /* a root to another root's object */
            if (r == q)
                break;
            mh_release(h, root[r]);
            root[r] = mh_dup(h, root[q]);
            root_id[r] = root_id[q];
            break;
        default: /* garbage */
            garbage(h, 20);
            break;
        }
        /* a GC step */
        switch (rnd() % 8) {
        case 0:
            zstep_mark_start(h, MH_CAUSE_WARMUP);
            break;
        case 1:
            zstep_mark(h, 1 + rnd() % 64);
            break;
        case 2:
            if (!zstep_mark(h, 0) && zstep_mark_end(h))
                zstep_select(h);
            break;
        case 3:
            zstep_relocate_start(h);
            break;
        case 4:
            zstep_relocate(h, 1 + rnd() % 32);
            break;
        case 5:
            if (zstep_phase(h) == 2) {
                zstep_cycle_end(h);
                cycles++;
                VERIFY(h);
            }
            break;
        default:
            break;
        }
        if (getenv("ZDEBUG")) {
            int f0 = failures;
            VERIFY(h);
            for (int i = 0; i < NROOTS; i++)
                check_graph(h, root[i], root_id[i]);
            if (failures != f0) {
                fprintf(stderr, "first failure at step %d (phase %d)\n", step, zstep_phase(h));
                break;
            }
        }
        if (step % 500 == 0) {
            for (int i = 0; i < NROOTS; i++)
                check_graph(h, root[i], root_id[i]);
        }
    }
    zstep_finish(h);
    VERIFY(h);
    for (int i = 0; i < NROOTS; i++)
        check_graph(h, root[i], root_id[i]);
    mh_drain_events(h);
    CHECK(e.cycles > 0, "no cycle completed");
    env_close(&e);
}

/* ---- with the GC thread ------------------------------------------------- */

/* Whole nanoseconds: comparing tv_sec alone ends a one-second run at the next
 * second boundary, after anything from 0 to 1 s (a run of 3 ms saw no cycle). */
static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct churn {
    env *e;
    int seconds;
    int id;
    uint64_t ops;
} churn;

/* How long a mutator keeps going past its seconds while no cycle has completed. */
#ifndef NO_CYCLE_DEADLINE_S
#define NO_CYCLE_DEADLINE_S 60
#endif

/* Whether a mutator that began at t0 may stop: its seconds are over and the GC thread has completed
 * a cycle meanwhile (what the tests check; on a loaded machine, or under TSan, a second may pass
 * before the first), or so long has passed that a cycle is clearly not coming (the check fails). */
static int mutator_done(churn *c, uint64_t t0)
{
    uint64_t spent = monotonic_ns() - t0;
    if (spent < (uint64_t)c->seconds * 1000000000ull)
        return 0;
    if (spent >= (uint64_t)(c->seconds + NO_CYCLE_DEADLINE_S) * 1000000000ull)
        return 1;
    pthread_mutex_lock(&c->e->lock);
    int cycles = c->e->cycles; /* counted as the mutators' calls deliver the events */
    pthread_mutex_unlock(&c->e->lock);
    return cycles > 0;
}

/* A mutator: a ring of lists whose heads it keeps replacing; checks every
 * object it reaches against the value it wrote. */
static void *churn_thread(void *arg)
{
    churn *c = arg;
    mh_heap *h = c->e->heap;
    enum { N = 64, LEN = 20 };
    mh_handle heads[N];
    uint64_t stamps[N];
    for (int i = 0; i < N; i++) {
        heads[i] = -1;
        stamps[i] = 0;
    }
    uint64_t seed = 1234 + (uint64_t)c->id;
    uint64_t t0 = monotonic_ns();
    for (uint64_t op = 0;; op++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((seed >> 33) % N);
        /* check the list, then rebuild it */
        if (heads[i] >= 0) {
            mh_handle cur = mh_dup(h, heads[i]);
            int len = 0;
            for (;;) {
                uint64_t v = get_id(h, cur);
                CHECK(v == stamps[i] * 100 + (uint64_t)len, "thread %d list %d node %d reads %llu", c->id, i,
                      len, (unsigned long long)v);
                len++;
                if (mh_load_into(h, cur, 0, cur) != 1)
                    break;
            }
            CHECK(len == LEN, "thread %d list %d has %d nodes", c->id, i, len);
            mh_release(h, cur);
            mh_release(h, heads[i]);
        }
        stamps[i] = op;
        mh_handle next = -1;
        for (int k = LEN - 1; k >= 0; k--) {
            mh_handle x = mh_alloc(h, 1, 16 + (uint32_t)(k % 5) * 8);
            if (x < 0) {
                CHECK(0, "thread %d alloc: %s", c->id, mh_last_error_message(h));
                return NULL;
            }
            set_id(h, x, op * 100 + (uint64_t)k);
            if (next >= 0) {
                mh_store(h, x, 0, next);
                mh_release(h, next);
            }
            next = x;
        }
        heads[i] = next;
        c->ops++;
        if ((op & 255) == 0 && mutator_done(c, t0))
            break;
    }
    for (int i = 0; i < N; i++)
        if (heads[i] >= 0)
            mh_release(h, heads[i]);
    return NULL;
}

static void test_threads(int seconds, int nthreads, uint32_t interval_ms)
{
    env e;
    mh_heap *h = env_open(&e, (options){.heap_size = 16 * MiB, .interval_ms = interval_ms});
    if (!h)
        return;
    pthread_t t[8];
    churn c[8];
    for (int i = 0; i < nthreads; i++) {
        c[i] = (churn){&e, seconds, i, 0};
        pthread_create(&t[i], NULL, churn_thread, &c[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    VERIFY(h);
    mh_drain_events(h);
    const mh_stats *s = mh_get_stats(h);
    printf("threads: %d mutators, %d cycles, %llu pauses (max %.3f ms), %llu loads slow, %llu "
           "relocated by mutators, %llu by the GC thread, %d stalls\n", nthreads, e.cycles,
           (unsigned long long)s->pauses, e.max_pause_ns / 1e6, (unsigned long long)s->loads_slow,
           (unsigned long long)s->objects_relocated_by_mutator,
           (unsigned long long)s->objects_relocated_by_gc, e.stalls);
    CHECK(e.cycles > 0, "the GC thread ran no cycle");
    env_close(&e);
}

/* A C mutator on the inline fast path (a mutator record): lists rebuilt with
 * mh_new / mh_put, roots in the shadow stack, walked with mh_get, while the
 * GC thread cycles every millisecond and stops it at its polls. */
static void *inline_thread(void *arg)
{
    churn *c = arg;
    mh_heap *h = c->e->heap;
    enum { N = 32, LEN = 16 };
    mh_mutator *m = mh_mutator_attach(h);
    CHECK(m != NULL, "attach: %s", mh_last_error_message(h));
    if (!m)
        return NULL;
    uint32_t frame = mh_frame(m);
    uint64_t stamps[N] = {0};
    for (int i = 0; i < N; i++)
        mh_push(m, 0);
    uint32_t tmp = mh_push(m, 0);
    uint64_t seed = 99;
    uint64_t t0 = monotonic_ns();
    for (uint64_t op = 1;; op++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t i = (uint32_t)((seed >> 33) % N);
        int len = 0;
        for (mh_ref cur = mh_root(m, i); cur; cur = mh_get(m, cur, 0), len++) {
            uint64_t v;
            memcpy(&v, mh_data(m, cur), 8);
            CHECK(v == stamps[i] * 100 + (uint64_t)len, "inline list %u node %d reads %llu", i, len,
                  (unsigned long long)v);
        }
        CHECK(len == (stamps[i] ? LEN : 0), "inline list %u has %d nodes", i, len);
        mh_set_root(m, tmp, 0);
        for (int k = LEN - 1; k >= 0; k--) {
            mh_ref node = mh_new(m, 1, 16);
            if (!node) {
                CHECK(0, "mh_new: %s", mh_last_error_message(h));
                goto out;
            }
            uint64_t v = op * 100 + (uint64_t)k;
            memcpy(mh_data(m, node), &v, 8);
            mh_put(m, node, 0, mh_root(m, tmp));
            mh_set_root(m, tmp, node);
        }
        mh_set_root(m, i, mh_root(m, tmp));
        stamps[i] = op;
        c->ops++;
        mh_poll(m);
        if ((op & 63) == 0 && mutator_done(c, t0))
            break;
    }
out:
    mh_unwind(m, frame);
    mh_mutator_detach(m);
    return NULL;
}

static void test_inline(int seconds)
{
    env e;
    mh_heap *h = env_open(&e, (options){.heap_size = 16 * MiB, .interval_ms = 1});
    if (!h)
        return;
    pthread_t t[2];
    churn c[2] = {{&e, seconds, 0, 0}, {&e, seconds, 1, 0}};
    pthread_create(&t[0], NULL, inline_thread, &c[0]);
    pthread_create(&t[1], NULL, churn_thread, &c[1]); /* the handle API, meanwhile */
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    VERIFY(h);
    mh_drain_events(h);
    printf("inline: %llu rebuilds inline, %llu with handles, %d cycles\n", (unsigned long long)c[0].ops,
           (unsigned long long)c[1].ops, e.cycles);
    CHECK(e.cycles > 0 && c[0].ops > 0, "cycles %d, inline ops %llu", e.cycles, (unsigned long long)c[0].ops);
    env_close(&e);
}

/* A live set larger than the heap: allocation stalls, then fails cleanly. */
static void test_exhausted(int stepping)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = stepping, .heap_size = 4 * MiB});
    if (!h)
        return;
    mh_handle list = object(h, 1, 0);
    int n = 0;
    for (;; n++) {
        mh_handle x = mh_alloc(h, 1, 1000);
        if (x < 0)
            break;
        mh_store(h, x, 0, list);
        mh_release(h, list);
        list = x;
    }
    CHECK(mh_last_error(h) == MH_E_EXHAUSTED, "error %d: %s", mh_last_error(h), mh_last_error_message(h));
    CHECK(n > 2000, "only %d objects of 1 KiB fit in a 4 MiB heap", n);
    mh_drain_events(h);
    CHECK(e.stalls >= 1, "no allocation stall before failing");
    VERIFY(h);
    /* the heap still works: drop the list, allocate again */
    mh_release(h, list);
    mh_collect(h, 1);
    mh_handle x = mh_alloc(h, 1, 1000);
    CHECK(x >= 0, "alloc after freeing: %s", mh_last_error_message(h));
    env_close(&e);
}

/* Garbage only, far more than the heap: stalls (or cycles) must keep up. */
static void test_churn_garbage(int stepping)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = stepping, .heap_size = 4 * MiB});
    if (!h)
        return;
    mh_handle keep = object(h, 0, 9);
    for (int i = 0; i < 200000; i++) {
        mh_handle x = mh_alloc(h, 1, 100);
        if (x < 0) {
            CHECK(0, "alloc %d: %s", i, mh_last_error_message(h));
            break;
        }
        mh_release(h, x);
    }
    CHECK(get_id(h, keep) == 9, "the kept object");
    VERIFY(h);
    env_close(&e);
}

/* Closing while the GC thread works, with the heap held by mh_lock. */
static void test_close_while_running(void)
{
    for (int round = 0; round < 20; round++) {
        env e;
        mh_heap *h = env_open(&e, (options){.heap_size = 4 * MiB, .interval_ms = 1});
        if (!h)
            return;
        mh_lock(h);
        for (int i = 0; i < 2000 * round; i++) {
            mh_handle x = mh_alloc(h, 1, 64);
            if (x >= 0)
                mh_release(h, x);
        }
        env_close(&e); /* mh_heap_free with the heap held */
    }
}

/* ---- verify-views: only the good colour's view is accessible ------------ */

/* How /proc/self/maps shows [base, base+len): 'o' every byte mapped rw, 'c'
 * every byte mapped ---, 'm' mixed or with holes. Read independently of the
 * collector's own idea of what it protected. */
static char view_state(uint64_t base, uint64_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return '?';
    char line[512];
    uint64_t covered = 0;
    int open = 0, closed = 0, other = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3 || hi <= base || lo >= base + len)
            continue;
        uint64_t a = lo < base ? base : lo, b = hi > base + len ? base + len : hi;
        covered += b - a;
        if (strncmp(perms, "rw", 2) == 0)
            open++;
        else if (strncmp(perms, "---", 3) == 0)
            closed++;
        else
            other++;
    }
    fclose(f);
    if (covered != len || other || (open && closed))
        return 'm';
    return open ? 'o' : 'c';
}

/* Whether 8 bytes at addr can be read, asked of the kernel (write() from the
 * address fails with EFAULT if it cannot), so the test never faults itself. */
static int readable(uint64_t addr)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    ssize_t n = write(fds[1], (void *)(uintptr_t)addr, 8);
    close(fds[0]);
    close(fds[1]);
    return n == 8;
}

static const char *const color_name[3] = {"Marked0", "Marked1", "Remapped"};

static void check_views(env *e, mh_heap *h, const char *when)
{
    int good = mh_good_color(h);
    for (int c = 0; c < 3; c++) {
        char want = c == good ? 'o' : 'c', got = view_state(e->base[c], e->heap_size);
        CHECK(got == want, "%s: the %s view is '%c' in /proc/self/maps, not '%c' (good: %s)", when,
              color_name[c], got, want, color_name[good]);
    }
}

/* Each flip opens the new good view and closes the old; granules committed
 * during a cycle (the embedder's commit opens them in every view) are closed
 * in the bad views again; a reference kept raw across a flip cannot be read
 * through, while the same reference can be without verify-views. */
static void test_verify_views(void)
{
    if (views_layout != MH_VIEWS_MULTI)
        return; /* one view: no other to close (mh_heap_new refuses verify_views) */
    for (int verify = 1; verify >= 0; verify--) {
        env e;
        mh_heap *h = env_open(&e, (options){.stepping = 1, .verify_views = verify ? 1 : -1});
        if (!h)
            return;
        if (verify)
            check_views(&e, h, "at creation");
        mh_handle head = object(h, 1, 0), cur = mh_dup(h, head);
        for (uint64_t i = 1; i < 300; i++) {
            mh_handle next = object(h, 1, i);
            mh_store(h, cur, 0, next);
            mh_release(h, cur);
            cur = next;
            garbage(h, 3);
        }
        mh_release(h, cur);
        mh_ref raw = mh_handle_ref(h, head); /* kept across the flip: no barrier will fix it */
        uint64_t committed = mh_get_stats(h)->regions_committed;
        zstep_mark_start(h, MH_CAUSE_EXPLICIT);
        if (verify)
            check_views(&e, h, "after Pause Mark Start");
        CHECK(readable(raw) == !verify, "a Remapped reference kept across Mark Start is %s with "
              "verify_views %d", readable(raw) ? "readable" : "not readable", verify);
        CHECK(readable(mh_handle_ref(h, head)) == 1, "the recoloured root cannot be read");
        garbage(h, 20000); /* commits granules while the bad views are closed */
        CHECK(mh_get_stats(h)->regions_committed > committed, "nothing was committed during marking");
        if (verify)
            check_views(&e, h, "after commits during marking");
        zstep_mark(h, 0);
        CHECK(zstep_mark_end(h) == 1, "mark end");
        zstep_select(h);
        zstep_relocate_start(h);
        if (verify)
            check_views(&e, h, "after Pause Relocate Start");
        zstep_finish(h);
        VERIFY(h);
        run_cycle(h);
        VERIFY(h);
        if (verify)
            check_views(&e, h, "after two cycles");
        const mh_stats *s = mh_get_stats(h);
        CHECK(verify ? s->view_protects >= 3 + 4 * 2 : s->view_protects == 0,
              "%llu protect calls with verify_views %d", (unsigned long long)s->view_protects, verify);
        CHECK(s->view_protect_failures == 0, "%llu failed", (unsigned long long)s->view_protect_failures);
        mh_release(h, head);
        env_close(&e);
    }
}

/* A protect hook that fails to close a view: counted, reported by
 * mh_verify, and the collector carries on (it walks through the open view). */
static int fail_closing(void *addr, size_t len, int prot)
{
    return prot == MH_PROT_NONE ? -1 : mprotect(addr, len, prot);
}

static void test_verify_views_failing_hook(void)
{
    if (views_layout != MH_VIEWS_MULTI)
        return;
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1, .verify_views = 1, .protect = fail_closing});
    if (!h)
        return;
    mh_handle x = object(h, 1, 7);
    run_cycle(h);
    CHECK(get_id(h, x) == 7, "the object survived");
    CHECK(mh_verify(h) > 0 && strstr(mh_last_error_message(h), "protect hook failed"),
          "verify: %s", mh_last_error_message(h));
    CHECK(mh_get_stats(h)->view_protect_failures > 0, "no failure counted");
    mh_release(h, x);
    env_close(&e);
}

static void test_config(void)
{
    env e;
    memset(&e, 0, sizeof e);
    mh_config c;
    memset(&c, 0, sizeof c);
    c.heap_size = 8 * MiB;
    c.region_size = 64 * KiB;
    c.max_handles = 16;
    c.collector = MH_COLLECTOR_ZGC;
    c.view_base[0] = 1ull << 28;
    char err[512];
    mh_heap *h = mh_heap_new(&c, err, sizeof err);
    CHECK(h == NULL && strstr(err, "coloured references"), "zgc without colours: %s", err);
    c.colored = MH_VIEWS_LOW_BITS;
    c.view_base[0] = 3ull << 28;
    h = mh_heap_new(&c, err, sizeof err);
    CHECK(h == NULL && strstr(err, "single bit"), "low-bits view not at a single bit: %s", err);
    c.colored = MH_VIEWS_ONE;
    c.collector = 7;
    h = mh_heap_new(&c, err, sizeof err);
    CHECK(h == NULL && strstr(err, "not a collector"), "collector 7: %s", err);
}

/*
 * The relocation reserve comes back. The GC thread never commits, so it can
 * refill the reserve only from committed free granules; when its target pages
 * took the reserve and no page was emptied (every page of the set kept an
 * object that found no target), and the only free granules were uncommitted,
 * the reserve stayed empty for good: Select could choose nothing ever after,
 * and a heap with 18 % live filled up ("heap exhausted"; a randomized
 * three-thread Python program, before Relocate Start fitted the roots to the
 * targets, see roots-fill-the-set). A mutator now refills it before it takes
 * a page, committing on its own thread. Here the GC's copies are made round
 * robin over the set's pages (zstep_relocate_object), which fills the targets
 * before any page is emptied, as those roots did.
 */
static int reserved_granules(mh_heap *h)
{
    int n = 0;
    uint32_t end = mh_regions_in_use(h);
    for (uint32_t g = 0; g < end; g++) {
        uint64_t used;
        if (mh_region_info(h, g, &used) == 12 /* ZREGION_RESERVED */)
            n++;
    }
    return n;
}

static void test_reserve_comes_back(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1, .heap_size = 16 * MiB});
    if (!h)
        return;
    int reserve0 = reserved_granules(h);
    CHECK(reserve0 >= 2, "a new heap has %d reserved granules", reserve0);
    /* pages about 40 % live: objects of 7 KiB held by one array's slots, garbage between them */
    enum { P = 20, K = 6 };
    mh_handle holder = mh_alloc(h, P * K, 8);
    CHECK(holder >= 0, "alloc: %s", mh_last_error_message(h));
    for (int p = 0; p < P; p++)
        for (int k = 0; k < K; k++) {
            mh_handle x = mh_alloc(h, 0, 7 * KiB);
            CHECK(x >= 0, "alloc: %s", mh_last_error_message(h));
            mh_store(h, holder, (uint32_t)(p * K + k), x);
            mh_release(h, x);
            garbage(h, 150);
        }
    zstep_mark_start(h, MH_CAUSE_EXPLICIT);
    mark_all(h);
    CHECK(zstep_mark_end(h), "marking did not end");
    zstep_select(h);
    zstep_relocate_start(h);
    for (int k = 0; k < K; k++)
        for (int p = 0; p < P; p++)
            zstep_relocate_object(h, mh_ref_offset(h, mh_peek_slot(h, holder, (uint32_t)(p * K + k))));
    zstep_finish(h);
    mh_drain_events(h);
    CHECK(e.last.relocated_pages[0] > 0, "the first cycle relocated nothing");
    VERIFY(h);
    /* a mutator's allocation of new pages (garbage) refills the reserve */
    garbage(h, 3 * PAGE_OF_GARBAGE);
    int reserve1 = reserved_granules(h);
    CHECK(reserve1 >= reserve0, "the reserve was not refilled: %d reserved granules, %d at the start",
          reserve1, reserve0);
    /* and the next cycle can relocate again: drop half the objects, so the pages are sparser */
    for (uint32_t i = 0; i < P * K; i += 2)
        mh_store(h, holder, i, MH_NULL_HANDLE);
    run_cycle(h);
    mh_drain_events(h);
    CHECK(e.last.relocated_pages[0] > 0, "the next cycle relocated nothing (%d reserved granules)",
          reserved_granules(h));
    VERIFY(h);
    for (uint32_t i = 1; i < P * K; i += 2) {
        mh_handle x = load(h, holder, i);
        CHECK(x >= 0 && mh_nbytes(h, x) == 7 * KiB, "object %u lost", i);
        mh_release(h, x);
    }
    env_close(&e);
}

/*
 * Roots into the whole relocation set. Every object a Python program holds a
 * Ref to is a root (a handle), so a set whose live objects are all roots'
 * is common: Pause Relocate Start would copy all of them, before any page is
 * emptied. Only as many as fit the GC thread's target pages (the reserve)
 * could be copied; every other one stayed where it was, every page kept one,
 * and the cycle freed nothing (a 16M heap half live ran out: "heap
 * exhausted" after its first stall). Relocate Start now keeps in the set only
 * the pages whose roots' objects fit in the targets it has, with one target
 * page to spare for the rest of the set (the others stay where they are this
 * cycle), so the set it keeps is relocated and its pages freed.
 */
static void test_roots_fill_the_set(void)
{
    env e;
    mh_heap *h = env_open(&e, (options){.stepping = 1, .heap_size = 16 * MiB});
    if (!h)
        return;
    /* about 40 pages half live, each live object held by a handle (round
     * robin over the pages, as Python's Refs fall), the rest garbage */
    enum { N = 40 * 32 };
    mh_handle first[N], roots[N];
    for (int i = 0; i < N; i++) {
        first[i] = mh_alloc(h, 0, 1000);
        CHECK(first[i] >= 0, "alloc: %s", mh_last_error_message(h));
        garbage(h, 14);
    }
    for (int k = 0; k < 32; k++)
        for (int p = 0; p < 40; p++)
            roots[k * 40 + p] = mh_dup(h, first[p * 32 + k]);
    for (int i = 0; i < N; i++)
        mh_release(h, first[i]);
    uint64_t used0 = mh_used(h);
    run_cycle(h);
    mh_drain_events(h);
    CHECK(e.last.relocated_pages[0] > 0, "the cycle chose no relocation set");
    CHECK(e.last.used_after < used0, "the cycle freed nothing: %llu bytes in pages before, %llu after",
          (unsigned long long)used0, (unsigned long long)e.last.used_after);
    VERIFY(h);
    for (int i = 0; i < N; i++)
        CHECK(mh_nbytes(h, roots[i]) == 1000, "root %d lost its object", i);
    env_close(&e);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    const char *views = getenv("MINIHEAP_TEST_VIEWS");
    if (views && strcmp(views, "low-bits") == 0)
        views_layout = MH_VIEWS_LOW_BITS;
    else if (views && strcmp(views, "multi") != 0) {
        fprintf(stderr, "MINIHEAP_TEST_VIEWS=%s: use multi (three views) or low-bits (one view)\n", views);
        return 2;
    }
#define RUN(name, call)                                \
    if (!only || strcmp(only, name) == 0) {            \
        int before = failures;                         \
        call;                                          \
        printf("%s: %s\n", name, failures == before ? "ok" : "FAILED"); \
    }
    RUN("config", test_config());
    RUN("verify-views", test_verify_views());
    RUN("verify-views-failing-hook", test_verify_views_failing_hook());
    RUN("basics", test_basics());
    RUN("pages", test_pages());
    RUN("mark-barrier", test_mark_barrier());
    RUN("relocate-barrier", test_relocate_barrier());
    RUN("forwarding-race", test_forwarding_race());
    RUN("stale-store", test_stale_store());
    RUN("remap-after-gc-copy", test_remap_after_gc_copy());
    RUN("root-changes", test_root_changes());
    RUN("heal", test_heal());
    RUN("pauses-allocate-nothing", test_pauses_allocate_nothing());
    RUN("reserve-comes-back", test_reserve_comes_back());
    RUN("roots-fill-the-set", test_roots_fill_the_set());
    RUN("exhausted-stepping", test_exhausted(1));
    RUN("churn-stepping", test_churn_garbage(1));
    if (!only || strcmp(only, "stepping-random") == 0) {
        int steps = argc > 3 ? atoi(argv[3]) : 20000;
        uint64_t seed0 = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
        for (uint64_t seed = seed0; seed < seed0 + 3; seed++)
            test_stepping_random(seed, steps);
        printf("stepping-random: %s\n", failures ? "FAILED" : "ok");
    }
    RUN("exhausted", test_exhausted(0));
    RUN("churn", test_churn_garbage(0));
    RUN("close", test_close_while_running());
    RUN("inline", test_inline(argc > 2 ? atoi(argv[2]) : 2));
    if (!only || strcmp(only, "threads") == 0) {
        int seconds = argc > 2 ? atoi(argv[2]) : 2;
        test_threads(seconds, 1, 20);
        test_threads(seconds, 2, 5);
        printf("threads: %s\n", failures ? "FAILED" : "ok");
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
