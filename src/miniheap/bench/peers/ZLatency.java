// The JVM peer of `python -m miniheap bench zgc-latency` (miniheap/native/bench/zlatency.c does the
// same on miniheap, object for object): a live set of linked lists held by one array, under steady
// churn. Run as the benchmark runs it:
//   java -XX:+UseZGC -Xms<H>m -Xmx<H>m -XX:+AlwaysPreTouch -Xlog:gc*:file=gc.log ZLatency LIVE_NODES LIST_LENGTH CHURN_NODES SEED
// A node has one reference and a 16-byte payload (two longs; the stamp in the first): 40 bytes with
// ZGC (no compressed oops: 12-byte header, then the three 8-byte fields), as miniheap's node of a
// header word, one slot and 24 payload bytes.
public class ZLatency {
    static final class Node {
        Node next;
        long stamp;
        long pad;
        Node(Node next, long stamp) { this.next = next; this.stamp = stamp; }
    }

    static long rng;

    static long next() {
        rng ^= rng << 13;
        rng ^= rng >>> 7;
        rng ^= rng << 17;
        return rng;
    }

    static Node build(long stamp, int len) {
        Node head = null;
        for (int k = 0; k < len; k++) head = new Node(head, stamp * len + k);
        return head;
    }

    static void check(Node[] root, int i, long stamp, int len) {
        int k = len;
        for (Node cur = root[i]; cur != null; cur = cur.next) {
            if (k == 0 || cur.stamp != stamp * len + --k) throw new AssertionError("list " + i + " is wrong");
        }
        if (k != 0) throw new AssertionError("list " + i + " is short");
    }

    public static void main(String[] args) {
        long liveNodes = Long.parseLong(args[0]);
        int len = Integer.parseInt(args[1]);
        long churnNodes = Long.parseLong(args[2]);
        rng = Long.parseLong(args[3]) | 1;
        int lists = (int) (liveNodes / len);
        long[] stamps = new long[lists];
        long t0 = System.nanoTime();
        Node[] root = new Node[lists];
        for (int i = 0; i < lists; i++) {
            root[i] = build(i, len);
            stamps[i] = i;
        }
        long t1 = System.nanoTime();
        long stamp = lists, ops = 0;
        for (long allocated = 0; allocated < churnNodes; allocated += len) {
            int j = (int) Long.remainderUnsigned(next(), lists);
            check(root, j, stamps[j], len);
            int i = (int) Long.remainderUnsigned(next(), lists);
            root[i] = build(stamp, len);
            stamps[i] = stamp++;
            ops++;
        }
        for (int i = 0; i < lists; i++) check(root, i, stamps[i], len);
        long t2 = System.nanoTime();
        System.out.println("build ms " + (t1 - t0) / 1e6);
        System.out.println("churn ms " + (t2 - t1) / 1e6);
        System.out.println("total ms " + (t2 - t0) / 1e6);
        System.out.println("ops " + ops);
        System.out.println("ok checks");
    }
}
