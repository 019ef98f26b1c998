/**
 * A run's report: what was asked (scenario, model, thresholds), why it stopped, the totals,
 * latency percentiles (from the scheduled send time for open models) overall, per step and
 * per second, errors by step and message, and what the generator itself cost. The control
 * plane keeps it as JSON; `renderHtmlReport` draws it.
 */

import type { LatencySummary } from './latency-recorder.js';
import type { LoadModel } from './load-model.js';
import type { SlaThresholds } from './scenario.js';

/** Why a run ended. */
export type StopReason = 'completed' | 'sla' | 'time-limit' | 'stopped';

/** One second of a run. */
export interface SecondFigures {
  /** Seconds since the start (the second that ended at t). */
  t: number;
  /** Target arrival rate (open models) or virtual users (closed) at the time. */
  target: number;
  /** Iterations started. */
  started: number;
  /** Measured calls answered well / failed. */
  ok: number;
  errors: number;
  /** Iterations the generator could not start (in flight at the limit). */
  dropped: number;
  inFlight: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** One measured step's figures. */
export interface StepFigures {
  name: string;
  ok: number;
  errors: number;
  latency: LatencySummary;
}

/** One stage of a stepped or ramping model. */
export interface StageFigures {
  stage: number;
  /** Its seconds in the run, [from, to). */
  fromS: number;
  toS: number;
  /** Calls answered per second over the stage. */
  throughput: number;
  errors: number;
  p99Ms: number;
}

/** The report of one run (or one generator's share of it). */
export interface StressReport {
  runId: string;
  scenario: string;
  model: LoadModel;
  thresholds: SlaThresholds | undefined;
  /** Epoch ms. */
  startedAt: number;
  durationS: number;
  stopReason: StopReason;
  /** What broke, when stopReason is `sla` or `time-limit`. */
  stopDetail: string | undefined;
  stress: boolean;
  totals: {
    /** Iterations started. */
    iterations: number;
    /** Iterations that ran every step well. */
    completed: number;
    /** Measured calls. */
    requests: number;
    ok: number;
    errors: number;
    dropped: number;
    /** Calls answered per second over the run. */
    throughput: number;
    errorRate: number;
  };
  /** Every measured call's latency (from the scheduled send time for open models). */
  latency: LatencySummary;
  /** The same as an HdrHistogram in compressed base64 (µs), for merging reports of several agents. */
  histogram: string;
  steps: StepFigures[];
  stages: StageFigures[];
  seconds: SecondFigures[];
  /** Errors grouped by step and message (first 200 characters), most frequent first, with the first answer's body. */
  errors: { step: string; message: string; count: number; sample?: string }[];
  generator: {
    /** CPU the generator used per measured call, µs. */
    cpuUsPerRequest: number;
    /** How late the generator started an iteration at worst, ms (its own lag). */
    maxSendLagMs: number;
    /** Agents whose share this report sums (1 for a single generator). */
    agents: number;
  };
}
