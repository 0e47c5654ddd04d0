/*
 * card.h: the card table (remembered set of old-to-young references) and the
 * block-offset table that lets a card be parsed without walking its region
 * from the start.
 *
 * One byte per 512-byte card of the whole heap. The write barrier marks the
 * card of every slot stored into an old or humongous object, unconditionally
 * (HotSpot style: cheaper than testing whether the value is young). A young
 * collection scans only dirty cards, cleans them, and re-dirties those still
 * holding references into the survivor space.
 */
#ifndef MH_CARD_H
#define MH_CARD_H

#include "internal.h"

#define CARD_SHIFT 9
#define CARD_SIZE (1ull << CARD_SHIFT)
#define CARD_CLEAN 0
#define CARD_DIRTY 1

static inline void card_dirty(mh_heap *h, uint64_t slot_offset)
{
    h->cards[slot_offset >> CARD_SHIFT] = CARD_DIRTY;
}

static inline bool card_is_dirty(const mh_heap *h, uint64_t slot_offset)
{
    return h->cards[slot_offset >> CARD_SHIFT] == CARD_DIRTY;
}

/* Dirty-card scanning, one card at a time (young.c traces the slots inline). */
typedef struct card_cursor {
    uint32_t region;      /* 0 to start */
    uint64_t card;        /* next card index to look at */
} card_cursor;

typedef struct card_span {
    uint64_t card;        /* heap offset of the card */
    uint64_t first_object; /* where the object covering the card's first byte starts */
    uint64_t limit;       /* the region's top: no object starts at or above it */
} card_span;

int cards_init(mh_heap *h);
void cards_free(mh_heap *h);
void cards_clear_region(mh_heap *h, uint32_t r);
void cards_clear_all(mh_heap *h);
/* An object was placed at [offset, offset+size) of an old region: every card
 * whose first byte lies inside the object learns where the object starts.
 * Objects in old regions never cross a region boundary, so a region-relative
 * word index is enough. (Inline: promotion calls it for every object.) */
static inline uint32_t *region_bot(const mh_heap *h, uint32_t r)
{
    return (uint32_t *)region_side(h, r, h->bot_side);
}

static inline void bot_record(mh_heap *h, uint64_t offset, uint64_t size)
{
    uint64_t in_region = offset & (h->region_size - 1);
    uint64_t first = (in_region + CARD_SIZE - 1) >> CARD_SHIFT;
    uint64_t last = (in_region + size - 1) >> CARD_SHIFT;
    uint32_t word = (uint32_t)(in_region >> 3);
    uint32_t *bot = region_bot(h, region_of(h, offset));
    for (uint64_t c = first; c <= last; c++)
        bot[c] = word;
}
/* The next dirty card of an old or humongous region, below the region's top,
 * cleaned as it is handed out (the scan dirties it again if it still refers to
 * young); false when there is none left. */
bool cards_next_dirty(mh_heap *h, card_cursor *cur, card_span *span);

#endif
