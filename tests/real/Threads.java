// A multi-threaded JVM workload for tests/run_real_programs.sh: a thread pool builds and queries
// hash maps of strings and lists, threads hand results through a concurrent queue, and the
// output is a digest that depends only on the work (never on timing or addresses). The JVM
// itself calls malloc from many threads (JIT compiler, GC, class loading, NIO buffers).
import java.nio.ByteBuffer;
import java.util.*;
import java.util.concurrent.*;
import java.util.zip.CRC32;

public class Threads {
    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        BlockingQueue<long[]> out = new LinkedBlockingQueue<>();
        List<Future<Long>> jobs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            final int seed = t;
            jobs.add(pool.submit(() -> {
                HashMap<String, List<Integer>> m = new HashMap<>();
                for (int i = 0; i < 150_000; i++)
                    m.computeIfAbsent("key-" + (i * 7 + seed) % 6000, k -> new ArrayList<>()).add(i ^ seed);
                TreeMap<Integer, String> idx = new TreeMap<>();
                for (Map.Entry<String, List<Integer>> e : m.entrySet())
                    idx.put(e.getValue().size() * 100_000 + e.getKey().hashCode() % 100_000, e.getKey());
                // direct buffers are malloc'd by the JVM outside its heap
                ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
                CRC32 crc = new CRC32();
                for (String k : idx.values()) b.put(k.getBytes(), 0, Math.min(k.length(), b.remaining()));
                b.flip();
                crc.update(b);
                out.put(new long[] {seed, crc.getValue()});
                long h = 0;
                for (Map.Entry<String, List<Integer>> e : m.entrySet())
                    h += e.getKey().hashCode() * 31L + e.getValue().stream().mapToLong(Integer::longValue).sum();
                return h;
            }));
        }
        long sum = 0;
        for (Future<Long> f : jobs) sum += f.get();
        pool.shutdown();
        long[] crcs = new long[8];
        for (int i = 0; i < 8; i++) {
            long[] r = out.take();
            crcs[(int) r[0]] = r[1];
        }
        System.out.println("sum " + sum);
        System.out.println("crc " + Arrays.toString(crcs));
        System.out.println("threads: done");
    }
}
