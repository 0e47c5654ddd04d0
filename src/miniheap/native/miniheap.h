/*
 * miniheap.h: the embedder API of the miniheap heap and collector.
 *
 * The heap lives in memory that the embedder (Python, or a C benchmark) has
 * already reserved and mapped: this library never calls the kernel and never
 * prints. It learns about memory through mh_config (where each view of the
 * heap is mapped) and asks the embedder to commit or uncommit regions through
 * callbacks. It reports collections through an event record handed to a
 * listener.
 *
 * Every call may come from any thread: each takes the heap's lock, so calls
 * from several threads are serialized (a collection runs with the lock held).
 * A C mutator that makes millions of calls can hold the heap across a run of
 * them with mh_lock / mh_unlock: calls by the holding thread then skip the
 * lock (a load and a compare instead of a mutex), and other threads wait.
 *
 * THE CALLBACK CONTRACT. Callbacks run on the thread whose call needed them,
 * with the heap held.
 *  - commit / uncommit run in the middle of an allocation or a collection:
 *    the heap is half done. Only statistics may be read (mh_get_stats,
 *    mh_used and the other occupancy calls, mh_last_error); every other call
 *    fails with MH_E_BUSY.
 *  - on_gc runs after a collection, with the heap whole: read-only calls work
 *    (mh_verify, mh_nrefs, mh_nbytes, mh_age, mh_space_of, mh_same,
 *    mh_read_payload, mh_peek_slot, mh_handle_ref, mh_region_info...);
 *    anything that changes the heap (mh_alloc, mh_collect, mh_store, mh_load,
 *    mh_dup, mh_write_payload, mh_payload) fails with MH_E_BUSY. So no
 *    collection can start inside another, and the event record is not
 *    overwritten while the listener reads it.
 *  - In any callback, mh_release is never refused: the handle is dead at once
 *    and goes back to the free list when the call that ran the callback
 *    returns (a language runtime's finalizers may run inside a callback).
 *  - In any callback, mh_heap_close (and mh_heap_free) is deferred: the call
 *    that ran the callback finishes, closes the heap and fails with
 *    MH_E_CLOSED. mh_interrupt makes that call fail with MH_E_INTERRUPTED
 *    (a signal arrived; the embedder raises it once the call has returned);
 *    a commit callback that interrupts has failed, whatever it returns.
 *
 * THE TEARDOWN CONTRACT. mh_heap_close stops the collector (a concurrent
 * collector's threads, before anything is freed), waits for a call in
 * progress on another thread, frees every table and marks the heap closed:
 * threads waiting to enter a call, and every later call, fail with
 * MH_E_CLOSED (never a hang, never freed memory). The small heap record stays
 * until mh_heap_free, which the embedder calls once no thread can call into
 * the heap any more (after joining them, or when its own handle object dies).
 * A thread holding the heap with mh_lock may close it and must still
 * mh_unlock (or mh_heap_free) it. An attached mutator record
 * (miniheap-inline.h) holds the heap too, so another thread's close waits for
 * its mh_mutator_detach; a close by the record's own thread turns the record's
 * fast path off (its allocations fail with MH_E_CLOSED; references it still
 * holds point into memory the embedder is about to unmap: do not use them),
 * and the record lives until mh_mutator_detach or mh_heap_free. Closing from a
 * C signal handler is not async-signal-safe: set a flag there and close from
 * the thread.
 *
 * Roots are handles: small integers naming slots of a handle table that the
 * collector updates when objects move. A mutator never holds a raw address
 * across an allocation or a collection. Every call validates its arguments.
 *
 * C mutators that make millions of allocations, loads and stores use the
 * inline fast path of miniheap-inline.h instead (C only, not parsed by cffi):
 * a per-thread mutator record, bump allocation, a store with its card mark and
 * a load with its colour test, all inline, with roots in a shadow stack.
 *
 * The text between the cdef markers is read by cffi (src/miniheap/_build.py),
 * so it holds only declarations cffi can parse: no #include, no macros other
 * than integer #defines.
 */
#ifndef MINIHEAP_H
#define MINIHEAP_H

#include <stddef.h>
#include <stdint.h>

/* cdef-begin */

/* A reference as stored in the heap and handed to the embedder: the address
 * of the object's header in one of the heap's views. In the coloured layout
 * the view (and so the colour) is selected by high address bits; 0 is null. */
typedef uint64_t mh_ref;

/* An object is one header word, then its reference slots, then its payload:
 * the first slot is MH_HEADER_BYTES after the object's address. */
#define MH_HEADER_BYTES 8

/* A root: an index into the heap's handle table. */
typedef int32_t mh_handle;

/* Limits mh_heap_new accepts (src/miniheap/config.py repeats them; a test checks they agree). */
#define MH_MAX_HEAP_SIZE 4398046511104   /* 4 TiB */
#define MH_MAX_REGION_SIZE 1073741824    /* 1 GiB; the least is 64 KiB */
#define MH_MAX_HANDLES 67108864          /* 2^26 */

#define MH_NULL_HANDLE -1        /* a load of a null slot */
/* Error returns of the calls that return a reference or an offset: no reference
 * or offset is all ones (views sit below 2^47, offsets below MH_MAX_HEAP_SIZE). */
#define MH_BAD_REF 0xffffffffffffffff
#define MH_BAD_OFFSET 0xffffffffffffffff
#define MH_ERROR -2              /* the call failed: see mh_last_error() */

/* Error codes kept by mh_last_error(). */
#define MH_OK 0
#define MH_E_EXHAUSTED 1         /* no space even after a full collection */
#define MH_E_COMMIT 2            /* the embedder could not commit a region */
#define MH_E_TOO_LARGE 3         /* object larger than the heap can ever hold */
#define MH_E_BAD_HANDLE 4        /* handle released, out of range or never issued */
#define MH_E_BAD_SLOT 5          /* reference slot index out of range */
#define MH_E_BAD_CONFIG 6        /* mh_heap_new: inconsistent configuration */
#define MH_E_NO_MEMORY 7         /* malloc of collector metadata failed */
#define MH_E_NO_HANDLES 8        /* the handle table is full: release handles or raise max_handles */
#define MH_E_VERIFY 9            /* mh_verify found a broken invariant */
#define MH_E_BUSY 10             /* a callback re-entered the heap during a collection */
#define MH_E_BAD_ARGUMENT 11     /* another argument out of range (region index, reference) */
#define MH_E_CLOSED 12           /* the heap was closed (mh_heap_close), before or during the call */
#define MH_E_INTERRUPTED 13      /* a callback of this call called mh_interrupt */

#define MH_CLOSE_DEFERRED 1      /* mh_heap_close inside a callback: done when the call returns */

/* Colours of the coloured layout (ZGC, JDK 11-17). In the single-view layout
 * every reference has colour MH_COLOR_NONE and the load barrier always takes
 * its fast path. */
#define MH_COLOR_MARKED0 0
#define MH_COLOR_MARKED1 1
#define MH_COLOR_REMAPPED 2
#define MH_COLOR_NONE 3

/* How references are laid out (mh_config.colored; core/color.h says more). */
#define MH_VIEWS_ONE 0           /* one view; a reference is the address (serial) */
#define MH_VIEWS_MULTI 1         /* three views, one per colour; colour bit | offset (JDK 11-23 ZGC) */
#define MH_VIEWS_LOW_BITS 2      /* one view at a single-bit base; address << 16 | colour (JDK 21+ ZGC) */
#define MH_LOW_BITS_SHIFT 16     /* MH_VIEWS_LOW_BITS: address = ref >> 16 */
#define MH_LOW_BITS_COLOR0 4096  /* MH_VIEWS_LOW_BITS: Marked0's bit (12); Marked1 13, Remapped 14 */

/* Why a collection ran. */
#define MH_CAUSE_ALLOCATION_FAILURE 0
#define MH_CAUSE_EXPLICIT 1
/* zgc's causes, as JDK 17 names them (its director's rules, zgc/zdirector.c) */
#define MH_CAUSE_WARMUP 3                 /* "Warmup": used passed 10, 20, 30 % before 3 cycles */
#define MH_CAUSE_ALLOCATION_RATE 4        /* "Allocation Rate": memory would run out before a cycle ends */
#define MH_CAUSE_PROACTIVE 5              /* "Proactive": cheap enough to run now */
#define MH_CAUSE_ALLOCATION_STALL 6       /* "Allocation Stall": a mutator is waiting for memory */
#define MH_CAUSE_HIGH_USAGE 7             /* "High Usage": less than 5 % free */
#define MH_CAUSE_TIMER 8                  /* "Timer": collection_interval_ms passed */

/* Kinds of event (mh_gc_event.kind). */
#define MH_GC_YOUNG 0
#define MH_GC_FULL 1
#define MH_GC_ZGC 2                /* a zgc cycle: its pauses and concurrent phases in phases[] */
#define MH_GC_ALLOCATION_STALL 3   /* not a collection: a mutator waited ns_total for a page */
#define MH_GC_RELOCATION_STALL 4   /* a mutator waited ns_total for the GC thread to relocate a page */

/* Which collector a heap runs (mh_config.collector). */
#define MH_COLLECTOR_SERIAL 0    /* generational copying, stop-the-world (SerialGC's shape) */
#define MH_COLLECTOR_ZGC 1       /* concurrent mark and relocation (JDK 17's ZGC) */

/* Which thread ran a phase of a collection. */
#define MH_THREAD_MUTATOR 0      /* a mutator, inside one of its calls */
#define MH_THREAD_GC 1           /* the collector's own thread */

/* Where an object lives (mh_space_of). */
#define MH_SPACE_EDEN 0
#define MH_SPACE_SURVIVOR 1
#define MH_SPACE_OLD 2
#define MH_SPACE_HUMONGOUS 3
#define MH_SPACE_SMALL 4         /* zgc: a small page */
#define MH_SPACE_MEDIUM 5        /* zgc: a medium page */
#define MH_SPACE_LARGE 6         /* zgc: a large page of its own */

typedef struct mh_heap mh_heap;

/* One phase of a collection, as the JDK's log names it ("Pause Young",
 * "Pause Mark Start", "Concurrent Mark", ...). Times are CLOCK_MONOTONIC
 * nanoseconds. */
typedef struct mh_gc_phase {
    const char *name;             /* static storage */
    uint64_t start_ns;
    uint64_t duration_ns;
    int32_t pause;                /* 1: the mutators were stopped; 0: concurrent */
    int32_t thread;               /* MH_THREAD_* */
} mh_gc_phase;

typedef struct mh_gc_event {
    uint32_t id;                  /* GC(n): 0, 1, 2, ... over young and full */
    int32_t kind;                 /* MH_GC_YOUNG or MH_GC_FULL */
    int32_t cause;                /* MH_CAUSE_* */
    int32_t good_color;           /* after the collection */
    uint64_t capacity;            /* heap size in bytes */
    uint64_t used_before, used_after;          /* whole heap */
    uint64_t eden_before, eden_after;
    uint64_t survivor_before, survivor_after;  /* the from-survivor (and the to-survivor after a
                                                  failed promotion) */
    uint64_t old_before, old_after;
    uint64_t eden_capacity, survivor_capacity, old_capacity;
    uint64_t objects_copied;
    uint64_t bytes_copied;        /* all bytes moved by this collection */
    uint64_t bytes_promoted;      /* bytes moved from young into old */
    uint64_t bytes_marked;        /* full GC: live bytes found by marking */
    uint32_t regions_evacuated;   /* full GC: old regions in the evacuation set */
    uint32_t regions_freed;       /* regions returned to the free list (and uncommitted) */
    uint32_t cards_scanned;       /* young GC: dirty cards scanned for old-to-young refs */
    uint32_t tenuring_threshold;  /* the age at which this collection promoted */
    uint32_t tenuring_threshold_new; /* young GC: the threshold the next one uses, computed from
                                        this one's ages (HotSpot's "new threshold"); unchanged
                                        after a failed promotion */
    uint64_t bytes_by_age[16];    /* young GC: surviving bytes per age after the collection */
    uint64_t survivor_overflow_bytes; /* young GC: promoted early because to-space was full */
    uint64_t survivor_desired;    /* young GC: the survivor bytes the new threshold aims at,
                                     TargetSurvivorRatio (50%) of a survivor space */
    /* Promotion policy (HotSpot Serial): a young collection starts only if old can take the
     * padded average of promoted bytes or all of young; otherwise it is skipped (young_skipped,
     * nothing copied) and a full collection follows. If old runs out anyway, the objects that
     * could not be promoted stay where they are ("Promotion failed") and a full collection
     * follows. */
    uint64_t promotion_available; /* young GC: bytes old could take when it started */
    uint64_t promotion_average;   /* young GC: padded average of promoted bytes, then */
    uint32_t young_skipped;       /* young GC: 1 if not attempted (old too full) */
    uint32_t promotion_failed_objects; /* young GC: objects that could not be promoted */
    uint64_t promotion_failed_bytes;
    uint64_t ns_total;
    uint64_t ns_roots;            /* roots (handles) */
    uint64_t ns_cards;            /* young: card scanning */
    uint64_t ns_mark;             /* full: marking */
    uint64_t ns_evacuate;         /* copying (young: the Cheney scan; full: evacuation) */
    uint64_t ns_remap;            /* full: fixing references to moved objects */
    int32_t collector;            /* MH_COLLECTOR_* */
    uint32_t nphases;             /* phases[0..nphases) in the order they ran */
    uint64_t start_ns;            /* CLOCK_MONOTONIC at the collection's start */
    mh_gc_phase phases[16];
    /* zgc cycles: the figures of JDK 17's gc,heap and gc,reloc log lines */
    uint64_t used_at[4];          /* bytes in pages at Mark Start, Mark End, Relocate Start, Relocate End */
    uint64_t used_high, used_low; /* highest and lowest during the cycle */
    uint64_t reclaimed_at[4];     /* pages freed minus relocation targets taken, since Mark Start */
    uint64_t live;                /* bytes marked */
    uint32_t pages[3];            /* small, medium, large pages Select looked at */
    uint32_t relocated_pages[3];  /* ... and put in the relocation set */
    uint64_t page_bytes[3];
    uint64_t empty_bytes[3];      /* ... freed because nothing on them was marked */
    uint64_t relocated_bytes[3];  /* live bytes of the relocation set */
    uint64_t forwarding_bytes;    /* the relocation set's forwarding tables */
    uint64_t mark_stack_bytes;
    uint64_t objects_relocated_by_gc, bytes_relocated_by_gc;
    uint64_t objects_relocated_by_mutator, bytes_relocated_by_mutator;
    uint64_t loads_slow;          /* mutator loads that took the barrier's slow path during the cycle */
    uint64_t objects_marked_by_mutator;
    uint32_t mark_ends;           /* Pause Mark End attempts (more than 1: Concurrent Mark Continue) */
    uint32_t gc_workers;          /* threads that did the collector's work: 1 */
} mh_gc_event;

typedef struct mh_stats {
    uint64_t young_collections;
    uint64_t full_collections;
    uint64_t objects_allocated;   /* mh_alloc calls (the inline path counts nothing per object) */
    uint64_t bytes_allocated;     /* from the bump pointer when a collection starts or stats are read */
    uint64_t bytes_copied;
    uint64_t bytes_promoted;
    uint64_t total_pause_ns;
    uint64_t max_pause_ns;
    uint64_t loads_fast;          /* load barrier (handle API): reference already had the good colour */
    uint64_t loads_slow;          /* load barrier: bad colour, slow path taken */
    uint64_t loads_healed;        /* slow path stored a good reference back into the field */
    uint64_t stores;              /* reference stores through the write barrier (handle API) */
    uint64_t handles_live;
    uint64_t regions_committed;
    uint64_t commit_failures;
    uint64_t pauses;              /* stop-the-world pauses (serial: one per collection) */
    uint64_t concurrent_ns;       /* zgc: time in concurrent phases */
    uint64_t zgc_cycles;
    uint64_t objects_relocated_by_gc;
    uint64_t objects_relocated_by_mutator;   /* copied by a mutator's load barrier */
    uint64_t allocation_stalls, allocation_stall_ns, max_allocation_stall_ns;
    uint64_t relocation_stalls, relocation_stall_ns;
    uint64_t events_dropped;      /* events nobody delivered before the ring filled */
    uint64_t view_protects;       /* verify_views: protect calls made (2 per flip, plus commits) */
    uint64_t view_protect_ns;     /* ... and the time they took: the mode's cost */
    uint64_t view_protect_failures; /* ... that failed (mh_verify reports them) */
} mh_stats;

typedef struct mh_config {
    uint64_t heap_size;           /* bytes: a multiple of region_size */
    uint64_t region_size;         /* bytes: a power of two, >= 64 KiB (2 MiB suggested) */
    uint64_t young_size;          /* bytes: eden + two survivors, a multiple of region_size */
    uint32_t survivor_ratio;      /* eden : one survivor, as -XX:SurvivorRatio (>= 1) */
    uint32_t tenuring_threshold;  /* promote at this age (0..15), as -XX:MaxTenuringThreshold */
    int32_t colored;              /* MH_VIEWS_*: 0 one view (serial), 1 three coloured views (zgc),
                                     2 one view with the colour in the references' low bits (zgc) */
    uint32_t max_handles;         /* size of the handle table (roots) */
    /* Where each view starts. One view: view_base[0] (with the colour in the
     * low bits, a single bit not below heap_size and at most 1<<47, e.g.
     * 1<<42, so that base | offset is the address and fits above the 16 colour
     * bits). Three views: indexed by MH_COLOR_MARKED0/1/REMAPPED; each base is
     * one colour bit (e.g. 1<<42, 1<<43, 1<<44) so a colour is read from the
     * pointer with a mask. */
    uint64_t view_base[3];
    /* Make [offset, offset+length) of the heap usable (commit) or give it back
     * (uncommit). Return 0 on success, -1 on failure (the heap then treats the
     * region as unavailable). NULL callbacks mean "always committed". */
    int (*commit)(void *ctx, uint64_t offset, uint64_t length);
    int (*uncommit)(void *ctx, uint64_t offset, uint64_t length);
    /* Called after every collection, outside the pause timing. May be NULL. */
    void (*on_gc)(void *ctx, const mh_gc_event *event);
    void *ctx;
    /* Nonzero: commit the whole heap at creation and never uncommit, as the
     * JDK does with -Xms equal to -Xmx and -XX:+AlwaysPreTouch (the embedder
     * touches the pages): no commit inside a pause. */
    int32_t keep_committed;
    /* MH_COLLECTOR_SERIAL (0, the default) or MH_COLLECTOR_ZGC. zgc needs
     * coloured references (colored = MH_VIEWS_MULTI or MH_VIEWS_LOW_BITS) and ignores young_size, survivor_ratio
     * and tenuring_threshold. */
    int32_t collector;
    /* zgc: 1 runs no GC thread: a cycle runs on the mutator that needs it
     * (mh_collect, an allocation that finds no page), whole. For tests, which
     * also drive the phases one by one. */
    int32_t stepping;
    /* zgc: start a cycle at least this often, in milliseconds (the director's
     * Timer rule, -XX:ZCollectionInterval); 0 turns the rule off. */
    uint32_t collection_interval_ms;
    /* zgc: 1 turns on verify-views, as HotSpot's -XX:+ZVerifyViews does (a diagnostic flag of
     * the multi-mapped ZGC, e.g. JDK 17's): only the good colour's view is accessible; the other
     * two are PROT_NONE from one flip of the good colour to the next, so a dereference of a
     * reference that skipped the load barrier (a stale colour) faults at once (SIGSEGV) instead
     * of reading memory that may be out of date. Needs the coloured views and protect. */
    int32_t verify_views;
    /* Change the protection of [addr, addr+length) of a view to prot (MH_PROT_NONE or
     * MH_PROT_READ_WRITE); 0 on success. The collector never calls the kernel itself, and this
     * is called in pauses, possibly on the GC thread, which must never run the embedder's
     * runtime: so it must be plain C, safe on any thread. libc's mprotect is exactly that (the
     * MH_PROT_* values are Linux's PROT_*). Called for each whole view at each flip (one call
     * per view that changes, whatever is committed: no mapping is split) and, for the two bad
     * views, over each range the commit callback has just committed (an embedder whose commit
     * maps or unprotects all views would otherwise open them). */
    int (*protect)(void *addr, size_t length, int prot);
} mh_config;

/* mh_config.protect's prot values: Linux's PROT_NONE and PROT_READ|PROT_WRITE. */
#define MH_PROT_NONE 0
#define MH_PROT_READ_WRITE 3

/* Lifecycle. mh_heap_new fills err (NUL-terminated, at most errlen bytes)
 * and returns NULL when the configuration is inconsistent. mh_heap_close
 * returns 0 (closed now, or already), MH_CLOSE_DEFERRED inside a callback, or
 * MH_ERROR for no heap. mh_heap_free closes if needed, then frees the record
 * (inside a callback it only closes, deferred: free it after the call). See
 * the teardown contract above. */
mh_heap *mh_heap_new(const mh_config *config, char *err, size_t errlen);
int mh_heap_close(mh_heap *heap);
void mh_heap_free(mh_heap *heap);
/* From inside a callback: make the call that ran it fail with MH_E_INTERRUPTED. */
void mh_interrupt(mh_heap *heap);

/* Hold the heap across a run of calls: a C mutator that makes millions of
 * calls takes it once. Calls by the holding thread do not touch the mutex
 * again (the heap records which thread holds it); calls from other threads
 * wait until the holder has called mh_unlock as many times as mh_lock. Holds
 * nest. mh_unlock without a matching mh_lock on this thread changes nothing
 * and sets MH_E_BAD_ARGUMENT. Do not hold a heap while waiting for another
 * thread that uses it. */
void mh_lock(mh_heap *heap);
void mh_unlock(mh_heap *heap);

/* The last error of this heap: an MH_E_* code, and a sentence that says
 * what was wrong and what is allowed. */
int mh_last_error(mh_heap *heap);
const char *mh_last_error_message(mh_heap *heap);

/* Allocation: an object of nrefs reference slots (all null) and nbytes of
 * zeroed payload. Returns a new handle, or MH_ERROR. May collect. */
mh_handle mh_alloc(mh_heap *heap, uint32_t nrefs, uint32_t nbytes);

/* Handles. */
mh_handle mh_dup(mh_heap *heap, mh_handle handle);
int mh_release(mh_heap *heap, mh_handle handle);          /* 0, or MH_ERROR */
int mh_handle_valid(mh_heap *heap, mh_handle handle);      /* 1 or 0 */
mh_ref mh_handle_ref(mh_heap *heap, mh_handle handle);     /* 0 when invalid */
int mh_same(mh_heap *heap, mh_handle a, mh_handle b);      /* same object: 1, 0, or MH_ERROR */

/* Field access, with the barriers. mh_load returns a new handle, or
 * MH_NULL_HANDLE for a null slot, or MH_ERROR. value may be MH_NULL_HANDLE. */
mh_handle mh_load(mh_heap *heap, mh_handle object, uint32_t slot);
int mh_store(mh_heap *heap, mh_handle object, uint32_t slot, mh_handle value);
/* Replace a handle's referent by the object in one of its slots, without
 * creating a new handle (a cheap "cursor" for walking lists and trees).
 * Returns 1 if the slot held an object, 0 if it was null (handle unchanged),
 * or MH_ERROR. */
int mh_load_into(mh_heap *heap, mh_handle object, uint32_t slot, mh_handle dest);

/* Shape and payload. The payload pointer is valid only until the next call
 * that may allocate or collect. */
int64_t mh_nrefs(mh_heap *heap, mh_handle object);        /* or MH_ERROR */
int64_t mh_nbytes(mh_heap *heap, mh_handle object);       /* or MH_ERROR */
uint8_t *mh_payload(mh_heap *heap, mh_handle object);     /* NULL on error */
int mh_age(mh_heap *heap, mh_handle object);              /* or MH_ERROR */
/* Copy [offset, offset+length) of the payload out or in, bounds-checked and
 * under the heap's lock: 0, or MH_ERROR. */
int mh_read_payload(mh_heap *heap, mh_handle object, uint64_t offset, void *dst, uint64_t length);
int mh_write_payload(mh_heap *heap, mh_handle object, uint64_t offset, const void *src,
                     uint64_t length);
/* Which space holds the object: MH_SPACE_*, or MH_ERROR. */
int mh_space_of(mh_heap *heap, mh_handle object);

/* Collections. full = 0: young; 1: full. Returns 0, or MH_ERROR. zgc runs a
 * whole cycle either way and returns when one that started after the call
 * has completed (System.gc()). */
int mh_collect(mh_heap *heap, int full);

/* Hand events the GC thread has finished to on_gc now (each public call
 * does so on its way in). */
void mh_drain_events(mh_heap *heap);

/* Counters and occupancy. */
const mh_stats *mh_get_stats(mh_heap *heap);
uint64_t mh_used(mh_heap *heap);
uint64_t mh_eden_used(mh_heap *heap);
uint64_t mh_survivor_used(mh_heap *heap);
uint64_t mh_old_used(mh_heap *heap);
int mh_good_color(mh_heap *heap);
int mh_collector_kind(mh_heap *heap);                    /* MH_COLLECTOR_*, or MH_ERROR */
uint32_t mh_region_count(mh_heap *heap);
/* Region state, for teaching outputs: 0 free, 1 eden, 2 survivor-from,
 * 3 survivor-to, 4 old, 5 humongous start, 6 humongous continuation;
 * used bytes through *used. */
int mh_region_info(mh_heap *heap, uint32_t region, uint64_t *used);
/* Every region from this index on is free, uncommitted and holds nothing (so a
 * listing of a 4 TiB heap need not ask about two million regions one by one). */
uint32_t mh_regions_in_use(mh_heap *heap);

/* Check every invariant (headers, references inside the heap and at object
 * starts, card marks for old-to-young references, colours). Returns 0 when
 * all hold; otherwise the number of problems, the first described by
 * mh_last_error_message(); MH_ERROR when nothing could be checked (no heap,
 * busy, or MH_E_NO_MEMORY for its scratch bitmap). Never crashes on a corrupt
 * heap it can detect. Its work and scratch memory follow the regions in use. */
int mh_verify(mh_heap *heap);

/* Teaching and testing the coloured layout. mh_peek_slot returns the raw
 * reference stored in a slot, WITHOUT the load barrier (so a stale colour is
 * visible before a load heals it): 0 for a null slot, MH_BAD_REF on error.
 * mh_ref_color gives a reference's colour (MH_COLOR_NONE for null and in the
 * single view, or MH_ERROR); mh_ref_offset its heap offset, or MH_BAD_OFFSET
 * (for null too, or a reference into no view of this heap); mh_ref_address
 * the address it is dereferenced at (core/color.h's ref_addr: the reference
 * itself when multi-mapped, ref >> 16 with the colour in the low bits), or 0. */
mh_ref mh_peek_slot(mh_heap *heap, mh_handle object, uint32_t slot);
int mh_ref_color(mh_heap *heap, mh_ref ref);
uint64_t mh_ref_offset(mh_heap *heap, mh_ref ref);
uint64_t mh_ref_address(mh_heap *heap, mh_ref ref);

/* The table of functions the C-level Python Ref calls (miniheap-pyapi.h, C
 * only): Python hands its address to miniheap._ref at import. */
const void *mh_python_api(void);

/* cdef-end */

#endif
