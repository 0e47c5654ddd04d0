// Produces the JDK 17 SerialGC log kept beside this file as a test fixture:
//   javac PromotionFailedFixture.java
//   java -XX:+UseSerialGC -Xms64m -Xmx64m -Xmn20m -Xlog:gc* PromotionFailedFixture > serialgc-jdk17-promotion-failed.log
// Old fills slowly (each young collection promotes about 100 KB, so the padded average of
// promoted bytes stays small), then a burst keeps everything in eden alive: the young
// collection is attempted, old cannot take the survivors, "Promotion failed", and a full
// collection follows.
import java.util.ArrayList;
import java.util.List;

public class PromotionFailedFixture {
    public static void main(String[] args) {
        List<Object> keep = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            keep.add(new byte[100_000]);
            for (int j = 0; j < 30; j++) {
                byte[] junk = new byte[100_000];
            }
        }
        List<Object> burst = new ArrayList<>();
        try {
            for (int i = 0; i < 300; i++)
                burst.add(new byte[100_000]);
        } catch (OutOfMemoryError e) {
            burst = null;
        }
        System.out.println(keep.size());
    }
}
