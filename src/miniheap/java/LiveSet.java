// The JVM side of `python -m miniheap compare-jvm`, run as `java LiveSet.java MEGABYTES`.
//
// It allocates like miniheap's demo workload (gc_demo.py, section 5): per-request garbage that dies
// at once, sessions replaced after a while, cache entries of four nodes that live long enough to be
// promoted and die old; a System.gc() halfway and one at the end. MEGABYTES (MiB) is counted in
// miniheap's object sizes (a header word, a word per reference, the payload in whole words: a request
// and its response 112 bytes, a session 112, a cache entry of four nodes 544), so both sides of
// compare-jvm make the same objects; the JVM's own sizes differ (tests/test_compare_jvm.py keeps the
// numbers here equal to miniheap's). Then it prints its PID and waits
// for a line on standard input, so that /proc/PID/maps and smaps can be read while the heap is
// still mapped. It never prints anything else on standard output except the GC log the JVM adds.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Random;

public class LiveSet {
    // miniheap's sizes of what one step allocates (see above)
    static final long REQUEST_BYTES = 112, SESSION_BYTES = 112, ENTRY_BYTES = 544;

    static final class Node {
        Node next;
        final byte[] payload;
        Node(int bytes) { payload = new byte[bytes]; }
    }

    public static void main(String[] args) throws Exception {
        long target = (args.length > 0 ? Long.parseLong(args[0]) : 192) << 20;
        Random rng = new Random(2017);
        Node[] sessions = new Node[4096];
        Node[] cache = new Node[2048];
        long allocated = 0;
        boolean halfway = false;
        for (int i = 0; allocated < target; i++) {
            Node request = new Node(48);
            request.next = new Node(32);
            allocated += REQUEST_BYTES;
            if (i % 16 == 0) {
                Node session = new Node(96);
                session.next = request;
                sessions[rng.nextInt(sessions.length)] = session;
                allocated += SESSION_BYTES;
            }
            if (i % 128 == 0) {
                Node entry = new Node(120);
                for (int k = 0; k < 3; k++) {
                    Node node = new Node(120);
                    node.next = entry;
                    entry = node;
                }
                int slot = rng.nextInt(cache.length);
                for (Node n = cache[slot]; n != null; n = n.next) { } // read what it replaces
                cache[slot] = entry;
                allocated += ENTRY_BYTES;
            }
            if (!halfway && allocated >= target / 2) {
                System.gc();
                halfway = true;
            }
        }
        System.gc();
        System.out.println("miniheap-compare ready " + ProcessHandle.current().pid());
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in)).readLine();
        // Keep the live set reachable until the measurement is done.
        System.out.println("miniheap-compare done " + (sessions.length + cache.length));
    }
}
