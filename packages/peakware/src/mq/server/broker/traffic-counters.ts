/**
 * A broker node's message traffic for `/metrics`: messages produced per topic, and
 * delivered, acked, nacked and dead-lettered per topic and consumer group, counted since the
 * node started. The label sets are bounded: past {@link MAX_TRAFFIC_SERIES} distinct series
 * new topics and groups count under `(other)`, so a client inventing names cannot grow
 * the scrape without end.
 */

/** The events counted, each a `peak_mq_messages_<event>_total` counter on `/metrics`. */
export const TRAFFIC_EVENTS = [
  'produced',
  'delivered',
  'acked',
  'nacked',
  'dead_lettered',
] as const;

/** One of {@link TRAFFIC_EVENTS}. */
export type TrafficEvent = (typeof TRAFFIC_EVENTS)[number];

/** One counter of {@link TrafficCounters.snapshot}: `group` is null for `produced`. */
export interface TrafficSample {
  event: TrafficEvent;
  topic: string;
  group: string | null;
  value: number;
}

/** Most distinct (event, topic, group) series kept; later ones count under `(other)`. */
export const MAX_TRAFFIC_SERIES = 1000;

/** Counts one node's message traffic by event, topic and group. */
export class TrafficCounters {
  readonly #series = new Map<string, TrafficSample>();

  /** Adds `n` messages of `event` on `topic` (and `group`, for the consumer side). */
  add(event: TrafficEvent, topic: string, group: string | null, n: number): void {
    if (!(n > 0)) return;
    let key = `${event}\u0000${topic}\u0000${group ?? ''}`;
    let s = this.#series.get(key);
    if (s === undefined) {
      if (this.#series.size >= MAX_TRAFFIC_SERIES) {
        topic = '(other)';
        group = group === null ? null : '(other)';
        key = `${event}\u0000(other)\u0000${group ?? ''}`;
        s = this.#series.get(key);
      }
      if (s === undefined) {
        s = { event, topic, group, value: 0 };
        this.#series.set(key, s);
      }
    }
    s.value += n;
  }

  /** Every counter, in the order first counted. */
  snapshot(): TrafficSample[] {
    return [...this.#series.values()].map((s) => ({ ...s }));
  }
}

const byPool = new WeakMap<object, TrafficCounters>();

/**
 * The traffic counters of the broker on `pool` (the control plane's pool): the broker
 * counts into them and the backlog reader the host hands telemetry reads them, with no
 * reference between the two.
 */
export function trafficCountersOf(pool: object): TrafficCounters {
  let c = byPool.get(pool);
  if (c === undefined) {
    c = new TrafficCounters();
    byPool.set(pool, c);
  }
  return c;
}
