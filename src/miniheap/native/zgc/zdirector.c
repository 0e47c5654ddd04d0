/*
 * zdirector.c: when to start a cycle, JDK 17's ZDirector rules in order.
 *
 * The GC thread asks at every tick (10 per second, as the JDK's sampling
 * rate; more often when collection_interval_ms is shorter):
 *   Timer            collection_interval_ms has passed since the last cycle
 *                    (-XX:ZCollectionInterval; off by default)
 *   Warmup           before 3 warmup cycles: used has passed 10, 20, 30 %
 *                    of the heap (early samples of how long a cycle takes)
 *   Allocation Rate  at the rate allocations come (average of the last
 *                    second, doubled as -XX:ZAllocationSpikeTolerance, plus
 *                    3.3 standard deviations), free memory runs out before a
 *                    cycle (its average duration plus 3.3 deviations) would end
 *   Proactive        used grew by 10 % of the heap since the last cycle (or
 *                    5 minutes passed) and a cycle now costs under 1 % of
 *                    throughput (assuming a cycle halves it while it runs)
 *   High Usage       5 % or less of the heap is free
 * "Free" leaves out the relocation reserve, which mutators cannot have.
 * Called with ctl_lock held.
 */
#include "zgc.h"

/* A square root without libm (the core links nothing but libc and pthreads). */
static double root(double x)
{
    if (x <= 0)
        return 0;
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 60; i++) {
        double next = 0.5 * (r + x / r);
        if (next >= r)
            break;
        r = next;
    }
    return r;
}

#define SAMPLE_HZ 10
#define SPIKE_TOLERANCE 2.0          /* -XX:ZAllocationSpikeTolerance */
#define ONE_IN_1000 3.290527         /* standard deviations: 1 sample in 1000 outside */
#define ALPHA 0.7                    /* weight of history in the decaying averages (the JDK's seq) */

static bool is_warm(const zheap *z) { return z->warmup_cycles >= 3 || z->cycles_completed >= 3; }

static uint64_t reserve_bytes(const zheap *z)
{
    const zpages *p = &z->pages;
    return (p->reserve_small + (uint64_t)p->reserve_medium * p->medium_granules) * p->granule;
}

static double max_cycle_seconds(const zheap *z)
{
    return z->cycle_avg + root(z->cycle_var) * ONE_IN_1000;
}

/* One sample of the allocation rate per tick: bytes of pages handed to
 * mutators since the last. The average and deviation are over the last second. */
static void sample_rate(zheap *z, double seconds)
{
    uint64_t allocated = __atomic_load_n(&z->pages.allocated, __ATOMIC_RELAXED);
    double rate = seconds > 0 ? (double)(allocated - z->allocated_at_sample) / seconds : 0;
    z->allocated_at_sample = allocated;
    z->alloc_samples[z->sample_next] = rate;
    z->sample_next = (z->sample_next + 1) % SAMPLE_HZ;
    if (z->nsamples < SAMPLE_HZ)
        z->nsamples++;
    double sum = 0, sq = 0;
    for (uint32_t i = 0; i < z->nsamples; i++)
        sum += z->alloc_samples[i];
    double avg = sum / z->nsamples;
    for (uint32_t i = 0; i < z->nsamples; i++)
        sq += (z->alloc_samples[i] - avg) * (z->alloc_samples[i] - avg);
    z->alloc_rate_avg = avg;
    z->alloc_rate_sd = root(sq / z->nsamples);
}

int zdirector_decide(zheap *z, uint64_t now)
{
    mh_heap *h = z->h;
    double since_tick = (double)(now - z->last_tick_ns) / 1e9;
    z->last_tick_ns = now;
    sample_rate(z, since_tick);
    double since_last = (double)(now - z->last_cycle_end_ns) / 1e9;
    uint64_t capacity = h->heap_size;
    uint64_t used = __atomic_load_n(&z->pages.used, __ATOMIC_RELAXED);
    uint64_t reserve = reserve_bytes(z);
    uint64_t free_with_reserve = capacity > used ? capacity - used : 0;
    uint64_t free = free_with_reserve > reserve ? free_with_reserve - reserve : 0;

    uint32_t interval = h->config.collection_interval_ms;
    if (interval && since_last * 1000 >= interval)
        return MH_CAUSE_TIMER;

    if (!is_warm(z) && used >= (double)capacity * 0.1 * (double)(z->warmup_cycles + 1))
        return MH_CAUSE_WARMUP;

    if (is_warm(z)) {
        double max_rate = z->alloc_rate_avg * SPIKE_TOLERANCE + z->alloc_rate_sd * ONE_IN_1000;
        double until_oom = (double)free / (max_rate + 1.0);
        double until_gc = until_oom - max_cycle_seconds(z) - 1.0 / SAMPLE_HZ;
        if (until_gc <= 0)
            return MH_CAUSE_ALLOCATION_RATE;

        uint64_t threshold = z->used_after_last + capacity / 10;
        if (used >= threshold || since_last >= 5 * 60) {
            double acceptable = max_cycle_seconds(z) * (0.50 / 0.01 - 1.0);
            if (since_last >= acceptable)
                return MH_CAUSE_PROACTIVE;
        }
    }

    if ((double)free * 100.0 <= (double)capacity * 5.0)
        return MH_CAUSE_HIGH_USAGE;
    return -1;
}

void zdirector_cycle_done(zheap *z, uint64_t duration_ns)
{
    double d = (double)duration_ns / 1e9;
    if (z->cycles_completed == 0) {
        z->cycle_avg = d;
        z->cycle_var = 0;
    } else {
        /* a decaying average and variance, as HotSpot's AbsSeq */
        double diff = d - z->cycle_avg;
        z->cycle_avg = ALPHA * z->cycle_avg + (1 - ALPHA) * d;
        z->cycle_var = ALPHA * (z->cycle_var + (1 - ALPHA) * diff * diff);
    }
    if (z->cycle.cause == MH_CAUSE_WARMUP)
        z->warmup_cycles++;
    z->last_cycle_end_ns = clock_ns();
    z->used_after_last = z->cycle.used_at[3];
}
