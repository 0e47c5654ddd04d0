// Produces the JDK 17 SerialGC logs kept beside this file as test fixtures:
//   javac SerialGcFixture.java
//   java -XX:+UseSerialGC -Xms64m -Xmx64m -Xlog:gc SerialGcFixture > serialgc-jdk17.log
//   java -XX:+UseSerialGC -Xms64m -Xmx64m -Xlog:gc*,gc+age=trace SerialGcFixture > serialgc-jdk17-gcstar.log
// The golden logs of the four selectors miniheap takes (-Xlog:gc is serialgc-jdk17.log above), each
// from its own run (JDK 17.0.15, 2 CPUs); the two large ones gzipped (gzip -9):
//   java -XX:+UseSerialGC -Xms64m -Xmx64m '-Xlog:gc*' SerialGcFixture > serialgc-jdk17-star.log
//   java -XX:+UseSerialGC -Xms64m -Xmx64m '-Xlog:gc*=debug' SerialGcFixture > serialgc-jdk17-star-debug.log
//   java -XX:+UseSerialGC -Xms64m -Xmx64m '-Xlog:gc*=trace' SerialGcFixture > serialgc-jdk17-star-trace.log
// The init lines alone, for the unit JDK 17 prints gc,init sizes in (no program needed):
//   java -XX:+UseSerialGC -Xmx1g -Xlog:gc+init -version > serialgc-jdk17-xmx1g-init.log
//   java -XX:+UseShenandoahGC -XX:+UnlockExperimentalVMOptions -XX:ShenandoahRegionSize=256k -Xmx64m \
//        -Xlog:gc+init -version > shenandoah-jdk17-region256k-init.log
// Three phases, one per kind of pause the fixtures must show:
//   short-lived garbage        -> Pause Young (Allocation Failure)
//   System.gc()                -> Pause Full (System.gc())
//   a live set near the heap   -> Pause Full (Allocation Failure), after a young
//                                 collection that could not promote
public class SerialGcFixture {
    static long sink;

    public static void main(String[] args) {
        Object[] keep = new Object[2000];
        for (int i = 0; i < 200000; i++) {
            sink += new byte[1024 + (i % 7) * 128].length;
            if (i % 97 == 0) keep[(i / 97) % keep.length] = new byte[8192];
        }
        System.gc();
        int kept = keep.length;
        keep = null;
        java.util.ArrayList<byte[]> live = new java.util.ArrayList<>();
        for (int i = 0; i < 900000; i++) {
            byte[] b = new byte[512];
            sink += b.length;
            if (i % 8 == 0) live.add(b);
            if (live.size() > 90000) live.subList(0, 45000).clear();
        }
        System.gc();
        if (sink == 42) System.out.println(kept + live.size());
    }
}
