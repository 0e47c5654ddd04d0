/*
 * internal.h: the heap record shared by the collector's files, and the
 * functions they offer each other.
 */
#ifndef MH_INTERNAL_H
#define MH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include "miniheap.h"
#include "miniheap-inline.h" /* the mutator record; before the pragma: its functions are exported */

/* Everything declared from here on (the rest of this header, the core's other
 * headers and files, which include system headers before this one) is
 * private to the shared object: calls between the core's files are direct,
 * not through the PLT. The definitions of the public functions say MH_API
 * (MH_LOCKED does it for them), so they stay exported. */
#pragma GCC visibility push(hidden)
#define MH_API __attribute__((visibility("default")))

#include "color.h"
#include "object.h"
#include "region.h"
#include "collector.h"

#define MH_HEAP_MAGIC 0x6d696e6968656170ull  /* "miniheap": open */
#define MH_HEAP_CLOSED 0x636c6f7365642e2eull /* "closed..": mh_heap_close ran; the record stays until mh_heap_free */

/* h->busy: why the heap refuses calls now (see the contract in miniheap.h) */
#define BUSY_GC 1u        /* a collection is running: only statistics may be read */
#define BUSY_CALLBACK 2u  /* a commit or uncommit callback is running: the same */
#define BUSY_LISTENER 4u  /* on_gc is running: read-only calls work, nothing may change the heap */

/* h->deferred: what a callback asked for that happens when the call that ran it ends (heap_call_end) */
#define DEFER_RELEASE 1u   /* handles released inside a callback, queued on release_pending */
#define DEFER_CLOSE 2u     /* mh_heap_close (or mh_heap_free) called inside a callback */
#define DEFER_INTERRUPT 4u /* mh_interrupt: the call fails with MH_E_INTERRUPTED */
#define MH_MESSAGE_LEN 384

typedef struct mh_fwd_table mh_fwd_table;

/* The padded average of the bytes young collections promote (serial/promotion.c). */
typedef struct mh_promotion_stats {
    double average, deviation, padded;
    uint32_t samples;
} mh_promotion_stats;

typedef struct zheap zheap;

struct mh_heap {
    uint64_t magic;
    mh_config config;
    mh_views views;
    const mh_collector *collector; /* chosen at mh_heap_new (core/collector.h) */
    zheap *z;                      /* the zgc collector's state (zgc/zgc.h), NULL for serial */
    uint64_t card_from;            /* a store into a slot at or above this offset marks its card
                                      (serial: the end of young; zgc: never) */

    /* geometry */
    uint64_t heap_size;
    uint64_t region_size;
    unsigned region_shift;
    uint32_t nregions;
    mh_region *regions;           /* calloc'd: pages above regions_end() are never touched */
    uint32_t free_regions;        /* old-generation regions in state FREE */
    /* Work and metadata follow the regions in use, not the reservation: every
     * region at or above regions_end() is free, uncommitted and has no side
     * tables, so loops over regions stop there (a 4 TiB heap holding 64 MiB
     * walks 40 regions, not two million). */
    uint32_t used_end;            /* 1 + the highest old or humongous region in use */
    uint32_t committed_end;       /* 1 + the highest committed region */
    uint32_t fwd_end;             /* 1 + the highest region that may have a forwarding table */
    uint32_t poisoned_end;        /* sanitizer builds: no region at or above this was ever poisoned */
    void **side;                  /* per region: its block of side tables, while committed (side.h) */
    size_t side_bytes;            /* the size of one block */

    /* young generation: eden [0, eden_end), then survivor A, then survivor B */
    uint32_t young_regions, eden_regions, survivor_regions;
    uint64_t eden_end;
    uint64_t eden_top;
    uint64_t young_end;
    uint64_t survivor_size;
    uint64_t survivor_base[2];
    int from;                     /* which of survivor_base is the from-space */
    uint64_t from_top;            /* bytes used in the from-survivor */
    uint64_t to_top;              /* bytes used in the to-survivor: 0 except after a failed
                                     promotion, until the full collection that follows */
    uint64_t young_max_size;      /* bound on any young object's size: promotion tail waste */
    uint64_t small_max;           /* mh_alloc's fast path: objects up to this size */
    uint32_t tenuring_threshold;
    mh_promotion_stats promotion; /* what young collections promote (serial/promotion.c) */
    bool young_unsafe;            /* HotSpot's incremental_collection_failed: the next
                                     collection for an allocation is a full one */

    /* old generation */
    uint64_t old_used;
    int32_t promo_region;         /* old region receiving copies, or -1 */
    int32_t *reserved;            /* regions taken ahead of copying */
    uint32_t nreserved, reserved_used;
    int32_t *scan_regions;        /* young GC: regions promoted into, in order (Cheney queue) */
    uint32_t nscan;

    /* remembered set */
    uint8_t *cards;               /* flat, calloc'd: touched for the regions in use only */
    size_t bot_side;              /* where a region's block-offset table is in its side block:
                                     per card, the region-relative word of the object covering
                                     its first byte */

    /* full GC */
    size_t mark_side;             /* where a region's mark bitmap is in its side block */
    mh_ref *mark_stack;
    size_t mark_top, mark_cap;
    bool mark_overflow;
    mh_fwd_table **fwd;           /* per region: forwarding of the last evacuation, or NULL */
    uint64_t last_live;           /* bytes marked by the last full GC */

    /* roots: the handles, and the shadow stacks of the attached mutator records */
    struct mh_mutator *mutators;  /* attached records (core/mutator.c), a list */
    uint32_t mutator_calls;       /* calls in progress that took the records' buffer back */
    mh_ref *handles;
    int32_t *handle_next;         /* free list; HANDLE_LIVE marks a handle in use */
    int32_t handle_free;
    uint32_t max_handles;
    uint32_t handle_hwm;          /* no handle at or above this index was ever issued */

    /* reporting */
    uint64_t bytes_retired;       /* allocated before eden's bump pointer last restarted */
    uint64_t eden_mark;           /* eden_top when it last restarted: allocated since = eden_top - it */
    mh_stats stats;
    mh_gc_event ev;
    uint32_t gc_count;
    bool last_gc_full;
    uint8_t busy;                 /* BUSY_*: inside a collection, a commit/uncommit callback, or on_gc */
    uint8_t deferred;             /* DEFER_*: to do when the call that ran a callback ends */
    int32_t release_pending;      /* queued releases, threaded through handle_next (handles.c) */
    bool stopped;                 /* mh_heap_close has called the collector's stop hook (teardown.c) */
    int error;                    /* the last error on this heap (also kept per thread) */
    char message[MH_MESSAGE_LEN];
    pthread_mutex_t lock;         /* taken by a public call unless this thread holds the heap */
    uintptr_t owner;              /* thread_id() of the thread holding lock, 0 when none (atomic) */
    uint32_t holds;               /* nested holds by the owner (public calls and mh_lock) */
    uint32_t user_holds;          /* of which taken by mh_lock and not yet given back */

    /* safepoints and events from other threads (safepoint.h, events.c) */
    uint32_t attention;           /* MH_ATTN_* (atomic): something for the holder to do at a poll */
    pthread_mutex_t sp_lock;
    pthread_cond_t sp_cond;       /* a safepoint ended */
    pthread_mutex_t event_lock;
    mh_gc_event *ring;            /* events waiting for delivery */
    uint32_t ring_head, ring_count;
    uint64_t ring_dropped;
};

#define MH_LIKELY(x) __builtin_expect(!!(x), 1)
#define MH_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* heap.c */
void heap_error(mh_heap *h, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool heap_busy_error(mh_heap *h);

/* An open heap. (A closed one keeps its record, with magic MH_HEAP_CLOSED, until mh_heap_free:
 * a thread that was waiting for the lock when it closed reads that, never freed memory.) */
static inline bool heap_ok(const mh_heap *h)
{
    return h && __atomic_load_n(&h->magic, __ATOMIC_RELAXED) == MH_HEAP_MAGIC;
}

/* Every call that may change the heap goes through here: a callback must not
 * re-enter the heap while a collection is half done, nor change it from on_gc. */
static inline bool heap_enter(mh_heap *h)
{
    if (MH_UNLIKELY(!heap_ok(h)))
        return false;
    if (MH_UNLIKELY(h->busy))
        return heap_busy_error(h);
    return true;
}

/* Read-only calls: refused only while a collection or a commit callback has
 * the heap half done; allowed in on_gc, where the heap is whole again. */
static inline bool heap_enter_read(mh_heap *h)
{
    if (MH_UNLIKELY(!heap_ok(h)))
        return false;
    if (MH_UNLIKELY(h->busy & (BUSY_GC | BUSY_CALLBACK)))
        return heap_busy_error(h);
    return true;
}

/* teardown.c: the end of a call that may have run callbacks (mh_heap_new,
 * an allocation's slow path, mh_collect): queued releases, a deferred close
 * and an interrupt happen here. False when the call must fail (closed or
 * interrupted; the error is set). Call only when h->deferred is nonzero. */
bool heap_call_end(mh_heap *h);
static inline bool call_end(mh_heap *h)
{
    return MH_LIKELY(!h->deferred) || heap_call_end(h);
}
void heap_release_contents(mh_heap *h); /* heap.c: every table, not the record or its lock */
void heap_free_record(mh_heap *h);

static inline bool heap_closed(const mh_heap *h)
{
    return h && __atomic_load_n(&h->magic, __ATOMIC_RELAXED) == MH_HEAP_CLOSED;
}

/* ---- the heap's lock --------------------------------------------------
 * A thread holds the heap while one of its public calls runs, or between
 * mh_lock and mh_unlock. h->owner names the holder; only the holder writes
 * it (to itself when it takes the mutex, to 0 before it lets go), so a
 * thread that reads its own id there is the holder, whatever the others do:
 * it then enters without touching the mutex (a relaxed load and a compare).
 * Anyone else takes the mutex. */
static inline uintptr_t thread_id(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 11
    return (uintptr_t)__builtin_thread_pointer(); /* the TCB: one per live thread */
#else
    return (uintptr_t)pthread_self();
#endif
}

static inline bool heap_held(const mh_heap *h)
{
    return h && __atomic_load_n(&h->owner, __ATOMIC_RELAXED) == thread_id();
}

/* Take the heap (NULL if h is no heap); heap_unlock gives one hold back. */
mh_heap *heap_lock(mh_heap *h);
/* The same if the heap is free (or held by this thread already); NULL at once otherwise. */
mh_heap *heap_trylock(mh_heap *h);
void heap_unlock(mh_heap *h);

/* At a poll, something for the holder to do: a pause to stop for, events to
 * deliver (safepoint.h). */
void heap_attend(mh_heap *h);

/* A public function: when this thread already holds the heap, straight to
 * the implementation; otherwise under the lock. A thread that holds the heap
 * may have a mutator record attached (core/mutator.h): its allocation pointer
 * comes back into the heap record for the call, and goes out again after.
 * Either way the call begins with a poll (one load and a branch): a pending
 * pause to stop for, or events to deliver (safepoint.h). */
void mutators_retire_slow(mh_heap *h);
void mutators_refill_slow(mh_heap *h);
#define MH_LOCKED(ret, name, params, args)                    \
    MH_API ret name params                                    \
    {                                                         \
        if (MH_LIKELY(heap_held(h))) {                        \
            if (MH_LIKELY(h->mutators == NULL)) {             \
                if (MH_UNLIKELY(__atomic_load_n(&h->attention, __ATOMIC_ACQUIRE))) \
                    heap_attend(h);                           \
                return name##_unlocked args;                  \
            }                                                 \
            mutators_retire_slow(h);                          \
            if (MH_UNLIKELY(__atomic_load_n(&h->attention, __ATOMIC_ACQUIRE))) \
                heap_attend(h);                               \
            ret held_ = name##_unlocked args;                 \
            mutators_refill_slow(h);                          \
            return held_;                                     \
        }                                                     \
        mh_heap *locked_ = heap_lock(h);                      \
        ret result_ = name##_unlocked args;                   \
        heap_unlock(locked_);                                 \
        return result_;                                       \
    }

/* The public functions without the lock; api.c wraps each in it. (The hot
 * ones, mh_alloc, mh_dup, mh_release, mh_load, mh_load_into, mh_store,
 * mh_payload and mh_get_stats, are static in their files, which wrap them.) */
int mh_handle_valid_unlocked(mh_heap *h, mh_handle x);
mh_ref mh_handle_ref_unlocked(mh_heap *h, mh_handle x);
int mh_same_unlocked(mh_heap *h, mh_handle a, mh_handle b);
mh_ref mh_peek_slot_unlocked(mh_heap *h, mh_handle x, uint32_t slot);
int64_t mh_nrefs_unlocked(mh_heap *h, mh_handle x);
int64_t mh_nbytes_unlocked(mh_heap *h, mh_handle x);
int mh_age_unlocked(mh_heap *h, mh_handle x);
int mh_space_of_unlocked(mh_heap *h, mh_handle x);
int mh_ref_color_unlocked(mh_heap *h, mh_ref ref);
uint64_t mh_ref_offset_unlocked(mh_heap *h, mh_ref ref);
uint64_t mh_ref_address_unlocked(mh_heap *h, mh_ref ref);
int mh_collect_unlocked(mh_heap *h, int full);
int mh_collector_kind_unlocked(mh_heap *h);
uint64_t mh_used_unlocked(mh_heap *h);
uint64_t mh_eden_used_unlocked(mh_heap *h);
uint64_t mh_survivor_used_unlocked(mh_heap *h);
uint64_t mh_old_used_unlocked(mh_heap *h);
int mh_good_color_unlocked(mh_heap *h);
uint32_t mh_region_count_unlocked(mh_heap *h);
uint32_t mh_regions_in_use_unlocked(mh_heap *h);
int mh_region_info_unlocked(mh_heap *h, uint32_t region, uint64_t *used);
int mh_verify_unlocked(mh_heap *h);
int mh_read_payload_unlocked(mh_heap *h, mh_handle x, uint64_t offset, void *dst, uint64_t length);
int mh_write_payload_unlocked(mh_heap *h, mh_handle x, uint64_t offset, const void *src,
                              uint64_t length);
uint64_t clock_ns(void);
uint64_t gc_begin(mh_heap *h, int kind, int cause);
void gc_end(mh_heap *h, uint64_t t0);
int embedder_commit(mh_heap *h, uint64_t offset, uint64_t length);
int embedder_uncommit(mh_heap *h, uint64_t offset, uint64_t length);

static inline uint64_t region_base(const mh_heap *h, uint32_t r) { return (uint64_t)r << h->region_shift; }
/* Every region at or above this one is free, uncommitted and without side tables. */
static inline uint32_t regions_end(const mh_heap *h)
{
    return h->used_end > h->committed_end ? h->used_end : h->committed_end;
}
static inline void *region_side(const mh_heap *h, uint32_t r, size_t part)
{
    return (char *)h->side[r] + part;
}
static inline uint32_t region_of(const mh_heap *h, uint64_t offset) { return (uint32_t)(offset >> h->region_shift); }
static inline void *heap_addr(const mh_heap *h, uint64_t offset) { return view_addr(&h->views, offset); }
static inline bool is_young(const mh_heap *h, uint64_t offset) { return offset < h->young_end; }
static inline uint64_t from_base(const mh_heap *h) { return h->survivor_base[h->from]; }
static inline uint64_t to_base(const mh_heap *h) { return h->survivor_base[!h->from]; }
/* Bytes in young: eden, the from-survivor, and the to-survivor after a failed promotion. */
static inline uint64_t young_used(const mh_heap *h) { return h->eden_top + h->from_top + h->to_top; }

/* handles.c */
int handles_init(mh_heap *h);
void handles_free(mh_heap *h);
bool handle_full_error(mh_heap *h);
bool handle_check_error(mh_heap *h, mh_handle x);
void handles_release_queued(mh_heap *h);
void handle_release_now(mh_heap *h, mh_handle x);

#define HANDLE_LIVE (-2)
#define HANDLE_END (-1)
static inline bool handle_live(const mh_heap *h, uint32_t i) { return h->handle_next[i] == HANDLE_LIVE; }

static inline bool handle_available(mh_heap *h)
{
    if (MH_LIKELY(h->handle_free != HANDLE_END))
        return true;
    return handle_full_error(h);
}

/* A live handle (the error, if not, says exactly what is wrong with it). */
static inline bool handle_check(mh_heap *h, mh_handle x)
{
    /* one unsigned compare covers MH_NULL_HANDLE and every negative handle */
    if (MH_LIKELY((uint32_t)x < h->max_handles && handle_live(h, (uint32_t)x)))
        return true;
    return handle_check_error(h, x);
}

static inline mh_handle handle_new(mh_heap *h, mh_ref ref)
{
    if (!handle_available(h))
        return MH_ERROR;
    int32_t i = h->handle_free;
    h->handle_free = h->handle_next[i];
    h->handle_next[i] = HANDLE_LIVE;
    h->handles[i] = ref;
    h->stats.handles_live++;
    if (MH_UNLIKELY((uint32_t)i >= h->handle_hwm))
        h->handle_hwm = (uint32_t)i + 1;
    return i;
}

/* The non-blocking calls of the C-level Python Ref (miniheap-pyapi.h): MH_WOULD_BLOCK when another
 * thread holds the heap, or the call needs a path that may collect. */
mh_handle load_try(mh_heap *h, mh_handle x, uint32_t slot);           /* access.c */
int store_try(mh_heap *h, mh_handle x, uint32_t slot, mh_handle value);
int release_try(mh_heap *h, mh_handle x);                             /* handles.c */

/* alloc.c */
uint64_t old_bump(mh_heap *h, uint64_t size);
/* A new object (eden, or humongous), initialised; may collect. Its offset, or UINT64_MAX (error set). */
uint64_t alloc_object(mh_heap *h, uint32_t nrefs, uint32_t nbytes);

/* young.c / full.c */
int collect_young(mh_heap *h, int cause);
int collect_full(mh_heap *h, int cause);
int collect_compact(mh_heap *h, int cause); /* compact.c: the last resort before exhaustion */

#endif
