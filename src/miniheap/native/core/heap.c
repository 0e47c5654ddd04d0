/*
 * heap.c: the heap's life cycle, configuration checks, collection policy
 * entry points, errors, statistics and events.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "internal.h"
#include "mutator.h"
#include "poison.h"
#include "side.h"
#include "safepoint.h"

static const char no_heap_message[] =
    "no heap: the heap pointer is NULL or the heap was freed; create one with mh_heap_new";
static const char closed_message[] =
    "the heap is closed (mh_heap_close): its objects and handles are gone; create a new heap";

uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The last error is also kept per thread, as errno is: with several threads
 * on one heap, each reads back its own failure, not another thread's. */
static _Thread_local const mh_heap *error_heap;
static _Thread_local int error_code;
static _Thread_local char error_message[MH_MESSAGE_LEN];

void heap_error(mh_heap *h, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->message, sizeof h->message, fmt, ap);
    va_end(ap);
    h->error = code;
    error_heap = h;
    error_code = code;
    memcpy(error_message, h->message, sizeof error_message);
}

/* Take the mutex, or count one more hold if this thread has it already. */
mh_heap *heap_lock(mh_heap *h)
{
    if (!heap_ok(h))
        return NULL;
    if (heap_held(h)) {
        h->holds++;
        return h;
    }
    safepoint_wait(h); /* a pending pause goes first */
    pthread_mutex_lock(&h->lock);
    __atomic_store_n(&h->owner, thread_id(), __ATOMIC_RELAXED);
    h->holds = 1;
    h->user_holds = 0;
    if (heap_ok(h)) /* closed while this thread waited: nothing to poll (teardown.c) */
        heap_poll(h);
    return h;
}

mh_heap *heap_trylock(mh_heap *h)
{
    if (!heap_ok(h))
        return NULL;
    if (heap_held(h)) {
        h->holds++;
        return h;
    }
    if (pthread_mutex_trylock(&h->lock) != 0)
        return NULL;
    __atomic_store_n(&h->owner, thread_id(), __ATOMIC_RELAXED);
    h->holds = 1;
    h->user_holds = 0;
    return h;
}

void heap_unlock(mh_heap *h)
{
    if (h && --h->holds == 0) {
        __atomic_store_n(&h->owner, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&h->lock);
    }
}

MH_API void mh_lock(mh_heap *h)
{
    if (heap_lock(h))
        h->user_holds++;
}

MH_API void mh_unlock(mh_heap *h)
{
    if (!heap_ok(h) && !heap_closed(h)) /* a holder may close its heap, then unlock it */
        return;
    if (!heap_held(h) || h->user_holds == 0) {
        heap_error(h, MH_E_BAD_ARGUMENT,
                   "mh_unlock without a matching mh_lock: this thread does not hold the heap; "
                   "call mh_unlock once per mh_lock, on the thread that called mh_lock");
        return;
    }
    h->user_holds--;
    heap_unlock(h);
}

static void heap_lock_init(mh_heap *h)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    /* never re-taken by its holder (heap_held sees to that); recursive all the same */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h->lock, &attr);
    pthread_mutexattr_destroy(&attr);
}

bool heap_busy_error(mh_heap *h)
{
    if (h->busy & (BUSY_GC | BUSY_CALLBACK))
        heap_error(h, MH_E_BUSY,
                   "the heap is busy with a collection: a commit or uncommit callback called back "
                   "into it; callbacks may only read statistics (mh_get_stats, mh_used) and "
                   "release handles (queued until the call returns); defer the call until the "
                   "collection has returned");
    else
        heap_error(h, MH_E_BUSY,
                   "the heap is reporting a collection: an on_gc callback may read the heap "
                   "(mh_verify, mh_nrefs, mh_read_payload...) and release handles, but not "
                   "allocate, collect, store or load; defer the call until on_gc has returned");
    return false;
}

/* Calls a commit or uncommit callback with the heap marked busy (a callback
 * must not re-enter it). During the call the range is the embedder's to touch.
 * A range committed holds no object yet and is poisoned (embedder_commit); one
 * uncommitted stays the embedder's, unpoisoned, so poisoned shadow never
 * reaches past the regions committed (a 4 TiB heap has 512 GiB of shadow). */
static int embedder_call(mh_heap *h, int (*callback)(void *, uint64_t, uint64_t),
                         uint64_t offset, uint64_t length)
{
    if (!callback)
        return 0;
    uint8_t busy = h->busy;
    h->busy |= BUSY_CALLBACK;
    space_unpoison(h, offset, length);
    int rc = callback(h->config.ctx, offset, length);
    h->busy = busy;
    /* an interrupted commit has failed, whatever the callback returned */
    return (h->deferred & DEFER_INTERRUPT) && rc == 0 && callback == h->config.commit ? -1 : rc;
}

int embedder_commit(mh_heap *h, uint64_t offset, uint64_t length)
{
    int rc = embedder_call(h, h->config.commit, offset, length);
    if (rc == 0)
        space_poison(h, offset, length); /* committed: no object there yet */
    return rc;
}

int embedder_uncommit(mh_heap *h, uint64_t offset, uint64_t length)
{
    return embedder_call(h, h->config.uncommit, offset, length);
}

/* ---- configuration ---------------------------------------------------- */

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

#define BAD(...)                                                  \
    do {                                                          \
        if (err && errlen)                                        \
            snprintf(err, errlen, __VA_ARGS__);                   \
        return false;                                             \
    } while (0)

static bool views_valid(const mh_config *c, char *err, size_t errlen)
{
    if (c->verify_views != 0 && c->verify_views != 1)
        BAD("verify_views %d must be 0 (every view accessible) or 1 (only the good colour's view)",
            c->verify_views);
    if (c->verify_views && c->colored != MH_VIEWS_MULTI)
        BAD("verify_views needs the three multi-mapped views (colored = MH_VIEWS_MULTI): it closes "
            "the views of the colours that are not good, and one view has no other to close; set "
            "verify_views = 0");
    if (c->verify_views && !c->protect)
        BAD("verify_views needs a protect hook (mh_config.protect): the collector never calls the "
            "kernel; pass libc's mprotect");
    if (c->colored == MH_VIEWS_LOW_BITS) {
        uint64_t b = c->view_base[0];
        if (!is_pow2(b) || b < c->heap_size || b > (1ull << 47))
            BAD("colour in the low bits: view_base[0] 0x%llx must be a single bit (a power of two) "
                "not below heap_size %llu and at most 1<<47, so that the address shifted left by "
                "16 fits in 64 bits, e.g. 1<<42", (unsigned long long)b,
                (unsigned long long)c->heap_size);
        return true;
    }
    if (c->colored == MH_VIEWS_ONE) {
        if (c->view_base[0] == 0 || c->view_base[0] % c->region_size)
            BAD("view_base[0] 0x%llx must be non-zero and aligned to region_size %llu; pass the "
                "address where the embedder mapped the heap",
                (unsigned long long)c->view_base[0], (unsigned long long)c->region_size);
        if (c->view_base[0] + c->heap_size < c->view_base[0])
            BAD("view_base[0] 0x%llx + heap_size wraps around the address space",
                (unsigned long long)c->view_base[0]);
        return true;
    }
    for (int i = 0; i < 3; i++) {
        uint64_t b = c->view_base[i];
        if (!is_pow2(b) || b < c->heap_size || b > (1ull << 62))
            BAD("coloured layout: view_base[%d] 0x%llx must be a single bit (a power of two) not "
                "below heap_size %llu, so the colour can be read from the pointer, e.g. 1<<42, "
                "1<<43, 1<<44", i, (unsigned long long)b, (unsigned long long)c->heap_size);
        for (int j = 0; j < i; j++)
            if (c->view_base[j] == b)
                BAD("coloured layout: view_base[%d] and view_base[%d] are both 0x%llx; each "
                    "colour needs its own view", j, i, (unsigned long long)b);
    }
    return true;
}

/* The collector a configuration asks for, or NULL. */
static const mh_collector *collector_of(const mh_config *c)
{
    switch (c->collector) {
    case MH_COLLECTOR_SERIAL:
        return &serial_collector;
    case MH_COLLECTOR_ZGC:
        return &zgc_collector;
    default:
        return NULL;
    }
}

static bool config_valid(const mh_config *c, char *err, size_t errlen)
{
    if (!c)
        BAD("config is NULL; pass a filled mh_config");
    if (!is_pow2(c->region_size) || c->region_size < (64u << 10) || c->region_size > MH_MAX_REGION_SIZE)
        BAD("region_size %llu must be a power of two between 64 KiB and 1 GiB (2 MiB suggested)",
            (unsigned long long)c->region_size);
    if (c->heap_size == 0 || c->heap_size % c->region_size || c->heap_size > MH_MAX_HEAP_SIZE)
        BAD("heap_size %llu must be a non-zero multiple of region_size %llu, at most 4 TiB "
            "(MH_MAX_HEAP_SIZE)",
            (unsigned long long)c->heap_size, (unsigned long long)c->region_size);
    if (c->colored != MH_VIEWS_ONE && c->colored != MH_VIEWS_MULTI && c->colored != MH_VIEWS_LOW_BITS)
        BAD("colored %d must be 0 (one view, MH_VIEWS_ONE), 1 (three coloured views, "
            "MH_VIEWS_MULTI) or 2 (one view, the colour in the low bits, MH_VIEWS_LOW_BITS)",
            c->colored);
    if (c->max_handles < 1 || c->max_handles > MH_MAX_HANDLES)
        BAD("max_handles %u must be between 1 and %u (MH_MAX_HANDLES)", c->max_handles, MH_MAX_HANDLES);
    if (!collector_of(c))
        BAD("collector %d is not a collector: MH_COLLECTOR_SERIAL (0) or MH_COLLECTOR_ZGC (1)",
            c->collector);
    return views_valid(c, err, errlen) && collector_of(c)->config_valid(c, err, errlen);
}

static void heap_geometry(mh_heap *h, const mh_config *c)
{
    h->config = *c;
    h->heap_size = c->heap_size;
    h->region_size = c->region_size;
    h->region_shift = (unsigned)__builtin_ctzll(c->region_size);
    h->nregions = (uint32_t)(c->heap_size >> h->region_shift);

    views_init(&h->views, c->colored, c->view_base);
    h->views.verify = c->verify_views;
    views_set_good(&h->views, MH_COLOR_REMAPPED); /* nothing for one uncoloured view */
}

/* Everything but the record and its lock (mh_heap_close, teardown.c). */
void heap_release_contents(mh_heap *h)
{
    if (h->collector)
        h->collector->release(h);
    side_free_all(h);
    handles_free(h);
    mutators_close(h); /* attached records stay until the record is freed */
    events_free(h);
}

/* The record itself, once nothing can call into it (teardown.c). */
void heap_free_record(mh_heap *h)
{
    if (h->collector && h->collector->free_record)
        h->collector->free_record(h);
    mutators_free(h); /* records still attached when the heap is freed */
    safepoint_destroy(h);
    pthread_mutex_destroy(&h->lock);
    if (error_heap == h)
        error_heap = NULL;
    __atomic_store_n(&h->magic, 0, __ATOMIC_RELAXED);
    free(h);
}

static void heap_release(mh_heap *h)
{
    heap_release_contents(h);
    heap_free_record(h);
}

MH_API mh_heap *mh_heap_new(const mh_config *config, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!config_valid(config, err, errlen))
        return NULL;
    mh_heap *h = calloc(1, sizeof *h);
    if (!h) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory for the heap record");
        return NULL;
    }
    heap_lock_init(h);
    heap_geometry(h, config);
    h->release_pending = HANDLE_END;
    /* a collector that keeps no bound on the regions it uses walks them all (serial lowers these) */
    h->used_end = h->committed_end = h->poisoned_end = h->nregions;
    if (safepoint_init(h) || events_init(h) || handles_init(h) || side_init(h)) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory for the handle table or the event ring (%u handles, about %llu "
                     "bytes); lower max_handles", config->max_handles,
                     (unsigned long long)config->max_handles * 12);
        heap_release(h);
        return NULL;
    }
    h->collector = collector_of(config);
    if (h->collector->init(h, err, errlen) != 0) {
        heap_release(h);
        return NULL;
    }
    h->magic = MH_HEAP_MAGIC;
    if (h->collector->start(h, err, errlen) != 0) {
        h->magic = 0;
        heap_release(h);
        return NULL;
    }
    return h;
}

MH_API int mh_last_error(mh_heap *h)
{
    if (heap_closed(h))
        return MH_E_CLOSED;
    if (!heap_ok(h))
        return MH_E_BAD_CONFIG;
    return error_heap == h ? error_code : h->error;
}

MH_API const char *mh_last_error_message(mh_heap *h)
{
    if (heap_closed(h))
        return closed_message;
    if (!heap_ok(h))
        return no_heap_message;
    return error_heap == h ? error_message : h->message;
}

/* ---- collections and events ------------------------------------------- */

int mh_collect_unlocked(mh_heap *h, int full)
{
    if (!heap_enter(h))
        return MH_ERROR;
    int rc = h->collector->collect(h, full);
    return call_end(h) ? rc : MH_ERROR;
}

/* ---- occupancy -------------------------------------------------------- */

static inline const mh_stats *mh_get_stats_unlocked(mh_heap *h)
{
    if (!heap_ok(h))
        return NULL;
    h->stats.bytes_allocated = h->bytes_retired + (h->eden_top - h->eden_mark);
    return &h->stats;
}
MH_LOCKED(const mh_stats *, mh_get_stats, (mh_heap *h), (h)) /* hot: benchmarks read it per call */
uint64_t mh_eden_used_unlocked(mh_heap *h) { return heap_ok(h) ? h->eden_top : 0; }
uint64_t mh_survivor_used_unlocked(mh_heap *h) { return heap_ok(h) ? h->from_top + h->to_top : 0; }
uint64_t mh_old_used_unlocked(mh_heap *h) { return heap_ok(h) ? h->old_used : 0; }
/* Taking the heap delivers pending events already (heap_lock's poll). */
MH_API void mh_drain_events(mh_heap *h)
{
    mh_heap *locked = heap_lock(h);
    /* (closed while this thread waited for the lock: the ring is gone) */
    if (locked && heap_ok(locked) && !locked->busy)
        heap_events_deliver(locked);
    heap_unlock(locked);
}

uint64_t mh_used_unlocked(mh_heap *h) { return heap_ok(h) ? h->collector->used(h) : 0; }
int mh_collector_kind_unlocked(mh_heap *h) { return heap_ok(h) ? h->collector->kind : MH_ERROR; }
int mh_good_color_unlocked(mh_heap *h) { return heap_ok(h) ? h->views.good : MH_ERROR; }
uint32_t mh_region_count_unlocked(mh_heap *h) { return heap_ok(h) ? h->nregions : 0; }
uint32_t mh_regions_in_use_unlocked(mh_heap *h) { return heap_ok(h) ? h->collector->regions_in_use(h) : 0; }

int mh_region_info_unlocked(mh_heap *h, uint32_t region, uint64_t *used)
{
    if (!heap_ok(h))
        return MH_ERROR;
    if (region >= h->nregions) {
        heap_error(h, MH_E_BAD_ARGUMENT, "region %u is out of range: the heap has %u regions, "
                   "0..%u (see mh_region_count)", region, h->nregions, h->nregions - 1);
        return MH_ERROR;
    }
    uint64_t u = 0;
    int state = h->collector->region_info(h, region, &u);
    if (used)
        *used = u;
    return state;
}
