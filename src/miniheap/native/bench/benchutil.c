/*
 * benchutil.c: the clock, the pause recorder shared by the C mutators, and the two reference loops
 * the collector is compared with (memcpy of the bytes it copied; first touch of mapped memory).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t mh_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void mh_bench_pauses_begin(mh_heap *heap, mh_bench_pauses *pauses)
{
    if (pauses == NULL)
        return;
    const mh_stats *s = mh_get_stats(heap);
    pauses->seen_collections = s->young_collections + s->full_collections;
    pauses->seen_full = s->full_collections;
    pauses->seen_pause_ns = s->total_pause_ns;
    pauses->seen_copied = s->bytes_copied;
}

/* Called after every call that may have collected: record what the collector did since. */
void mh_bench_pauses_note(mh_heap *heap, mh_bench_pauses *pauses)
{
    if (pauses == NULL)
        return;
    const mh_stats *s = mh_get_stats(heap);
    uint64_t collections = s->young_collections + s->full_collections;
    if (collections == pauses->seen_collections)
        return;
    uint64_t n = collections - pauses->seen_collections;
    uint64_t full = s->full_collections - pauses->seen_full;
    mh_bench_pause p = {
        .ns = s->total_pause_ns - pauses->seen_pause_ns,
        .bytes_copied = s->bytes_copied - pauses->seen_copied,
        .collections = (uint32_t)n,
        .full = full > 0,
    };
    pauses->total_ns += p.ns;
    pauses->bytes_copied += p.bytes_copied;
    pauses->full += full;
    pauses->young += n - full;
    if (pauses->count < pauses->capacity)
        pauses->items[pauses->count++] = p;
    else
        pauses->dropped++;
    pauses->seen_collections = collections;
    pauses->seen_full = s->full_collections;
    pauses->seen_pause_ns = s->total_pause_ns;
    pauses->seen_copied = s->bytes_copied;
}

int mh_bench_memcpy(uint64_t nbytes, uint32_t reps, uint64_t *ns_out)
{
    if (nbytes == 0)
        nbytes = 1;
    uint8_t *src = aligned_alloc(64, (nbytes + 63) & ~(uint64_t)63);
    uint8_t *dst = aligned_alloc(64, (nbytes + 63) & ~(uint64_t)63);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        return -1;
    }
    /* Touch both buffers so that page faults are not timed. */
    memset(src, 0x5a, nbytes);
    memset(dst, 0, nbytes);
    for (uint32_t i = 0; i < reps; i++) {
        src[(i * 4099u) % nbytes] = (uint8_t)i;
        uint64_t t0 = mh_bench_now_ns();
        memcpy(dst, src, nbytes);
        ns_out[i] = mh_bench_now_ns() - t0;
        /* Keep the copy observable so it is not optimised away. */
        if (dst[(i * 4099u) % nbytes] != (uint8_t)i) {
            free(src);
            free(dst);
            return -1;
        }
    }
    free(src);
    free(dst);
    return 0;
}

uint64_t mh_bench_touch(uint64_t addr, uint64_t length, uint64_t stride)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)addr;
    if (stride == 0)
        stride = 4096;
    uint64_t t0 = mh_bench_now_ns();
    for (uint64_t off = 0; off < length; off += stride)
        p[off] = 1;
    return mh_bench_now_ns() - t0;
}
