/*
 * gcbench.c: Hans Boehm's GCBench as a C embedder of miniheap, written against the inline fast
 * path (miniheap-inline.h), as a JIT-compiled Java program runs against the JVM's.
 *
 * The workload (see miniheap/bench/peers/GCBench.java, its peer on the JVM):
 *   1. build a complete binary tree of depth stretch_depth and drop it;
 *   2. build a long-lived tree of depth long_lived_depth top-down, and a long-lived array of
 *      array_size doubles, half of them 1/i;
 *   3. for d = min_depth, min_depth + step, ... max_depth: build 2 * size(stretch) / size(d) trees
 *      of depth d top-down, dropping each, then as many bottom-up, dropping each;
 *   4. check the long-lived tree and the array.
 *
 * A Java local variable that holds an object across an allocation becomes a root in the mutator's
 * shadow stack (mh_push / mh_root / mh_set_root, mh_unwind when the Java variable would go out of
 * scope): the collector updates it when the object moves. A reference used only between two
 * allocations stays a plain C variable, as it stays in a register in compiled Java. Allocation
 * (mh_new), stores (mh_put, with the card mark) and loads (mh_get, with the colour test) are inline;
 * only a full eden (a collection) or a large object leaves the fast path.
 *
 * Nothing is counted or recorded per allocation: the pauses are the heap's own events (on_gc), the
 * allocated bytes come from the bump pointer. The same checks as the Java and CPython versions are
 * made (tree sizes and array values), so a collector that loses or corrupts an object fails the
 * benchmark instead of producing a time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "miniheap-inline.h"

typedef struct gcbench {
    mh_mutator *m;
    mh_heap *heap;
    const mh_gcbench_params *p;
    mh_gcbench_result *r;
} gcbench;

/* why the run failed, in its result (the first reason wins) */
#define fail(b, ...) mh_bench_fail((b)->r->error, sizeof (b)->r->error, &(b)->r->ok, __VA_ARGS__)

static int __attribute__((noinline, cold)) heap_fail(gcbench *b, const char *what)
{
    return fail(b, "%s: %s", what, mh_last_error_message(b->heap));
}

static uint64_t tree_size(int depth)
{
    return ((uint64_t)1 << (depth + 1)) - 1;
}

static uint64_t iterations(const mh_gcbench_params *p, int depth)
{
    return 2 * tree_size(p->stretch_depth) / tree_size(depth);
}

/* The classic Node's payload: its two ints. */
#define NODE_BYTES 8

/* new Node(): two null slots and the payload. 0 when the heap is exhausted (error set). A JIT
 * knows the size of the class it allocates; so does this call, for the classic Node: with a
 * constant shape mh_new's zeroing and size test fold into a few stores. */
static inline __attribute__((always_inline)) mh_ref new_node(gcbench *b)
{
    uint32_t nbytes = b->p->node_bytes;
    mh_ref node = nbytes == NODE_BYTES ? mh_new(b->m, 2, NODE_BYTES) : mh_new(b->m, 2, nbytes);
    if (__builtin_expect(node == 0, 0))
        heap_fail(b, "mh_new(node)");
    return node;
}

/* Top-down: give the node at root index `node` two fresh children, then recurse into them. */
static int populate(gcbench *b, int depth, uint32_t node)
{
    mh_mutator *m = b->m;
    if (depth <= 0)
        return 0;
    depth--;
    mh_ref left = new_node(b);
    if (!left)
        return -1;
    mh_put(m, mh_root(m, node), 0, left);
    mh_ref right = new_node(b); /* may collect: left is reachable from the node */
    if (!right)
        return -1;
    mh_put(m, mh_root(m, node), 1, right);
    uint32_t child = mh_push(m, mh_get(m, mh_root(m, node), 0));
    if (child == UINT32_MAX)
        return heap_fail(b, "mh_push");
    int rc = populate(b, depth, child);
    if (rc == 0) {
        mh_set_root(m, child, mh_get(m, mh_root(m, node), 1));
        rc = populate(b, depth, child);
    }
    mh_pop(m, 1);
    return rc;
}

/* Bottom-up: both subtrees first, then their parent. The new tree, or 0. */
static mh_ref make_tree(gcbench *b, int depth)
{
    mh_mutator *m = b->m;
    if (depth <= 0)
        return new_node(b);
    mh_ref left = make_tree(b, depth - 1);
    if (!left)
        return 0;
    uint32_t frame = mh_frame(m);
    if (mh_push(m, left) == UINT32_MAX) {
        heap_fail(b, "mh_push");
        return 0;
    }
    mh_ref right = make_tree(b, depth - 1); /* may collect: left is a root */
    mh_ref node = 0;
    if (right && mh_push(m, right) == UINT32_MAX)
        heap_fail(b, "mh_push");
    else if (right && (node = new_node(b)) != 0) {
        mh_put(m, node, 0, mh_root(m, frame));
        mh_put(m, node, 1, mh_root(m, frame + 1));
    }
    mh_unwind(m, frame);
    return node;
}

/* Nodes reachable from node (not null). Allocates nothing, so raw references stay valid. */
static uint64_t count(mh_mutator *m, mh_ref node)
{
    uint64_t n = 1;
    for (uint32_t slot = 0; slot < 2; slot++) {
        mh_ref child = mh_get(m, node, slot);
        if (child)
            n += count(m, child);
    }
    return n;
}

static int expect_tree(gcbench *b, mh_ref tree, int depth, const char *what)
{
    uint64_t n = count(b->m, tree);
    if (n != tree_size(depth))
        return fail(b, "%s tree of depth %d has %llu nodes, expected %llu", what, depth,
                    (unsigned long long)n, (unsigned long long)tree_size(depth));
    b->r->checks++;
    return 0;
}

static int time_construction(gcbench *b, int depth)
{
    mh_mutator *m = b->m;
    uint64_t n = iterations(b->p, depth);
    uint32_t tree = mh_push(m, 0);
    if (tree == UINT32_MAX)
        return heap_fail(b, "mh_push");
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        mh_ref root = new_node(b);
        if (!root) {
            rc = -1;
            break;
        }
        mh_set_root(m, tree, root);
        rc = populate(b, depth, tree);
        if (rc == 0 && i == n - 1)
            rc = expect_tree(b, mh_root(m, tree), depth, "top-down");
    }
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        mh_ref root = make_tree(b, depth);
        if (!root) {
            rc = -1;
            break;
        }
        if (i == n - 1)
            rc = expect_tree(b, root, depth, "bottom-up");
    }
    mh_pop(m, 1);
    return rc;
}

static int check_array(gcbench *b, mh_ref array)
{
    int half = b->p->array_size / 2;
    int step = b->p->array_size / 2000 > 1 ? b->p->array_size / 2000 : 1;
    const double *values = (const double *)mh_data(b->m, array);
    for (int i = 1; i < half; i += step) {
        if (values[i] != 1.0 / i)
            return fail(b, "array[%d] = %g, expected %g", i, values[i], 1.0 / i);
    }
    b->r->checks++;
    return 0;
}

static int run_once(gcbench *b)
{
    const mh_gcbench_params *p = b->p;
    mh_mutator *m = b->m;
    uint32_t frame = mh_frame(m);

    mh_ref stretch = make_tree(b, p->stretch_depth);
    if (!stretch || expect_tree(b, stretch, p->stretch_depth, "stretch") != 0)
        return -1;

    int rc = -1;
    uint32_t long_lived = mh_push(m, new_node(b));
    uint32_t array = mh_push(m, 0);
    if (long_lived == UINT32_MAX || array == UINT32_MAX)
        heap_fail(b, "mh_push");
    else if (mh_root(m, long_lived) && populate(b, p->long_lived_depth, long_lived) == 0) {
        mh_ref values = mh_new(m, 0, (uint32_t)p->array_size * 8u); /* large: the slow path */
        if (!values) {
            heap_fail(b, "mh_new(array of doubles)");
        } else {
            mh_set_root(m, array, values);
            double *d = (double *)mh_data(m, values); /* valid until the next allocation */
            for (int i = 0; i < p->array_size / 2; i++)
                d[i] = 1.0 / i;
            rc = 0;
        }
    }
    for (int d = p->min_depth; rc == 0 && d <= p->max_depth; d += p->depth_step)
        rc = time_construction(b, d);
    if (rc == 0)
        rc = expect_tree(b, mh_root(m, long_lived), p->long_lived_depth, "long-lived");
    if (rc == 0)
        rc = check_array(b, mh_root(m, array));
    mh_unwind(m, frame);
    return rc;
}

static int check_params(gcbench *b)
{
    const mh_gcbench_params *p = b->p;
    if (p->repetitions < 1 || p->repetitions > 16)
        return fail(b, "repetitions %d: allowed 1..16", p->repetitions);
    if (p->stretch_depth < 0 || p->stretch_depth > 30 || p->long_lived_depth < 0 || p->long_lived_depth > 30)
        return fail(b, "tree depths must be 0..30");
    if (p->min_depth < 0 || p->max_depth < p->min_depth || p->max_depth > p->stretch_depth || p->depth_step < 1)
        return fail(b, "depths %d..%d step %d: need 0 <= min <= max <= stretch depth and step >= 1",
                    p->min_depth, p->max_depth, p->depth_step);
    if (p->array_size < 2 || p->array_size > (1 << 28))
        return fail(b, "array_size %d: allowed 2..2^28", p->array_size);
    return 0;
}

int mh_gcbench_run(mh_heap *heap, const mh_gcbench_params *params, mh_gcbench_result *result)
{
    memset(result, 0, sizeof *result);
    result->ok = 1;
    gcbench b = {NULL, heap, params, result};
    if (check_params(&b) != 0)
        return -1;
    /* The record holds the heap for the whole run, as a single-threaded mutator should. */
    b.m = mh_mutator_attach(heap);
    if (!b.m)
        return heap_fail(&b, "mh_mutator_attach");
    uint64_t start = mh_bench_now_ns();
    int rc = 0;
    for (int rep = 0; rc == 0 && rep < params->repetitions; rep++) {
        uint64_t t0 = mh_bench_now_ns();
        rc = run_once(&b);
        result->ns_rep[rep] = mh_bench_now_ns() - t0;
    }
    result->ns_total = mh_bench_now_ns() - start;
    mh_mutator_detach(b.m);
    /* nodes made: the run's tree sizes, computed, not counted */
    const mh_gcbench_params *p = params;
    uint64_t per_rep = tree_size(p->stretch_depth) + tree_size(p->long_lived_depth);
    for (int d = p->min_depth; d <= p->max_depth; d += p->depth_step)
        per_rep += 2 * iterations(p, d) * tree_size(d);
    result->nodes_allocated = rc == 0 ? per_rep * (uint64_t)p->repetitions : 0;
    return rc == 0 ? 0 : -1;
}
