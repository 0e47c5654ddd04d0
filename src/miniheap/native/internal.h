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
#include "miniheap.h"
#include "color.h"
#include "object.h"
#include "region.h"

#define MH_HEAP_MAGIC 0x6d696e6968656170ull /* "miniheap" */
#define MH_MESSAGE_LEN 384

typedef struct mh_fwd_table mh_fwd_table;

struct mh_heap {
    uint64_t magic;
    mh_config config;
    mh_views views;

    /* geometry */
    uint64_t heap_size;
    uint64_t region_size;
    unsigned region_shift;
    uint32_t nregions;
    mh_region *regions;
    uint32_t free_regions;        /* old-generation regions in state FREE */

    /* young generation: eden [0, eden_end), then survivor A, then survivor B */
    uint32_t young_regions, eden_regions, survivor_regions;
    uint64_t eden_end;
    uint64_t eden_top;
    uint64_t young_end;
    uint64_t survivor_size;
    uint64_t survivor_base[2];
    int from;                     /* which of survivor_base is the from-space */
    uint64_t from_top;            /* bytes used in the from-survivor */
    uint64_t to_top;              /* bytes used in the to-survivor, during a young GC */
    uint64_t young_max_size;      /* bound on any young object's size: promotion tail waste */
    uint32_t tenuring_threshold;

    /* old generation */
    uint64_t old_used;
    int32_t promo_region;         /* old region receiving copies, or -1 */
    int32_t *reserved;            /* regions taken ahead of copying */
    uint32_t nreserved, reserved_used;
    int32_t *scan_regions;        /* young GC: regions promoted into, in order (Cheney queue) */
    uint32_t nscan, scan_index;
    uint64_t scan_offset;

    /* remembered set */
    uint8_t *cards;
    uint32_t *bot;                /* per card: region-relative word of the object covering its first byte */

    /* full GC */
    uint64_t *mark_bits;
    mh_ref *mark_stack;
    size_t mark_top, mark_cap;
    bool mark_overflow;
    mh_fwd_table **fwd;           /* per region: forwarding of the last evacuation, or NULL */
    int mark_color;               /* colour the next marking will use */
    int stale_color;              /* colour of the last marking: its references may need forwarding */
    uint64_t last_live;           /* bytes marked by the last full GC */

    /* roots */
    mh_ref *handles;
    int32_t *handle_next;         /* free list; HANDLE_LIVE marks a handle in use */
    int32_t handle_free;
    uint32_t max_handles;
    uint32_t handle_hwm;          /* no handle at or above this index was ever issued */

    /* reporting */
    mh_stats stats;
    mh_gc_event ev;
    uint32_t gc_count;
    bool last_gc_full;
    bool busy;                    /* inside a collection or an embedder callback */
    int error;                    /* the last error on this heap (also kept per thread) */
    char message[MH_MESSAGE_LEN];
    pthread_mutex_t lock;         /* taken by every public call (api.c); recursive */
};

/* heap.c */
void heap_error(mh_heap *h, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool heap_enter(mh_heap *h);
bool heap_ok(const mh_heap *h);
mh_heap *heap_lock(mh_heap *h);
void heap_unlock(mh_heap *h);

/* The public functions without the lock; api.c wraps each in it. */
mh_handle mh_alloc_unlocked(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
mh_handle mh_dup_unlocked(mh_heap *h, mh_handle x);
int mh_release_unlocked(mh_heap *h, mh_handle x);
int mh_handle_valid_unlocked(mh_heap *h, mh_handle x);
mh_ref mh_handle_ref_unlocked(mh_heap *h, mh_handle x);
int mh_same_unlocked(mh_heap *h, mh_handle a, mh_handle b);
mh_handle mh_load_unlocked(mh_heap *h, mh_handle x, uint32_t slot);
int mh_load_into_unlocked(mh_heap *h, mh_handle x, uint32_t slot, mh_handle dest);
int mh_store_unlocked(mh_heap *h, mh_handle x, uint32_t slot, mh_handle value);
mh_ref mh_peek_slot_unlocked(mh_heap *h, mh_handle x, uint32_t slot);
int64_t mh_nrefs_unlocked(mh_heap *h, mh_handle x);
int64_t mh_nbytes_unlocked(mh_heap *h, mh_handle x);
uint8_t *mh_payload_unlocked(mh_heap *h, mh_handle x);
int mh_age_unlocked(mh_heap *h, mh_handle x);
int mh_space_of_unlocked(mh_heap *h, mh_handle x);
int mh_ref_color_unlocked(mh_heap *h, mh_ref ref);
uint64_t mh_ref_offset_unlocked(mh_heap *h, mh_ref ref);
int mh_collect_unlocked(mh_heap *h, int full);
const mh_stats *mh_get_stats_unlocked(mh_heap *h);
uint64_t mh_used_unlocked(mh_heap *h);
uint64_t mh_eden_used_unlocked(mh_heap *h);
uint64_t mh_survivor_used_unlocked(mh_heap *h);
uint64_t mh_old_used_unlocked(mh_heap *h);
int mh_good_color_unlocked(mh_heap *h);
uint32_t mh_region_count_unlocked(mh_heap *h);
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

static inline void *heap_addr(const mh_heap *h, uint64_t offset) { return view_addr(&h->views, offset); }
static inline bool is_young(const mh_heap *h, uint64_t offset) { return offset < h->young_end; }
static inline uint64_t from_base(const mh_heap *h) { return h->survivor_base[h->from]; }
static inline uint64_t to_base(const mh_heap *h) { return h->survivor_base[!h->from]; }

/* handles.c */
int handles_init(mh_heap *h);
void handles_free(mh_heap *h);
bool handle_available(mh_heap *h);
mh_handle handle_new(mh_heap *h, mh_ref ref);
bool handle_check(mh_heap *h, mh_handle x);

#define HANDLE_LIVE (-2)
static inline bool handle_live(const mh_heap *h, uint32_t i) { return h->handle_next[i] == HANDLE_LIVE; }

/* alloc.c */
uint64_t old_bump(mh_heap *h, uint64_t size);

/* young.c / full.c */
int collect_young(mh_heap *h, int cause);
int collect_full(mh_heap *h, int cause);

#endif
