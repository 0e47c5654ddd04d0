"""gcbench-python: GCBench with the mutator in Python through the public API (``heap.alloc``,
``ref[i] = other``, ``ref[i]``), beside the same benchmark on plain CPython objects
(miniheap/bench/peers/gcbench_cpython.py) run in this process.

Both versions make the same checks (tree sizes, array values); a failed check fails the benchmark.
The miniheap heap is the one gcbench-native uses (64 MiB, 20 MiB young).
"""
import array
import gc
import time

from .common import (BenchFailed, Clock, Metric, Result, Target, Unavailable, close_heap, heap_class,
                     open_heap, pause_figures, ratio)
from .gcbench_native import CLASSIC, HEAP, NODE_BYTES, QUICK

NAME = "gcbench-python"
TITLE = "GCBench, Python mutator through Heap/Ref, vs the same on plain CPython objects"

METRICS = [
    Metric("time_s", "time (s)", "{:.2f}"),
    Metric("young", "young collections", "{:.0f}"),
    Metric("full", "full collections", "{:.0f}"),
    Metric("pause_total_ms", "total pause (ms)", "{:.1f}"),
    Metric("pause_median_ms", "median pause (ms)", "{:.3f}"),
    Metric("pause_p95_ms", "p95 pause (ms)", "{:.2f}"),
    Metric("pause_max_ms", "max pause (ms)", "{:.2f}"),
    Metric("copied_mib", "bytes copied (MiB)", "{:.1f}"),
]


def tree_size(depth):
    return (1 << (depth + 1)) - 1


def populate(alloc, depth, node):
    """Top-down: two fresh children, then recurse into them."""
    if depth <= 0:
        return
    depth -= 1
    left = alloc(2, NODE_BYTES)
    node[0] = left
    right = alloc(2, NODE_BYTES)
    node[1] = right
    populate(alloc, depth, left)
    populate(alloc, depth, right)


def make_tree(alloc, depth):
    """Bottom-up: both subtrees first, then their parent."""
    if depth <= 0:
        return alloc(2, NODE_BYTES)
    left = make_tree(alloc, depth - 1)
    right = make_tree(alloc, depth - 1)
    node = alloc(2, NODE_BYTES)
    node[0] = left
    node[1] = right
    return node


def count(node):
    n = 1
    left, right = node[0], node[1]
    if left is not None:
        n += count(left)
    if right is not None:
        n += count(right)
    return n


def _expect(what, got, want):
    if got != want:
        raise BenchFailed(f"miniheap GCBench: {what}: got {got}, expected {want}")


def gcbench(heap, stretch_depth, long_lived_depth, array_size, min_depth, max_depth):
    """GCBench on a miniheap Heap. Returns the number of checks passed."""
    alloc = heap.alloc
    checks = 0
    stretch = make_tree(alloc, stretch_depth)
    _expect(f"stretch tree of depth {stretch_depth}", count(stretch), tree_size(stretch_depth))
    checks += 1
    del stretch

    long_lived = alloc(2, NODE_BYTES)
    populate(alloc, long_lived_depth, long_lived)

    values = array.array("d", bytes(8 * array_size))
    for i in range(1, array_size // 2):
        values[i] = 1.0 / i
    values[0] = float("inf")
    long_array = alloc(0, 8 * array_size)
    long_array.data[:] = values.tobytes()
    del values

    for depth in range(min_depth, max_depth + 1, 2):
        n = 2 * tree_size(stretch_depth) // tree_size(depth)
        for i in range(n):
            tree = alloc(2, NODE_BYTES)
            populate(alloc, depth, tree)
            if i == n - 1:
                _expect(f"top-down tree of depth {depth}", count(tree), tree_size(depth))
                checks += 1
        for i in range(n):
            tree = make_tree(alloc, depth)
            if i == n - 1:
                _expect(f"bottom-up tree of depth {depth}", count(tree), tree_size(depth))
                checks += 1
        tree = None

    _expect(f"long-lived tree of depth {long_lived_depth}", count(long_lived), tree_size(long_lived_depth))
    back = array.array("d")
    back.frombytes(bytes(long_array.data))
    for i in range(1, array_size // 2, max(1, array_size // 2000)):
        _expect(f"array[{i}]", back[i], 1.0 / i)
    return checks + 2


def load_cpython_peer():
    """The CPython peer, a module of the package (so the bench works from any folder)."""
    from .peers import gcbench_cpython

    return gcbench_cpython


def run_miniheap(params):
    heap = open_heap(**HEAP)
    try:
        gc.collect()
        start = time.perf_counter_ns()
        checks = gcbench(heap, **params)
        ns = time.perf_counter_ns() - start
        events = list(getattr(heap, "events", []))
        stats = heap.stats
        if events:
            pause_ms = [e.ns_total / 1e6 for e in events]
        else:
            pause_ms = list(getattr(stats, "pauses_ms", []))
        out = {"time_s": ns / 1e9, "young": stats.young_collections, "full": stats.full_collections,
               "copied_mib": stats.bytes_copied / (1 << 20)}
        out.update(pause_figures(pause_ms))
        return out, {"checks": checks}
    finally:
        close_heap(heap)


def run_cpython(module, params):
    gc.collect()
    got = module.run(**params)
    return {"time_s": got["ns"] / 1e9}, {"checks": got["checks"]}


def run(opts):
    params = QUICK if opts.quick else CLASSIC
    runs = opts.runs or (1 if opts.quick else 3)
    result = Result(NAME, TITLE, dict(params, runs=runs, heap=HEAP, node_bytes=NODE_BYTES))
    result.metrics = METRICS
    clock = Clock(20 if opts.quick else 150)

    mine = result.subject("miniheap", "Python mutator: heap.alloc(2, 8), ref[i] = other, ref[i]")
    try:
        heap_class()
    except Unavailable as e:
        mine.unavailable = str(e)
    peer = result.subject("CPython", "gcbench_cpython.py: __slots__ nodes, same process")
    try:
        module = load_cpython_peer()
    except Unavailable as e:
        peer.unavailable = str(e)

    for i in range(runs):
        if not mine.unavailable:
            try:
                figures, extra = run_miniheap(params)
                mine.add(**figures)
                mine.extra.setdefault("runs", []).append(extra)
            except Unavailable as e:
                mine.unavailable = str(e)
        if not peer.unavailable:
            try:
                figures, extra = run_cpython(module, params)
            except module.GCBenchFailed as e:
                raise BenchFailed(f"CPython GCBench: {e}") from e
            peer.add(**figures)
            peer.extra.setdefault("runs", []).append(extra)
        if i + 1 < runs and clock.spent():
            result.notes.append(f"stopped after {i + 1} of {runs} runs: time budget spent")
            break

    if mine.unavailable:
        result.unavailable(mine.unavailable)
    result.targets = [Target("gcbench-python time / CPython's", ratio(mine.median("time_s"), peer.median("time_s")),
                             1.0, note=f"CPython peer {peer.unavailable}" if peer.unavailable else "")]
    if opts.quick:
        result.notes.append("quick mode: small trees; the ratio is not the issue's target")
    return result
