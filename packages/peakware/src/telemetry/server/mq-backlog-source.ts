/**
 * What telemetry's server half reads of the message queue: the backlog of each consumer
 * group per topic and queue, for `/metrics` and `mq-backlog` alert rules, and the node's
 * traffic counters for `/metrics`. Telemetry sits
 * below mq in the layers and never imports it: the host (`src/server/modules.ts`) passes
 * mq's reader in through {@link TelemetryModuleOptions}.
 */
import type pg from 'pg';

/** One queue's backlog for one consumer group. */
export interface MqQueueBacklog {
  queueId: number;
  /** Messages stored but not yet acked by the group (in flight included). */
  backlog: number;
  /** Messages delivered to the group and not yet acked or timed out. */
  inflight: number;
}

/** One of a broker node's traffic counters (see mq's `broker/traffic-counters.ts`). */
export interface MqTrafficSample {
  /** produced, delivered, acked, nacked or dead_lettered. */
  event: string;
  topic: string;
  /** The consumer group; null for produced. */
  group: string | null;
  value: number;
}

/** Reads consumer backlog, and this node's message traffic. */
export interface MqBacklogSource {
  /** Every (group, topic) pair that has offsets. */
  subscriptions(): Promise<{ grp: string; topic: string }[]>;
  /** Backlog per queue of a group on a topic, in queue order. */
  backlog(grp: string, topic: string): Promise<MqQueueBacklog[]>;
  /** This node's messages in and out by event, topic and group, counted since it started. */
  traffic?(): MqTrafficSample[];
}

/** What the telemetry module takes from other subsystems; the host wires them in. */
export interface TelemetryModuleOptions {
  /** Opens mq's backlog reader on the control plane's pool. */
  mqBacklog: (pool: pg.Pool) => MqBacklogSource;
}
