/*
 * region.c: region table, free regions, commit and uncommit.
 */
#include <stdlib.h>
#include "internal.h"
#include "poison.h"
#include "card.h"
#include "side.h"

int regions_init(mh_heap *h)
{
    h->regions = calloc(h->nregions, sizeof *h->regions);
    h->reserved = calloc(h->nregions, sizeof *h->reserved);
    h->scan_regions = calloc(h->nregions, sizeof *h->scan_regions);
    if (!h->regions || !h->reserved || !h->scan_regions)
        return -1;
    for (uint32_t r = 0; r < h->young_regions; r++)
        h->regions[r].state = REGION_YOUNG;
    h->free_regions = h->nregions - h->young_regions;
    h->promo_region = -1;
    h->used_end = h->committed_end = h->poisoned_end = h->young_regions;
    return 0;
}

/* The first n regions were committed when the heap was built: their side tables. */
int regions_committed_at_start(mh_heap *h, uint32_t n)
{
    for (uint32_t r = 0; r < n; r++) {
        if (side_alloc(h, r) != 0)
            return -1;
        h->regions[r].committed = 1;
    }
    if (n > h->committed_end)
        h->committed_end = n;
    if (n > h->poisoned_end)
        h->poisoned_end = n;
    h->stats.regions_committed = n;
    return 0;
}

int region_commit(mh_heap *h, uint32_t r)
{
    if (h->regions[r].committed)
        return 0;
    if (side_alloc(h, r) != 0) {
        heap_error(h, MH_E_NO_MEMORY,
                   "out of memory for the side tables of region %u (%llu bytes: mark bits and "
                   "block offsets); the heap stays as it was; free memory on the machine",
                   r, (unsigned long long)h->side_bytes);
        return -1;
    }
    if (embedder_commit(h, region_base(h, r), h->region_size) != 0) {
        side_free(h, r);
        h->stats.commit_failures++;
        heap_error(h, MH_E_COMMIT,
                   "the embedder could not commit region %u (offset %llu, %llu bytes); "
                   "the heap stays as it was; free memory on the machine or lower heap_size",
                   r, (unsigned long long)region_base(h, r), (unsigned long long)h->region_size);
        return -1;
    }
    h->regions[r].committed = 1;
    h->stats.regions_committed++;
    if (r >= h->committed_end)
        h->committed_end = r + 1;
    if (r >= h->poisoned_end)
        h->poisoned_end = r + 1;
    return 0;
}

static void region_uncommit(mh_heap *h, uint32_t r)
{
    if (!h->regions[r].committed)
        return;
    /* A refused uncommit only costs memory: the region stays committed. */
    if (embedder_uncommit(h, region_base(h, r), h->region_size) == 0) {
        h->regions[r].committed = 0;
        h->stats.regions_committed--;
        side_free(h, r); /* its side tables go with it */
        while (h->committed_end > h->young_regions && !h->regions[h->committed_end - 1].committed)
            h->committed_end--;
    }
}

static void region_claim(mh_heap *h, uint32_t r, uint8_t state)
{
    mh_region *reg = &h->regions[r];
    reg->state = state;
    reg->top = 0;
    reg->filler_bytes = 0;
    reg->in_cset = 0;
    h->free_regions--;
    if (r >= h->used_end)
        h->used_end = r + 1;
    cards_clear_region(h, r);
}

int32_t region_take(mh_heap *h)
{
    int32_t pick = -1;
    /* a committed free region first: no commit call, no fresh page faults;
     * else the lowest free one (every region from regions_end on is free) */
    uint32_t end = regions_end(h);
    for (uint32_t r = h->young_regions; r < end; r++) {
        if (h->regions[r].state != REGION_FREE)
            continue;
        if (h->regions[r].committed) {
            pick = (int32_t)r;
            break;
        }
        if (pick < 0)
            pick = (int32_t)r;
    }
    if (pick < 0 && end < h->nregions)
        pick = (int32_t)end;
    if (pick < 0)
        return -1;
    if (region_commit(h, (uint32_t)pick) != 0)
        return -2;
    region_claim(h, (uint32_t)pick, REGION_OLD);
    return pick;
}

static int32_t region_claim_run(mh_heap *h, uint32_t start, uint32_t n)
{
    for (uint32_t i = start; i < start + n; i++)
        if (region_commit(h, i) != 0)
            return -2;
    for (uint32_t i = start; i < start + n; i++) {
        region_claim(h, i, i == start ? REGION_HUMONGOUS_START : REGION_HUMONGOUS_CONT);
        h->regions[i].humongous_start = start;
    }
    return (int32_t)start;
}

int32_t region_take_run(mh_heap *h, uint32_t n)
{
    uint32_t run = 0, end = regions_end(h);
    for (uint32_t r = h->young_regions; r < end; r++) {
        run = h->regions[r].state == REGION_FREE ? run + 1 : 0;
        if (run == n)
            return region_claim_run(h, r + 1 - n, n);
    }
    /* every region from end on is free: the run may continue there */
    uint32_t start = end - run;
    if ((uint64_t)start + n <= h->nregions)
        return region_claim_run(h, start, n);
    return -1;
}

void region_free(mh_heap *h, uint32_t r, bool uncommit)
{
    mh_region *reg = &h->regions[r];
    h->old_used -= reg->top;
    reg->state = REGION_FREE;
    reg->top = 0;
    reg->in_cset = 0;
    h->free_regions++;
    if (h->regions[r].committed) /* an uncommitted region's memory is the embedder's */
        space_poison(h, region_base(h, r), h->region_size);
    if (h->promo_region == (int32_t)r)
        h->promo_region = -1;
    while (h->used_end > h->young_regions && h->regions[h->used_end - 1].state == REGION_FREE)
        h->used_end--;
    if (uncommit)
        region_uncommit(h, r);
}

/* Give free old regions back to the embedder, but keep committed as many as a
 * young collection may have to promote into (the worst case, the size of the
 * young generation): uncommitting those only to commit
 * them again inside the next pause would make every pause pay for page
 * allocation. The heap shrinks lazily, as HotSpot's MinHeapFreeRatio lets it. */
void regions_uncommit_free(mh_heap *h)
{
    if (h->config.keep_committed)
        return;
    uint32_t keep = h->young_regions;
    uint32_t end = regions_end(h);
    for (uint32_t r = h->young_regions; r < end; r++) {
        if (h->regions[r].state != REGION_FREE || !h->regions[r].committed)
            continue;
        if (keep > 0)
            keep--;
        else
            region_uncommit(h, r);
    }
}

void regions_release_reserved(mh_heap *h)
{
    for (uint32_t i = h->reserved_used; i < h->nreserved; i++)
        region_free(h, (uint32_t)h->reserved[i], false);
    h->nreserved = h->reserved_used = 0;
}

uint32_t regions_needed(uint64_t bytes, uint64_t max_size, uint64_t region_size)
{
    if (bytes == 0)
        return 0;
    /* A region is closed only when the next object does not fit, so every
     * closed region holds at least region_size - max_size + 1 bytes. */
    uint64_t per_closed = region_size - max_size + 1;
    return (uint32_t)((bytes - 1) / per_closed + 1);
}
