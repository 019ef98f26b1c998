/**
 * What the scale module needs of other subsystems, declared here and passed in by
 * `modules.ts` (a subsystem's server half does not import another's): the config center's
 * store (policies are config items, a release's weights an `lb-weights` item), the
 * registry's live instances (the weights and tags in force; a release by rule tags its gray
 * instances), telemetry's
 * pushed per-second metrics (RT p99, QPS, errors, per instance for a release's
 * comparison), and mq's consumer backlog.
 */
import type pg from 'pg';
import type { Actor, ItemRef } from '../../config/config-item-ref.js';
import type { ConfigSchema } from '../../config/config-schema.js';
import { mergeSparseHistograms, sparseQuantile } from '../../core/latency-histogram.js';

export type { Actor, ItemRef };

/** The config center's store, as the scale module uses it. */
export interface ScaleConfigPort {
  /** The released state of an item, or undefined. */
  get(pool: pg.Pool, ref: ItemRef): Promise<{ version: number; value: string } | undefined>;
  /** Publishes one item (with a schema: null removes it, absent keeps the item's). */
  publish(
    pool: pg.Pool,
    ref: ItemRef,
    input: {
      format: 'json' | 'text';
      value: string;
      schema?: ConfigSchema | null;
      comment: string;
    },
    actor: Actor,
  ): Promise<{ version: number }>;
}

/** Per-second metrics summed over instances into buckets (telemetry's reader). */
export interface ScaleMetricsReader {
  buckets(q: {
    fromMs: number;
    toMs: number;
    bucketSeconds: number;
    by: 'total';
    service?: string;
    resource?: string;
    instances?: readonly string[];
  }): Promise<
    {
      t: number;
      success: number;
      error: number;
      rtSum: number;
      p99: number | null;
      /** The bucket's RT histogram (core's sparse pairs), when instances push one. */
      rtHist?: number[];
      instances: number;
    }[]
  >;
}

/** One bucket as {@link ScaleMetricsReader} gives it. */
export type ScaleMetricBucket = Awaited<ReturnType<ScaleMetricsReader['buckets']>>[number];

/**
 * The RT p99 over `buckets`: of every call in them when their histograms were pushed
 * (added together), else the mean of the buckets' own p99s (senders without histograms);
 * undefined when neither.
 */
export function windowP99(buckets: readonly ScaleMetricBucket[]): number | undefined {
  const hist = mergeSparseHistograms(buckets.map((b) => b.rtHist));
  if (hist.length > 0) return sparseQuantile(hist, 0.99);
  const p99s = buckets.map((b) => b.p99).filter((v): v is number => v !== null);
  return p99s.length === 0 ? undefined : p99s.reduce((s, v) => s + v, 0) / p99s.length;
}

/** A consumer group's backlog per queue on a topic (mq's reader). */
export interface ScaleBacklogReader {
  backlog(grp: string, topic: string): Promise<{ backlog: number }[]>;
}

/** What `modules.ts` hands the scale module. */
export interface ScaleModuleDeps {
  config: ScaleConfigPort;
  /** Every live registered instance (registry's store): a release's weights and tags in force. */
  registered: (
    pool: pg.Pool,
  ) => Promise<{ instanceId: string; service: string; weight: number; tags: readonly string[] }[]>;
  /** Sets an instance's route tags (every service it registered); consumers get them pushed. */
  retag: (pool: pg.Pool, instanceId: string, tags: string[]) => Promise<number>;
  metrics: (pool: pg.Pool) => ScaleMetricsReader;
  backlog: (pool: pg.Pool) => ScaleBacklogReader;
}
