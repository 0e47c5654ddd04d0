/*
 * region.h: the region table.
 *
 * The heap is an array of equal, power-of-two regions. The first
 * young_regions are the young generation (eden, then two survivor spaces) and
 * never change role, so a young address is recognised by a single compare.
 * Every other region is free, old, or part of a humongous object. A free
 * region may still be committed (taken for a promotion guarantee and given
 * back unused); the full collection uncommits those.
 */
#ifndef MH_REGION_H
#define MH_REGION_H

#include <stdbool.h>
#include <stdint.h>

enum mh_region_state {
    REGION_FREE = 0,
    REGION_YOUNG,
    REGION_OLD,
    REGION_HUMONGOUS_START,
    REGION_HUMONGOUS_CONT,
};

typedef struct mh_region {
    uint8_t state;
    uint8_t committed;
    uint8_t in_cset;          /* full GC: chosen for evacuation */
    uint64_t top;             /* old/humongous: bytes in use from the region base */
    uint64_t live_bytes;      /* full GC: marked bytes of objects starting here */
    uint64_t filler_bytes;    /* dead objects already turned into fillers */
    uint32_t live_objects;
    uint32_t max_live_size;   /* largest marked object starting here */
    uint32_t humongous_start; /* humongous: region holding the object's header */
} mh_region;

struct mh_heap;

int regions_init(struct mh_heap *h);
/* The first n regions were committed with the heap: give them their side tables. */
int regions_committed_at_start(struct mh_heap *h, uint32_t n);
/* region_base and region_of are inline in internal.h */
/* A free old region, committed, now REGION_OLD and empty; -1 if none is free,
 * -2 if the embedder refused to commit (error set). */
int32_t region_take(struct mh_heap *h);
/* Commit region r (and give it its side tables): 0, or -1 with the error set. */
int region_commit(struct mh_heap *h, uint32_t r);
/* n contiguous free regions for a humongous object, committed; -1 / -2 as above. */
int32_t region_take_run(struct mh_heap *h, uint32_t n);
void region_free(struct mh_heap *h, uint32_t r, bool uncommit);
void regions_uncommit_free(struct mh_heap *h);
/* Give back the regions the full collection reserved (h->reserved) and did not use. */
void regions_release_reserved(struct mh_heap *h);
/* Regions that bump-packing `bytes` of objects, none larger than max_size,
 * can need at most: each closed region wastes less than max_size. */
uint32_t regions_needed(uint64_t bytes, uint64_t max_size, uint64_t region_size);

#endif
