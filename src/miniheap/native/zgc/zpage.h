/*
 * zpage.h: ZGC's pages and the allocator that hands them out.
 *
 * Sizes as JDK 17 chooses them (ZHeuristics::set_medium_page_size, with
 * the granule as the unit):
 *   small page   one granule; objects up to granule / 8
 *   medium page  round_down_pow2(clamp(heap / 32, granule, 16 granules)),
 *                used only when larger than a small page (a 256 MiB heap
 *                of 2 MiB granules gets 8 MiB pages, 1 GiB and more 32 MiB);
 *                objects up to medium / 8
 *   large page   one object, rounded up to whole granules; never relocated
 *
 * One difference from the JDK: miniheap maps the heap once, offset for
 * offset, so a medium or large page needs contiguous free granules in the
 * heap itself. JDK 17 reserves 16 times the heap in address space and maps
 * any free physical granules behind a fresh virtual range, so fragmentation
 * of the heap never blocks a large allocation there; here it can.
 *
 * Every granule is free, reserved for relocation, or part of a page. The
 * relocation reserve (JDK 11 to 15's "heap reserve"; JDK 16+ relocates in
 * place instead) is a few committed granules mutators may not allocate:
 * with it the GC thread can always start relocating, and it reuses each
 * page it empties for the next, so it never needs a page it cannot have.
 */
#ifndef MH_ZGC_PAGE_H
#define MH_ZGC_PAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum zpage_type { ZPAGE_SMALL = 0, ZPAGE_MEDIUM = 1, ZPAGE_LARGE = 2 };

typedef struct zpage {
    uint8_t type;              /* enum zpage_type */
    uint32_t first;            /* first granule */
    uint32_t ngranules;
    uint64_t start, size;      /* heap offsets */
    uint64_t top;              /* next free byte (heap offset); bumped only by the page's owner */
    uint32_t seqnum;           /* the cycle during which it was allocated */
    uint64_t live_bytes;       /* marked this cycle (atomic adds) */
    uint32_t live_objects;     /* (atomic adds) */
    bool relocating;           /* in the relocation set */
    uint64_t *livemap;         /* marked objects' starts, one bit per 8 bytes (a large page: one word) */
} zpage;

/* Granule states besides "a page": */
#define ZGRANULE_FREE 0
#define ZGRANULE_RESERVED 1    /* the relocation reserve for small targets, or a small page the
                                  GC freed during relocation */
#define ZGRANULE_RESERVED_MEDIUM 2 /* the same for medium targets: whole aligned medium runs */

typedef struct zpages {
    uint64_t granule;
    unsigned granule_shift;
    uint32_t ngranules;
    uint64_t small_limit;      /* largest object on a small page */
    uint64_t medium_size;      /* 0 when the heap has no medium pages */
    uint32_t medium_granules;
    uint64_t medium_limit;
    pthread_mutex_t lock;      /* every change of the tables below */
    zpage **page_of;           /* per granule (atomic words): its page, NULL if none */
    uint8_t *state;            /* per granule, when page_of is NULL: ZGRANULE_* */
    uint8_t *committed;        /* per granule */
    uint32_t nfree, ncommitted;
    uint32_t end;              /* 1 + the highest granule ever in a page, reserved or committed:
                                  walks stop here (a 4T heap holding 64M walks a few granules) */
    uint32_t nreserved;        /* granules in state ZGRANULE_RESERVED */
    uint32_t nreserved_medium; /* medium runs in state ZGRANULE_RESERVED_MEDIUM */
    uint32_t reserve_small;    /* granules to keep reserved for relocation (small targets) */
    uint32_t reserve_medium;   /* medium pages to keep reserved */
    uint64_t used;             /* bytes of all pages (atomic) */
    uint64_t allocated;        /* bytes of pages handed to mutators, ever (atomic): the director's rate */
    uint64_t freed;            /* bytes of pages freed, ever (atomic) */
    uint64_t gc_allocated;     /* bytes of relocation target pages, ever (atomic) */
} zpages;

struct mh_heap;
struct zheap;

int zpages_init(struct zheap *z, char *err, size_t errlen);
void zpages_free(struct zheap *z);

static inline zpage *zpage_of(const zpages *p, uint64_t off)
{
    return __atomic_load_n(&p->page_of[off >> p->granule_shift], __ATOMIC_ACQUIRE);
}

static inline uint64_t zpage_top(const zpage *pg) { return __atomic_load_n(&pg->top, __ATOMIC_ACQUIRE); }

/* The page type for an object of this size. */
static inline int zpage_type_for(const zpages *p, uint64_t size)
{
    if (size <= p->small_limit)
        return ZPAGE_SMALL;
    if (p->medium_size && size <= p->medium_limit)
        return ZPAGE_MEDIUM;
    return ZPAGE_LARGE;
}

/* Target pages of a type that live bytes can need at worst: a page is
 * closed only when the next object does not fit, so each closed page holds
 * more than its size minus the type's largest object. */
static inline uint32_t zpages_needed(const zpages *p, int type, uint64_t bytes)
{
    uint64_t size = type == ZPAGE_SMALL ? p->granule : p->medium_size;
    uint64_t limit = type == ZPAGE_SMALL ? p->small_limit : p->medium_limit;
    uint64_t per = size - limit;
    return (uint32_t)((bytes + per - 1) / per);
}

/* A new page for a mutator: free granules, committed on this thread if they
 * are not (the embedder's callback). NULL when none are free (no error), or
 * when the embedder refused the commit (error set). Never takes reserved
 * granules. */
zpage *zpage_alloc_mutator(struct zheap *z, int type, uint64_t size);
/* A relocation target page for the GC thread: reserved granules first, then
 * free committed ones; never commits (the GC thread never calls the
 * embedder). NULL if there is none. */
zpage *zpage_alloc_gc(struct zheap *z, int type);
/* Free a page. During relocation (to_reserve) its granules go to the GC's
 * reserve, else back to the free pool (topping the reserve up first). */
void zpage_free(struct zheap *z, zpage *page, bool to_reserve);
/* After relocation: reserved granules beyond the reserve go back to the pool. */
void zpages_trim_reserve(struct zheap *z);
/* How many target pages of a type the GC could have now from its reserve. */
uint32_t zpages_reserved_targets(struct zheap *z, int type);
/* Free granules (not reserved), and the longest run of them: a medium or
 * large page needs contiguous granules (the message of an exhausted heap). */
void zpages_free_runs(struct zheap *z, uint32_t *nfree, uint32_t *longest);
/* Every page, in address order, into a new array (*n of them); NULL if out of memory. Only the
 * GC thread frees pages, so for it the snapshot stays true, except for pages mutators add. */
zpage **zpages_snapshot(struct zheap *z, uint32_t *n);

#endif
