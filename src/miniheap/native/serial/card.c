/*
 * card.c: card table, block-offset table, dirty-card scanning.
 */
#include <stdlib.h>
#include "card.h"

int cards_init(mh_heap *h)
{
    uint64_t ncards = h->heap_size >> CARD_SHIFT;
    h->cards = calloc(ncards, 1);
    h->bot = calloc(ncards, sizeof *h->bot);
    return (h->cards && h->bot) ? 0 : -1;
}

void cards_free(mh_heap *h)
{
    free(h->cards);
    free(h->bot);
}

void cards_clear_region(mh_heap *h, uint32_t r)
{
    memset(h->cards + (region_base(h, r) >> CARD_SHIFT), CARD_CLEAN, h->region_size >> CARD_SHIFT);
}

void cards_clear_all(mh_heap *h)
{
    memset(h->cards, CARD_CLEAN, h->heap_size >> CARD_SHIFT);
}

bool cards_next_dirty(mh_heap *h, card_cursor *cur, card_span *span)
{
    uint64_t per_region = h->region_size >> CARD_SHIFT;
    if (cur->region == 0)
        cur->region = h->young_regions;
    for (; cur->region < h->nregions; cur->region++, cur->card = 0) {
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
                                     ? base + ((uint64_t)h->bot[c] << 3)
                                     : region_base(h, reg->humongous_start);
            return true;
        }
    }
    return false;
}
