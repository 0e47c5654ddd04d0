/*
 * bump.h: placing an object at the top of an old region, for promotion's
 * inline fast path (young.c) and for old_bump (alloc.c), which first picks
 * the region. The block-offset table learns where the object starts, so card
 * scans can find it, and in a sanitizer build the bytes become addressable.
 */
#ifndef MINIHEAP_BUMP_H
#define MINIHEAP_BUMP_H

#include "internal.h"
#include "card.h"
#include "poison.h"

static inline uint64_t region_bump(mh_heap *h, int32_t r, uint64_t size)
{
    uint64_t offset = region_base(h, (uint32_t)r) + h->regions[r].top;
    h->regions[r].top += size;
    h->old_used += size;
    bot_record(h, offset, size);
    space_unpoison(h, offset, size);
    return offset;
}

#endif
