"""GCBench on plain CPython objects: the peer of ``python -m miniheap bench gcbench-python``.

Hans Boehm's GCBench re-implemented from its description, with nodes that are ordinary Python objects
with ``__slots__`` (left, right and the two ints of the classic Node), so CPython's reference counting
and cycle collector do the work that miniheap's copying collector does in the other version:

1. build a tree of depth ``stretch_depth`` and drop it;
2. build a long-lived tree of depth ``long_lived_depth`` top-down, and a long-lived array of
   ``array_size`` doubles, half of them 1/i;
3. for depth d from ``min_depth`` to ``max_depth`` step 2: build ``2 * tree_size(stretch) /
   tree_size(d)`` trees top-down, dropping each, then as many bottom-up;
4. check the long-lived data.

It checks its own results (node counts of the stretch tree, the long-lived tree, the last tree of each
depth in both directions, and the array values) and raises :class:`GCBenchFailed` on a mismatch.

Run alone: ``python -m miniheap.bench.peers.gcbench_cpython [--quick]``.
"""
import array
import sys
import time

CLASSIC = dict(stretch_depth=18, long_lived_depth=16, array_size=500000, min_depth=4, max_depth=16)
QUICK = dict(stretch_depth=12, long_lived_depth=10, array_size=20000, min_depth=4, max_depth=10)
DEPTH_STEP = 2


class GCBenchFailed(AssertionError):
    pass


class Node:
    __slots__ = ("left", "right", "i", "j")

    def __init__(self, left=None, right=None):
        self.left = left
        self.right = right
        self.i = 0
        self.j = 0


def tree_size(depth):
    """Nodes in a complete binary tree of this depth (depth 0 is a single node)."""
    return (1 << (depth + 1)) - 1


def iterations(depth, stretch_depth):
    return 2 * tree_size(stretch_depth) // tree_size(depth)


def populate(depth, node):
    """Top-down: two fresh children, then recurse into them."""
    if depth <= 0:
        return
    depth -= 1
    node.left = Node()
    node.right = Node()
    populate(depth, node.left)
    populate(depth, node.right)


def make_tree(depth):
    """Bottom-up: both subtrees first, then their parent."""
    if depth <= 0:
        return Node()
    return Node(make_tree(depth - 1), make_tree(depth - 1))


def count(node):
    if node is None:
        return 0
    return 1 + count(node.left) + count(node.right)


def _expect(what, got, want):
    if got != want:
        raise GCBenchFailed(f"{what}: got {got}, expected {want}")


def run(stretch_depth, long_lived_depth, array_size, min_depth, max_depth):
    """One run of the benchmark. Returns a dict with the time and the number of checks passed."""
    checks = 0
    start = time.perf_counter_ns()

    stretch = make_tree(stretch_depth)
    _expect(f"stretch tree of depth {stretch_depth}", count(stretch), tree_size(stretch_depth))
    checks += 1
    del stretch

    long_lived = Node()
    populate(long_lived_depth, long_lived)

    values = array.array("d", bytes(8 * array_size))
    for i in range(1, array_size // 2):
        values[i] = 1.0 / i
    values[0] = float("inf")  # 1.0/0 in the JVM version

    for depth in range(min_depth, max_depth + 1, DEPTH_STEP):
        n = iterations(depth, stretch_depth)
        for i in range(n):
            tree = Node()
            populate(depth, tree)
            if i == n - 1:
                _expect(f"top-down tree of depth {depth}", count(tree), tree_size(depth))
                checks += 1
        for i in range(n):
            tree = make_tree(depth)
            if i == n - 1:
                _expect(f"bottom-up tree of depth {depth}", count(tree), tree_size(depth))
                checks += 1
        tree = None

    _expect(f"long-lived tree of depth {long_lived_depth}", count(long_lived), tree_size(long_lived_depth))
    for i in range(1, array_size // 2, max(1, array_size // 2000)):
        _expect(f"array[{i}]", values[i], 1.0 / i)
    checks += 2
    return {"ns": time.perf_counter_ns() - start, "checks": checks}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    params = QUICK if "--quick" in argv else CLASSIC
    result = run(**params)
    print(f"GCBench (CPython {sys.version.split()[0]}, __slots__ nodes) {params}: "
          f"{result['ns'] / 1e9:.3f} s, {result['checks']} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
