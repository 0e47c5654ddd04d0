/*
 * zlivemap.c: each page's live map, one bit per 8-byte word, set at the start
 * of each object marked this cycle (JDK ZGC keeps one per page too, with a
 * second bit per object for finalizable reachability, which miniheap does not
 * have). A large page holds one object: one word.
 *
 * The map is allocated with its page and freed with it; a page that survives
 * a cycle has its map cleared at the end of the cycle's Concurrent Relocate,
 * so every page starts the next marking clear.
 */
#include <stdlib.h>
#include "zgc.h"

static size_t words(const zpage *pg)
{
    return pg->type == ZPAGE_LARGE ? 1 : (size_t)(pg->size >> 9);
}

int livemap_alloc(zpage *pg)
{
    pg->livemap = calloc(words(pg), sizeof(uint64_t));
    return pg->livemap ? 0 : -1;
}

void livemap_clear(zpage *pg)
{
    for (size_t i = 0, n = words(pg); i < n; i++)
        __atomic_store_n(&pg->livemap[i], 0, __ATOMIC_RELAXED);
}
