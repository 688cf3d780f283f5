package kaon.actors.job;

/**
 * Where one rank of a job's current generation runs, and how its chunks reach the next rank, as
 * the rank said when it got ready and each time its ring edge changed.
 *
 * @param rank its rank
 * @param worker its worker's member id (a worker keeps its id while its rank changes)
 * @param node the cluster address of its node
 * @param device the device it trains on
 * @param edge how its chunks reach the next rank: {@code shared-memory}, {@code in-jvm}, {@code artery}, {@code
 *     connecting} (Artery while a tensor link is set up) or {@code link}; empty before the ring
 * @param how why that edge, in words
 */
public record RankPlacement(int rank, int worker, String node, String device, String edge, String how)
    implements kaon.protocol.KryoWireMessage {}
