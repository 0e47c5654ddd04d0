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

/* The slots of the objects overlapping [card, card_end) that lie inside it. */
static bool card_scan_one(mh_heap *h, const mh_region *reg, uint64_t base, uint64_t card,
                          uint64_t limit, card_slot_fn fn, void *ctx)
{
    uint64_t card_end = card + CARD_SIZE;
    uint64_t obj = reg->state == REGION_OLD
                       ? base + ((uint64_t)h->bot[card >> CARD_SHIFT] << 3)
                       : region_base(h, reg->humongous_start);
    bool young = false;
    while (obj < card_end && obj < limit) {
        mh_object *o = heap_addr(h, obj);
        uint64_t first = obj + obj_slot_offset(0);
        uint64_t end = first + 8ull * obj_nrefs(o);
        uint64_t lo = first > card ? first : card;
        uint64_t hi = end < card_end ? end : card_end;
        for (uint64_t s = lo; s < hi; s += 8)
            young |= fn(ctx, heap_addr(h, s));
        obj += obj_size(o);
    }
    return young;
}

uint32_t cards_scan_dirty(mh_heap *h, card_slot_fn fn, void *ctx)
{
    uint32_t scanned = 0;
    uint64_t per_region = h->region_size >> CARD_SHIFT;
    for (uint32_t r = h->young_regions; r < h->nregions; r++) {
        const mh_region *reg = &h->regions[r];
        if (reg->state == REGION_FREE || reg->top == 0)
            continue;
        uint64_t base = region_base(h, r);
        uint64_t c0 = base >> CARD_SHIFT;
        for (uint64_t c = c0; c < c0 + per_region; c++) {
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
            scanned++;
            if (card_scan_one(h, reg, base, card, limit, fn, ctx))
                h->cards[c] = CARD_DIRTY;
        }
    }
    return scanned;
}
