// Apache Curator's LeaderLatch under the handover benchmark (bench/handover.py).
//
// Built at run time by bench/common.py with javac against Debian's Curator 5.x and ZooKeeper
// jars. One JVM holds N LeaderLatch participants on one latch path, spread round-robin over K
// CuratorFramework clients (K = N up to 100: a session per participant; the benchmark documents
// its choice for larger N). Each participant is what a Curator user writes: a LeaderLatch with
// a LeaderLatchListener.
//
// Usage: java ... CuratorDriver <connect string> <latch path> <N> <K> <session timeout ms>
//                               <requeue delay ms>
// Prints, flushed, one line each: "READY" once every client is connected, every latch started
// and one participant leads; "SAMPLE <nanoseconds> <old leader> <new leader>" per round;
// "CLOSED" at the end; "ERROR <why>" (then exits 1) if something does not happen in time.
// Reads commands from stdin: "ROUND" = the leader closes its latch (deleting its node; the
// next participant's isLeader() ends the measurement, which runs from just before close());
// the closed participant re-joins at the back with a new LeaderLatch <requeue delay> later, as
// zkelect's resign() does by default. "QUIT" or stdin EOF = close every client and exit.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReferenceArray;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorDriver {
    private static final long WAIT_NANOS = TimeUnit.SECONDS.toNanos(30);
    private static final Object LOCK = new Object();
    private static final List<long[]> EVENTS = new ArrayList<>(); // {participant, nanoTime}

    private CuratorDriver() {}

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static void fail(String why) {
        say("ERROR " + why);
        System.exit(1);
    }

    private static LeaderLatch join(CuratorFramework client, String path, int index)
            throws Exception {
        LeaderLatch latch = new LeaderLatch(client, path, String.format("cand-%04d", index));
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                long now = System.nanoTime(); // first thing: the end of the measurement
                synchronized (LOCK) {
                    EVENTS.add(new long[] {index, now});
                    LOCK.notifyAll();
                }
            }

            @Override
            public void notLeader() {}
        });
        latch.start();
        return latch;
    }

    /** Waits until more than {@code mark} leader events were recorded; the one at mark. */
    private static long[] eventAfter(int mark) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT_NANOS;
        synchronized (LOCK) {
            while (EVENTS.size() <= mark) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                TimeUnit.NANOSECONDS.timedWait(LOCK, left);
            }
            return EVENTS.get(mark);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: CuratorDriver <connect> <path> <N> <K> <session ms> "
                    + "<requeue ms>");
            System.exit(2);
        }
        final String connect = args[0];
        final String path = args[1];
        final int n = Integer.parseInt(args[2]);
        final int k = Integer.parseInt(args[3]);
        final int sessionMs = Integer.parseInt(args[4]);
        final long requeueMs = Long.parseLong(args[5]);

        final CuratorFramework[] clients = new CuratorFramework[k];
        for (int i = 0; i < k; i++) {
            clients[i] = CuratorFrameworkFactory.builder()
                    .connectString(connect)
                    .sessionTimeoutMs(sessionMs)
                    .connectionTimeoutMs(15000)
                    .retryPolicy(new ExponentialBackoffRetry(100, 10))
                    .build();
            clients[i].start();
        }
        final Runnable closeAll = () -> {
            for (CuratorFramework client : clients) {
                try {
                    client.close();
                } catch (RuntimeException e) {
                    System.err.println("closing a client: " + e);
                }
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(closeAll)); // SIGTERM: sessions closed
        for (CuratorFramework client : clients) {
            if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
                fail("a Curator client did not connect within 30 s");
            }
        }
        final AtomicReferenceArray<LeaderLatch> latches = new AtomicReferenceArray<>(n);
        for (int i = 0; i < n; i++) {
            latches.set(i, join(clients[i % k], path, i));
        }
        if (eventAfter(0) == null) {
            fail("no participant became leader within 30 s");
        }
        say("READY");

        final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        final BufferedReader in = new BufferedReader(
                new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.equals("QUIT")) {
                break;
            }
            if (!line.equals("ROUND")) {
                continue;
            }
            final int mark;
            final int leader;
            synchronized (LOCK) {
                mark = EVENTS.size();
                leader = (int) EVENTS.get(mark - 1)[0];
            }
            final LeaderLatch old = latches.get(leader);
            if (!old.hasLeadership()) {
                fail("participant " + leader + " was elected but does not lead");
            }
            final long started = System.nanoTime();
            old.close(); // deletes our node (in the background): the next participant leads
            timer.schedule(() -> {
                try {
                    latches.set(leader, join(clients[leader % k], path, leader));
                } catch (Exception e) {
                    fail("re-joining participant " + leader + ": " + e);
                }
            }, requeueMs, TimeUnit.MILLISECONDS);
            final long[] next = eventAfter(mark);
            if (next == null) {
                fail("no new leader within 30 s after participant " + leader + " closed");
            }
            say("SAMPLE " + (next[1] - started) + " " + leader + " " + next[0]);
        }
        timer.shutdownNow();
        closeAll.run();
        say("CLOSED");
        System.exit(0);
    }
}
