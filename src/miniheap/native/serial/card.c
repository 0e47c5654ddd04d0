/*
 * card.c: card table, block-offset table, dirty-card scanning.
 */
#include <stdlib.h>
#include "card.h"
#include "side.h"

/* The card table is one flat array (the write barrier indexes it by address),
 * calloc'd for the whole heap: its pages are touched, and so cost memory, only
 * for the regions in use. The block-offset table is in each region's side
 * block (core/side.h), allocated while the region is committed. */
int cards_init(mh_heap *h)
{
    h->cards = calloc(h->heap_size >> CARD_SHIFT, 1);
    h->bot_side = side_reserve(h, (h->region_size >> CARD_SHIFT) * sizeof(uint32_t));
    return h->cards ? 0 : -1;
}

void cards_free(mh_heap *h)
{
    free(h->cards);
}

void cards_clear_region(mh_heap *h, uint32_t r)
{
    memset(h->cards + (region_base(h, r) >> CARD_SHIFT), CARD_CLEAN, h->region_size >> CARD_SHIFT);
}

void cards_clear_all(mh_heap *h)
{
    /* no card at or above regions_end() was ever dirtied since its region was last claimed */
    memset(h->cards, CARD_CLEAN, (uint64_t)regions_end(h) << (h->region_shift - CARD_SHIFT));
}

bool cards_next_dirty(mh_heap *h, card_cursor *cur, card_span *span)
{
    uint64_t per_region = h->region_size >> CARD_SHIFT;
    if (cur->region == 0)
        cur->region = h->young_regions;
    for (uint32_t end = regions_end(h); cur->region < end; cur->region++, cur->card = 0) {
        const mh_region *reg = &h->regions[cur->region];
        if (reg->state == REGION_FREE || reg->top == 0)
            continue;
        uint64_t base = region_base(h, cur->region);
        uint64_t c0 = base >> CARD_SHIFT;
        if (cur->card < c0)
            cur->card = c0;
        for (uint64_t c = cur->card; c < c0 + per_region; c++) {
            /* skip clean cards eight at a time */
            if ((c & 7) == 0 && c + 8 <= c0 + per_region) {
                uint64_t eight;
                memcpy(&eight, h->cards + c, 8);
                if (eight == 0) {
                    c += 7;
                    continue;
                }
            }
            if (h->cards[c] != CARD_DIRTY)
                continue;
            uint64_t card = c << CARD_SHIFT;
            /* objects promoted during the scan (above the top the region had when the
             * collection started) are scanned by the collection's own queue */
            uint64_t limit = base + reg->top;
            if (card >= limit)
                break;
            h->cards[c] = CARD_CLEAN;
            cur->card = c + 1;
            span->card = card;
            span->limit = limit;
            span->first_object = reg->state == REGION_OLD
                                     ? base + ((uint64_t)region_bot(h, cur->region)[c - c0] << 3)
                                     : region_base(h, reg->humongous_start);
            return true;
        }
    }
    return false;
}
