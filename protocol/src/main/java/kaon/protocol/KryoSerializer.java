package kaon.protocol;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.KryoException;
import com.esotericsoftware.kryo.Registration;
import com.esotericsoftware.kryo.Serializer;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import com.esotericsoftware.kryo.util.DefaultClassResolver;
import com.esotericsoftware.kryo.util.Pool;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.io.NotSerializableException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.JSerializer;
import org.apache.pekko.serialization.Serialization;

/**
 * Pekko serializer for small wire messages, the {@link KryoWireMessage}s exchanged by coordinators
 * and workers. Not for tensors ({@link TensorChunkSerializer} carries those) and never for
 * persisted data: Kryo's bytes follow each class's field layout, so a field added in the next
 * release makes old bytes unreadable. That is acceptable between the peers of one job, which run
 * one release, and not for a journal or snapshot, which use protobuf.
 *
 * <p>Registration is required and explicit. A peer can then only make us instantiate listed
 * classes (unrestricted Kryo, like Java serialization, lets the sender pick any class on the
 * classpath), and the class goes on the wire as a one- or two-byte id. Ids are part of the wire
 * format and must be the same on every node:
 *
 * <ul>
 *   <li>0-9: Kryo's own (primitives and {@code String});
 *   <li>10-99: fixed here, typed and classic {@code ActorRef}s and the JDK types messages may use:
 *       {@code String[]}, {@code int[]}, {@code long[]}, {@code float[]}, {@code byte[]}, {@code ArrayList},
 *       {@code HashMap} and the lists made by {@code List.of} / {@code List.copyOf};
 *   <li>100 and up: the message classes listed under {@value #REGISTRATIONS_KEY}.
 * </ul>
 *
 * <p>It extends {@link JSerializer} without a manifest rather than {@code
 * SerializerWithStringManifest}: Kryo's registration id already names the class, so a string
 * manifest would only repeat it in every envelope.
 *
 * <p>Kryo instances and their buffers are neither thread-safe nor cheap to build, while Pekko
 * calls a serializer from many threads at once; both come from thread-safe pools.
 */
public final class KryoSerializer extends JSerializer {

  /** Identifier in Pekko's envelope; Kaon's serializers use 7401-7499. */
  public static final int IDENTIFIER = 7402;

  /** Config object mapping each fully-qualified message class name to its Kryo id. */
  public static final String REGISTRATIONS_KEY = "kaon.serialization.kryo.registrations";

  /** Lowest id a class under {@value #REGISTRATIONS_KEY} may have; lower ids are taken. */
  public static final int MIN_CONFIGURED_ID = 100;

  /** First of the ids this class fixes; Kryo's defaults must end below it. */
  private static final int FIRST_FIXED_ID = 10;

  /**
   * Artery's default maximum frame size: a bigger message could not be sent anyway, and the cap
   * bounds the buffer a pooled {@link Output} keeps.
   */
  private static final int MAX_MESSAGE_BYTES = 256 * 1024;

  private static final int INITIAL_BUFFER_BYTES = 4 * 1024;

  /**
   * Free instances a pool keeps: about the number of threads that serialize at once (Artery's
   * lanes and the dispatcher's threads). Beyond it, instances are built on demand and dropped.
   */
  private static final int POOL_CAPACITY = 2 * Runtime.getRuntime().availableProcessors();

  private final ExtendedActorSystem system;
  private final Map<Class<?>, Integer> registrations;
  private final Pool<Kryo> kryos;
  private final Pool<Output> outputs;
  private final Pool<Input> inputs;
  private volatile ActorRefResolver resolver;

  /**
   * Reads {@value #REGISTRATIONS_KEY} and builds a first Kryo instance, so that a bad
   * registration fails the start of the actor system rather than the first message.
   *
   * @param system the actor system whose config lists the registrations and whose refs are
   *     resolved on reading
   * @throws ConfigException if an entry is not an integer, its id is below {@value
   *     #MIN_CONFIGURED_ID} or used twice, or its class cannot be found
   */
  public KryoSerializer(ExtendedActorSystem system) {
    this.system = system;
    this.registrations =
        readRegistrations(system.settings().config(), system.dynamicAccess().classLoader());
    this.kryos =
        new Pool<>(true, false, POOL_CAPACITY) {
          @Override
          protected Kryo create() {
            return newKryo();
          }
        };
    this.outputs =
        new Pool<>(true, false, POOL_CAPACITY) {
          @Override
          protected Output create() {
            return new Output(INITIAL_BUFFER_BYTES, MAX_MESSAGE_BYTES);
          }
        };
    this.inputs =
        new Pool<>(true, false, POOL_CAPACITY) {
          @Override
          protected Input create() {
            return new Input();
          }
        };
    kryos.free(kryos.obtain());
  }

  private static Map<Class<?>, Integer> readRegistrations(Config config, ClassLoader loader) {
    Config registrations = config.getConfig(REGISTRATIONS_KEY);
    Map<Integer, String> classNameById = new HashMap<>();
    Map<Class<?>, Integer> idByClass = new LinkedHashMap<>();
    for (Map.Entry<String, ConfigValue> entry : registrations.root().entrySet()) {
      String className = entry.getKey();
      String path = REGISTRATIONS_KEY + "." + ConfigUtil.joinPath(className);
      if (entry.getValue().valueType() != ConfigValueType.NUMBER) {
        // The likely cause is an unquoted class name, whose dots HOCON reads as nesting.
        throw new ConfigException.BadValue(
            path,
            "expected an integer Kryo id; quote class names, e.g. \"kaon.actors.Foo$Bar\" = 110");
      }
      int id = registrations.getInt(ConfigUtil.joinPath(className));
      if (id < MIN_CONFIGURED_ID) {
        throw new ConfigException.BadValue(
            path,
            "Kryo id " + id + " of " + className + " is below " + MIN_CONFIGURED_ID
                + "; lower ids belong to Kryo and to KryoSerializer's built-in types");
      }
      String previous = classNameById.putIfAbsent(id, className);
      if (previous != null) {
        throw new ConfigException.BadValue(
            path,
            "duplicate Kryo id " + id + ", used by both " + previous + " and " + className
                + "; every class needs its own id");
      }
      try {
        idByClass.put(Class.forName(className, false, loader), id);
      } catch (ClassNotFoundException e) {
        throw new ConfigException.BadValue(
            path, "class " + className + " (Kryo id " + id + ") is not on the classpath", e);
      }
    }
    return Collections.unmodifiableMap(idByClass);
  }

  private Kryo newKryo() {
    Kryo kryo = new Kryo(new ActorRefClassResolver(), null);
    if (kryo.getNextRegistrationId() > FIRST_FIXED_ID) {
      throw new IllegalStateException(
          "Kryo's default registrations reach id " + (kryo.getNextRegistrationId() - 1)
              + " and collide with KryoSerializer's fixed ids from " + FIRST_FIXED_ID
              + "; a Kryo upgrade needs the fixed ids moved in a coordinated release");
    }
    kryo.setRegistrationRequired(true);
    // Messages are small trees: tracking references would cost a map lookup per object and
    // buy nothing.
    kryo.setReferences(false);
    kryo.addDefaultSerializer(ActorRef.class, new TypedActorRefSerializer());
    kryo.addDefaultSerializer(
        org.apache.pekko.actor.ActorRef.class, new ClassicActorRefSerializer());
    // Wire ids: append new types, never renumber.
    kryo.register(ActorRef.class, 10);
    kryo.register(org.apache.pekko.actor.ActorRef.class, 11);
    kryo.register(String[].class, 12);
    kryo.register(int[].class, 13);
    kryo.register(long[].class, 14);
    kryo.register(float[].class, 15);
    kryo.register(ArrayList.class, 16);
    kryo.register(HashMap.class, 17);
    ImmutableListSerializer immutableList = new ImmutableListSerializer();
    kryo.register(List.of().getClass(), immutableList, 18);
    kryo.register(List.of(0).getClass(), immutableList, 19);
    kryo.register(byte[].class, 20);
    registrations.forEach(kryo::register);
    return kryo;
  }

  /** Returns {@value #IDENTIFIER}. */
  @Override
  public int identifier() {
    return IDENTIFIER;
  }

  /** Returns false: the Kryo registration id in the bytes names the class. */
  @Override
  public boolean includeManifest() {
    return false;
  }

  /**
   * Serializes {@code o} with a pooled Kryo instance: its registration id, then its fields.
   *
   * <p>Throws {@link NotSerializableException}, undeclared because Pekko's Scala signature
   * declares none, if {@code o}'s class is not listed under {@value #REGISTRATIONS_KEY}, an
   * object it holds has an unregistered class, or the bytes exceed 256 KiB.
   */
  @Override
  public byte[] toBinary(Object o) {
    if (!registrations.containsKey(o.getClass())) {
      throw notSerializable(
          "class " + o.getClass().getName() + " is not registered for Kryo; add \""
              + o.getClass().getName() + "\" = <id> to " + REGISTRATIONS_KEY, null);
    }
    Kryo kryo = kryos.obtain();
    Output output = outputs.obtain();
    try {
      kryo.writeClassAndObject(output, o);
      return output.toBytes();
    } catch (RuntimeException e) {
      // Kryo reports unregistered nested classes and overflow as unchecked exceptions; Pekko's
      // callers expect NotSerializableException for anything that cannot go on the wire.
      throw notSerializable(
          "cannot serialize " + o.getClass().getName() + " with Kryo (every class a message holds"
              + " must be registered under " + REGISTRATIONS_KEY + "): " + e.getMessage(), e);
    } finally {
      outputs.free(output);
      kryos.free(kryo);
    }
  }

  /**
   * Reads a message written by {@link #toBinary(Object)}; {@code manifest} is unused, the
   * registration id in the bytes names the class.
   *
   * <p>Throws {@link NotSerializableException}, undeclared because Pekko's Scala signature
   * declares none, if the bytes name an unknown id or are corrupt.
   */
  @Override
  public Object fromBinaryJava(byte[] bytes, Class<?> manifest) {
    Kryo kryo = kryos.obtain();
    Input input = inputs.obtain();
    try {
      input.setBuffer(bytes);
      return kryo.readClassAndObject(input);
    } catch (RuntimeException e) {
      // Any failure while decoding means the bytes are not a message this node can read, most
      // likely because the sender's registrations differ from ours.
      throw notSerializable(
          "cannot deserialize Kryo message of " + bytes.length + " bytes (do both nodes have the"
              + " same " + REGISTRATIONS_KEY + "?): " + e.getMessage(), e);
    } finally {
      inputs.free(input);
      kryos.free(kryo);
    }
  }

  private static RuntimeException notSerializable(String message, Throwable cause) {
    NotSerializableException failure = new NotSerializableException(message);
    failure.initCause(cause);
    return KryoSerializer.<RuntimeException>sneakyThrow(failure);
  }

  /**
   * Throws a checked exception from a method that cannot declare it. Pekko's serializer methods
   * are Scala, which has no checked exceptions, yet Artery and {@code Serialization} expect a
   * {@link NotSerializableException}.
   */
  @SuppressWarnings("unchecked")
  private static <E extends Throwable> RuntimeException sneakyThrow(Throwable t) throws E {
    throw (E) t;
  }

  private ActorRefResolver resolver() {
    ActorRefResolver current = resolver;
    if (current == null) {
      // Pekko builds serializers while the actor system starts, before its typed view exists.
      // Threads racing here get the same extension, so the race is harmless.
      current = ActorRefResolver.get(Adapter.toTyped(system));
      resolver = current;
    }
    return current;
  }

  /**
   * Maps every implementation of an {@code ActorRef} to the registration of the interface, so the
   * internal ref classes (adapters, local, remote, promise refs) need no ids of their own.
   */
  private static final class ActorRefClassResolver extends DefaultClassResolver {
    @Override
    @SuppressWarnings("rawtypes")
    public Registration getRegistration(Class type) {
      Registration registration = super.getRegistration(type);
      if (registration != null) {
        return registration;
      }
      if (ActorRef.class.isAssignableFrom(type)) {
        return super.getRegistration(ActorRef.class);
      }
      if (org.apache.pekko.actor.ActorRef.class.isAssignableFrom(type)) {
        return super.getRegistration(org.apache.pekko.actor.ActorRef.class);
      }
      return null;
    }
  }

  /** Writes a typed ref as its path with address, the form every node can resolve. */
  private final class TypedActorRefSerializer extends Serializer<ActorRef<?>> {
    @Override
    public void write(Kryo kryo, Output output, ActorRef<?> ref) {
      output.writeString(resolver().toSerializationFormat(ref));
    }

    @Override
    public ActorRef<?> read(Kryo kryo, Input input, Class<? extends ActorRef<?>> type) {
      return resolver().resolveActorRef(input.readString());
    }
  }

  /** Writes a classic ref as its path with the address of the transport in use. */
  private final class ClassicActorRefSerializer
      extends Serializer<org.apache.pekko.actor.ActorRef> {
    @Override
    public void write(Kryo kryo, Output output, org.apache.pekko.actor.ActorRef ref) {
      output.writeString(Serialization.serializedActorPath(ref));
    }

    @Override
    public org.apache.pekko.actor.ActorRef read(
        Kryo kryo, Input input, Class<? extends org.apache.pekko.actor.ActorRef> type) {
      return system.provider().resolveActorRef(input.readString());
    }
  }

  /**
   * Lists from {@code List.of} and {@code List.copyOf}, which Kryo's collection serializer cannot
   * rebuild because they reject {@code add}. They hold no nulls, so neither does the wire form.
   */
  private static final class ImmutableListSerializer extends Serializer<List<?>> {
    @Override
    public void write(Kryo kryo, Output output, List<?> list) {
      output.writeVarInt(list.size(), true);
      for (Object element : list) {
        if (element == null) {
          // Stream.toList() makes the same class but allows nulls, which List.of cannot rebuild.
          throw new KryoException("null element in an immutable list; use an ArrayList");
        }
        kryo.writeClassAndObject(output, element);
      }
    }

    @Override
    public List<?> read(Kryo kryo, Input input, Class<? extends List<?>> type) {
      Object[] elements = new Object[input.readVarInt(true)];
      for (int i = 0; i < elements.length; i++) {
        elements[i] = kryo.readClassAndObject(input);
      }
      return List.of(elements);
    }
  }
}
