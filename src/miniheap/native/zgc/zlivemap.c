/*
 * zlivemap.c: the live map, one bit per 8-byte word of the heap, set at the
 * start of each object marked this cycle (JDK ZGC keeps one per page, with
 * a second bit per object for finalizable reachability, which miniheap
 * does not have).
 *
 * Bits are cleared when a page is freed, and for the pages that survive a
 * cycle at the end of its Concurrent Relocate, so every page starts the next
 * marking clear.
 */
#include <stdlib.h>
#include "zgc.h"

int livemap_init(zheap *z)
{
    z->livemap = calloc(z->h->heap_size / 512 + 1, sizeof(uint64_t));
    return z->livemap ? 0 : -1;
}

void livemap_free(zheap *z)
{
    free(z->livemap);
    z->livemap = NULL;
}

/* Whole words only: pages are granule-aligned, and a granule (64 KiB at
 * least) spans whole words of the map. */
void livemap_clear_range(zheap *z, uint64_t start, uint64_t length)
{
    uint64_t first = start >> 9, n = length >> 9;
    for (uint64_t i = first; i < first + n; i++)
        __atomic_store_n(&z->livemap[i], 0, __ATOMIC_RELAXED);
}
