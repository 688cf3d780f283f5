package kaon.actors.worker;

import org.apache.pekko.cluster.sharding.typed.ShardingEnvelope;
import org.apache.pekko.cluster.sharding.typed.ShardingMessageExtractor;

/**
 * Each entity is its own shard. Workers are placed one by one (each needs a device of its own),
 * and a shard is what sharding places; hashing several ranks into one shard would put them on one
 * node whatever its devices.
 */
final class OneShardPerEntity<M> extends ShardingMessageExtractor<ShardingEnvelope<M>, M> {

  @Override
  public String entityId(ShardingEnvelope<M> envelope) {
    return envelope.entityId();
  }

  @Override
  public String shardId(String entityId) {
    return entityId;
  }

  @Override
  public M unwrapMessage(ShardingEnvelope<M> envelope) {
    return envelope.message();
  }
}
