/*
 * test_inline.c: tests of the inline fast path for C mutators (miniheap-inline.h): the mutator
 * record, mh_new / mh_get / mh_put, the shadow stack, the slow paths, and how the record and the
 * handle API meet on one thread.
 *
 * The heap is mapped here as in test_core.c: single view on aligned_alloc memory, coloured on a
 * memfd mapped at three view bases. Every collection is verified from the on_gc listener.
 *
 * Modes:
 *   (none)          every test, both layouts
 *   broken-cards    built with -DMH_TEST_NO_INLINE_CARD_MARK (mh_put without its card mark): the
 *                   missing mark must be caught (by verify, and by a lost object after a young GC)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "miniheap-inline.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#include "check.h"

/* ---- the embedder ------------------------------------------------------- */

typedef struct env {
    int colored;
    uint64_t size;
    uint64_t base[3];
    void *mem;
    int fd;
    mh_heap *heap;
    int verify_failures, young, full;
    mh_gc_event last;
} env;

static void on_gc(void *ctx, const mh_gc_event *ev)
{
    env *e = ctx;
    e->last = *ev;
    if (ev->kind == MH_GC_FULL)
        e->full++;
    else
        e->young++;
    if (mh_verify(e->heap) != 0) {
        e->verify_failures++;
        fprintf(stderr, "verify after GC(%u): %s\n", ev->id, mh_last_error_message(e->heap));
    }
}

static int map_colored(env *e, const uint64_t bases[3])
{
    for (int i = 0; i < 3; i++) {
        void *want = (void *)(uintptr_t)bases[i];
        void *p = mmap(want, e->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, e->fd, 0);
        if (p != want) {
            if (p != MAP_FAILED)
                munmap(p, e->size);
            for (int j = 0; j < i; j++)
                munmap((void *)(uintptr_t)bases[j], e->size);
            return -1;
        }
        e->base[i] = bases[i];
    }
    return 0;
}

static mh_heap *env_open(env *e, int colored, uint64_t size, uint32_t threshold)
{
    memset(e, 0, sizeof *e);
    e->colored = colored;
    e->size = size;
    if (colored) {
        static const uint64_t zgc[3] = {1ull << 42, 1ull << 43, 1ull << 44};
        static const uint64_t low[3] = {1ull << 28, 1ull << 29, 1ull << 30};
        e->fd = memfd_create("miniheap-inline-test", MFD_CLOEXEC);
        if (e->fd < 0 || ftruncate(e->fd, (off_t)size) != 0 || (map_colored(e, zgc) && map_colored(e, low))) {
            CHECK(0, "cannot map the coloured views");
            return NULL;
        }
    } else {
        e->mem = aligned_alloc(1 * MiB, size);
        memset(e->mem, 0xdb, size);
        e->base[0] = (uint64_t)(uintptr_t)e->mem;
    }
    mh_config c;
    memset(&c, 0, sizeof c);
    c.heap_size = size;
    c.region_size = 64 * KiB;
    c.young_size = 16 * c.region_size;
    c.survivor_ratio = 6;
    c.tenuring_threshold = threshold;
    c.colored = colored;
    c.max_handles = 1 << 12;
    for (int i = 0; i < 3; i++)
        c.view_base[i] = e->base[i];
    c.on_gc = on_gc;
    c.ctx = e;
    char err[512];
    e->heap = mh_heap_new(&c, err, sizeof err);
    CHECK(e->heap != NULL, "mh_heap_new: %s", err);
    return e->heap;
}

static void env_close(env *e)
{
    CHECK(e->verify_failures == 0, "%d verifications after collections failed", e->verify_failures);
    mh_heap_free(e->heap);
    if (e->colored) {
        for (int i = 0; i < 3; i++)
            munmap((void *)(uintptr_t)e->base[i], e->size);
        close(e->fd);
    } else {
        free(e->mem);
    }
}

/* ---- objects with identities -------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* payload: the id, then bytes derived from it */
static mh_ref new_obj(mh_mutator *m, uint32_t nrefs, uint32_t nbytes, uint64_t id)
{
    if (nbytes < 8)
        nbytes = 8;
    mh_ref x = mh_new(m, nrefs, nbytes);
    if (!x)
        return 0;
    uint8_t *p = mh_data(m, x);
    memcpy(p, &id, 8);
    for (uint32_t i = 8; i < nbytes; i++)
        p[i] = (uint8_t)(id * 31 + i);
    return x;
}

static uint64_t id_of(mh_mutator *m, mh_ref x)
{
    uint64_t id;
    memcpy(&id, mh_data(m, x), 8);
    return id;
}

static int intact(mh_mutator *m, mh_ref x)
{
    uint64_t id = id_of(m, x);
    uint8_t *p = mh_data(m, x);
    for (uint32_t i = 8, n = mh_nbytes_of(m, x); i < n; i++)
        if (p[i] != (uint8_t)(id * 31 + i))
            return 0;
    return 1;
}

/* ---- tests --------------------------------------------------------------- */

static void test_basics(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored, 4 * MiB, 3);
    if (!h)
        return;
    mh_mutator *m = mh_mutator_attach(h);
    CHECK(m != NULL, "attach: %s", mh_last_error_message(h));
    if (!m)
        return;
    CHECK(m->limit != 0 && m->top < m->limit, "the fast path is on: a buffer to bump");
    uint64_t used0 = mh_used(h);
    mh_ref a = new_obj(m, 2, 24, 1);
    mh_ref b = new_obj(m, 0, 8, 2);
    CHECK(a && b, "mh_new");
    CHECK(mh_used(h) == used0 + (8 + 16 + 24) + (8 + 8), "one header word: used %" PRIu64, mh_used(h) - used0);
    CHECK(mh_nrefs_of(m, a) == 2 && mh_nbytes_of(m, a) == 24, "shape");
    CHECK(mh_get(m, a, 0) == 0 && mh_get(m, a, 1) == 0, "slots start null");
    mh_put(m, a, 1, b);
    CHECK(mh_get(m, a, 1) == b, "store then load");
    if (colored)
        CHECK(mh_ref_color(h, a) == MH_COLOR_REMAPPED, "a new reference has the good colour");
    /* roots survive young and full collections; the records's buffer follows eden */
    uint32_t ra = mh_push(m, a);
    CHECK(ra == 0 && mh_frame(m) == 1, "push");
    CHECK(mh_collect(h, 0) == 0, "young while attached: %s", mh_last_error_message(h));
    mh_ref a2 = mh_root(m, ra);
    CHECK(a2 != a && id_of(m, a2) == 1 && intact(m, a2), "the root was moved and updated");
    mh_ref b2 = mh_get(m, a2, 1);
    CHECK(b2 && id_of(m, b2) == 2 && intact(m, b2), "its child came along");
    CHECK(mh_eden_used(h) == 0, "eden is empty after a young collection");
    mh_ref c = new_obj(m, 1, 100, 3);
    CHECK(c && mh_eden_used(h) == 8 + 8 + 104, "allocation starts eden again: %" PRIu64, mh_eden_used(h));
    mh_put(m, c, 0, mh_root(m, ra));
    mh_set_root(m, ra, c);
    CHECK(mh_collect(h, 1) == 0, "full: %s", mh_last_error_message(h));
    c = mh_root(m, ra);
    CHECK(id_of(m, c) == 3 && id_of(m, mh_get(m, c, 0)) == 1 && id_of(m, mh_get(m, mh_get(m, c, 0), 1)) == 2,
          "the graph survives a full collection");
    VERIFY(h);
    /* handle API calls from the attached thread see the record's allocations and vice versa */
    uint64_t before = mh_eden_used(h);
    mh_ref d = new_obj(m, 0, 40, 4);
    CHECK(mh_eden_used(h) == before + 48, "the heap sees inline allocations: %" PRIu64, mh_eden_used(h) - before);
    mh_handle x = mh_alloc(h, 0, 8);
    CHECK(x >= 0 && mh_eden_used(h) == before + 48 + 16, "and handle allocations");
    mh_ref after = mh_new(m, 0, 8);
    CHECK(after == mh_handle_ref(h, x) + 16, "the record's buffer continues after the handle's object");
    (void)d;
    mh_handle hd = mh_mutator_handle(m, c);
    CHECK(hd >= 0 && mh_handle_ref(h, hd) == c, "a handle for a raw reference");
    mh_release(h, x);
    /* allocated bytes come from the bump pointer */
    const mh_stats *s = mh_get_stats(h);
    uint64_t allocated = s->bytes_allocated;
    for (int i = 0; i < 1000; i++)
        mh_new(m, 1, 16);
    CHECK(mh_get_stats(h)->bytes_allocated == allocated + 1000 * 32, "bytes allocated %" PRIu64,
          mh_get_stats(h)->bytes_allocated - allocated);
    /* a large object takes the slow path, a humongous one too */
    mh_ref big = mh_new(m, 0, 8000);
    mh_ref huge = mh_new(m, 1, 40000);
    CHECK(big && huge && mh_nbytes_of(m, huge) == 40000 && mh_get(m, huge, 0) == 0, "large objects");
    CHECK(mh_new(m, 0, 100u << 20) == 0 && mh_last_error(h) == MH_E_TOO_LARGE, "too large: %s",
          mh_last_error_message(h));
    mh_unwind(m, 0);
    mh_mutator_detach(m);
    CHECK(mh_eden_used(h) > 0, "the heap keeps the allocations after detach");
    mh_release(h, hd);
    VERIFY(h);
    env_close(&e);
}

/* A random graph through the inline API: roots in the shadow stack, a model of every edge, many
 * collections (young, full, with promotion failures under pressure), checked all along. */
#define MAXREFS 4
static void test_random_graph(int colored, uint64_t seed, int steps, uint64_t heap_size)
{
    env e;
    mh_heap *h = env_open(&e, colored, heap_size, 2);
    if (!h)
        return;
    mh_mutator *m = mh_mutator_attach(h);
    if (!m)
        return;
    rng = seed;
    enum { K = 96 };
    uint32_t cap = (uint32_t)steps + 16;
    uint32_t *nrefs = calloc(cap, sizeof *nrefs);
    uint64_t *child = calloc((size_t)cap * MAXREFS, sizeof *child);
    uint64_t next = 1;
    for (int i = 0; i < K; i++)
        mh_push(m, 0);
    int bad = 0, exhausted = 0;
    for (int step = 0; step < steps; step++) {
        uint32_t k = (uint32_t)(rnd() % K);
        unsigned op = (unsigned)(rnd() % 100);
        if (op < 45) {
            uint32_t n = (uint32_t)(rnd() % (MAXREFS + 1));
            uint32_t nbytes = 8 + (uint32_t)(rnd() % 200);
            if (rnd() % 200 == 0)
                nbytes = 40 * 1024; /* humongous now and then */
            mh_ref x = new_obj(m, n, nbytes, next);
            if (!x) {
                CHECK(mh_last_error(h) == MH_E_EXHAUSTED, "mh_new: %s", mh_last_error_message(h));
                exhausted++;
                for (uint32_t i = 0; i < K; i += 2)
                    mh_set_root(m, i, 0);
                continue;
            }
            nrefs[next] = n;
            for (uint32_t s = 0; s < n; s++)
                child[next * MAXREFS + s] = 0;
            next++;
            mh_set_root(m, k, x);
        } else if (op < 75) {
            mh_ref x = mh_root(m, k), y = mh_root(m, (uint32_t)(rnd() % K));
            if (!x || mh_nrefs_of(m, x) == 0)
                continue;
            uint64_t id = id_of(m, x);
            uint32_t s = (uint32_t)(rnd() % mh_nrefs_of(m, x));
            mh_put(m, x, s, y);
            child[id * MAXREFS + s] = y ? id_of(m, y) : 0;
        } else if (op < 95) {
            mh_ref x = mh_root(m, k);
            if (!x || mh_nrefs_of(m, x) == 0)
                continue;
            uint64_t id = id_of(m, x);
            uint32_t s = (uint32_t)(rnd() % mh_nrefs_of(m, x));
            mh_ref y = mh_get(m, x, s);
            uint64_t got = y ? id_of(m, y) : 0;
            if (got != child[id * MAXREFS + s] || (y && !intact(m, y)))
                bad++;
            mh_set_root(m, (uint32_t)(rnd() % K), y);
        } else if (op < 98) {
            mh_set_root(m, k, 0);
        } else if (op < 99) {
            CHECK(mh_collect(h, 0) == 0 || mh_last_error(h) == MH_E_EXHAUSTED, "young: %s",
                  mh_last_error_message(h));
        } else {
            CHECK(mh_collect(h, 1) == 0 || mh_last_error(h) == MH_E_EXHAUSTED, "full: %s",
                  mh_last_error_message(h));
        }
    }
    /* every root's reachable graph against the model */
    uint64_t seen = 0;
    for (uint32_t r = 0; r < K; r++) {
        mh_ref x = mh_root(m, r);
        for (int depth = 0; x && depth < 64; depth++) {
            uint64_t id = id_of(m, x);
            if (!intact(m, x) || mh_nrefs_of(m, x) != nrefs[id])
                bad++;
            seen++;
            uint32_t n = mh_nrefs_of(m, x);
            if (n == 0)
                break;
            uint32_t s = (uint32_t)(rnd() % n);
            mh_ref y = mh_get(m, x, s);
            if ((y ? id_of(m, y) : 0) != child[id * MAXREFS + s])
                bad++;
            x = y;
        }
    }
    CHECK(bad == 0, "%d objects or edges differ from the model (%" PRIu64 " checked)", bad, seen);
    CHECK(e.young + e.full > 10, "collections ran: %d young, %d full", e.young, e.full);
    printf("  inline random graph (colored %d, seed %" PRIu64 ", heap %" PRIu64 " KiB): %d steps, %d young, "
           "%d full, %d exhausted\n", colored, seed, heap_size >> 10, steps, e.young, e.full, exhausted);
    VERIFY(h);
    mh_mutator_detach(m);
    free(nrefs);
    free(child);
    env_close(&e);
}

/* An old object pointing to a young one, known only through the card mh_put marked. Returns 1 if
 * the reference survived (or, with expect_broken, if the missing mark was caught). */
static int test_cards(int colored, int expect_broken)
{
    env e;
    mh_heap *h = env_open(&e, colored, 4 * MiB, 0); /* threshold 0: promoted at once */
    if (!h)
        return 0;
    mh_mutator *m = mh_mutator_attach(h);
    uint32_t old = mh_push(m, new_obj(m, 2, 8, 1));
    mh_collect(h, 0);
    CHECK(mh_root(m, old) && mh_ref_offset(h, mh_root(m, old)) >= 16 * 64 * KiB, "the holder is old");
    mh_put(m, mh_root(m, old), 1, new_obj(m, 0, 64, 2)); /* young, reachable only from old */
    int problems = mh_verify(h);
    int caught_by_verify = problems > 0;
    if (!expect_broken)
        CHECK(problems == 0, "verify: %s", mh_last_error_message(h));
    e.verify_failures = 0;
    mh_collect(h, 0);
    for (int i = 0; i < 3000; i++) /* reuse eden, where the young object was */
        new_obj(m, 0, 200, 99);
    mh_ref y = mh_get(m, mh_root(m, old), 1);
    int lost = !y || mh_ref_offset(h, y) >= 4 * MiB || id_of(m, y) != 2 || !intact(m, y);
    mh_mutator_detach(m);
    if (expect_broken) {
        fprintf(stderr, "broken inline cards: verify %s, object %s\n", caught_by_verify ? "caught it" : "missed it",
                lost ? "lost" : "intact");
        e.verify_failures = 0; /* expected here */
        env_close(&e);
        return caught_by_verify && lost;
    }
    CHECK(!lost, "old-to-young reference through the inline card mark");
    env_close(&e);
    return !lost;
}

/* Misuse: a second record on one thread, a record used by another thread, calls on a freed heap. */
typedef struct probe {
    mh_mutator *m;
    mh_heap *h;
    mh_ref got;
    int done;
    mh_handle alloc;
} probe;

static void *other_thread_uses_record(void *arg)
{
    probe *p = arg;
    p->got = mh_new_slow(p->m, 0, 8); /* the slow path checks the thread */
    p->done = 1;
    return NULL;
}

static void *other_thread_allocates(void *arg)
{
    probe *p = arg;
    p->alloc = mh_alloc(p->h, 0, 8); /* waits until the record is detached */
    __atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_misuse(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored, 4 * MiB, 3);
    if (!h)
        return;
    CHECK(mh_mutator_attach(NULL) == NULL, "no heap, no record");
    mh_mutator *m = mh_mutator_attach(h);
    CHECK(mh_mutator_attach(h) == NULL && mh_last_error(h) == MH_E_BAD_ARGUMENT &&
          strstr(mh_last_error_message(h), "already"), "a second record on one thread: %s",
          mh_last_error_message(h));
    probe p = {.m = m, .h = h};
    pthread_t t;
    pthread_create(&t, NULL, other_thread_uses_record, &p);
    pthread_join(t, NULL);
    CHECK(p.done && p.got == 0, "another thread's slow path is refused");
    /* the record holds the heap: another thread's call waits for the detach */
    probe q = {.h = h};
    pthread_create(&t, NULL, other_thread_allocates, &q);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK(__atomic_load_n(&q.done, __ATOMIC_SEQ_CST) == 0, "another thread entered while a record was attached");
    mh_ref x = mh_new(m, 0, 8);
    CHECK(x != 0, "the record works meanwhile");
    mh_mutator_detach(m);
    pthread_join(t, NULL);
    CHECK(q.done && q.alloc >= 0, "the waiting thread ran after the detach");
    mh_unlock(h); /* no hold is left: mh_unlock is refused */
    CHECK(mh_last_error(h) == MH_E_BAD_ARGUMENT, "no hold left after detach");
    /* records still attached when the heap is freed go with it (ASan would see a leak) */
    mh_mutator *left = mh_mutator_attach(h);
    CHECK(left != NULL, "attach again");
    mh_new(left, 1, 8);
    env_close(&e);
}

/* A core built with AddressSanitizer keeps records whose inline code was not (flags 0) on the slow
 * path: limit 0. Everything must still work. */
static void test_forced_slow_path(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored, 4 * MiB, 3);
    if (!h)
        return;
    mh_mutator *m = mh_mutator_attach_flags(h, MH_INLINE_SANITIZED ? 0 : MH_ATTACH_SANITIZED);
#if defined(__SANITIZE_ADDRESS__)
    CHECK(m->limit == 0, "a sanitized core keeps an unsanitized record on the slow path");
#else
    CHECK(m->limit != 0, "an unsanitized core lets the record bump");
#endif
    uint32_t r = mh_push(m, 0);
    for (int i = 0; i < 30000; i++) {
        mh_ref x = new_obj(m, 1, 24, (uint64_t)i);
        mh_put(m, x, 0, mh_root(m, r));
        mh_set_root(m, r, x);
        if (i % 1000 == 999)
            mh_set_root(m, r, 0);
        mh_poll(m);
    }
    CHECK(e.young > 0, "collections ran");
    mh_mutator_detach(m);
    env_close(&e);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "broken-cards") == 0) {
        int ok = test_cards(0, 1);
        printf("broken-cards: %s\n", ok ? "the missing inline card mark was caught" : "NOT CAUGHT");
        return ok ? 0 : 1;
    }
    int steps = argc > 1 ? atoi(argv[1]) : 100000;
    /* the serial collector has one view (zgc's inline path: test_zgc.c, "inline") */
    {
        int colored = 0;
        test_basics(colored);
        test_cards(colored, 0);
        test_misuse(colored);
        test_forced_slow_path(colored);
        test_random_graph(colored, 1, steps, 8 * MiB);
        test_random_graph(colored, 42, steps, 3 * MiB); /* pressure: promotion failures, exhaustion */
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
