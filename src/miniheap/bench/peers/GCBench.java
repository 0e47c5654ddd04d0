/*
 * GCBench: Hans Boehm's classic collector benchmark, re-implemented from its description for the
 * miniheap benchmarks (python -m miniheap bench gcbench-native).
 *
 * The workload:
 *   1. stretch the heap: build a complete binary tree of depth 18 and drop it;
 *   2. build a long-lived tree of depth 16 (top-down) and a long-lived array of 500000 doubles,
 *      half of them filled with 1/i; both stay reachable to the end;
 *   3. for depth d = 4, 6, ..., 16: build 2 * treeSize(18) / treeSize(d) trees of depth d
 *      top-down (allocate a node, then fill in its children), dropping each one, then as many
 *      bottom-up (children first, then their parent), dropping each one;
 *   4. check that the long-lived data survived.
 *
 * This version checks its own results, so a broken benchmark fails instead of printing a time:
 * the node count of the stretch tree, of the long-lived tree, of the last tree built at each depth
 * in both directions, and the array values. It exits 1 on a mismatch.
 *
 * Usage: java GCBench [repetitions [stretchDepth longLivedDepth arraySize minDepth maxDepth]]
 * Output: one "rep N ms T" line per repetition and a final "ok ..." line, for the Python driver.
 */
public final class GCBench {

    static final class Node {
        Node left, right;
        int i, j;  // payload of the classic Node: two ints, never read by the benchmark

        Node() {}

        Node(Node left, Node right) {
            this.left = left;
            this.right = right;
        }
    }

    static int stretchDepth = 18;
    static int longLivedDepth = 16;
    static int arraySize = 500000;
    static int minDepth = 4;
    static int maxDepth = 16;
    static final int DEPTH_STEP = 2;

    static long checks = 0;

    /** Nodes in a complete binary tree of the given depth (a depth-0 tree is one node). */
    static long treeSize(int depth) {
        return (1L << (depth + 1)) - 1;
    }

    /** How many trees of this depth to build: together they allocate twice the stretch tree. */
    static long iterations(int depth) {
        return 2 * treeSize(stretchDepth) / treeSize(depth);
    }

    /** Top-down: give node two fresh children, then recurse into them. */
    static void populate(int depth, Node node) {
        if (depth <= 0) {
            return;
        }
        depth--;
        node.left = new Node();
        node.right = new Node();
        populate(depth, node.left);
        populate(depth, node.right);
    }

    /** Bottom-up: build both subtrees, then the node that holds them. */
    static Node makeTree(int depth) {
        if (depth <= 0) {
            return new Node();
        }
        return new Node(makeTree(depth - 1), makeTree(depth - 1));
    }

    static long count(Node node) {
        return node == null ? 0 : 1 + count(node.left) + count(node.right);
    }

    static void expect(String what, long got, long want) {
        checks++;
        if (got != want) {
            System.out.println("FAILED: " + what + ": got " + got + ", expected " + want);
            System.exit(1);
        }
    }

    static void timeConstruction(int depth) {
        long n = iterations(depth);
        for (long i = 0; i < n; i++) {
            Node tree = new Node();
            populate(depth, tree);
            if (i == n - 1) {
                expect("top-down tree of depth " + depth, count(tree), treeSize(depth));
            }
        }
        for (long i = 0; i < n; i++) {
            Node tree = makeTree(depth);
            if (i == n - 1) {
                expect("bottom-up tree of depth " + depth, count(tree), treeSize(depth));
            }
        }
    }

    /** One whole run of the benchmark; returns nanoseconds. */
    static long run() {
        long start = System.nanoTime();

        Node stretch = makeTree(stretchDepth);
        expect("stretch tree of depth " + stretchDepth, count(stretch), treeSize(stretchDepth));
        stretch = null;

        Node longLived = new Node();
        populate(longLivedDepth, longLived);

        double[] array = new double[arraySize];
        for (int i = 0; i < arraySize / 2; i++) {
            array[i] = 1.0 / i;
        }

        for (int d = minDepth; d <= maxDepth; d += DEPTH_STEP) {
            timeConstruction(d);
        }

        expect("long-lived tree of depth " + longLivedDepth, count(longLived), treeSize(longLivedDepth));
        for (int i = 1; i < arraySize / 2; i += Math.max(1, arraySize / 2000)) {
            if (array[i] != 1.0 / i) {
                System.out.println("FAILED: array[" + i + "] = " + array[i] + ", expected " + 1.0 / i);
                System.exit(1);
            }
        }
        int probe = Math.min(1000, arraySize / 2 - 1);
        if (probe > 0 && array[probe] != 1.0 / probe) {
            System.out.println("FAILED: array[" + probe + "] = " + array[probe]);
            System.exit(1);
        }
        checks++;
        return System.nanoTime() - start;
    }

    public static void main(String[] args) {
        int repetitions = args.length > 0 ? Integer.parseInt(args[0]) : 1;
        if (args.length > 1) {
            if (args.length != 6) {
                System.err.println("usage: java GCBench [repetitions [stretchDepth longLivedDepth arraySize minDepth maxDepth]]");
                System.exit(2);
            }
            stretchDepth = Integer.parseInt(args[1]);
            longLivedDepth = Integer.parseInt(args[2]);
            arraySize = Integer.parseInt(args[3]);
            minDepth = Integer.parseInt(args[4]);
            maxDepth = Integer.parseInt(args[5]);
        }
        for (int r = 0; r < repetitions; r++) {
            long ns = run();
            System.out.printf("rep %d ms %.3f%n", r, ns / 1e6);
        }
        System.out.println("ok checks " + checks + " stretch " + stretchDepth + " long-lived " + longLivedDepth
                + " array " + arraySize + " depths " + minDepth + ".." + maxDepth);
    }
}
