/**
 * What telemetry's server half reads of the message queue: the backlog of each consumer
 * group per topic and queue, for `/metrics` and `mq-backlog` alert rules. Telemetry sits
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

/** Reads consumer backlog. */
export interface MqBacklogSource {
  /** Every (group, topic) pair that has offsets. */
  subscriptions(): Promise<{ grp: string; topic: string }[]>;
  /** Backlog per queue of a group on a topic, in queue order. */
  backlog(grp: string, topic: string): Promise<MqQueueBacklog[]>;
}

/** What the telemetry module takes from other subsystems; the host wires them in. */
export interface TelemetryModuleOptions {
  /** Opens mq's backlog reader on the control plane's pool. */
  mqBacklog: (pool: pg.Pool) => MqBacklogSource;
}
