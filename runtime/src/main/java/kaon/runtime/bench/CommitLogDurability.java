package kaon.runtime.bench;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import kaon.runtime.CassandraConnection;

/**
 * Whether Cassandra keeps the writes it acknowledged when its JVM is SIGKILLed, as a job's journal
 * needs (bench/cassandra-durability drives it). {@code write HOST:PORT FILE} writes rows 1, 2, 3,
 * ... one at a time, each after the previous was acknowledged, and keeps the highest acknowledged
 * one in {@code FILE} until Cassandra stops answering (the script kills it meanwhile). {@code
 * check HOST:PORT FILE}, after Cassandra is back, counts how many of the acknowledged rows it
 * holds and prints the acknowledged, lost and the write rate.
 */
public final class CommitLogDurability {

  private static final String KEYSPACE = "kaon_durability";

  private CommitLogDurability() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 3 || !(args[0].equals("write") || args[0].equals("check"))) {
      System.err.println("usage: CommitLogDurability write|check HOST:PORT FILE");
      System.exit(2);
    }
    Path file = Path.of(args[2]);
    try (CqlSession session = CqlSession.builder().addContactPoint(CassandraConnection.address(args[1]))
        .withLocalDatacenter("datacenter1").build()) {
      if (args[0].equals("write")) {
        write(session, file);
      } else {
        check(session, file);
      }
    }
  }

  private static void write(CqlSession session, Path file) throws Exception {
    session.execute(SimpleStatement.newInstance("CREATE KEYSPACE IF NOT EXISTS " + KEYSPACE
        + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").setTimeout(Duration.ofSeconds(30)));
    session.execute(SimpleStatement.newInstance("DROP TABLE IF EXISTS " + KEYSPACE + ".acked").setTimeout(Duration.ofSeconds(30)));
    session.execute(SimpleStatement.newInstance("CREATE TABLE " + KEYSPACE + ".acked (id bigint PRIMARY KEY, at bigint)")
        .setTimeout(Duration.ofSeconds(30)));
    PreparedStatement insert = session.prepare("INSERT INTO " + KEYSPACE + ".acked (id, at) VALUES (?, ?)");
    long started = System.nanoTime();
    long acked = 0;
    try {
      while (true) {
        session.execute(insert.bind(acked + 1, System.currentTimeMillis()).setTimeout(Duration.ofSeconds(5)));
        acked++;
        if (acked % 50 == 0) {
          record(file, acked, started);
        }
      }
    } catch (RuntimeException stopped) {
      // Cassandra was killed: the last acknowledged row is final.
      record(file, acked, started);
    }
  }

  private static void record(Path file, long acked, long started) throws Exception {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, acked + " " + (System.nanoTime() - started) + "\n");
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  private static void check(CqlSession session, Path file) throws Exception {
    String[] recorded = Files.readString(file).trim().split(" ");
    long acked = Long.parseLong(recorded[0]);
    double seconds = Long.parseLong(recorded[1]) / 1e9;
    long held = session.execute(SimpleStatement.newInstance("SELECT count(*) FROM " + KEYSPACE + ".acked")
        .setTimeout(Duration.ofSeconds(60))).one().getLong(0);
    long lost = 0;
    long firstLost = 0;
    // Which of the acknowledged rows are gone: the newest ones, if any.
    PreparedStatement get = session.prepare("SELECT id FROM " + KEYSPACE + ".acked WHERE id = ?");
    for (long id = acked; id >= 1 && id > acked - 20_000; id--) {
      if (session.execute(get.bind(id)).one() == null) {
        lost++;
        firstLost = id;
      }
    }
    System.out.printf("%d writes acknowledged (%.0f/s, one at a time), %d held after the kill, %d acknowledged lost%s%n",
        acked, acked / seconds, held, lost, lost == 0 ? "" : " (from row " + firstLost + ")");
  }
}
