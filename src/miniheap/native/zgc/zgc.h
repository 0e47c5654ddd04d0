/*
 * zgc.h: the concurrent collector, modelled on JDK 17's non-generational ZGC.
 *
 * The heap is cut into granules (region_size, 2 MiB as in the JDK) and
 * handed out as pages: small pages of one granule for objects up to an
 * eighth of it, medium pages (when the heap is large enough, sized as
 * JDK 17 sizes them) for objects up to an eighth of a medium page, and a
 * large page of its own for anything bigger.
 *
 * A cycle, with the JDK's phase names (driver.c):
 *
 *   Pause Mark Start          flip the marking colour, mark the roots
 *   Concurrent Mark           the GC thread traces; a mutator's load of a
 *                             bad-coloured reference marks (barrier.c)
 *   Pause Mark End            marking is over unless a mutator still has
 *                             objects to trace (then: Concurrent Mark Continue)
 *   Concurrent Mark Free      the mark stacks' memory
 *   Concurrent Reset Relocation Set   the last cycle's forwarding tables
 *   Concurrent Select Relocation Set  free empty pages, pick sparse ones
 *   Pause Relocate Start      the good colour becomes Remapped; relocate
 *                             what the roots point to
 *   Concurrent Relocate       the GC thread copies the relocation set; a
 *                             mutator's load into it copies the object itself
 *                             if the GC thread has not yet
 *
 * Pauses run at a safepoint (core/safepoint.c) on the GC thread, or in the
 * stepping mode of the tests on the calling thread (zstep.h).
 *
 * What runs concurrently with what, and how each shared word is accessed:
 *   reference fields    mutator stores (release) and loads (acquire); the GC
 *                       thread reads them (acquire) and heals them (CAS)
 *   live map            set by both with an atomic OR
 *   forwarding entries  claimed by both with a CAS (forwarding.h)
 *   the page table      changed under page_lock; its entries are atomic words
 *   everything else     touched by the GC thread only during pauses (it then
 *                       holds the heap, as a mutator would), or by one side only
 */
#ifndef MH_ZGC_H
#define MH_ZGC_H

#include <pthread.h>
#include "internal.h"
#include "zpage.h"
#include "zmarkstack.h"
#include "zforwarding.h"

/* The global phase: which duty the load barrier's slow path does. */
enum zphase {
    ZPHASE_MARK = 0,           /* Mark Start .. Mark End: mark */
    ZPHASE_MARK_COMPLETED,     /* Mark End .. Relocate Start: nothing is stale */
    ZPHASE_RELOCATE,           /* Relocate Start .. next Mark Start: relocate or remap */
};

/* Who is copying an object: the GC thread (or the stepping driver acting
 * for it) into its own target pages, or a mutator into its allocation page. */
enum zworker { ZWORKER_GC = 0, ZWORKER_MUTATOR = 1 };

/* Statistics of one cycle, gathered while it runs, turned into an mh_gc_event. */
typedef struct zcycle {
    uint32_t id;
    int cause;
    uint64_t start_ns;
    uint32_t nphases;
    mh_gc_phase phases[16];
    uint64_t used_at[4];       /* Mark Start, Mark End, Relocate Start, Relocate End */
    uint64_t used_high, used_low;
    uint64_t live_bytes;
    uint64_t reclaimed_at[4];
    uint64_t freed0, gc_allocated0; /* page counters at the cycle's start */
    uint32_t pages[3];         /* small, medium, large pages seen by Select */
    uint64_t page_bytes[3];
    uint64_t empty_bytes[3];
    uint64_t relocate_bytes[3];/* live bytes of the relocation set */
    uint32_t relocate_pages[3];
    uint64_t forwarding_bytes;
    uint64_t mark_stack_bytes;
    uint32_t mark_ends;        /* Pause Mark End attempts */
    uint64_t objects_marked, bytes_marked;
    uint64_t mut_loads_slow0, mut_relocated0, mut_relocated_bytes0, mut_marked0; /* at the start */
    uint64_t gc_relocated, gc_relocated_bytes;
    uint64_t pause_ns_max;
} zcycle;

struct zheap {
    mh_heap *h;
    zpages pages;                /* granules, pages, the allocator (page.h) */

    /* cycle state: written in pauses, read by everyone */
    uint32_t seqnum;             /* Mark Starts so far; a page allocated in cycle n carries n */
    int phase;                   /* enum zphase */
    int mark_color;              /* MH_COLOR_MARKED0/1: good during this cycle's marking */
    int prev_mark_color;         /* the last cycle's (its stale references need remapping) */
    bool cycle_active;           /* between Pause Mark Start and the end of Concurrent Relocate */


    /* marking */
    zmarkstack gc_stack;         /* the GC thread's */
    zmarkstack mut_stack;        /* the mutators' (they hold the heap to use it) */
    zpublished published;        /* chunks the mutators handed over (markstack.h) */
    int mark_overflow;           /* atomic: a push was lost, rescan marked objects */

    /* relocation */
    zforwarding **relocation_set;
    uint32_t nrelocation;
    uint32_t relocate_next;      /* GC thread: next forwarding to relocate */
    uint64_t relocate_cursor;    /* ... and where in its page (stepping: between steps) */
    uint64_t relocation_left[2]; /* live bytes of small, medium pages not relocated yet */
    zforwarding **fwd_of_granule;/* atomic pointers: the forwarding of each granule's page */
    zpage *gc_target[2];         /* the GC thread's target page, small and medium */
    int64_t fit_slack[2];        /* Select: room the set leaves for roots copied first (zrelocate.c) */
    uint64_t root_bytes[2];      /* Relocate Start: bytes of the roots' objects in the set, per type */
    zpage *mut_page[2];          /* the mutators' allocation page, small and medium */

    /* mutator-side counters (atomics: the GC thread reads them) */
    uint64_t mut_loads_slow;
    uint64_t mut_relocated, mut_relocated_bytes;
    uint64_t mut_marked;

    /* the GC thread, the director and requests (thread.c, director.c) */
    int stepping;                /* no GC thread: cycles run on the caller (tests, fallback) */
    pthread_t thread;
    void *stack;                 /* the GC thread's (zthread.c) */
    bool released;               /* the heap was closed: the tables are gone (zcollector.c) */
    bool thread_started;
    pthread_mutex_t ctl_lock;
    pthread_cond_t ctl_cond;     /* requests, cycle ends, memory freed */
    bool stop;
    uint64_t cycles_started, cycles_completed;
    int requested_cause;         /* -1: none */
    uint64_t memory_freed;       /* counts page frees, so a stalled mutator knows to retry */
    uint64_t last_cycle_end_ns, last_tick_ns;
    uint64_t used_after_last;
    double alloc_rate_avg, alloc_rate_sd;        /* bytes/s over the last second */
    double cycle_avg, cycle_var;                 /* decaying, seconds */
    double alloc_samples[10];
    uint32_t nsamples, sample_next;
    uint64_t allocated_at_sample;
    uint64_t warmup_cycles;

    /* test hooks (stepping tests): called by relocate_object between the copy
     * and the forwarding CAS, to interleave a mutator's work in that window */
    void (*after_copy_hook)(mh_heap *h, int worker, uint64_t from, uint64_t to, void *arg);
    void *hook_arg;

    /* the cycle being run */
    zcycle cycle;
    int state;                   /* where the driver stands in it (zdriver.c) */
    uint64_t last_live;          /* bytes marked by the last cycle */
    pthread_mutex_t cycle_lock;  /* held by the GC thread for a whole cycle (verify waits on it) */

    char views_failure[256];     /* verify-views: the first protect call that failed (zviews.c) */
};

static inline zheap *zheap_of(const mh_heap *h) { return h->z; }

/* After a wait with the heap let go (a stall, a pause, collect, verify),
 * another thread may have closed it: then nothing but the record remains,
 * and the call fails with MH_E_CLOSED. */
static inline bool heap_still_open(mh_heap *h)
{
    if (MH_LIKELY(heap_ok(h)))
        return true;
    if (heap_closed(h))
        heap_error(h, MH_E_CLOSED, "the heap was closed while this call waited (for a page, a "
                   "pause or a cycle); its objects and handles are gone; create a new heap");
    return false;
}

/* ---- colours and references ------------------------------------------- */

static inline uint64_t zoff(const mh_heap *h, mh_ref r) { return ref_offset(&h->views, r); }
static inline mh_ref zgood(const mh_heap *h, uint64_t off) { return ref_good(&h->views, off); }

/* ---- the live map (zlivemap.c): each page's own, one bit per 8-byte word -- */

int livemap_alloc(zpage *pg);
void livemap_clear(zpage *pg);
static inline bool livemap_test_page(const zpage *pg, uint64_t off)
{
    uint64_t w = (off - pg->start) >> 3;
    return (__atomic_load_n(&pg->livemap[w >> 6], __ATOMIC_RELAXED) >> (w & 63)) & 1;
}
static inline bool livemap_test(const zheap *z, uint64_t off)
{
    zpage *pg = zpage_of(&z->pages, off);
    return pg && livemap_test_page(pg, off);
}
/* Set the bit; true if this call set it (the caller now owns tracing it). */
static inline bool livemap_set(zpage *pg, uint64_t off)
{
    uint64_t w = (off - pg->start) >> 3, bit = 1ull << (w & 63);
    uint64_t *word = &pg->livemap[w >> 6];
    if (__atomic_load_n(word, __ATOMIC_RELAXED) & bit)
        return false;
    return !(__atomic_fetch_or(word, bit, __ATOMIC_RELAXED) & bit);
}

/* ---- marking (mark.c) -------------------------------------------------- */

/* Whether the object at off is live this cycle: marked, or allocated since
 * Mark Start (an allocating page's objects are live without marking). */
bool zmark_is_live(const zheap *z, uint64_t off);
/* Mark the object if it is not yet; true if this call marked it. */
bool zmark_object(zheap *z, uint64_t off);
/* The good reference for a stale one during marking: remapped through the
 * last cycle's forwarding if it carries the last cycle's marking colour. */
mh_ref zmark_remap(zheap *z, mh_ref stale);
void zmark_start_roots(zheap *z);
/* Trace up to budget objects from the GC stack (0: until empty). Returns
 * whether work remains anywhere the GC thread can see. */
bool zmark_drain(zheap *z, uint64_t budget);
/* Pause Mark End: true when marking is complete. */
bool zmark_try_end(zheap *z);
void zmark_free_stacks(zheap *z);
/* The mutator's duty: mark, remember for tracing, return the good reference. */
mh_ref zmark_barrier(zheap *z, mh_ref stale);

/* ---- relocation (select.c, relocate.c) --------------------------------- */

void zreset_relocation_set(zheap *z);
void zselect_relocation_set(zheap *z);
void zrelocate_prepare_targets(zheap *z);
void zrelocate_note_slack(zheap *z);
void zrelocate_start_roots(zheap *z);
/* Relocate up to budget objects (0: all). Returns whether any remain. */
bool zrelocate_step(zheap *z, uint64_t budget);
void zrelocate_end(zheap *z);
/* The current address of the object a reference of the marking colour names:
 * forwarded, or copied now by this worker if nobody has yet. */
uint64_t zrelocate_or_remap(zheap *z, int worker, uint64_t off);
static inline zforwarding *zforwarding_of(const zheap *z, uint64_t off)
{
    return __atomic_load_n(&z->fwd_of_granule[off >> z->pages.granule_shift], __ATOMIC_ACQUIRE);
}

/* ---- allocation (alloc.c) ---------------------------------------------- */

mh_handle zalloc(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
uint64_t zalloc_object(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
void zmutators_in(mh_heap *h);
void zmutators_out(mh_heap *h);
/* Bump an object of size bytes into the worker's page of the given type;
 * UINT64_MAX if it has none or the object does not fit. */
uint64_t zalloc_bump(zheap *z, zpage *page, uint64_t size);
/* The mutators' non-blocking allocation (for relocation copies); UINT64_MAX if no page. */
uint64_t zalloc_mutator_nonblocking(zheap *z, uint64_t size);
void zalloc_retire_mutator_pages(zheap *z);

/* ---- the cycle (driver.c) ---------------------------------------------- */

/* Run one whole cycle on the calling thread: the GC thread's loop, or, in
 * stepping mode, a mutator (System.gc(), an allocation stall). */
void zdriver_cycle(zheap *z, int cause);
/* Stepping mode: run whatever remains of a cycle the caller left half done. */
void zdriver_finish(zheap *z);
void zdriver_cycle_begin(zheap *z, int cause);
void zdriver_cycle_end(zheap *z);

/* ---- the barrier (zbarrier.c) ------------------------------------------ */

mh_ref zload_slow(mh_heap *h, mh_ref *field, mh_ref stale);

/* ---- the GC thread and its triggers (thread.c, director.c) ------------- */

int zthread_start(mh_heap *h, char *err, size_t errlen);
void zthread_stop(mh_heap *h);
/* Ask for a cycle with this cause and wait (the heap released) until one
 * that started after the request has completed. */
void zthread_collect_and_wait(mh_heap *h, int cause);
/* The director's decision at a tick: an MH_CAUSE_* or -1. */
int zdirector_decide(zheap *z, uint64_t now_ns);
void zdirector_cycle_done(zheap *z, uint64_t duration_ns);

/* ---- verify-views (zviews.c): only the good colour's view is accessible -- */

/* At creation: open the good view, close the two others. */
void zviews_init(zheap *z);
/* In a pause: make color good, opening its view first and closing the old one after. */
void zviews_flip(zheap *z, int color);
/* After the embedder committed [offset, offset+length): close it in the bad views. */
void zviews_committed(zheap *z, uint64_t offset, uint64_t length);
/* 1 (with the message) if a protect call failed, else 0. */
int zviews_verify(mh_heap *h, char *message, size_t len);

/* ---- verification (verify.c) ------------------------------------------- */

int zverify(mh_heap *h);

#endif
