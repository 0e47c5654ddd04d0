/*
 * side.c: one malloc'd block of side tables per committed region (side.h).
 */
#include <stdlib.h>
#include "internal.h"
#include "side.h"

int side_init(mh_heap *h)
{
    h->side = calloc(h->nregions, sizeof *h->side); /* untouched above the regions in use */
    return h->side ? 0 : -1;
}

size_t side_reserve(mh_heap *h, size_t bytes)
{
    size_t offset = h->side_bytes;
    h->side_bytes += (bytes + 7) & ~(size_t)7;
    return offset;
}

int side_alloc(mh_heap *h, uint32_t r)
{
    if (h->side[r] || h->side_bytes == 0)
        return 0;
    h->side[r] = calloc(1, h->side_bytes);
    return h->side[r] ? 0 : -1;
}

void side_free(mh_heap *h, uint32_t r)
{
    free(h->side[r]);
    h->side[r] = NULL;
}

void side_free_all(mh_heap *h)
{
    if (!h->side)
        return;
    uint32_t end = regions_end(h);
    for (uint32_t r = 0; r < end; r++)
        free(h->side[r]);
    free(h->side);
    h->side = NULL;
}
