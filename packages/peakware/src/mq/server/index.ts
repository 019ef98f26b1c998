/**
 * The message queue's control-plane half: the broker, its PostgreSQL store, the MQTT bridge
 * and the HTTP routes, as one {@link PeakModule} for `peak server`, and the backlog reader
 * the host hands to telemetry. Not part of the SDK (`peakware/mq`); see ../README.md.
 */
import type pg from 'pg';
import type { PeakModule } from '../../server/peak-module.js';
import { type TrafficSample, trafficCountersOf } from './broker/traffic-counters.js';
import { placedStoreOf } from './broker.js';
import type { BacklogReader } from './message-store.js';
import { mqMigrations } from './migrations/index.js';
import { mqRoutes } from './mq-routes.js';
import { PgBacklogReader } from './pg-store/backlog-reader.js';
import { openStressMessageCounter as countStressMessages } from './pg-store/stress-messages.js';

/**
 * Counts a stress run's messages in real topics (the stress module's isolation check), on
 * every message database of the broker running on `pool`.
 */
export function openStressMessageCounter(
  pool: pg.Pool,
): (runId: string, sinceMs: number) => Promise<{ topic: string; messages: number }[]> {
  return countStressMessages(() => placedStoreOf(pool)?.pools() ?? [pool]);
}

/** The mq module: topics, groups, send/receive/ack, transactions, relay, MQTT. */
export const mqModule: PeakModule = {
  name: 'mq',
  migrations: [...mqMigrations],
  routes: mqRoutes,
};

/** What the host hands telemetry: backlog per group, topic and queue, and this node's traffic. */
export interface MqMetricsReader extends BacklogReader {
  /** This node's messages produced, delivered, acked, nacked and dead-lettered so far. */
  traffic(): TrafficSample[];
}

/**
 * A reader of consumer backlog per group, topic and queue on the control plane's pool, and
 * of the traffic counters of the broker on that pool.
 */
export function openBacklogReader(pool: pg.Pool): MqMetricsReader {
  const own = new PgBacklogReader(pool);
  // A broker over several message databases reads them all (its store, once it started).
  const reader = (): BacklogReader => placedStoreOf(pool) ?? own;
  return {
    subscriptions: () => reader().subscriptions(),
    backlog: (grp, topic) => reader().backlog(grp, topic),
    traffic: () => trafficCountersOf(pool).snapshot(),
  };
}
