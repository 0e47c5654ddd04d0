// Produces the JDK 17 ZGC logs kept beside this file as test fixtures:
//   javac ZgcFixture.java
//   java -XX:+UseZGC -Xmx128m -Xlog:gc ZgcFixture > zgc-jdk17.log
//   java -XX:+UseZGC -Xmx128m -Xlog:gc* ZgcFixture > zgc-jdk17-gcstar.log
//   java -XX:+UseZGC -Xmx1t -Xlog:gc+init -version > zgc-jdk17-xmx1t-init.log
//   java -XX:+UseZGC -XX:-UseDynamicNumberOfGCThreads -XX:ConcGCThreads=1 -Xmx128m -Xlog:gc+init -version \
//        > zgc-jdk17-static-init.log        (one GC thread, as miniheap has)
// Three phases, one per kind of cycle the fixtures must show:
//   a live set growing slowly          -> Garbage Collection (Warmup), at 10, 20, 30 % used
//   allocation faster than cycles end  -> Allocation Stall lines, cycles caused by them
//   System.gc()                        -> Garbage Collection (System.gc())
public class ZgcFixture {
    static final class Node { Node next; long value; Node(Node n, long v) { next = n; value = v; } }
    static long sink;

    public static void main(String[] args) throws Exception {
        Node[] live = new Node[200_000];
        for (int round = 0; round < 60; round++) {
            for (int i = 0; i < live.length; i += 60) live[(i + round) % live.length] = new Node(null, i);
            for (int i = 0; i < 20_000; i++) sink += new byte[64].length;
            Thread.sleep(20);
        }
        java.util.Random random = new java.util.Random(1);
        long end = System.nanoTime() + 3_000_000_000L;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 10_000; i++) {
                int j = random.nextInt(live.length);
                live[j] = new Node(live[random.nextInt(live.length)], j);
                sink += new byte[256].length;
            }
        }
        System.gc();
        if (sink == 42) System.out.println(live.length);
    }
}
