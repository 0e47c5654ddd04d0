/*
 * bench.h: C mutators and timing helpers for `python -m miniheap bench`.
 *
 * These are embedders of miniheap like any other: they use the inline fast path of
 * miniheap-inline.h, so what they measure is what a C embedder (or a JIT) would see. They are
 * compiled into miniheap._native beside the collector (src/miniheap/_build.py appends the cdef
 * section below to the cffi cdef), and make no system calls: the heap they run on is built by the
 * Python Heap, on a real backend.
 *
 * Nothing is recorded inside the timed loops: the pauses are the heap's own events, which the
 * Python Heap keeps (Heap.events, from on_gc).
 */
#ifndef MINIHEAP_BENCH_H
#define MINIHEAP_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "miniheap.h"

/* cdef-begin */

/* GCBench (Boehm) on the inline fast path. A Node is an object of 2 reference slots (left, right)
 * and node_bytes of payload (8: the two ints of the classic Node); the array is an object of no slots
 * and 8 * array_size bytes. */
typedef struct mh_gcbench_params {
    int32_t stretch_depth;        /* 18 */
    int32_t long_lived_depth;     /* 16 */
    int32_t array_size;           /* 500000 doubles */
    int32_t min_depth, max_depth; /* 4 .. 16 */
    int32_t depth_step;           /* 2 */
    int32_t repetitions;          /* runs of the whole benchmark on the same heap, at most 16 */
    uint32_t node_bytes;          /* 8 */
} mh_gcbench_params;

typedef struct mh_gcbench_result {
    int32_t ok;                   /* 1: every check passed */
    char error[256];              /* why not */
    uint64_t ns_total;            /* all repetitions */
    uint64_t ns_rep[16];          /* each repetition */
    uint64_t nodes_allocated;     /* from the tree sizes (nothing is counted per allocation) */
    uint64_t checks;              /* checks passed: tree sizes and array values */
} mh_gcbench_result;

/* Run GCBench on heap; returns 0, or -1 with result->error set. The pauses are the heap's own
 * events (on_gc). */
int mh_gcbench_run(mh_heap *heap, const mh_gcbench_params *params, mh_gcbench_result *result);

/* Copy-rate workload: build `lists` linked lists, interleaved, of objects of nrefs slots (slot 0 is
 * the link) and nbytes of payload, until `objects` objects exist, all of them live. The heads stay
 * held by the handles written to heads[0..lists). Returns 0, or -1 with error set. */
int mh_bench_build_lists(mh_heap *heap, uint64_t objects, uint32_t nrefs, uint32_t nbytes,
                         uint32_t lists, mh_handle *heads, char *error, size_t errlen);
/* Walk the lists from their heads and return the number of objects reached (-1 on error). */
int64_t mh_bench_count_lists(mh_heap *heap, uint32_t lists, const mh_handle *heads);
/* memcpy of nbytes between two malloc'd, pre-touched buffers, reps times; the time of each copy is
 * written to ns_out[0..reps). cold: before each copy, a buffer larger than the last-level cache is
 * written through, so the copy reads and writes memory, as a collection does (the objects it copies
 * were allocated long before, the to-space it fills was not touched since the last one); warm:
 * nothing in between, so a copy that fits the caches runs from them. Returns 0, or -1 if the
 * buffers could not be allocated. */
int mh_bench_memcpy(uint64_t nbytes, uint32_t reps, int cold, uint64_t *ns_out);

/* Write one byte every stride bytes of [addr, addr + length): the first touch of mapped memory.
 * Returns the nanoseconds it took. */
uint64_t mh_bench_touch(uint64_t addr, uint64_t length, uint64_t stride);

/* zgc-latency (zlatency.c): a live set of lists under steady churn. */
typedef struct mh_zlat_params {
    uint64_t live_nodes;          /* nodes kept live: live_nodes / list_length lists */
    uint32_t list_length;         /* nodes per list */
    uint32_t node_bytes;          /* payload bytes of a node, >= 8 (24: a 40-byte node, as on a JVM with ZGC) */
    uint64_t churn_nodes;         /* nodes the churn allocates (in whole lists) */
    uint64_t seed;
} mh_zlat_params;

typedef struct mh_zlat_result {
    int32_t ok;                   /* 1: every list held its stamps */
    char error[256];
    uint64_t ns_build, ns_churn, ns_total;
    uint64_t ops;                 /* lists replaced */
    uint64_t checks;              /* lists walked and found right */
} mh_zlat_result;

/* Build the live set, churn, check everything survived; 0, or -1 with result->error set. */
int mh_zlat_run(mh_heap *heap, const mh_zlat_params *params, mh_zlat_result *result);

/* The load barrier's cost per load (barrierbench.c): a dependent pointer chase of `loads` loads
 * around a ring of `nodes` small objects on the heap, with the barrier `kind` (which must fit the
 * heap's layout), and the same chase over a malloc'd copy through plain C pointers. */
#define MH_BARRIER_NONE 0         /* no colour test, the reference is the address (serial) */
#define MH_BARRIER_TEST 1         /* ref & bad_mask, the reference is the address (three views) */
#define MH_BARRIER_TEST_SHIFT 2   /* ref & bad_mask, address = ref >> 16 (colour in the low bits) */
#define MH_BARRIER_MH_GET 3       /* mh_get as miniheap-inline.h has it: the shift from the record */
typedef struct mh_barrier_result {
    int32_t ok;                   /* 1: both chases ended on the node they should */
    char error[256];              /* why not */
    uint64_t loads;
    uint64_t heap_ns;             /* the chase through mh_get */
    uint64_t plain_ns;            /* the chase through plain pointers */
    uint64_t loads_slow;          /* loads that took the barrier's slow path while timed (0 expected) */
    uint64_t heap_checksum, plain_checksum;
} mh_barrier_result;

int mh_bench_barrier(mh_heap *heap, int kind, uint32_t nodes, uint64_t loads, mh_barrier_result *r);

/* A monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t mh_bench_now_ns(void);

/* cdef-end */

/* Outside the cdef (C only): record why a run failed, in a result's error text (the first reason
 * wins) and its ok flag; returns -1 for the caller to return. */
int mh_bench_fail(char *error, size_t size, int32_t *ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
