/**
 * What the console's server half reads of telemetry: the pushed per-second metrics summed
 * over instances in buckets. The console never reads telemetry's tables itself; the host
 * (`src/server/modules.ts`) passes telemetry's reader in through {@link ConsoleModuleOptions}.
 */
import type pg from 'pg';
import type { MetricsGrouping } from '../console-views.js';

/** One bucket's sums over every instance and second in it. */
export interface MetricBucketRow {
  /** Start of the bucket, epoch ms. */
  t: number;
  service: string;
  resource: string;
  pass: number;
  block: number;
  success: number;
  error: number;
  /** Sum of each second's mean RT × its calls, ms. */
  rtSum: number;
  /** RT p99 of the bucket's calls (from {@link rtHist} when pushed), ms. */
  p99: number | null;
  /** The bucket's RT histogram, every instance and second added (core's sparse pairs). */
  rtHist?: number[];
  instances: number;
}

/** Reads per-second metrics in buckets. */
export interface MetricBucketSource {
  buckets(q: {
    fromMs: number;
    toMs: number;
    bucketSeconds: number;
    by: MetricsGrouping;
    service?: string;
    resource?: string;
  }): Promise<MetricBucketRow[]>;
}

/** What the console module takes from other subsystems; the host wires them in. */
export interface ConsoleModuleOptions {
  /** Opens telemetry's per-second metrics reader on the control plane's pool. */
  metrics: (pool: pg.Pool) => MetricBucketSource;
}
