// A real Apache Curator LeaderLatch participant, for zkelect's interoperability tests.
//
// Why: the exporter must report the right leader and epoch for elections run by Java services
// on Curator; only Curator itself proves that its node names, node data and ordering are what
// we parse. Built by the test with javac against Debian's Curator 5.4 jars.
//
// Usage: java -cp ... LatchPeer <connect string> <latch path> <participant id>
// Prints one line per event, flushed: "STARTED <id>", "LEADER <id> <our node path>" when it
// gains leadership, "FOLLOWER" when it loses it, "CLOSED" when the latch is closed. Closes the
// latch (deleting its node) and exits on stdin EOF or SIGTERM, so the test controls its life.
// Reads stdin lines meanwhile, so the test can ask what Curator itself sees:
//   "participants" -> "PARTICIPANTS <id>|<isLeader>;<id>|<isLeader>;..." (latch.getParticipants())
//   "leader"       -> "LEADERID <latch.getLeader().getId()>"
// Anything else -> "UNKNOWN <line>". Answers go through the same flushed, ordered output as the
// events, so an event printed before an answer is read before it.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.StringJoiner;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class LatchPeer {
    private LatchPeer() {}

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: LatchPeer <connect string> <latch path> <participant id>");
            System.exit(2);
        }
        final String connect = args[0];
        final String path = args[1];
        final String id = args[2];
        final CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(4000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new ExponentialBackoffRetry(100, 10))
                .build();
        final LeaderLatch latch = new LeaderLatch(client, path, id);
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                say("LEADER " + id + " " + latch.getOurPath());
            }

            @Override
            public void notLeader() {
                say("FOLLOWER");
            }
        });
        final AtomicBoolean closed = new AtomicBoolean(false);
        final Runnable close = () -> {
            if (closed.compareAndSet(false, true)) {
                try {
                    latch.close(); // deletes our node: the next participant leads
                } catch (Exception e) {
                    System.err.println("closing the latch failed: " + e);
                }
                client.close();
                say("CLOSED");
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(close)); // SIGTERM
        client.start();
        latch.start();
        say("STARTED " + id);
        final BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) { // until stdin EOF
            answer(latch, line.trim());
        }
        close.run();
        System.exit(0);
    }

    private static void answer(LeaderLatch latch, String command) {
        try {
            if (command.equals("participants")) {
                final StringJoiner all = new StringJoiner(";");
                for (Participant p : latch.getParticipants()) {
                    all.add(p.getId() + "|" + p.isLeader());
                }
                say("PARTICIPANTS " + all);
            } else if (command.equals("leader")) {
                say("LEADERID " + latch.getLeader().getId());
            } else {
                say("UNKNOWN " + command);
            }
        } catch (Exception e) {
            say("ERROR " + command + " " + e);
        }
    }
}
