/*
 * zlatency.c: the workload of `python -m miniheap bench zgc-latency`, a large live set under steady
 * churn, as a C embedder on the inline fast path (miniheap-inline.h). Its peer on the JVM is
 * miniheap/bench/peers/ZLatency.java, which does the same, object for object.
 *
 *   build  a root array of `lists` slots, each a linked list of list_length nodes (a node: one
 *          reference, node_bytes of payload whose first 8 bytes hold its stamp); that is the live set
 *   churn  until churn_nodes nodes have been allocated: walk a random list, checking every node's
 *          stamp (loads, through the load barrier), then replace another random list with a new one
 *          (allocations and stores); the live set stays the same size, the replaced list is garbage
 *
 * The root array and the list being built are roots in the shadow stack; every other reference is a
 * C variable between two allocations. mh_poll between operations lets a concurrent collector stop
 * the mutator within one operation (the JVM's compiled loops poll as often). Nothing is recorded
 * per object: the pauses are the heap's own events.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "miniheap-inline.h"

typedef struct zlat {
    mh_mutator *m;
    mh_heap *heap;
    const mh_zlat_params *p;
    mh_zlat_result *r;
    uint32_t root, tmp; /* shadow-stack slots */
    uint64_t rng;
} zlat;

/* why the run failed, in its result (the first reason wins) */
#define fail(b, ...) mh_bench_fail((b)->r->error, sizeof (b)->r->error, &(b)->r->ok, __VA_ARGS__)

static uint64_t next(zlat *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

/* A new list of list_length nodes stamped stamp * list_length + k; 0 on failure. */
static mh_ref build_list(zlat *b, uint64_t stamp)
{
    mh_mutator *m = b->m;
    uint32_t len = b->p->list_length;
    mh_set_root(m, b->tmp, 0);
    for (uint32_t k = 0; k < len; k++) {
        mh_ref node = mh_new(m, 1, b->p->node_bytes);
        if (!node) {
            fail(b, "mh_new: %s", mh_last_error_message(b->heap));
            return 0;
        }
        uint64_t v = stamp * len + k;
        memcpy(mh_data(m, node), &v, sizeof v);
        mh_put(m, node, 0, mh_root(m, b->tmp));
        mh_set_root(m, b->tmp, node);
    }
    return mh_root(m, b->tmp);
}

/* Walk list i, checking every stamp (the head is the last node built). */
static int check_list(zlat *b, uint32_t i, uint64_t stamp)
{
    mh_mutator *m = b->m;
    uint32_t len = b->p->list_length, k = len;
    for (mh_ref cur = mh_get(m, mh_root(m, b->root), i); cur; cur = mh_get(m, cur, 0)) {
        uint64_t v;
        memcpy(&v, mh_data(m, cur), sizeof v);
        if (k == 0 || v != stamp * len + --k)
            return fail(b, "list %u: node %u holds %llu, not %llu", i, len - k, (unsigned long long)v,
                        (unsigned long long)(stamp * len + k));
    }
    if (k != 0)
        return fail(b, "list %u has %u nodes, not %u", i, len - k, len);
    b->r->checks++;
    return 0;
}

int mh_zlat_run(mh_heap *heap, const mh_zlat_params *p, mh_zlat_result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = 1;
    zlat b = {.heap = heap, .p = p, .r = r, .rng = p->seed | 1};
    if (p->node_bytes < 8)
        return fail(&b, "node_bytes %u must be at least 8: a node's stamp is 8 bytes", p->node_bytes);
    if (p->list_length == 0 || p->live_nodes < p->list_length)
        return fail(&b, "live_nodes %llu must hold at least one list of list_length %u",
                    (unsigned long long)p->live_nodes, p->list_length);
    uint32_t lists = (uint32_t)(p->live_nodes / p->list_length);
    uint64_t *stamps = calloc(lists, sizeof *stamps);
    if (!stamps)
        return fail(&b, "out of memory for %u stamps", lists);
    b.m = mh_mutator_attach(heap);
    if (!b.m) {
        free(stamps);
        return fail(&b, "mh_mutator_attach: %s", mh_last_error_message(heap));
    }
    mh_mutator *m = b.m;
    uint32_t frame = mh_frame(m);
    b.root = mh_push(m, 0);
    b.tmp = mh_push(m, 0);
    uint64_t t0 = mh_bench_now_ns();
    mh_ref root = mh_new(m, lists, 0);
    if (!root || b.root == UINT32_MAX || b.tmp == UINT32_MAX) {
        fail(&b, "the root array: %s", mh_last_error_message(heap));
        goto out;
    }
    mh_set_root(m, b.root, root);
    for (uint32_t i = 0; i < lists; i++) {
        mh_ref list = build_list(&b, i);
        if (!list)
            goto out;
        mh_put(m, mh_root(m, b.root), i, list);
        stamps[i] = i;
        mh_poll(m);
    }
    uint64_t t1 = mh_bench_now_ns();
    uint64_t stamp = lists;
    for (uint64_t allocated = 0; allocated < p->churn_nodes; allocated += p->list_length) {
        uint32_t j = (uint32_t)(next(&b) % lists);
        if (check_list(&b, j, stamps[j]) != 0)
            goto out;
        uint32_t i = (uint32_t)(next(&b) % lists);
        mh_ref list = build_list(&b, stamp);
        if (!list)
            goto out;
        mh_put(m, mh_root(m, b.root), i, list);
        stamps[i] = stamp++;
        r->ops++;
        mh_poll(m);
    }
    for (uint32_t i = 0; i < lists; i++) { /* everything survived */
        if (check_list(&b, i, stamps[i]) != 0)
            goto out;
        mh_poll(m); /* this loop allocates nothing: without the poll a pause would wait for its end */
    }
    uint64_t t2 = mh_bench_now_ns();
    r->ns_build = t1 - t0;
    r->ns_churn = t2 - t1;
    r->ns_total = t2 - t0;
out:
    mh_unwind(m, frame);
    mh_mutator_detach(m);
    free(stamps);
    return r->ok ? 0 : -1;
}
