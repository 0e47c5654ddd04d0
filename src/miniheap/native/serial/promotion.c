/*
 * promotion.c: the padded average of promoted bytes, and the test a young
 * collection must pass before it starts (promotion.h).
 */
#include "promotion.h"

#define PROMOTION_WEIGHT 10   /* percent, HotSpot's AdaptiveSizePolicyWeight */
#define PROMOTION_PADDING 3   /* deviations, HotSpot's PromotedPadding */
#define OLD_THRESHOLD 100     /* samples before the weight stops adapting */
#define TARGET_SURVIVOR_RATIO 50 /* percent of a survivor space, HotSpot's TargetSurvivorRatio */

/* The weight of a new sample: 100% for the first, 50% for the second, ...,
 * PROMOTION_WEIGHT once the count makes 100/count smaller. */
static double sample_weight(uint32_t count)
{
    uint32_t by_count = count < OLD_THRESHOLD ? OLD_THRESHOLD / count : 0;
    return (by_count > PROMOTION_WEIGHT ? by_count : PROMOTION_WEIGHT) / 100.0;
}

static double exp_avg(double average, double sample, double weight)
{
    return (1.0 - weight) * average + weight * sample;
}

void promotion_sample(mh_heap *h, uint64_t promoted)
{
    mh_promotion_stats *p = &h->promotion;
    if (p->samples < UINT32_MAX)
        p->samples++;
    double weight = sample_weight(p->samples);
    p->average = exp_avg(p->average, (double)promoted, weight);
    /* a sample of zero leaves the deviation alone (AdaptivePaddedNoZeroDevAverage) */
    if (promoted != 0) {
        double off = (double)promoted - p->average;
        p->deviation = exp_avg(p->deviation, off < 0 ? -off : off, weight);
    }
    p->padded = p->average + PROMOTION_PADDING * p->deviation;
}

bool promotion_attempt_is_safe(const mh_heap *h, mh_gc_event *ev)
{
    /* Old regions are filled by bumping: a region is abandoned when the next
     * object does not fit, so each free region may lose up to one object less
     * a byte at its end (regions_needed in region.c). */
    uint64_t waste = h->young_max_size ? h->young_max_size - 1 : 0;
    uint64_t available = (uint64_t)h->free_regions * (h->region_size - waste);
    if (h->promo_region >= 0) {
        uint64_t tail = h->region_size - h->regions[h->promo_region].top;
        available += tail > waste ? tail - waste : 0;
    }
    uint64_t average = (uint64_t)h->promotion.padded;
    uint64_t young = h->eden_top + h->from_top;
    if (ev) {
        ev->promotion_available = available;
        ev->promotion_average = average;
    }
    /* after a failed promotion that the full collection could not undo, young
     * still holds objects in the to-survivor: there is no room to copy into */
    if (h->to_top != 0)
        return false;
    return available >= average || available >= young;
}

uint64_t tenuring_adjust(mh_heap *h, const uint64_t by_age[16])
{
    uint64_t desired = h->survivor_size * TARGET_SURVIVOR_RATIO / 100;
    uint64_t total = 0;
    unsigned age = 1;
    while (age < 16) {
        total += by_age[age];
        if (total > desired)
            break;
        age++;
    }
    unsigned most = h->config.tenuring_threshold;
    h->tenuring_threshold = age < most ? age : most;
    return desired;
}
