/*
 * promotion.h: HotSpot Serial's promotion policy (JDK 17, tenuredGeneration.cpp
 * and gcUtil.cpp, read, not copied).
 *
 * A young collection is attempted when old can take what young collections
 * usually promote, padded: the average of the promoted bytes plus three
 * deviations (PromotedPadding = 3), both exponentially weighted with weight
 * 10% (AdaptiveSizePolicyWeight = 10), the first samples weighted more
 * (1/1, 1/2, ... until the 100th). Or when old can take all of young, the
 * worst case. When it cannot, the young collection is skipped and a full
 * collection runs. When promotion fails anyway, young.c recovers.
 */
#ifndef MH_PROMOTION_H
#define MH_PROMOTION_H

#include "internal.h"

/* Whether a young collection may start now. Fills ev->promotion_available and
 * ev->promotion_average (the figures of HotSpot's "promo attempt is safe"
 * trace line) when ev is not NULL. */
bool promotion_attempt_is_safe(const mh_heap *h, mh_gc_event *ev);

/* After a young collection: what it promoted, as a sample of the average. */
void promotion_sample(mh_heap *h, uint64_t promoted);

/* After a young collection that did not fail: HotSpot's adaptive tenuring
 * threshold (ageTable.cpp, compute_tenuring_threshold). The survivors should
 * fill at most half the survivor space (TargetSurvivorRatio = 50): the new
 * threshold is the youngest age at which the survivors of that age and
 * younger exceed it, and at most the configured maximum
 * (-XX:MaxTenuringThreshold). Long-lived data then leaves the survivor space
 * after one or two copies instead of being copied back and forth up to 15
 * times. by_age: survivor bytes per age after the collection. Returns the
 * desired survivor bytes (what the JDK logs as "Desired survivor size"). */
uint64_t tenuring_adjust(mh_heap *h, const uint64_t by_age[16]);

#endif
