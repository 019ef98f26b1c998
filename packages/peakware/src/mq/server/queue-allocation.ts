/**
 * Which consumer of a clustering group reads which queue: RocketMQ's "allocate averagely".
 * Every consumer computes the same answer from the same sorted lists, so no coordinator is
 * needed; when a consumer joins or leaves, the next computation moves its queues.
 */

/** The queues (by index into `queues`) that `consumerId` owns among `consumers`. */
export function allocateQueues<Q>(
  queues: readonly Q[],
  consumers: readonly string[],
  consumerId: string,
): Q[] {
  const sorted = [...new Set(consumers)].sort();
  const index = sorted.indexOf(consumerId);
  if (index < 0 || queues.length === 0) return [];
  const n = sorted.length;
  const base = Math.floor(queues.length / n);
  const extra = queues.length % n;
  const start = index * base + Math.min(index, extra);
  const count = base + (index < extra ? 1 : 0);
  return queues.slice(start, start + count);
}
