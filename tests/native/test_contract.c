/*
 * test_contract.c: the callback and teardown contract of miniheap.h, under
 * AddressSanitizer: a callback that re-enters, releases, interrupts or closes
 * the heap; threads inside or waiting for a call while another closes it; a
 * holder (mh_lock) that closes; the collector's stop hook.
 *
 * The embedder here is the simplest one: the heap is aligned_alloc memory in
 * a single view, and commit/uncommit only run the test's actions.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* for the stop hook, which a collector sets */
#include "collector.h"
#include "safepoint.h" /* heap_event_post: an event waiting, as zgc's GC thread leaves one */
#include "miniheap-inline.h"

#include "check.h"

typedef struct env {
    void *mem;
    mh_heap *heap;
    /* what the callbacks do */
    int on_gc_reenter, on_gc_close;
    mh_handle release_in_commit;
    int interrupt_in_commit;
    /* what they saw */
    int listener_calls, commit_calls, listener_ok;
} env;

static int cb_commit(void *ctx, uint64_t off, uint64_t len)
{
    env *e = ctx;
    e->commit_calls++;
    if (e->release_in_commit >= 0) {
        CHECK(mh_release(e->heap, e->release_in_commit) == 0, "release in commit: %s",
              mh_last_error_message(e->heap));
        e->release_in_commit = -1;
    }
    if (e->interrupt_in_commit) {
        e->interrupt_in_commit = 0;
        mh_interrupt(e->heap);
    }
    return 0;
}

static int cb_uncommit(void *ctx, uint64_t off, uint64_t len) { return 0; }

static void cb_on_gc(void *ctx, const mh_gc_event *ev)
{
    env *e = ctx;
    e->listener_calls++;
    if (!e->on_gc_reenter)
        return;
    uint32_t id = ev->id;
    mh_heap *h = e->heap;
    /* read-only calls work */
    int ok = mh_verify(h) == 0;
    CHECK(ok, "mh_verify in on_gc: %s", mh_last_error_message(h));
    CHECK(mh_nrefs(h, 0) == 2, "mh_nrefs in on_gc: %s", mh_last_error_message(h));
    uint8_t buf[4];
    CHECK(mh_read_payload(h, 0, 0, buf, 4) == 0, "read in on_gc: %s", mh_last_error_message(h));
    /* anything that changes the heap is refused, with a clear error */
    CHECK(mh_collect(h, 1) == MH_ERROR && mh_last_error(h) == MH_E_BUSY, "nested collection");
    CHECK(strstr(mh_last_error_message(h), "on_gc") != NULL, "message: %s", mh_last_error_message(h));
    CHECK(mh_alloc(h, 0, 8) == MH_ERROR && mh_last_error(h) == MH_E_BUSY, "alloc in on_gc");
    CHECK(mh_store(h, 0, 0, MH_NULL_HANDLE) == MH_ERROR, "store in on_gc");
    CHECK(mh_write_payload(h, 0, 0, buf, 4) == MH_ERROR, "write in on_gc");
    /* the event record is intact */
    CHECK(ev->id == id && ev->kind == MH_GC_FULL, "event overwritten: id %u kind %d", ev->id, ev->kind);
    e->listener_ok = ok;
    if (e->on_gc_close)
        mh_heap_free(h); /* deferred: the heap closes when mh_collect returns */
}

static mh_heap *make_heap_with(env *e, uint64_t heap_size, int keep_committed);
static mh_heap *make_heap(env *e, uint64_t heap_size) { return make_heap_with(e, heap_size, 0); }

static mh_heap *make_heap_with(env *e, uint64_t heap_size, int keep_committed)
{
    memset(e, 0, sizeof *e);
    e->release_in_commit = -1;
    e->mem = aligned_alloc(256 * 1024, heap_size);
    mh_config c = {0};
    c.heap_size = heap_size;
    c.region_size = 256 * 1024;
    c.young_size = 3 * c.region_size;
    c.survivor_ratio = 1;
    c.tenuring_threshold = 0;
    c.max_handles = 4096;
    c.view_base[0] = (uint64_t)(uintptr_t)e->mem;
    c.commit = cb_commit;
    c.uncommit = cb_uncommit;
    c.on_gc = cb_on_gc;
    c.ctx = e;
    c.keep_committed = keep_committed;
    char err[256];
    e->heap = mh_heap_new(&c, err, sizeof err);
    CHECK(e->heap != NULL, "mh_heap_new: %s", err);
    return e->heap;
}

static void drop_heap(env *e)
{
    mh_heap_free(e->heap);
    free(e->mem);
}

static void test_listener(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_handle a = mh_alloc(h, 2, 8);
    CHECK(a == 0, "first handle %d", a);
    e.on_gc_reenter = 1;
    CHECK(mh_collect(h, 1) == 0, "collect: %s", mh_last_error_message(h));
    CHECK(e.listener_calls == 1 && e.listener_ok, "listener calls %d", e.listener_calls);
    CHECK(mh_verify(h) == 0, "verify after: %s", mh_last_error_message(h));
    /* a free inside on_gc closes when the call returns; the call then fails with MH_E_CLOSED */
    e.on_gc_close = 1;
    CHECK(mh_collect(h, 1) == MH_ERROR, "collect that closed");
    CHECK(mh_last_error(h) == MH_E_CLOSED, "error %d: %s", mh_last_error(h), mh_last_error_message(h));
    CHECK(mh_alloc(h, 0, 8) == MH_ERROR && mh_last_error(h) == MH_E_CLOSED, "alloc after close");
    CHECK(mh_release(h, a) == MH_ERROR, "release after close");
    CHECK(mh_heap_close(h) == 0, "close again");
    drop_heap(&e);
}

static void test_release_in_callback(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_handle big = mh_alloc(h, 0, 100000); /* in eden; tenuring 0: promoted by the next young GC */
    mh_handle keep = mh_alloc(h, 0, 100000);
    e.release_in_commit = big; /* dies inside the commit of the promotion region */
    CHECK(mh_collect(h, 0) == 0, "young: %s", mh_last_error_message(h));
    CHECK(e.commit_calls >= 1 && e.release_in_commit == -1, "no commit ran (%d)", e.commit_calls);
    CHECK(!mh_handle_valid(h, big), "the released handle is still valid");
    CHECK(mh_get_stats(h)->handles_live == 1, "handles live %llu",
          (unsigned long long)mh_get_stats(h)->handles_live);
    CHECK(mh_collect(h, 1) == 0, "full: %s", mh_last_error_message(h));
    CHECK(mh_used(h) < 110000, "the released object is still live: %llu bytes used",
          (unsigned long long)mh_used(h));
    /* the released handle went back to the free list: the next allocation reuses it */
    CHECK(mh_alloc(h, 0, 8) == big, "handle not reused");
    CHECK(mh_verify(h) == 0, "verify: %s", mh_last_error_message(h));
    (void)keep;
    drop_heap(&e);
}

static void test_interrupt(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_interrupt(h);
    CHECK(mh_last_error(h) == MH_E_BAD_ARGUMENT, "interrupt outside a callback");
    mh_alloc(h, 0, 100000);
    uint64_t failed_before = mh_get_stats(h)->commit_failures;
    e.interrupt_in_commit = 1;
    mh_handle x = mh_alloc(h, 0, 200000); /* humongous: commits regions */
    CHECK(x == MH_ERROR && mh_last_error(h) == MH_E_INTERRUPTED, "interrupted alloc gave %d (%s)", x,
          mh_last_error_message(h));
    CHECK(mh_get_stats(h)->commit_failures == failed_before + 1, "an interrupted commit is a failure");
    CHECK(mh_get_stats(h)->handles_live == 1, "the interrupted allocation kept a handle");
    CHECK(mh_verify(h) == 0, "verify: %s", mh_last_error_message(h));
    CHECK(mh_alloc(h, 0, 200000) >= 0, "usable after: %s", mh_last_error_message(h));
    drop_heap(&e);
}

/* ---- threads ----------------------------------------------------------- */

typedef struct worker {
    mh_heap *heap;
    pthread_t thread;
    int seed, error, calls;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    mh_heap *h = w->heap;
    mh_handle keep = MH_ERROR;
    for (int i = 0;; i++) {
        int rc = 0;
        mh_handle x = mh_alloc(h, 1, 64);
        if (x < 0) {
            rc = MH_ERROR;
        } else {
            if (keep >= 0)
                rc = mh_store(h, x, 0, keep);
            if (rc == 0 && keep >= 0)
                rc = mh_release(h, keep);
            keep = x;
            if (rc == 0 && i % 200 == w->seed)
                rc = mh_collect(h, i % 400 == w->seed);
        }
        w->calls++;
        if (rc == MH_ERROR) {
            w->error = mh_last_error(h);
            return NULL;
        }
    }
}

static void test_close_while_threads_call(void)
{
    for (int round = 0; round < 30; round++) {
        env e;
        mh_heap *h = make_heap(&e, 8 * MiB);
        worker w[3];
        for (int i = 0; i < 3; i++) {
            w[i] = (worker){.heap = h, .seed = i * 7};
            pthread_create(&w[i].thread, NULL, work, &w[i]);
        }
        struct timespec pause = {0, (round % 6) * 1000000L};
        nanosleep(&pause, NULL);
        CHECK(mh_heap_close(h) == 0, "close");
        for (int i = 0; i < 3; i++) {
            pthread_join(w[i].thread, NULL);
            CHECK(w[i].error == MH_E_CLOSED, "round %d thread %d ended with error %d after %d calls",
                  round, i, w[i].error, w[i].calls);
        }
        drop_heap(&e);
    }
}

static void test_holder_closes(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_lock(h);
    mh_handle a = mh_alloc(h, 1, 8);
    CHECK(a >= 0, "alloc under mh_lock");
    CHECK(mh_heap_close(h) == 0, "close by the holder");
    CHECK(mh_alloc(h, 1, 8) == MH_ERROR && mh_last_error(h) == MH_E_CLOSED, "alloc after close");
    mh_unlock(h); /* the holder gives the lock back as usual */
    /* another thread can still take the closed heap's lock and fail cleanly */
    worker w = {.heap = h};
    pthread_create(&w.thread, NULL, work, &w);
    pthread_join(w.thread, NULL);
    CHECK(w.error == MH_E_CLOSED, "other thread error %d", w.error);
    drop_heap(&e);
}

/* Threads that asked for the lock before the heap closed get it afterwards: a second closer must
 * not free everything again, and mh_drain_events must not deliver from the freed event ring. */
static void *close_it(void *arg)
{
    mh_heap_close(arg);
    return NULL;
}

static void *drain_it(void *arg)
{
    mh_drain_events(arg);
    return NULL;
}

static void pause_ms(long ms)
{
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static void test_waiters_find_the_heap_closed(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_lock(h);
    pthread_t closers[2], drainer;
    for (int i = 0; i < 2; i++)
        pthread_create(&closers[i], NULL, close_it, h);
    pause_ms(50); /* both wait for the lock */
    mh_unlock(h);
    for (int i = 0; i < 2; i++)
        pthread_join(closers[i], NULL);
    CHECK(mh_last_error(h) == MH_E_CLOSED, "two closers: %s", mh_last_error_message(h));
    drop_heap(&e);

    h = make_heap(&e, 4 * MiB);
    mh_lock(h);
    mh_gc_event ev = {.kind = MH_GC_ZGC, .collector = MH_COLLECTOR_ZGC};
    heap_event_post(h, &ev); /* undelivered when the heap closes */
    pthread_create(&drainer, NULL, drain_it, h);
    pause_ms(50); /* the drainer waits for the lock */
    CHECK(mh_heap_close(h) == 0, "close by the holder");
    mh_unlock(h);
    pthread_join(drainer, NULL);
    CHECK(e.listener_calls == 0, "an event of a closed heap was delivered");
    drop_heap(&e);
}

static int stop_calls, stop_saw_tables;

static void stop_hook(mh_heap *h)
{
    stop_calls++;
    stop_saw_tables = h->regions != NULL && h->handles != NULL && heap_ok(h);
}

static void test_stop_hook(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    /* the serial collector behind a stop hook of the test's: mh_heap_close must call it once,
     * before anything is freed (zgc stops and joins its GC thread there) */
    static mh_collector with_hook;
    with_hook = *h->collector;
    with_hook.stop = stop_hook;
    h->collector = &with_hook;
    mh_alloc(h, 1, 8);
    CHECK(mh_heap_close(h) == 0, "close");
    CHECK(mh_heap_close(h) == 0, "close twice");
    CHECK(stop_calls == 1 && stop_saw_tables, "stop hook: %d calls, saw tables %d", stop_calls,
          stop_saw_tables);
    drop_heap(&e);
}

/* An attached mutator record holds the heap; its own thread may close it: the record's fast
 * path is off from then on and the record lives until it is detached. */
static void test_mutator_record_and_close(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_mutator *m = mh_mutator_attach(h);
    CHECK(m != NULL, "attach: %s", mh_last_error_message(h));
    CHECK(mh_new(m, 1, 8) != 0, "inline allocation");
    CHECK(mh_heap_close(h) == 0, "close by the record's own thread");
    CHECK(mh_new(m, 1, 8) == 0 && mh_last_error(h) == MH_E_CLOSED, "an allocation after close: %s",
          mh_last_error_message(h));
    mh_mutator_detach(m);
    drop_heap(&e);
}

/* ---- sentinels and traps (issue 13: error returns no valid result shares) */

static void test_sentinels(void)
{
    env e;
    mh_heap *h = make_heap(&e, 4 * MiB);
    mh_handle a = mh_alloc(h, 2, 8); /* the first object: eden offset 0 */
    CHECK(mh_ref_offset(h, mh_handle_ref(h, a)) == 0, "offset 0 is a valid offset");
    CHECK(mh_ref_offset(h, 0) == MH_BAD_OFFSET && mh_last_error(h) == MH_E_BAD_ARGUMENT, "null ref");
    CHECK(mh_ref_offset(h, 12345) == MH_BAD_OFFSET, "a reference into no view");
    CHECK(mh_peek_slot(h, a, 0) == 0, "a null slot reads 0");
    CHECK(mh_peek_slot(h, a, 5) == MH_BAD_REF && mh_last_error(h) == MH_E_BAD_SLOT, "bad slot");
    CHECK(mh_peek_slot(h, 999, 0) == MH_BAD_REF && mh_last_error(h) == MH_E_BAD_HANDLE, "bad handle");
    drop_heap(&e);
}

/* old_bump with no region left: the full collection's proof that its copies fit
 * is broken, and the core must stop (a trap), not return an offset to write to. */
static void test_bump_traps(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        env e;
        mh_heap *h = make_heap(&e, 4 * MiB);
        for (uint32_t r = h->young_regions; r < h->nregions; r++)
            h->regions[r].state = REGION_OLD; /* no free region anywhere */
        h->used_end = h->nregions;
        h->free_regions = 0;
        h->promo_region = -1;
        h->nreserved = h->reserved_used = 0;
        uint64_t at = old_bump(h, 64);
        _exit(at == UINT64_MAX ? 42 : 43); /* returned: a sentinel, or worse an offset */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(!WIFEXITED(status) || (WEXITSTATUS(status) != 42 && WEXITSTATUS(status) != 43),
          "old_bump returned (exit %d) instead of trapping", WEXITSTATUS(status));
}

/* mh_verify's scratch memory refused: MH_ERROR and MH_E_NO_MEMORY, not "1 problem". The -O2 build
 * compiles everything with -Dcalloc=mh_test_calloc (MH_TEST_CALLOC_HOOK), so the core's callocs come
 * here and can be made to fail. */
#ifdef MH_TEST_CALLOC_HOOK
#undef calloc
__attribute__((visibility("default"))) void *calloc(size_t n, size_t size); /* internal.h hides */
static int fail_calloc_over; /* nonzero: refuse callocs of at least this many bytes */
void *mh_test_calloc(size_t n, size_t size)
{
    if (fail_calloc_over && n * size >= (size_t)fail_calloc_over)
        return NULL;
    return calloc(n, size);
}
#endif

static void test_verify_out_of_memory(void)
{
#ifdef MH_TEST_CALLOC_HOOK
    env e;
    mh_heap *h = make_heap_with(&e, 64 * MiB, 1); /* all committed: 1 MiB of verify scratch */
    CHECK(mh_verify(h) == 0, "verify: %s", mh_last_error_message(h));
    fail_calloc_over = 512 * 1024;
    int rc = mh_verify(h);
    fail_calloc_over = 0;
    CHECK(rc == MH_ERROR && mh_last_error(h) == MH_E_NO_MEMORY, "verify without memory gave %d (%s)",
          rc, mh_last_error_message(h));
    drop_heap(&e);
#endif
}

int main(void)
{
    alarm(120); /* a hang is a failure, not a stuck test run */
    test_listener();
    test_release_in_callback();
    test_interrupt();
    test_close_while_threads_call();
    test_holder_closes();
    test_waiters_find_the_heap_closed();
    test_stop_hook();
    test_mutator_record_and_close();
    test_sentinels();
    test_bump_traps();
    test_verify_out_of_memory();
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
