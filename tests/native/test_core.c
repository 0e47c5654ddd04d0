/*
 * test_core.c: tests of the miniheap C core, driven directly through miniheap.h.
 *
 * The test is the embedder here, so unlike the core it may call the kernel:
 *   single view: the heap is aligned_alloc memory; uncommit poisons a region
 *                so that any later read of it shows up as garbage;
 *   coloured:    a memfd mapped MAP_SHARED at three view bases (1<<42, 1<<43,
 *                1<<44, or 1<<28.. under AddressSanitizer, whose shadow
 *                occupies the high range); uncommit punches a hole and maps
 *                the region PROT_NONE in every view, so a read of an
 *                uncommitted region faults.
 *
 * Every collection is followed by mh_verify (from the on_gc listener).
 *
 * Build with -DMH_TEST_NO_CARD_MARK together with the core compiled the same
 * way and run with "broken-cards": the test then checks that a missing card
 * mark is caught (by verify, and by a lost object after a young GC).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "miniheap.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#include "check.h"

/* ---- embedder --------------------------------------------------------- */

typedef struct env {
    int colored;
    uint64_t heap_size;
    uint64_t base[3];
    void *mem;        /* single view */
    int fd;           /* coloured */
    mh_heap *heap;
    int commits, uncommits, fail_commit;
    int commit_fail_percent; /* random commit refusals */
    int events, full_events, young_events;
    int verify_each;
    int verify_failures;
    mh_gc_event last;
    int promotion_failures;   /* young collections that reported "Promotion failed" */
    int young_skipped;        /* young collections not attempted: old too full */
    mh_gc_event failed;       /* the last of them */
    mh_gc_event young_last;   /* the last young collection, skipped or not */
    int full_right_after;     /* a full collection came right after a failed or skipped young one */
} env;

static void protect(env *e, uint64_t off, uint64_t len, int prot)
{
    for (int i = 0; i < 3; i++)
        if (mprotect((void *)(uintptr_t)(e->base[i] + off), len, prot) != 0)
            fprintf(stderr, "mprotect: %s\n", strerror(errno));
}

static int cb_commit(void *ctx, uint64_t off, uint64_t len)
{
    env *e = ctx;
    if (e->fail_commit || (e->commit_fail_percent && (int)(random() % 100) < e->commit_fail_percent))
        return -1;
    e->commits++;
    if (e->colored)
        protect(e, off, len, PROT_READ | PROT_WRITE);
    return 0;
}

static int cb_uncommit(void *ctx, uint64_t off, uint64_t len)
{
    env *e = ctx;
    e->uncommits++;
    if (e->colored) {
        fallocate(e->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
        protect(e, off, len, PROT_NONE);
    } else {
        memset((char *)e->mem + off, 0xdb, len);
    }
    return 0;
}

static void cb_on_gc(void *ctx, const mh_gc_event *ev)
{
    env *e = ctx;
    e->events++;
    if (ev->kind == MH_GC_FULL)
        e->full_events++;
    else
        e->young_events++;
    if (ev->kind == MH_GC_FULL && (e->last.promotion_failed_objects || e->last.young_skipped) &&
        e->last.kind == MH_GC_YOUNG && ev->id == e->last.id + 1)
        e->full_right_after++;
    if (ev->kind == MH_GC_YOUNG && ev->promotion_failed_objects) {
        e->promotion_failures++;
        e->failed = *ev;
    }
    if (ev->kind == MH_GC_YOUNG && ev->young_skipped)
        e->young_skipped++;
    if (ev->kind == MH_GC_YOUNG)
        e->young_last = *ev;
    e->last = *ev;
    if (e->verify_each && e->heap && mh_verify(e->heap) != 0) {
        e->verify_failures++;
        fprintf(stderr, "verify after GC(%u) kind %d cause %d: %s\n", ev->id, ev->kind, ev->cause,
                mh_last_error_message(e->heap));
    }
}

static int map_views(env *e, const uint64_t bases[3])
{
    for (int i = 0; i < 3; i++) {
        void *want = (void *)(uintptr_t)bases[i];
        void *p = mmap(want, e->heap_size, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != want) {
            if (p != MAP_FAILED)
                munmap(p, e->heap_size);
            for (int j = 0; j < i; j++)
                munmap((void *)(uintptr_t)bases[j], e->heap_size);
            return -1;
        }
    }
    for (int i = 0; i < 3; i++) {
        void *p = mmap((void *)(uintptr_t)bases[i], e->heap_size, PROT_NONE, MAP_SHARED | MAP_FIXED,
                       e->fd, 0);
        if (p == MAP_FAILED)
            return -1;
        e->base[i] = bases[i];
    }
    return 0;
}

static mh_config base_config(env *e)
{
    mh_config c;
    memset(&c, 0, sizeof c);
    c.heap_size = e->heap_size;
    c.region_size = 64 * KiB;
    c.young_size = 16 * c.region_size;
    c.survivor_ratio = 6; /* 16 young regions: 2 per survivor, 12 eden */
    c.tenuring_threshold = 3;
    c.colored = e->colored;
    c.max_handles = 1 << 16;
    c.commit = cb_commit;
    c.uncommit = cb_uncommit;
    c.on_gc = cb_on_gc;
    c.ctx = e;
    return c;
}

static int env_map(env *e, int colored, uint64_t heap_size)
{
    memset(e, 0, sizeof *e);
    e->colored = colored;
    e->heap_size = heap_size;
    e->verify_each = 1;
    if (!colored) {
        e->mem = aligned_alloc(1 * MiB, heap_size);
        if (!e->mem)
            return -1;
        memset(e->mem, 0xdb, heap_size);
        e->base[0] = (uint64_t)(uintptr_t)e->mem;
        return 0;
    }
    e->fd = memfd_create("miniheap-test", MFD_CLOEXEC);
    if (e->fd < 0 || ftruncate(e->fd, (off_t)heap_size) != 0)
        return -1;
    static const uint64_t zgc[3] = {1ull << 42, 1ull << 43, 1ull << 44};
    static const uint64_t low[3] = {1ull << 28, 1ull << 29, 1ull << 30};
    if (map_views(e, zgc) == 0 || map_views(e, low) == 0)
        return 0;
    fprintf(stderr, "cannot reserve the coloured views: %s\n", strerror(errno));
    return -1;
}

static void env_unmap(env *e)
{
    if (e->colored) {
        for (int i = 0; i < 3; i++)
            munmap((void *)(uintptr_t)e->base[i], e->heap_size);
        close(e->fd);
    } else {
        free(e->mem);
    }
}

/* When set, every test heap is held (mh_lock) from creation to mh_heap_free, so each test also
 * runs through the calls' held path, which skips the mutex. */
static int hold_heaps;

static mh_heap *env_open_with(env *e, int colored, uint64_t heap_size, void (*tweak)(mh_config *))
{
    if (env_map(e, colored, heap_size) != 0) {
        CHECK(0, "could not map the heap (colored %d)", colored);
        return NULL;
    }
    mh_config c = base_config(e);
    for (int i = 0; i < 3; i++)
        c.view_base[i] = e->base[i];
    if (tweak)
        tweak(&c);
    char err[512];
    e->heap = mh_heap_new(&c, err, sizeof err);
    CHECK(e->heap != NULL, "mh_heap_new: %s", err);
    if (e->heap && hold_heaps)
        mh_lock(e->heap); /* given back by mh_heap_free */
    return e->heap;
}

static mh_heap *env_open(env *e, int colored) { return env_open_with(e, colored, 4 * MiB, NULL); }

static void env_close(env *e)
{
    CHECK(e->verify_failures == 0, "%d verifications after collections failed", e->verify_failures);
    mh_heap_free(e->heap);
    env_unmap(e);
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

/* Payload: the id in the first 8 bytes, then bytes derived from it. */
static void fill_payload(mh_heap *h, mh_handle x, uint64_t id)
{
    int64_t n = mh_nbytes(h, x);
    uint8_t *p = mh_payload(h, x);
    memcpy(p, &id, 8);
    for (int64_t i = 8; i < n; i++)
        p[i] = (uint8_t)(id * 31 + (uint64_t)i);
}

static uint64_t payload_id(mh_heap *h, mh_handle x)
{
    uint64_t id;
    memcpy(&id, mh_payload(h, x), 8);
    return id;
}

static int payload_intact(mh_heap *h, mh_handle x)
{
    int64_t n = mh_nbytes(h, x);
    uint8_t *p = mh_payload(h, x);
    uint64_t id = payload_id(h, x);
    for (int64_t i = 8; i < n; i++)
        if (p[i] != (uint8_t)(id * 31 + (uint64_t)i))
            return 0;
    return 1;
}

static mh_handle new_object(mh_heap *h, uint32_t nrefs, uint32_t nbytes, uint64_t id)
{
    mh_handle x = mh_alloc(h, nrefs, nbytes < 8 ? 8 : nbytes);
    if (x >= 0)
        fill_payload(h, x, id);
    return x;
}

/* A model of the object graph: for each id, its slot count and the ids in
 * its slots (0 for null). The heap must always agree with it. */
#define MAXREFS 4
typedef struct model {
    uint32_t cap;
    uint32_t *nrefs;
    uint64_t *child;   /* cap * MAXREFS */
    uint32_t *seen;    /* traversal stamp */
    uint32_t stamp;
} model;

static void model_init(model *m, uint32_t cap)
{
    m->cap = cap;
    m->nrefs = calloc(cap, sizeof *m->nrefs);
    m->child = calloc((size_t)cap * MAXREFS, sizeof *m->child);
    m->seen = calloc(cap, sizeof *m->seen);
    m->stamp = 0;
}

static void model_free(model *m)
{
    free(m->nrefs);
    free(m->child);
    free(m->seen);
}

/* Walk everything reachable from the roots and compare with the model;
 * returns a structural hash (visit order, ids, shapes, edges). */
static uint64_t graph_check(mh_heap *h, model *m, const mh_handle *roots, int nroots, int *bad)
{
    uint64_t hash = 1469598103934665603ull;
#define MIX(v) (hash = (hash ^ (uint64_t)(v)) * 1099511628211ull)
    m->stamp++;
    mh_handle *stack = malloc(sizeof *stack * (m->cap + 16));
    for (int r = 0; r < nroots; r++) {
        if (roots[r] < 0) {
            MIX(0);
            continue;
        }
        int sp = 0;
        stack[sp++] = mh_dup(h, roots[r]);
        while (sp > 0) {
            mh_handle x = stack[--sp];
            uint64_t id = payload_id(h, x);
            MIX(id);
            if (id == 0 || id >= m->cap || !payload_intact(h, x) || mh_nrefs(h, x) != m->nrefs[id]) {
                if ((*bad)++ == 0)
                    fprintf(stderr, "graph: object id %" PRIu64 " has a wrong id, payload or shape\n", id);
                mh_release(h, x);
                continue;
            }
            if (m->seen[id] == m->stamp) {
                mh_release(h, x);
                continue;
            }
            m->seen[id] = m->stamp;
            MIX(m->nrefs[id]);
            for (uint32_t s = 0; s < m->nrefs[id]; s++) {
                mh_handle y = mh_load(h, x, s);
                uint64_t want = m->child[(size_t)id * MAXREFS + s];
                uint64_t got = y >= 0 ? payload_id(h, y) : 0;
                MIX(got);
                if (got != want && (*bad)++ == 0)
                    fprintf(stderr, "graph: %" PRIu64 ".slot[%u] is %" PRIu64 ", model says %" PRIu64 "\n",
                            id, s, got, want);
                if (y >= 0)
                    stack[sp++] = y;
            }
            mh_release(h, x);
        }
    }
    free(stack);
    return hash;
}

/* Build a random graph of n objects below nroots roots. */
static void build_graph(mh_heap *h, model *m, mh_handle *roots, int nroots, uint32_t n, uint64_t *next_id)
{
    mh_handle *all = malloc(sizeof *all * n);
    uint64_t *ids = malloc(sizeof *ids * n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t nrefs = (uint32_t)(rnd() % (MAXREFS + 1));
        uint32_t nbytes = 8 + (uint32_t)(rnd() % 120);
        ids[i] = (*next_id)++;
        all[i] = new_object(h, nrefs, nbytes, ids[i]);
        CHECK(all[i] >= 0, "alloc: %s", mh_last_error_message(h));
        m->nrefs[ids[i]] = nrefs;
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t s = 0; s < m->nrefs[ids[i]]; s++) {
            if (rnd() % 4 == 0)
                continue;
            uint32_t j = (uint32_t)(rnd() % n);
            CHECK(mh_store(h, all[i], s, all[j]) == 0, "store: %s", mh_last_error_message(h));
            m->child[ids[i] * MAXREFS + s] = ids[j];
        }
    }
    for (int r = 0; r < nroots; r++)
        roots[r] = mh_dup(h, all[rnd() % n]);
    for (uint32_t i = 0; i < n; i++)
        mh_release(h, all[i]);
    free(all);
    free(ids);
}

/* ---- tests ------------------------------------------------------------ */

static void test_config_errors(void)
{
    env e;
    env_map(&e, 0, 4 * MiB);
    char err[512];
    mh_config good = base_config(&e);
    good.view_base[0] = e.base[0];
#define BADCFG(field_change, expect)                                             \
    do {                                                                         \
        mh_config c = good;                                                      \
        field_change;                                                            \
        err[0] = 0;                                                              \
        mh_heap *h = mh_heap_new(&c, err, sizeof err);                           \
        CHECK(h == NULL, "config accepted: " #field_change);                     \
        CHECK(strstr(err, expect) != NULL, "message for " #field_change ": %s", err); \
        if (h)                                                                   \
            mh_heap_free(h);                                                     \
    } while (0)
    BADCFG(c.region_size = 3 * 64 * KiB, "power of two");
    BADCFG(c.region_size = 32 * KiB, "64 KiB");
    BADCFG(c.heap_size = 4 * MiB + 4096, "multiple of region_size");
    BADCFG(c.young_size = 2 * 64 * KiB, "at least 3 regions");
    BADCFG(c.young_size = 4 * MiB, "at least one old region");
    BADCFG(c.survivor_ratio = 0, "survivor_ratio");
    BADCFG(c.tenuring_threshold = 16, "tenuring_threshold");
    BADCFG(c.max_handles = 0, "max_handles");
    BADCFG(c.view_base[0] = 0, "view_base[0]");
    BADCFG(c.view_base[0] += 4096, "aligned");
    BADCFG(c.colored = 3, "colored");
    BADCFG(c.colored = MH_VIEWS_LOW_BITS, "single bit"); /* the base is an mmap address */
    BADCFG((c.colored = MH_VIEWS_LOW_BITS, c.view_base[0] = 1ull << 48), "at most 1<<47");
    BADCFG((c.colored = MH_VIEWS_LOW_BITS, c.view_base[0] = 1ull << 42), "serial collector has one view");
    BADCFG((c.colored = 1, c.view_base[0] = 3ull << 42), "power of two");
    BADCFG((c.colored = 1, c.view_base[0] = 1ull << 42, c.view_base[1] = 1ull << 42,
            c.view_base[2] = 1ull << 44), "own view");
    BADCFG((c.colored = 1, c.view_base[0] = 1ull << 20, c.view_base[1] = 1ull << 43,
            c.view_base[2] = 1ull << 44), "not below heap_size");
    CHECK(mh_heap_new(NULL, err, sizeof err) == NULL && strstr(err, "NULL"), "NULL config: %s", err);

    /* young commit refused */
    e.fail_commit = 1;
    CHECK(mh_heap_new(&good, err, sizeof err) == NULL && strstr(err, "commit"), "commit: %s", err);
    env_unmap(&e);
}

static void test_roundtrip(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    mh_handle a = new_object(h, 2, 24, 1);
    mh_handle b = new_object(h, 0, 8, 2);
    CHECK(a >= 0 && b >= 0, "alloc");
    CHECK(mh_nrefs(h, a) == 2 && mh_nbytes(h, a) == 24, "shape");
    CHECK(mh_space_of(h, a) == 0 && mh_age(h, a) == 0, "new objects are in eden, age 0");
    CHECK(mh_store(h, a, 1, b) == 0, "store");
    CHECK(mh_load(h, a, 0) == MH_NULL_HANDLE, "null slot loads as MH_NULL_HANDLE");
    mh_handle c = mh_load(h, a, 1);
    CHECK(c >= 0 && mh_same(h, b, c) == 1 && mh_same(h, a, c) == 0, "load returns the stored object");
    CHECK(payload_id(h, c) == 2, "payload through the loaded handle");
    mh_handle d = mh_dup(h, a);
    CHECK(mh_load_into(h, d, 1, d) == 1 && mh_same(h, d, b) == 1, "load_into moves the cursor");
    CHECK(mh_load_into(h, a, 0, d) == 0 && mh_same(h, d, b) == 1, "null leaves the cursor");
    CHECK(mh_handle_ref(h, a) != 0, "handle_ref");
    if (colored)
        CHECK(mh_ref_color(h, mh_handle_ref(h, a)) == MH_COLOR_REMAPPED, "fresh refs are Remapped");
    else
        CHECK(mh_ref_color(h, mh_handle_ref(h, a)) == MH_COLOR_NONE, "single view has no colour");
    CHECK(mh_peek_slot(h, a, 1) == mh_handle_ref(h, b), "peek sees the raw reference");
    CHECK(mh_good_color(h) == (colored ? MH_COLOR_REMAPPED : MH_COLOR_NONE), "initial good colour");
    const mh_stats *s = mh_get_stats(h);
    CHECK(s->objects_allocated == 2 && s->stores == 1 && s->handles_live == 4, "stats %" PRIu64,
          s->handles_live);
    /* one header word per object: 8 + 2 slots + 24, then 8 + 8 */
    CHECK(mh_used(h) == 8 + 16 + 24 + 8 + 8, "used %" PRIu64, mh_used(h));
    uint64_t used;
    CHECK(mh_region_info(h, 0, &used) == 1 && used == mh_used(h), "region 0 is eden");
    CHECK(mh_region_info(h, 12, &used) == 2 && mh_region_info(h, 14, &used) == 3, "survivors");
    CHECK(mh_region_info(h, 16, &used) == 0, "old regions start free");
    VERIFY(h);
    /* the objects survive collections of both kinds */
    CHECK(mh_collect(h, 0) == 0, "young");
    CHECK(mh_space_of(h, a) == 1 && mh_age(h, a) == 1, "survivor, age 1");
    CHECK(mh_collect(h, 1) == 0, "full: %s", mh_last_error_message(h));
    CHECK(mh_space_of(h, a) == 2, "full GC promotes everything");
    CHECK(mh_eden_used(h) == 0 && mh_survivor_used(h) == 0, "young is empty after a full GC");
    mh_handle c2 = mh_load(h, a, 1);
    CHECK(c2 >= 0 && payload_id(h, c2) == 2 && mh_same(h, c2, c) == 1, "edge survives");
    env_close(&e);
}

static void test_bad_input(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    mh_handle a = new_object(h, 2, 8, 1);
    CHECK(mh_load(h, a, 2) == MH_ERROR && mh_last_error(h) == MH_E_BAD_SLOT &&
              strstr(mh_last_error_message(h), "slot 2") && strstr(mh_last_error_message(h), "nrefs 2"),
          "bad slot: %s", mh_last_error_message(h));
    CHECK(mh_store(h, a, 7, a) == MH_ERROR && mh_last_error(h) == MH_E_BAD_SLOT, "bad store slot");
    CHECK(mh_load(h, 12345, 0) == MH_ERROR && mh_last_error(h) == MH_E_BAD_HANDLE, "handle never issued");
    CHECK(mh_load(h, 1 << 20, 0) == MH_ERROR && strstr(mh_last_error_message(h), "out of range"),
          "out of range: %s", mh_last_error_message(h));
    CHECK(mh_nrefs(h, MH_NULL_HANDLE) == MH_ERROR && strstr(mh_last_error_message(h), "null handle"),
          "null: %s", mh_last_error_message(h));
    mh_handle b = mh_dup(h, a);
    CHECK(mh_release(h, b) == 0, "release");
    CHECK(mh_release(h, b) == MH_ERROR && mh_last_error(h) == MH_E_BAD_HANDLE &&
              strstr(mh_last_error_message(h), "handle 1"),
          "double release: %s", mh_last_error_message(h));
    CHECK(mh_store(h, a, 0, b) == MH_ERROR, "store of a released handle");
    CHECK(mh_handle_valid(h, b) == 0 && mh_handle_valid(h, a) == 1, "valid");
    CHECK(mh_payload(h, b) == NULL, "payload of released");
    CHECK(mh_alloc(h, 1u << 25, 0) == MH_ERROR && mh_last_error(h) == MH_E_TOO_LARGE, "too many slots");
    CHECK(mh_alloc(h, 0, 4000u * 1024) == MH_ERROR && mh_last_error(h) == MH_E_TOO_LARGE &&
              strstr(mh_last_error_message(h), "3145728"),
          "too large: %s", mh_last_error_message(h));
    CHECK(mh_region_info(h, 9999, NULL) == MH_ERROR && mh_last_error(h) == MH_E_BAD_ARGUMENT, "region");
    CHECK(mh_alloc(NULL, 1, 1) == MH_ERROR && mh_collect(NULL, 0) == MH_ERROR && mh_verify(NULL) == MH_ERROR,
          "NULL heap");
    CHECK(mh_last_error(NULL) != MH_OK && strstr(mh_last_error_message(NULL), "no heap"), "NULL heap message");
    CHECK(mh_get_stats(NULL) == NULL && mh_used(NULL) == 0, "NULL heap queries");
    VERIFY(h);
    env_close(&e);

    /* handle table exhaustion */
    env e2;
    mh_heap *h2 = env_open_with(&e2, colored, 4 * MiB, NULL);
    if (!h2)
        return;
    int n = 0;
    mh_handle x;
    while ((x = mh_alloc(h2, 0, 8)) >= 0)
        n++;
    CHECK(n == 1 << 16 && mh_last_error(h2) == MH_E_NO_HANDLES, "handle table full after %d: %s", n,
          mh_last_error_message(h2));
    CHECK(mh_release(h2, 5) == 0 && mh_alloc(h2, 0, 8) == 5, "a released handle is reused");
    env_close(&e2);
}

static void test_young_graph(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    model m;
    model_init(&m, 100000);
    uint64_t next = 1;
    enum { NROOTS = 40 };
    mh_handle roots[NROOTS];
    build_graph(h, &m, roots, NROOTS, 3000, &next);
    int bad = 0;
    uint64_t before = graph_check(h, &m, roots, NROOTS, &bad);
    for (int i = 0; i < 6; i++) {
        CHECK(mh_collect(h, 0) == 0, "young");
        CHECK(e.last.kind == MH_GC_YOUNG && (i > 0 || e.last.objects_copied > 0), "young event: kind %d cause %d copied %" PRIu64,
              e.last.kind, e.last.cause, e.last.objects_copied);
        uint64_t after = graph_check(h, &m, roots, NROOTS, &bad);
        CHECK(after == before, "structural hash changed after young GC %d", i);
        /* garbage in between, so eden fills and the allocation path collects too */
        for (int k = 0; k < 2000; k++)
            mh_release(h, new_object(h, 1, 64, next++));
    }
    CHECK(bad == 0, "%d graph mismatches", bad);
    CHECK(e.young_events >= 6, "events %d", e.young_events);
    CHECK(mh_get_stats(h)->bytes_copied > 0 && mh_get_stats(h)->bytes_promoted > 0, "copied and promoted");
    model_free(&m);
    env_close(&e);
}

static void threshold3(mh_config *c) { c->tenuring_threshold = 3; }
static void threshold0(mh_config *c) { c->tenuring_threshold = 0; }

static void test_ageing(int colored)
{
    env e;
    mh_heap *h = env_open_with(&e, colored, 4 * MiB, threshold3);
    if (!h)
        return;
    mh_handle a = new_object(h, 1, 40, 7);
    for (int gc = 1; gc <= 3; gc++) {
        CHECK(mh_collect(h, 0) == 0, "young");
        CHECK(mh_space_of(h, a) == 1 && mh_age(h, a) == gc, "after GC %d: space %d age %d", gc,
              mh_space_of(h, a), mh_age(h, a));
        CHECK(e.last.bytes_by_age[gc] == 8 + 8 + 40 && e.last.tenuring_threshold == 3,
              "bytes_by_age[%d] = %" PRIu64, gc, e.last.bytes_by_age[gc]);
    }
    CHECK(mh_collect(h, 0) == 0, "young");
    CHECK(mh_space_of(h, a) == 2 && e.last.bytes_promoted == 56, "promoted at age 3: space %d",
          mh_space_of(h, a));
    CHECK(payload_id(h, a) == 7 && payload_intact(h, a), "payload survives");
    env_close(&e);

    h = env_open_with(&e, colored, 4 * MiB, threshold0);
    if (!h)
        return;
    a = new_object(h, 1, 40, 7);
    CHECK(mh_collect(h, 0) == 0 && mh_space_of(h, a) == 2, "threshold 0 promotes at once");
    env_close(&e);
}

static void test_survivor_overflow(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    /* 200 KiB live, survivor space 128 KiB: part must be promoted early */
    model m;
    model_init(&m, 10000);
    enum { N = 800 };
    mh_handle list = MH_NULL_HANDLE;
    uint64_t next = 1;
    for (int i = 0; i < N; i++) {
        mh_handle x = new_object(h, 1, 240, next);
        m.nrefs[next] = 1;
        if (list >= 0) {
            mh_store(h, x, 0, list);
            m.child[next * MAXREFS] = next - 1;
            mh_release(h, list);
        }
        list = x;
        next++;
    }
    int bad = 0;
    uint64_t before = graph_check(h, &m, &list, 1, &bad);
    CHECK(mh_collect(h, 0) == 0, "young");
    CHECK(e.last.survivor_overflow_bytes > 0 && e.last.bytes_promoted == e.last.survivor_overflow_bytes,
          "overflow %" PRIu64 " promoted %" PRIu64, e.last.survivor_overflow_bytes, e.last.bytes_promoted);
    CHECK(e.last.survivor_after <= 128 * KiB && e.last.old_after > 0, "survivor %" PRIu64,
          e.last.survivor_after);
    CHECK(graph_check(h, &m, &list, 1, &bad) == before && bad == 0, "list intact after overflow");
    CHECK(mh_collect(h, 0) == 0, "young again");
    CHECK(graph_check(h, &m, &list, 1, &bad) == before && bad == 0, "list intact after second GC");
    model_free(&m);
    env_close(&e);
}

/* An old object pointing to a young one, known only through its card. */
static int test_cards(int colored, int expect_broken)
{
    env e;
    mh_heap *h = env_open_with(&e, colored, 4 * MiB, threshold3);
    if (!h)
        return 0;
    e.verify_each = !expect_broken;
    mh_handle old = new_object(h, 3, 8, 1);
    for (int i = 0; i < 4; i++)
        mh_collect(h, 0);
    CHECK(mh_space_of(h, old) == 2, "promoted");
    mh_handle young = new_object(h, 0, 100, 2);
    mh_store(h, old, 1, young);
    mh_release(h, young);
    int problems = mh_verify(h);
    int caught_by_verify = problems > 0 && strstr(mh_last_error_message(h), "card");
    if (!expect_broken)
        CHECK(problems == 0, "verify: %s", mh_last_error_message(h));
    /* fill eden with garbage so that the young object's old place gets reused */
    mh_collect(h, 0);
    for (int i = 0; i < 3000; i++)
        mh_release(h, new_object(h, 0, 200, 99));
    mh_handle y = mh_load(h, old, 1);
    int lost = y < 0 || payload_id(h, y) != 2 || !payload_intact(h, y);
    if (expect_broken) {
        fprintf(stderr, "broken cards: verify %s, object %s\n", caught_by_verify ? "caught it" : "missed it",
                lost ? "lost" : "intact");
        mh_heap_free(h);
        env_unmap(&e);
        return caught_by_verify && lost;
    }
    CHECK(!lost, "old-to-young reference through a card");
    CHECK(mh_get_stats(h)->young_collections >= 2, "collections ran");
    /* the card stays dirty while the target is a survivor (verify checks it) */
    CHECK(mh_space_of(h, y) == 1, "the target is a survivor");
    CHECK(mh_collect(h, 0) == 0 && e.last.cards_scanned >= 1, "cards scanned %u", e.last.cards_scanned);
    VERIFY(h);
    for (int i = 0; i < 3; i++)
        mh_collect(h, 0);
    CHECK(mh_space_of(h, y) == 2, "the target is old now");
    mh_release(h, y);
    mh_handle y2 = mh_load(h, old, 1);
    CHECK(y2 >= 0 && payload_id(h, y2) == 2, "still there");
    env_close(&e);
    return 1;
}

static void test_full_reclaims(int colored)
{
    env e;
    mh_heap *h = env_open_with(&e, colored, 4 * MiB, threshold0);
    if (!h)
        return;
    /* cycles of garbage, promoted into old */
    mh_handle keep = new_object(h, 1, 8, 1);
    mh_handle firsts[250];
    for (int c = 0; c < 250; c++) {
        mh_handle first = new_object(h, 1, 1000, 10);
        mh_handle prev = mh_dup(h, first);
        for (int i = 0; i < 9; i++) {
            mh_handle x = new_object(h, 1, 1000, 11);
            mh_store(h, prev, 0, x);
            mh_release(h, prev);
            prev = x;
        }
        mh_store(h, prev, 0, first); /* close the cycle */
        mh_release(h, prev);
        firsts[c] = first;
    }
    CHECK(mh_collect(h, 0) == 0, "young");
    for (int c = 0; c < 250; c++)
        mh_release(h, firsts[c]);
    uint64_t old_before = mh_old_used(h);
    CHECK(old_before > 2300 * KiB, "the cycles were promoted: old %" PRIu64, old_before);
    int uncommits = e.uncommits, commits = e.commits;
    CHECK(commits > 0, "regions were committed for promotion");
    CHECK(mh_collect(h, 1) == 0, "full");
    CHECK(e.last.kind == MH_GC_FULL && e.last.regions_freed >= 36, "regions freed %u", e.last.regions_freed);
    CHECK(e.uncommits > uncommits, "uncommit callbacks %d -> %d", uncommits, e.uncommits);
    CHECK(mh_old_used(h) < 64 * KiB, "old after %" PRIu64, mh_old_used(h));
    CHECK(e.last.bytes_marked == 24, "marked %" PRIu64, e.last.bytes_marked);
    CHECK(payload_id(h, keep) == 1, "the live object stays");
    uint32_t committed_old = 0;
    for (uint32_t r = 16; r < mh_region_count(h); r++) {
        uint64_t u;
        if (mh_region_info(h, r, &u) != 0)
            committed_old++;
    }
    /* Free old regions beyond one young generation's worth (16) are given back; that many stay
     * committed so the next promotion does not commit inside its pause. */
    CHECK(mh_get_stats(h)->regions_committed == 16 + committed_old + 16,
          "committed %" PRIu64 " vs 16 young + %u old in use + 16 kept free",
          mh_get_stats(h)->regions_committed, committed_old);
    env_close(&e);
}

static void test_humongous(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    /* 3 regions of slots: larger than half a region */
    uint32_t nrefs = (uint32_t)(3 * 64 * KiB / 8 - 100);
    mh_handle big = mh_alloc(h, nrefs, 8);
    CHECK(big >= 0 && mh_space_of(h, big) == 3, "humongous: %s", mh_last_error_message(h));
    uint64_t u;
    CHECK(mh_region_info(h, 16, &u) == 5 && mh_region_info(h, 17, &u) == 6 && mh_region_info(h, 18, &u) == 6,
          "humongous regions");
    mh_ref where = mh_handle_ref(h, big);
    mh_handle y = new_object(h, 0, 16, 5);
    mh_store(h, big, nrefs - 1, y); /* a slot in the last region: found through its card */
    mh_store(h, big, 3, y);
    mh_release(h, y);
    VERIFY(h);
    CHECK(mh_collect(h, 0) == 0, "young");
    mh_handle y2 = mh_load(h, big, nrefs - 1);
    CHECK(y2 >= 0 && payload_id(h, y2) == 5 && mh_space_of(h, y2) == 1, "young object kept by a humongous slot");
    CHECK(mh_load_into(h, big, 3, y2) == 1 && payload_id(h, y2) == 5, "both slots updated");
    CHECK(mh_collect(h, 1) == 0, "full");
    CHECK(mh_ref_offset(h, mh_handle_ref(h, big)) == mh_ref_offset(h, where), "humongous objects never move");
    mh_release(h, y2);
    mh_release(h, big);
    uint64_t old = mh_old_used(h);
    CHECK(mh_collect(h, 1) == 0 && e.last.regions_freed >= 3, "unreachable humongous freed: %u",
          e.last.regions_freed);
    CHECK(mh_old_used(h) < old && mh_region_info(h, 16, &u) == 0, "regions free again");
    env_close(&e);
}

static void test_exhausted(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    enum { MAX = 20000 };
    static mh_handle held[MAX];
    int n = 0;
    while (n < MAX) {
        mh_handle x = new_object(h, 1, 500, (uint64_t)n + 1);
        if (x < 0)
            break;
        held[n++] = x;
    }
    CHECK(n < MAX && mh_last_error(h) == MH_E_EXHAUSTED, "exhausted after %d objects: %s", n,
          mh_last_error_message(h));
    CHECK(strstr(mh_last_error_message(h), "heap exhausted") && strstr(mh_last_error_message(h), "raise heap_size"),
          "message: %s", mh_last_error_message(h));
    VERIFY(h);
    /* still usable: every object intact, room again after releasing half */
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (payload_id(h, held[i]) != (uint64_t)i + 1 || !payload_intact(h, held[i]))
            bad++;
    CHECK(bad == 0, "%d objects damaged by the failed collections", bad);
    for (int i = 0; i < n; i += 2)
        mh_release(h, held[i]);
    mh_handle x = new_object(h, 1, 500, 1);
    CHECK(x >= 0, "allocation after release: %s", mh_last_error_message(h));
    CHECK(mh_collect(h, 1) == 0, "full after release: %s", mh_last_error_message(h));
    for (int i = 1; i < n; i += 2)
        if (payload_id(h, held[i]) != (uint64_t)i + 1 || !payload_intact(h, held[i]))
            bad++;
    CHECK(bad == 0, "%d objects damaged", bad);
    VERIFY(h);
    env_close(&e);
}

static void test_commit_failure(int colored)
{
    env e;
    mh_heap *h = env_open_with(&e, colored, 4 * MiB, threshold0);
    if (!h)
        return;
    mh_handle a = new_object(h, 1, 100, 1);
    e.fail_commit = 1;
    CHECK(mh_alloc(h, 0, 100 * 1024) == MH_ERROR && mh_last_error(h) == MH_E_COMMIT, "humongous commit: %s",
          mh_last_error_message(h));
    /* promotion needs an old region and its commit is refused: the promotion fails, the
     * object stays in eden, and the full collection that follows fails cleanly too */
    int full_before = e.full_events;
    CHECK(mh_collect(h, 0) == MH_ERROR && mh_last_error(h) == MH_E_COMMIT, "young without commit: %s",
          mh_last_error_message(h));
    CHECK(e.promotion_failures == 1 && e.failed.promotion_failed_objects == 1, "promotion failed: %d",
          e.promotion_failures);
    CHECK(e.full_events == full_before + 1 && e.full_right_after == 1 &&
          e.last.cause == MH_CAUSE_EXPLICIT, "a full collection followed");
    CHECK(payload_id(h, a) == 1 && payload_intact(h, a) && mh_space_of(h, a) == 0, "nothing moved");
    CHECK(mh_get_stats(h)->commit_failures >= 2, "commit failures counted");
    e.fail_commit = 0;
    CHECK(mh_collect(h, 0) == 0 && payload_id(h, a) == 1, "works again");
    VERIFY(h);
    env_close(&e);
}

/* ---- promotion failure ------------------------------------------------- */

/* A chain of n objects, each slot 0 pointing to the one made before it (ids first_id..):
 * returns a handle to the last. */
static mh_handle make_chain(mh_heap *h, int n, uint32_t nbytes, uint64_t first_id)
{
    mh_handle prev = MH_NULL_HANDLE;
    for (int i = 0; i < n; i++) {
        mh_handle x = new_object(h, 1, nbytes, first_id + (uint64_t)i);
        if (x < 0)
            break;
        if (prev != MH_NULL_HANDLE) {
            mh_store(h, x, 0, prev);
            mh_release(h, prev);
        }
        prev = x;
    }
    return prev;
}

/* Walk a chain from its head; the number of objects whose id and payload are right. */
static int chain_intact(mh_heap *h, mh_handle head, int n, uint64_t first_id)
{
    mh_handle cur = mh_dup(h, head);
    int good = 0;
    for (int i = n - 1; i >= 0 && cur >= 0; i--) {
        if (payload_id(h, cur) == first_id + (uint64_t)i && payload_intact(h, cur))
            good++;
        if (mh_load_into(h, cur, 0, cur) != 1)
            break;
    }
    if (cur >= 0)
        mh_release(h, cur);
    return good;
}

/* Old is nearly full of garbage the young collection cannot know about (humongous
 * objects already unreachable), and young holds more live data than the survivor
 * space: the young collection is attempted (nothing was ever promoted, so the padded
 * average is 0), promotion fails half way, the objects that could not be copied stay
 * in young, and the full collection that follows reclaims the garbage and moves
 * everything into old. Every collection is verified (cb_on_gc), including the state
 * between the failed young collection and the full one. */
static void test_promotion_failure(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    /* 48 old regions of 64 KiB: fill 45 with humongous objects, then drop them */
    mh_handle big[48];
    int nbig = 0;
    while (nbig < 45 && (big[nbig] = mh_alloc(h, 0, 40 * 1024)) >= 0)
        nbig++;
    CHECK(nbig == 45, "humongous objects: %d", nbig);
    /* live young data: two chains, 300 KiB each; survivors hold 128 KiB */
    enum { N = 600 };
    mh_handle one = make_chain(h, N, 500, 1000);
    mh_handle two = make_chain(h, N, 500, 5000);
    CHECK(one >= 0 && two >= 0, "chains: %s", mh_last_error_message(h));
    for (int i = 0; i < nbig; i++)
        mh_release(h, big[i]);
    CHECK(mh_get_stats(h)->young_collections == 0, "no collection yet");
    CHECK(mh_collect(h, 0) == 0, "young with promotion failure: %s", mh_last_error_message(h));
    CHECK(e.promotion_failures == 1, "promotion failed once: %d", e.promotion_failures);
    CHECK(e.failed.promotion_failed_objects > 0 && e.failed.promotion_failed_bytes > 0 &&
          e.failed.bytes_promoted > 0 && e.failed.survivor_overflow_bytes > 0,
          "failed %u objects (%" PRIu64 " bytes), promoted %" PRIu64 ", overflow %" PRIu64,
          e.failed.promotion_failed_objects, e.failed.promotion_failed_bytes, e.failed.bytes_promoted,
          e.failed.survivor_overflow_bytes);
    CHECK(e.full_right_after == 1 && e.last.kind == MH_GC_FULL && e.last.cause == MH_CAUSE_EXPLICIT,
          "a full collection followed the failed young one");
    CHECK(mh_eden_used(h) == 0 && mh_survivor_used(h) == 0, "the full collection emptied young");
    CHECK(chain_intact(h, one, N, 1000) == N && chain_intact(h, two, N, 5000) == N, "chains intact");
    CHECK(mh_space_of(h, one) == 2, "in old now");
    VERIFY(h);
    /* the heap goes on as before */
    mh_handle three = make_chain(h, 200, 100, 9000);
    CHECK(mh_collect(h, 0) == 0 && e.last.kind == MH_GC_YOUNG && e.last.promotion_failed_objects == 0,
          "an ordinary young collection");
    CHECK(chain_intact(h, three, 200, 9000) == 200, "third chain");
    CHECK(chain_intact(h, one, N, 1000) == N && chain_intact(h, two, N, 5000) == N, "chains intact");
    VERIFY(h);
    env_close(&e);
}

/* The same, but old cannot take young even after the full collection: the
 * collection reports exhaustion, young keeps its live objects (in eden, the
 * from- and the to-survivor), the heap stays verifiable and, once handles are
 * released, usable. Then: old is full of live data, so the padded average of
 * promotions exceeds what old has left, and young collections are skipped
 * ("Pause Young" with nothing copied, then "Pause Full"), as JDK 17 does. */
static void test_promotion_failure_exhausted(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    mh_handle big[48];
    int nbig = 0;
    while (nbig < 46 && (big[nbig] = mh_alloc(h, 0, 40 * 1024)) >= 0)
        nbig++;
    enum { N = 600 };
    mh_handle one = make_chain(h, N, 500, 1000);
    mh_handle two = make_chain(h, N, 500, 5000);
    CHECK(mh_collect(h, 0) == MH_ERROR && mh_last_error(h) == MH_E_EXHAUSTED, "exhausted: %s",
          mh_last_error_message(h));
    CHECK(e.promotion_failures == 1 && e.full_right_after == 1, "failed, then full");
    CHECK(chain_intact(h, one, N, 1000) == N && chain_intact(h, two, N, 5000) == N, "chains intact");
    VERIFY(h);
    /* allocation fails cleanly while young cannot be emptied */
    mh_handle x = mh_alloc(h, 0, 600 * 1024);
    CHECK(x == MH_ERROR, "no room");
    VERIFY(h);
    for (int i = 0; i < nbig; i++)
        mh_release(h, big[i]);
    CHECK(mh_collect(h, 0) == 0, "after releasing: %s", mh_last_error_message(h));
    CHECK(mh_eden_used(h) == 0 && mh_survivor_used(h) == 0, "young emptied");
    CHECK(chain_intact(h, one, N, 1000) == N && chain_intact(h, two, N, 5000) == N, "chains intact");
    VERIFY(h);

    /* young collections that promote a lot build up the padded average... */
    mh_release(h, one);
    mh_release(h, two);
    mh_collect(h, 1);
    int skipped_before = e.young_skipped, full_before = e.full_events;
    mh_handle keep[64];
    int nkeep = 0;
    for (int round = 0; round < 64 && nkeep < 64; round++) {
        keep[nkeep++] = make_chain(h, 200, 400, 100000 + (uint64_t)round * 200);
        mh_collect(h, 0);
        mh_collect(h, 0);
        mh_collect(h, 0);
        mh_collect(h, 0); /* tenuring threshold 3: promoted by now */
        if (e.young_skipped > skipped_before)
            break;
    }
    /* ... until old cannot take it: the young collection is skipped, a full one runs */
    CHECK(e.young_skipped > skipped_before && e.full_events > full_before,
          "young collections skipped: %d, full: %d", e.young_skipped - skipped_before,
          e.full_events - full_before);
    /* a skipped young collection promoted nothing, and JDK 17 samples that 0 like any other young
     * collection's promotions (TenuredGeneration::update_gc_stats): the next one finds a lower
     * padded average */
    uint64_t padded_at_skip = e.young_last.promotion_average;
    uint32_t skipped_id = e.young_last.id;
    for (int i = 0; i < nkeep; i += 2)
        mh_release(h, keep[i]);
    mh_collect(h, 1); /* old has room again and young is empty: the next young collection is tried */
    mh_collect(h, 0);
    CHECK(e.young_last.id > skipped_id && e.young_last.promotion_average < padded_at_skip,
          "padded average in GC(%u), after the skipped GC(%u): %llu, at the skip: %llu", e.young_last.id,
          skipped_id, (unsigned long long)e.young_last.promotion_average,
          (unsigned long long)padded_at_skip);
    for (int i = 1; i < nkeep; i += 2)
        CHECK(chain_intact(h, keep[i], 200, 100000 + (uint64_t)i * 200) == 200, "chain %d", i);
    VERIFY(h);
    env_close(&e);
}

/* HotSpot's adaptive tenuring threshold: survivors that fill more than half a
 * survivor space lower the threshold, so they are promoted after one copy
 * instead of being copied back and forth; a small survivor set keeps the
 * configured maximum (3 here). */
static void test_adaptive_tenuring(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    mh_handle small = make_chain(h, 20, 500, 1); /* 10 KiB of the 128 KiB survivor space */
    for (int gc = 1; gc <= 3; gc++) {
        CHECK(mh_collect(h, 0) == 0, "young");
        CHECK(e.last.tenuring_threshold == 3, "GC %d: threshold %u, expected the maximum 3", gc,
              e.last.tenuring_threshold);
    }
    CHECK(mh_space_of(h, small) == 1 && mh_age(h, small) == 3, "small survivors age in the survivor space");
    mh_handle big = make_chain(h, 200, 500, 100); /* 100 KiB: more than half of it */
    CHECK(mh_collect(h, 0) == 0 && mh_space_of(h, big) == 1, "first copy: a survivor");
    CHECK(mh_collect(h, 0) == 0, "young");
    CHECK(e.last.tenuring_threshold == 1, "the threshold dropped to 1: %u", e.last.tenuring_threshold);
    CHECK(mh_space_of(h, big) == 2 && chain_intact(h, big, 200, 100) == 200, "promoted after one copy");
    CHECK(mh_space_of(h, small) == 2 && chain_intact(h, small, 20, 1) == 20, "the older ones too");
    CHECK(mh_collect(h, 0) == 0 && mh_collect(h, 0) == 0 && e.last.tenuring_threshold == 3,
          "back to the maximum once the survivor space is quiet: %u", e.last.tenuring_threshold);
    VERIFY(h);
    env_close(&e);
}

/* Random mutator: allocations, stores, loads, releases and both kinds of
 * collection, checked against the model. */
static void test_random_mutator(int colored, uint64_t seed, int steps, int pressure)
{
    env e;
    mh_heap *h = env_open_with(&e, colored, pressure ? 3 * MiB : 8 * MiB, NULL);
    if (!h)
        return;
    rng_state = seed;
    srandom((unsigned)seed);
    e.commit_fail_percent = pressure ? (getenv("MH_TEST_COMMIT_FAIL") ? atoi(getenv("MH_TEST_COMMIT_FAIL")) : 5) : 0;
    model m;
    model_init(&m, pressure ? 2000000 : 400000);
    /* pressure: many roots, mostly allocation: the live set nears the heap
     * size, so guarantees fail, survivors overflow and the heap runs out */
    const int K = pressure ? 6000 : 64;
    const uint64_t p_alloc = pressure ? 55 : 35, p_store = pressure ? 80 : 70, p_load = 92;
    mh_handle *roots = malloc(sizeof *roots * (size_t)K);
    for (int i = 0; i < K; i++)
        roots[i] = MH_NULL_HANDLE;
    uint64_t next = 1;
    int bad = 0, exhausted = 0, commit_failed = 0;
    for (int step = 0; step < steps && next + 2 < m.cap; step++) {
        int k = (int)(rnd() % K);
        uint64_t op = rnd() % 100;
        if (op < p_alloc) {
            uint32_t nrefs = (uint32_t)(rnd() % (MAXREFS + 1));
            uint32_t nbytes = rnd() % 50 == 0 ? 2000 + (uint32_t)(rnd() % 3000)
                                              : 8 + (uint32_t)(rnd() % (pressure ? 600 : 100));
            if (rnd() % 2000 == 0)
                nbytes = 40 * 1024; /* humongous now and then */
            mh_handle x = new_object(h, nrefs, nbytes, next);
            if (x < 0) {
                CHECK(mh_last_error(h) == MH_E_EXHAUSTED || mh_last_error(h) == MH_E_COMMIT,
                      "alloc: %s", mh_last_error_message(h));
                if (mh_last_error(h) == MH_E_COMMIT) {
                    commit_failed++;
                    continue;
                }
                exhausted++;
                if (getenv("MH_DEBUG_EXH") && exhausted < 40) {
                    int live = 0; for (int i = 0; i < K; i++) live += roots[i] >= 0;
                    fprintf(stderr, "exh step %d nbytes %u roots %d eden %llu surv %llu old %llu: %s\n", step, nbytes, live,
                        (unsigned long long)mh_eden_used(h), (unsigned long long)mh_survivor_used(h), (unsigned long long)mh_old_used(h), mh_last_error_message(h));
                }
                for (int i = 0; i < K; i += 2)
                    if (roots[i] >= 0) {
                        mh_release(h, roots[i]);
                        roots[i] = MH_NULL_HANDLE;
                    }
                continue;
            }
            m.nrefs[next] = nrefs;
            next++;
            if (roots[k] >= 0)
                mh_release(h, roots[k]);
            roots[k] = x;
        } else if (op < p_store) {
            int j = (int)(rnd() % K);
            if (roots[k] < 0 || m.nrefs[payload_id(h, roots[k])] == 0)
                continue;
            uint64_t id = payload_id(h, roots[k]);
            uint32_t s = (uint32_t)(rnd() % m.nrefs[id]);
            CHECK(mh_store(h, roots[k], s, roots[j]) == 0, "store: %s", mh_last_error_message(h));
            m.child[id * MAXREFS + s] = roots[j] >= 0 ? payload_id(h, roots[j]) : 0;
        } else if (op < p_load) {
            int j = (int)(rnd() % K);
            if (roots[k] < 0 || m.nrefs[payload_id(h, roots[k])] == 0)
                continue;
            uint64_t id = payload_id(h, roots[k]);
            uint32_t s = (uint32_t)(rnd() % m.nrefs[id]);
            mh_handle y = mh_load(h, roots[k], s);
            uint64_t got = y >= 0 ? payload_id(h, y) : 0;
            if (got != m.child[id * MAXREFS + s] && bad++ == 0)
                fprintf(stderr, "load %" PRIu64 ".%u = %" PRIu64 ", model %" PRIu64 "\n", id, s, got,
                        m.child[id * MAXREFS + s]);
            if (roots[j] >= 0)
                mh_release(h, roots[j]);
            roots[j] = y;
        } else if (op < 97) {
            if (roots[k] >= 0)
                mh_release(h, roots[k]);
            roots[k] = MH_NULL_HANDLE;
        } else if (pressure && rnd() % 20 != 0) {
            continue; /* pressure: collections come from allocation failures */
        } else if (op < 99) {
            CHECK(mh_collect(h, 0) == 0 || mh_last_error(h) == MH_E_EXHAUSTED || mh_last_error(h) == MH_E_COMMIT,
                  "young: %s",
                  mh_last_error_message(h));
        } else {
            CHECK(mh_collect(h, 1) == 0 || mh_last_error(h) == MH_E_EXHAUSTED || mh_last_error(h) == MH_E_COMMIT,
                  "full: %s",
                  mh_last_error_message(h));
        }
        if (step % 5000 == 0) {
            graph_check(h, &m, roots, K, &bad);
            VERIFY(h);
        }
    }
    graph_check(h, &m, roots, K, &bad);
    VERIFY(h);
    CHECK(bad == 0, "%d mismatches with the model (seed %" PRIu64 ")", bad, seed);
    CHECK(e.young_events + e.full_events > 10 && (pressure || e.full_events > 3),
          "collections: %d young, %d full", e.young_events, e.full_events);
    free(roots);
    if (colored)
        CHECK(mh_get_stats(h)->loads_slow > 0, "the load barrier took its slow path");
    fprintf(stderr, "  random mutator (colored %d, seed %" PRIu64 ", pressure %d): %d steps, %" PRIu64
                    " objects, %d young, %d full, %d exhausted, %d refused commits, loads fast/slow %" PRIu64 "/%" PRIu64 "\n",
            colored, seed, pressure, steps, next - 1, e.young_events, e.full_events, exhausted, commit_failed,
            mh_get_stats(h)->loads_fast, mh_get_stats(h)->loads_slow);
    model_free(&m);
    env_close(&e);
}

/* Coloured mode: a full GC evacuates a sparse region; a holder's slot keeps
 * the stale colour until a load heals it. */
static void test_events(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    for (int i = 0; i < 20000; i++)
        mh_release(h, new_object(h, 0, 100, 1));
    CHECK(e.young_events >= 1 && e.last.cause == MH_CAUSE_ALLOCATION_FAILURE, "allocation failure GC");
    CHECK(e.last.eden_before > 0 && e.last.eden_after == 0 && e.last.capacity == 4 * MiB, "event figures");
    CHECK(e.last.eden_capacity == 12 * 64 * KiB && e.last.survivor_capacity == 2 * 64 * KiB &&
              e.last.old_capacity == 48 * 64 * KiB, "capacities");
    CHECK(e.last.ns_total > 0 && e.last.ns_total >= e.last.ns_evacuate, "timing");
    mh_collect(h, 1);
    CHECK(e.last.cause == MH_CAUSE_EXPLICIT && e.last.kind == MH_GC_FULL && e.last.ns_mark > 0, "full event");
    CHECK(e.last.id == (uint32_t)e.events - 1, "ids count up");
    const mh_stats *s = mh_get_stats(h);
    CHECK(s->young_collections + s->full_collections == (uint64_t)e.events && s->max_pause_ns > 0 &&
              s->total_pause_ns >= s->max_pause_ns, "stats");
    env_close(&e);
}

/* ---- holding the heap: mh_lock / mh_unlock ------------------------------ */

typedef struct lock_probe {
    mh_heap *heap;
    volatile int done;
    mh_handle got;
} lock_probe;

static void *lock_probe_thread(void *arg)
{
    lock_probe *p = arg;
    p->got = mh_alloc(p->heap, 1, 8); /* waits while the main thread holds the heap */
    __atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_lock(int colored)
{
    env e;
    mh_heap *h = env_open(&e, colored);
    if (!h)
        return;
    mh_unlock(h);
    CHECK(mh_last_error(h) == MH_E_BAD_ARGUMENT &&
              strstr(mh_last_error_message(h), "mh_unlock without a matching mh_lock"),
          "unlock without lock: %s", mh_last_error_message(h));
    mh_lock(h);
    mh_lock(h); /* holds nest */
    mh_handle a = new_object(h, 2, 8, 1), b = new_object(h, 0, 8, 2);
    CHECK(a >= 0 && b >= 0 && mh_store(h, a, 0, b) == 0, "calls inside a hold: %s", mh_last_error_message(h));
    CHECK(mh_collect(h, 0) == 0 && mh_collect(h, 1) == 0, "collections inside a hold");
    mh_handle c = mh_load(h, a, 0);
    CHECK(c >= 0 && payload_id(h, c) == 2, "the graph survives collections inside a hold");
    CHECK(mh_load(h, a, 9) == MH_ERROR && mh_last_error(h) == MH_E_BAD_SLOT, "errors inside a hold");
    mh_unlock(h);

    /* still held once: another thread's call waits for the last mh_unlock */
    pthread_t t;
    lock_probe p = {h, 0, MH_ERROR};
    CHECK(pthread_create(&t, NULL, lock_probe_thread, &p) == 0, "pthread_create");
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK(__atomic_load_n(&p.done, __ATOMIC_SEQ_CST) == 0, "another thread entered a held heap");
    mh_unlock(h);
    pthread_join(t, NULL);
    CHECK(p.done == 1 && p.got >= 0, "the waiting thread ran after mh_unlock: %s", mh_last_error_message(h));
    mh_unlock(h);
    CHECK(mh_last_error(h) == MH_E_BAD_ARGUMENT, "one mh_unlock too many is refused");
    CHECK(mh_alloc(h, 0, 8) >= 0, "the heap is usable after a refused mh_unlock");
    VERIFY(h);
    mh_lock(h); /* freeing a heap still held lets go of it */
    env_close(&e);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "broken-cards") == 0) {
        int ok = test_cards(0, 1);
        printf("broken-cards: %s\n", ok ? "the missing card mark was caught" : "NOT CAUGHT");
        return ok ? 0 : 1;
    }
    if (argc > 5 && strcmp(argv[1], "mutator") == 0) { /* mutator COLORED SEED STEPS PRESSURE */
        test_random_mutator(atoi(argv[2]), strtoull(argv[3], NULL, 10), atoi(argv[4]), atoi(argv[5]));
        printf("%d checks, %d failures\n", checks, failures);
        return failures ? 1 : 0;
    }
    if (argc > 1 && strcmp(argv[1], "promotion") == 0) {
        test_promotion_failure(0);
        test_promotion_failure_exhausted(0);
        printf("%d checks, %d failures\n", checks, failures);
        return failures ? 1 : 0;
    }
    int steps = argc > 1 ? atoi(argv[1]) : 60000;
    test_config_errors();
    /* The serial collector has one view: the coloured views are the zgc collector's (test_zgc.c). */
    {
        int colored = 0;
        test_roundtrip(colored);
        test_bad_input(colored);
        test_young_graph(colored);
        test_ageing(colored);
        test_survivor_overflow(colored);
        test_cards(colored, 0);
        test_full_reclaims(colored);
        test_humongous(colored);
        test_exhausted(colored);
        test_commit_failure(colored);
        test_promotion_failure(colored);
        test_promotion_failure_exhausted(colored);
        test_adaptive_tenuring(colored);
        test_events(colored);
        test_random_mutator(colored, 1, steps, 0);
        test_random_mutator(colored, 12345, steps, 0);
        test_random_mutator(colored, 7, steps, 1);
        test_random_mutator(colored, 99, steps, 1);
    }
    {
        int colored = 0;
        test_lock(colored);
        hold_heaps = 1;
        test_roundtrip(colored);
        test_bad_input(colored);
        test_cards(colored, 0);
        test_commit_failure(colored);
        test_promotion_failure(colored);
        test_random_mutator(colored, 5, steps / 2, 1);
        hold_heaps = 0;
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
