/*
 * benchutil.c: the clock and the two reference loops the collector is compared with (memcpy of the
 * bytes it copied, cold and warm; first touch of mapped memory).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* Larger than the last-level cache of the machines this runs on (32 MiB of L3 on an EPYC CCX and
 * less elsewhere): writing it through evicts what a copy would otherwise find in the caches. */
#define FLUSH_BYTES (64ull << 20)

uint64_t mh_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mh_bench_memcpy(uint64_t nbytes, uint32_t reps, int cold, uint64_t *ns_out)
{
    if (nbytes == 0)
        nbytes = 1;
    uint8_t *src = aligned_alloc(64, (nbytes + 63) & ~(uint64_t)63);
    uint8_t *dst = aligned_alloc(64, (nbytes + 63) & ~(uint64_t)63);
    uint8_t *flush = cold ? aligned_alloc(64, FLUSH_BYTES) : NULL;
    int rc = 0;
    if (src == NULL || dst == NULL || (cold && flush == NULL)) {
        rc = -1;
        goto out;
    }
    /* Touch the buffers so that page faults are not timed. */
    memset(src, 0x5a, nbytes);
    memset(dst, 0, nbytes);
    if (flush)
        memset(flush, 1, FLUSH_BYTES);
    volatile uint8_t *lines = flush;
    for (uint32_t i = 0; i < reps; i++) {
        src[(i * 4099u) % nbytes] = (uint8_t)i;
        /* Evict src and dst from every cache level: a read and an ordinary store per cache line of
         * the flush buffer (memset of a buffer this large uses non-temporal stores, which bypass
         * the caches and would evict nothing). */
        for (uint64_t at = 0; flush && at < FLUSH_BYTES; at += 64)
            lines[at]++;
        uint64_t t0 = mh_bench_now_ns();
        memcpy(dst, src, nbytes);
        ns_out[i] = mh_bench_now_ns() - t0;
        /* Keep the copy observable so it is not optimised away. */
        if (dst[(i * 4099u) % nbytes] != (uint8_t)i) {
            rc = -1;
            goto out;
        }
    }
out:
    free(src);
    free(dst);
    free(flush);
    return rc;
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

int mh_bench_fail(char *error, size_t size, int32_t *ok, const char *fmt, ...)
{
    if (error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
    }
    *ok = 0;
    return -1;
}
