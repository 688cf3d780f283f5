package kaon.protocol;

/**
 * What an all-reduce peer accepts: tensor chunks from its ring neighbour, which may come from
 * another JVM, and the peer's local commands. A marker so that both can share one actor without a
 * wrapper message around every chunk.
 */
public interface RingMessage {}
