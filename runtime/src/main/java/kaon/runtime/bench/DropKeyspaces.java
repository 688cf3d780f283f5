package kaon.runtime.bench;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import kaon.runtime.CassandraConnection;

/**
 * Drops the throwaway keyspaces a benchmark's runs made (bench/recovery, bench/scale and
 * bench/train-throughput give each run a journal and a snapshot keyspace of its own), from the
 * Cassandra the configuration names: every keyspace holds tables whose memtables live on
 * Cassandra's heap, and a developer's local node (512 MB of heap) once died of heap exhaustion
 * after a session of such runs. Prints what it could not drop; exits 0 either way, as a bench's
 * clean-up must not fail the bench.
 */
public final class DropKeyspaces {

  private DropKeyspaces() {}

  public static void main(String[] args) {
    CassandraConnection.dropKeyspaces(ConfigFactory.load(), List.of(args), Duration.ofSeconds(30),
        message -> System.err.println("bench: " + message));
  }
}
