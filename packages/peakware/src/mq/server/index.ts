/**
 * The message queue's control-plane half: the broker, its PostgreSQL store, the MQTT bridge
 * and the HTTP routes, as one {@link PeakModule} for `peak server`. Not part of the SDK
 * (`peakware/mq`); see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { mq } from './migrations/0003-mq.js';
import { mqHotPath } from './migrations/0009-mq-hot-path.js';
import { mqDeliveredAt } from './migrations/0010-mq-delivered-at.js';
import { mqRoutes } from './mq-routes.js';

/** The mq module: topics, groups, send/receive/ack, transactions, relay, MQTT. */
export const mqModule: PeakModule = {
  name: 'mq',
  migrations: [mq, mqHotPath, mqDeliveredAt],
  routes: mqRoutes,
};
