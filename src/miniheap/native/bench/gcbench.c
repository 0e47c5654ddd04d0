/*
 * gcbench.c: Hans Boehm's GCBench as a C embedder of miniheap, written against the handle API.
 *
 * The workload (see miniheap/bench/peers/GCBench.java, its peer on the JVM):
 *   1. build a complete binary tree of depth stretch_depth and drop it;
 *   2. build a long-lived tree of depth long_lived_depth top-down, and a long-lived array of
 *      array_size doubles, half of them 1/i;
 *   3. for d = min_depth, min_depth + step, ... max_depth: build 2 * size(stretch) / size(d) trees
 *      of depth d top-down, dropping each, then as many bottom-up, dropping each;
 *   4. check the long-lived tree and the array.
 *
 * A Java local variable becomes a handle here: every object the mutator holds across an allocation
 * is held through a handle, and released when the Java variable would go out of scope. The same
 * checks as the Java and CPython versions are made (tree sizes and array values), so a collector
 * that loses or corrupts an object fails the benchmark instead of producing a time.
 *
 * The run holds the heap (mh_lock) from start to end, as a single-threaded C mutator should: its
 * calls then cost no mutex operation each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct gcbench {
    mh_heap *heap;
    const mh_gcbench_params *p;
    mh_gcbench_result *r;
    mh_bench_pauses *pauses;
} gcbench;

static int fail(gcbench *b, const char *fmt, ...)
{
    if (b->r->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->r->error, sizeof b->r->error, fmt, ap);
        va_end(ap);
    }
    b->r->ok = 0;
    return -1;
}

static int heap_fail(gcbench *b, const char *what)
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

static mh_handle new_node(gcbench *b)
{
    mh_handle h = mh_alloc(b->heap, 2, b->p->node_bytes);
    mh_bench_pauses_note(b->heap, b->pauses);
    if (h < 0)
        heap_fail(b, "mh_alloc(node)");
    else
        b->r->nodes_allocated++;
    return h;
}

static int store(gcbench *b, mh_handle object, uint32_t slot, mh_handle value)
{
    if (mh_store(b->heap, object, slot, value) != 0)
        return heap_fail(b, "mh_store");
    return 0;
}

/* Top-down: give node two fresh children, then recurse into them. */
static int populate(gcbench *b, int depth, mh_handle node)
{
    if (depth <= 0)
        return 0;
    depth--;
    mh_handle left = new_node(b);
    if (left < 0)
        return -1;
    int rc = store(b, node, 0, left);
    mh_handle right = rc == 0 ? new_node(b) : -1;
    if (right < 0) {
        mh_release(b->heap, left);
        return -1;
    }
    rc = store(b, node, 1, right);
    if (rc == 0)
        rc = populate(b, depth, left);
    if (rc == 0)
        rc = populate(b, depth, right);
    mh_release(b->heap, left);
    mh_release(b->heap, right);
    return rc;
}

/* Bottom-up: both subtrees first, then their parent. Returns a new handle, or -1. */
static mh_handle make_tree(gcbench *b, int depth)
{
    if (depth <= 0)
        return new_node(b);
    mh_handle left = make_tree(b, depth - 1);
    if (left < 0)
        return -1;
    mh_handle right = make_tree(b, depth - 1);
    if (right < 0) {
        mh_release(b->heap, left);
        return -1;
    }
    mh_handle node = new_node(b);
    if (node >= 0 && (store(b, node, 0, left) != 0 || store(b, node, 1, right) != 0)) {
        mh_release(b->heap, node);
        node = -1;
    }
    mh_release(b->heap, left);
    mh_release(b->heap, right);
    return node;
}

/* Nodes reachable from node (which is not null), or -1. Allocates nothing but handles. */
static int64_t count(gcbench *b, mh_handle node)
{
    int64_t n = 1;
    for (uint32_t slot = 0; slot < 2; slot++) {
        mh_handle child = mh_load(b->heap, node, slot);
        if (child == MH_NULL_HANDLE)
            continue;
        if (child < 0)
            return heap_fail(b, "mh_load");
        int64_t c = count(b, child);
        mh_release(b->heap, child);
        if (c < 0)
            return -1;
        n += c;
    }
    return n;
}

static int expect_tree(gcbench *b, mh_handle tree, int depth, const char *what)
{
    int64_t n = count(b, tree);
    if (n < 0)
        return -1;
    if ((uint64_t)n != tree_size(depth))
        return fail(b, "%s tree of depth %d has %lld nodes, expected %llu", what, depth, (long long)n,
                    (unsigned long long)tree_size(depth));
    b->r->checks++;
    return 0;
}

static int time_construction(gcbench *b, int depth)
{
    uint64_t n = iterations(b->p, depth);
    for (uint64_t i = 0; i < n; i++) {
        mh_handle tree = new_node(b);
        if (tree < 0)
            return -1;
        int rc = populate(b, depth, tree);
        if (rc == 0 && i == n - 1)
            rc = expect_tree(b, tree, depth, "top-down");
        mh_release(b->heap, tree);
        if (rc != 0)
            return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        mh_handle tree = make_tree(b, depth);
        if (tree < 0)
            return -1;
        int rc = i == n - 1 ? expect_tree(b, tree, depth, "bottom-up") : 0;
        mh_release(b->heap, tree);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int check_array(gcbench *b, mh_handle array)
{
    int half = b->p->array_size / 2;
    int step = b->p->array_size / 2000 > 1 ? b->p->array_size / 2000 : 1;
    const double *values = (const double *)mh_payload(b->heap, array);
    if (values == NULL)
        return heap_fail(b, "mh_payload(array)");
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

    mh_handle stretch = make_tree(b, p->stretch_depth);
    if (stretch < 0)
        return -1;
    int rc = expect_tree(b, stretch, p->stretch_depth, "stretch");
    mh_release(b->heap, stretch);
    if (rc != 0)
        return -1;

    mh_handle long_lived = new_node(b);
    if (long_lived < 0)
        return -1;
    mh_handle array = -1;
    rc = populate(b, p->long_lived_depth, long_lived);
    if (rc == 0) {
        array = mh_alloc(b->heap, 0, (uint32_t)p->array_size * 8u);
        mh_bench_pauses_note(b->heap, b->pauses);
        if (array < 0)
            rc = heap_fail(b, "mh_alloc(array of doubles)");
    }
    if (rc == 0) {
        double *values = (double *)mh_payload(b->heap, array);  /* valid until the next allocation */
        if (values == NULL) {
            rc = heap_fail(b, "mh_payload(array)");
        } else {
            for (int i = 0; i < p->array_size / 2; i++)
                values[i] = 1.0 / i;
        }
    }
    for (int d = p->min_depth; rc == 0 && d <= p->max_depth; d += p->depth_step)
        rc = time_construction(b, d);
    if (rc == 0)
        rc = expect_tree(b, long_lived, p->long_lived_depth, "long-lived");
    if (rc == 0)
        rc = check_array(b, array);
    mh_release(b->heap, long_lived);
    if (array >= 0)
        mh_release(b->heap, array);
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

int mh_gcbench_run(mh_heap *heap, const mh_gcbench_params *params, mh_gcbench_result *result,
                   mh_bench_pauses *pauses)
{
    memset(result, 0, sizeof *result);
    result->ok = 1;
    gcbench b = {heap, params, result, pauses};
    if (check_params(&b) != 0)
        return -1;
    /* Hold the heap for the whole run: the millions of calls below then skip its lock. */
    mh_lock(heap);
    mh_bench_pauses_begin(heap, pauses);
    uint64_t start = mh_bench_now_ns();
    int rc = 0;
    for (int rep = 0; rc == 0 && rep < params->repetitions; rep++) {
        uint64_t t0 = mh_bench_now_ns();
        rc = run_once(&b);
        result->ns_rep[rep] = mh_bench_now_ns() - t0;
    }
    result->ns_total = mh_bench_now_ns() - start;
    mh_unlock(heap);
    return rc == 0 ? 0 : -1;
}
