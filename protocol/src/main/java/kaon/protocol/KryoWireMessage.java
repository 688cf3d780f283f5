package kaon.protocol;

/**
 * Marker for small messages that cross JVMs; {@code reference.conf} binds it to {@link
 * KryoSerializer}.
 *
 * <p>Every implementing class, and every class its fields hold at run time, must be listed with a
 * stable id under {@code kaon.serialization.kryo.registrations}; otherwise sending it fails with a
 * {@link java.io.NotSerializableException}. Never implement it on anything that is persisted: Kryo's
 * format follows the class layout, so stored bytes would not survive a field change.
 */
public interface KryoWireMessage {}
