/*
 * barrierbench.c: what the load barrier costs per load, on the inline fast path.
 *
 * The workload is a pointer chase: a ring of small objects (one reference slot, 8 payload bytes)
 * linked in a random order, small enough to stay in the L1 cache, walked load after load. Each
 * load's address is computed from the previous load's result, so the loop runs at the latency of
 * that chain: a load, plus whatever turns the loaded reference into the next address. The colour
 * test (one AND against the record's bad mask and a branch that is never taken, since nothing is
 * stale) is off that chain on an out-of-order CPU, which predicts the branch and goes on; the shift
 * that strips a colour kept in the low bits is on it.
 *
 * The peer is the same chase over a malloc'd copy of the ring, same object shape and order, through
 * plain C pointers: no barrier at all. The heap is built by the Python Heap with the layout to
 * measure; this file makes no system calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "miniheap-inline.h"

#define NODE_BYTES 8u

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random cyclic order of n nodes: order[i] is followed by order[i + 1]. */
static uint32_t *ring_order(uint32_t n)
{
    uint32_t *order = malloc((size_t)n * sizeof *order);
    if (!order)
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    uint64_t seed = 2017;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(xorshift(&seed) % (i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return order;
}

static int fail(mh_barrier_result *r, const char *what, mh_heap *heap)
{
    snprintf(r->error, sizeof r->error, "%s: %s", what, heap ? mh_last_error_message(heap) : "out of memory");
    r->ok = 0;
    return -1;
}

/* The chases. A JIT compiles the barrier for the layout it runs on: no test at all for a
 * collector without a load barrier (serial), JDK 17's test of the reference against a thread-local
 * bad mask (multi-mapped: the reference is the address), JDK 21's test and a shift by a constant
 * (the colour in the low bits). Each is one loop below, its decode a constant as a JIT's is; the
 * fourth is mh_get as miniheap-inline.h ships it, one code for every layout, the shift read from the
 * mutator record. Every loop takes the slow path for a stale reference, so each is a correct barrier
 * for its layout. noinline: one copy of each loop, timed as it is. */
#define CHASE(name, TEST, SHIFT)                                                        \
    static __attribute__((noinline)) mh_ref name(mh_mutator *m, mh_ref p, uint64_t loads) \
    {                                                                                   \
        for (uint64_t i = 0; i < loads; i++) {                                          \
            mh_ref *field = &obj_slots((mh_object *)(uintptr_t)(p >> (SHIFT)))[0];      \
            mh_ref v = __atomic_load_n(field, __ATOMIC_ACQUIRE);                        \
            if ((TEST) && __builtin_expect((v & m->bad_mask) != 0, 0))                   \
                v = mh_get_slow(m, field, v);                                           \
            p = v;                                                                      \
        }                                                                               \
        return p;                                                                       \
    }
CHASE(chase_no_barrier, 0, 0)
CHASE(chase_color_test, 1, 0)
CHASE(chase_color_test_shift, 1, MH_LOW_BITS_SHIFT)

static __attribute__((noinline)) mh_ref chase_mh_get(mh_mutator *m, mh_ref p, uint64_t loads)
{
    for (uint64_t i = 0; i < loads; i++)
        p = mh_get(m, p, 0);
    return p;
}

static mh_ref chase_heap(int kind, mh_mutator *m, mh_ref p, uint64_t loads)
{
    switch (kind) {
    case MH_BARRIER_NONE:
        return chase_no_barrier(m, p, loads);
    case MH_BARRIER_TEST:
        return chase_color_test(m, p, loads);
    case MH_BARRIER_TEST_SHIFT:
        return chase_color_test_shift(m, p, loads);
    default:
        return chase_mh_get(m, p, loads);
    }
}

/* Whether a loop fits the heap's layout, as the record describes it. */
static const char *kind_mismatch(int kind, const mh_mutator *m)
{
    if (kind < MH_BARRIER_NONE || kind > MH_BARRIER_MH_GET)
        return "kind must be MH_BARRIER_NONE, _TEST, _TEST_SHIFT or _MH_GET";
    if (kind == MH_BARRIER_NONE && m->bad_mask != 0)
        return "a chase without the colour test needs a heap without a load barrier (serial)";
    if (kind != MH_BARRIER_MH_GET && m->addr_base != 0)
        return "the heap's references are not address >> shift";
    if ((kind == MH_BARRIER_NONE || kind == MH_BARRIER_TEST) && m->addr_shift != 0)
        return "the heap's references carry the colour in the low bits: use MH_BARRIER_TEST_SHIFT";
    if (kind == MH_BARRIER_TEST_SHIFT && m->addr_shift != MH_LOW_BITS_SHIFT)
        return "the heap's references are addresses: use MH_BARRIER_TEST or MH_BARRIER_NONE";
    return NULL;
}

/* The peer: the same ring in malloc'd memory, a node's slot holding the next node's address. */
typedef struct plain_node {
    uint64_t header;
    struct plain_node *next;
    uint64_t payload;
} plain_node;

static __attribute__((noinline)) plain_node *chase_plain(plain_node *p, uint64_t loads)
{
    for (uint64_t i = 0; i < loads; i++)
        p = *(plain_node *volatile *)&p->next;
    return p;
}

int mh_bench_barrier(mh_heap *heap, int kind, uint32_t nodes, uint64_t loads, mh_barrier_result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = 1;
    if (nodes < 2)
        nodes = 2;
    uint32_t *order = ring_order(nodes);
    plain_node *plain = aligned_alloc(64, ((size_t)nodes * sizeof *plain + 63) & ~(size_t)63);
    if (!order || !plain) {
        free(order);
        free(plain);
        return fail(r, "the ring's order and its plain copy", NULL);
    }

    /* the plain ring, and its chase */
    for (uint32_t i = 0; i < nodes; i++) {
        plain[order[i]].header = 0;
        plain[order[i]].payload = i;
        plain[order[i]].next = &plain[order[(i + 1) % nodes]];
    }
    chase_plain(&plain[order[0]], 4ull * nodes); /* warm the caches and the predictor */
    uint64_t t0 = mh_bench_now_ns();
    plain_node *end = chase_plain(&plain[order[0]], loads);
    r->plain_ns = mh_bench_now_ns() - t0;
    r->plain_checksum = end->payload;

    /* the heap's ring, built with the inline path; every node a root until the ring is closed */
    mh_mutator *m = mh_mutator_attach(heap);
    if (!m) {
        free(order);
        free(plain);
        return fail(r, "mh_mutator_attach", heap);
    }
    uint32_t frame = mh_frame(m);
    int rc = 0;
    const char *mismatch = kind_mismatch(kind, m);
    if (mismatch) {
        snprintf(r->error, sizeof r->error, "%s", mismatch);
        r->ok = 0;
        rc = -1;
    }
    for (uint32_t i = 0; i < nodes && rc == 0; i++) {
        mh_ref node = mh_new(m, 1, NODE_BYTES);
        if (!node || mh_push(m, node) == UINT32_MAX)
            rc = fail(r, "building the ring", heap);
    }
    if (rc == 0) {
        /* no allocation from here on: raw references stay valid (no safepoint is polled) */
        for (uint32_t i = 0; i < nodes; i++) {
            mh_ref node = mh_root(m, frame + order[i]);
            uint64_t index = i;
            memcpy(mh_data(m, node), &index, sizeof index);
            mh_put(m, node, 0, mh_root(m, frame + order[(i + 1) % nodes]));
        }
        uint64_t slow0 = mh_get_stats(heap)->loads_slow;
        mh_ref start = mh_root(m, frame + order[0]);
        start = chase_heap(kind, m, start, 4ull * nodes); /* warm up; a stale ring heals here */
        t0 = mh_bench_now_ns();
        mh_ref last = chase_heap(kind, m, start, loads);
        r->heap_ns = mh_bench_now_ns() - t0;
        memcpy(&r->heap_checksum, mh_data(m, last), sizeof r->heap_checksum);
        r->loads_slow = mh_get_stats(heap)->loads_slow - slow0;
        /* both rings visit the same nodes in the same order: the walks end on the same index */
        uint64_t expect = (4ull * nodes + loads) % nodes;
        if (r->heap_checksum != expect || r->plain_checksum != loads % nodes) {
            snprintf(r->error, sizeof r->error, "the chase ended on node %llu (heap) and %llu (plain); "
                     "expected %llu and %llu", (unsigned long long)r->heap_checksum,
                     (unsigned long long)r->plain_checksum, (unsigned long long)expect,
                     (unsigned long long)(loads % nodes));
            r->ok = 0;
            rc = -1;
        }
    }
    mh_unwind(m, frame);
    mh_mutator_detach(m);
    free(order);
    free(plain);
    r->loads = loads;
    return rc;
}
