/**
 * Monitoring: TPS in and out and first-delivery latency per topic (this node's counters,
 * over a 10-second sliding window), refused signatures, and backlog per consumer group (from
 * the store, the same on every node).
 */
import { LatencyHistogram } from '../../../core/latency-histogram.js';
import { SlidingWindow } from '../../../core/sliding-window.js';
import type { QueueBacklog } from '../message-records.js';
import type { BacklogReader } from '../message-store.js';
import { TrafficCounters } from './traffic-counters.js';

interface TopicStats {
  in: SlidingWindow;
  out: SlidingWindow;
  totalIn: number;
  totalOut: number;
  latency: LatencyHistogram;
}

/** What `GET /api/v1/mq/stats` answers. */
export interface BrokerStatsReport {
  node: { badSignatures: number };
  topics: {
    topic: string;
    tpsIn: number;
    tpsOut: number;
    totalIn: number;
    totalOut: number;
    latencyMs: { p50: number; p99: number; samples: number };
  }[];
  groups: {
    group: string;
    topic: string;
    backlog: number;
    queues: QueueBacklog[];
  }[];
}

/** This node's counters. */
export class BrokerStats {
  readonly #stats = new Map<string, TopicStats>();
  readonly #traffic: TrafficCounters;
  #badSignatures = 0;

  /** `traffic`: the node's counters by event, topic and group (deliveries count there too). */
  constructor(traffic: TrafficCounters = new TrafficCounters()) {
    this.#traffic = traffic;
  }

  #statsOf(topic: string): TopicStats {
    let s = this.#stats.get(topic);
    if (s === undefined) {
      s = {
        in: new SlidingWindow({ intervalMs: 10_000, buckets: 10, histogram: false }),
        out: new SlidingWindow({ intervalMs: 10_000, buckets: 10, histogram: false }),
        totalIn: 0,
        totalOut: 0,
        latency: new LatencyHistogram(),
      };
      this.#stats.set(topic, s);
    }
    return s;
  }

  /** Counts `n` messages into (stored) or out of (delivered) `topic`. */
  count(topic: string, dir: 'in' | 'out', n: number): void {
    const s = this.#statsOf(topic);
    s[dir].addPass(n);
    if (dir === 'in') s.totalIn += n;
    else s.totalOut += n;
  }

  /**
   * Counts one delivery from `topic` to `group`; a first delivery also records its latency
   * from birth.
   */
  delivered(topic: string, group: string, latencyMs: number | undefined): void {
    this.#traffic.add('delivered', topic, group, 1);
    const s = this.#statsOf(topic);
    s.out.addPass(1);
    s.totalOut++;
    if (latencyMs !== undefined) s.latency.record(latencyMs);
  }

  /** Counts a message dead-lettered without a nack (delivered too often, never acked). */
  deadLettered(topic: string, group: string): void {
    this.#traffic.add('dead_lettered', topic, group, 1);
  }

  /** Counts a message refused for a missing or wrong signature. */
  badSignature(): void {
    this.#badSignatures++;
  }

  /** The counters, with every group's backlog read from `backlog`. */
  async report(backlog: BacklogReader): Promise<BrokerStatsReport> {
    const topics = [...this.#stats.entries()].map(([topic, s]) => ({
      topic,
      tpsIn: Math.round(s.in.rate('pass') * 10) / 10,
      tpsOut: Math.round(s.out.rate('pass') * 10) / 10,
      totalIn: Math.round(s.totalIn),
      totalOut: s.totalOut,
      latencyMs: {
        p50: s.latency.total === 0 ? 0 : s.latency.quantile(0.5),
        p99: s.latency.total === 0 ? 0 : s.latency.quantile(0.99),
        samples: s.latency.total,
      },
    }));
    const groups = [];
    for (const sub of await backlog.subscriptions()) {
      if (sub.topic.startsWith('%RETRY%')) continue;
      const queues = await backlog.backlog(sub.grp, sub.topic);
      groups.push({
        group: sub.grp,
        topic: sub.topic,
        backlog: queues.reduce((a, q) => a + q.backlog, 0),
        queues,
      });
    }
    return { node: { badSignatures: this.#badSignatures }, topics, groups };
  }
}
