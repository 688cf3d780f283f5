package kaon.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import java.io.NotSerializableException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.serialization.DisabledJavaSerializer;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import scala.util.Try;

class KryoSerializerTest {

  /** The field kinds worker messages carry: a typed ref, a string, an array, a primitive. */
  record Assign(ActorRef<String> replyTo, String jobId, float[] weights, int rank)
      implements KryoWireMessage {}

  /** Collections and a classic ref, which go through Kryo's class-and-object path. */
  record Roster(
      long generation,
      List<String> workers,
      ArrayList<Integer> ranks,
      org.apache.pekko.actor.ActorRef monitor)
      implements KryoWireMessage {}

  /** Marked for Kryo but missing from the registrations. */
  record Unlisted(String jobId) implements KryoWireMessage {}

  /** Bound to nothing but Java serialization, which is off. */
  record JavaOnly(String jobId) implements Serializable {}

  private static final String ASSIGN = "\"kaon.protocol.KryoSerializerTest$Assign\"";
  private static final String ROSTER = "\"kaon.protocol.KryoSerializerTest$Roster\"";

  private static ActorTestKit testKit;
  private static Serialization serialization;

  @BeforeAll
  static void start() {
    testKit =
        ActorTestKit.create(
            "KryoSerializerTest", registrations(ASSIGN + " = 100", ROSTER + " = 101"));
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  @Test
  void bindsWireMessagesToKryo() {
    assertInstanceOf(KryoSerializer.class, serialization.findSerializerFor(assign()));
    assertInstanceOf(KryoSerializer.class, serialization.findSerializerFor(roster()));
  }

  @Test
  void roundTripsTypedRefStringArrayAndInt() {
    TestProbe<String> probe = testKit.createTestProbe(String.class);
    Assign sent = new Assign(probe.ref(), "job-1", new float[] {0.5f, -0.0f, Float.NaN}, 3);

    Assign received = (Assign) roundTrip(sent);

    assertEquals(probe.ref(), received.replyTo());
    assertEquals("job-1", received.jobId());
    assertArrayEquals(sent.weights(), received.weights());
    assertEquals(3, received.rank());
    received.replyTo().tell("resolved");
    probe.expectMessage("resolved");
  }

  @Test
  void roundTripsCollectionsAndClassicRef() {
    Roster sent = roster();

    assertEquals(sent, roundTrip(sent));
  }

  @Test
  void refusesUnregisteredMessage() {
    Throwable failure = serialization.serialize(new Unlisted("job-1")).failed().get();

    assertInstanceOf(NotSerializableException.class, failure);
    assertTrue(failure.getMessage().contains(Unlisted.class.getName()), failure.getMessage());
    assertTrue(
        failure.getMessage().contains("kaon.serialization.kryo.registrations"),
        failure.getMessage());
  }

  @Test
  void refusesUnregisteredNestedClass() {
    Roster sent =
        new Roster(
            1,
            new LinkedList<>(List.of("w0")),
            new ArrayList<>(),
            Adapter.toClassic(testKit.system().deadLetters()));

    Throwable failure = serialization.serialize(sent).failed().get();

    assertInstanceOf(NotSerializableException.class, failure);
    assertTrue(failure.getMessage().contains("java.util.LinkedList"), failure.getMessage());
  }

  @Test
  void refusesMessageFromPeerWithOtherRegistrations() {
    byte[] bytes = serialization.serialize(assign()).get();
    ActorTestKit peer = ActorTestKit.create("KryoPeer", registrations(ROSTER + " = 101"));
    try {
      Try<Object> read =
          SerializationExtension.get(Adapter.toClassic(peer.system()))
              .deserialize(bytes, KryoSerializer.IDENTIFIER, "");

      assertInstanceOf(NotSerializableException.class, read.failed().get());
    } finally {
      peer.shutdownTestKit();
    }
  }

  @Test
  void refusesJavaSerialization() {
    JavaOnly message = new JavaOnly("job-1");

    assertInstanceOf(DisabledJavaSerializer.class, serialization.findSerializerFor(message));
    assertTrue(serialization.serialize(message).isFailure());
  }

  static Stream<Arguments> badRegistrations() {
    return Stream.of(
        Arguments.of(registrations(ASSIGN + " = 100", ROSTER + " = 100"), "duplicate Kryo id 100"),
        Arguments.of(registrations(ASSIGN + " = 99"), "below 100"),
        Arguments.of(registrations("\"kaon.protocol.Missing\" = 100"), "not on the classpath"),
        Arguments.of(registrations("kaon.protocol.Unquoted = 100"), "quote class names"));
  }

  @ParameterizedTest
  @MethodSource("badRegistrations")
  void failsConstructionOnBadRegistrations(Config registrations, String expected) {
    // Pekko builds its serializers while the system starts, and so does ActorTestKit; a bare
    // system without SerializationExtension among its start-up extensions leaves the bad
    // registrations to the constructor under test.
    Config lazySerialization = ConfigFactory.parseString("pekko.library-extensions = []");
    ActorSystem<Void> other =
        ActorSystem.create(
            Behaviors.empty(),
            "KryoBadRegistrations",
            registrations.withFallback(lazySerialization));
    try {
      ExtendedActorSystem system = (ExtendedActorSystem) Adapter.toClassic(other);

      ConfigException e = assertThrows(ConfigException.class, () -> new KryoSerializer(system));
      assertTrue(e.getMessage().contains(expected), e.getMessage());
      assertTrue(
          e.getMessage().contains("kaon.serialization.kryo.registrations"), e.getMessage());
    } finally {
      ActorTestKit.shutdown(other);
    }
  }

  @Test
  void badRegistrationsFailActorSystemStart() {
    Config duplicates = registrations(ASSIGN + " = 100", ROSTER + " = 100");

    ConfigException e =
        assertThrows(
            ConfigException.class, () -> ActorTestKit.create("KryoDuplicateIds", duplicates));
    assertTrue(e.getMessage().contains("duplicate Kryo id 100"), e.getMessage());
  }

  private static Object roundTrip(Object message) {
    byte[] bytes = serialization.serialize(message).get();
    return serialization.deserialize(bytes, KryoSerializer.IDENTIFIER, "").get();
  }

  private static Assign assign() {
    return new Assign(testKit.system().deadLetters(), "job-1", new float[] {1f}, 0);
  }

  private static Roster roster() {
    ArrayList<Integer> ranks = new ArrayList<>(List.of(0, 1));
    return new Roster(
        7, List.of("w0", "w1", "w2"), ranks, Adapter.toClassic(testKit.system().deadLetters()));
  }

  private static Config registrations(String... entries) {
    return ConfigFactory.parseString(
        "kaon.serialization.kryo.registrations { " + String.join("\n", entries) + " }");
  }
}
