/**
 * The message queue's control-plane half: the broker, its PostgreSQL store, the MQTT bridge
 * and the HTTP routes, as one {@link PeakModule} for `peak server`, and the backlog reader
 * the host hands to telemetry. Not part of the SDK (`peakware/mq`); see ../README.md.
 */
import type pg from 'pg';
import type { PeakModule } from '../../server/peak-module.js';
import { type TrafficSample, trafficCountersOf } from './broker/traffic-counters.js';
import type { BacklogReader } from './message-store.js';
import { mq } from './migrations/0003-mq.js';
import { mqHotPath } from './migrations/0009-mq-hot-path.js';
import { mqDeliveredAt } from './migrations/0010-mq-delivered-at.js';
import { mqStorageV2 } from './migrations/0021-mq-storage-v2.js';
import { mqRoutes } from './mq-routes.js';
import { PgBacklogReader } from './pg-store/backlog-reader.js';

export { openStressMessageCounter } from './pg-store/stress-messages.js';

/** The mq module: topics, groups, send/receive/ack, transactions, relay, MQTT. */
export const mqModule: PeakModule = {
  name: 'mq',
  migrations: [mq, mqHotPath, mqDeliveredAt, mqStorageV2],
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
  const reader = new PgBacklogReader(pool);
  return {
    subscriptions: () => reader.subscriptions(),
    backlog: (grp, topic) => reader.backlog(grp, topic),
    traffic: () => trafficCountersOf(pool).snapshot(),
  };
}
