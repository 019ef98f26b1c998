/**
 * The generator: runs a scenario under its load model and measures it. Open models start
 * iterations on a schedule computed from the arrival rate, whatever the target answers,
 * and measure each iteration's first call from the time it was scheduled, not sent
 * (coordinated omission corrected, as wrk2 does), so a stall in the target shows in the
 * percentiles for every request it delayed. The closed model runs virtual users back to
 * back. Every second it reads the interval's histogram into the time series, reports
 * progress, and judges the SLA thresholds over the last window; it stops itself when one
 * breaks, at the wall-clock limit, or when told to.
 */
import { randomUUID } from 'node:crypto';
import {
  type CallContext,
  createContext,
  currentContext,
  runWithContext,
} from '../core/context.js';
import { ContextHeaders, encodeContext } from '../core/context-headers.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { HttpPool } from './http-pool.js';
import {
  encodeHistogram,
  newHistogram,
  percentilesMs,
  recordMs,
  summarize,
} from './latency-recorder.js';
import { isOpenModel, modelDurationS, rateAt } from './load-model.js';
import type { Iteration, Scenario, StepEnv } from './scenario.js';
import type { SecondFigures, StageFigures, StopReason, StressReport } from './stress-report.js';

/** The baggage key that carries a run's id on every stress call, message and row context. */
export const STRESS_RUN_BAGGAGE = 'peak-stress-run';

/** What the progress callback gets every second. */
export interface RunProgress {
  runId: string;
  elapsedS: number;
  durationS: number;
  /** Target rate (open) or virtual users (closed) now. */
  target: number;
  /** Calls answered per second over the last second. */
  throughput: number;
  iterations: number;
  ok: number;
  errors: number;
  dropped: number;
  inFlight: number;
  /** p99 of the last second, ms. */
  p99Ms: number;
}

/** Options of {@link startRun}. */
export interface RunOptions {
  /** The run's id (default a random UUID); agents of one run share it. */
  runId?: string;
  /** Called once a second. */
  onProgress?: (p: RunProgress) => void;
  /** This generator's share of the run's rate or virtual users, 0..1 (agents). Default 1. */
  share?: number;
  /** Most iterations in flight; past it new ones are dropped and counted. Default 50 000. */
  maxInFlight?: number;
  /** A monotonic clock in ms (default `performance.now`). */
  now?: () => number;
}

interface StepStats {
  name: string;
  ok: number;
  errors: number;
  /** Undefined when the scenario has one measured step: the run's histogram is its. */
  hist: ReturnType<typeof newHistogram> | undefined;
}

/** A run in progress. */
export class StressRun {
  readonly id: string;
  /** Resolves with the report when the run has ended and its calls have settled. */
  readonly done: Promise<StressReport>;
  #override: number | undefined;
  #share = 1;
  #stop: ((reason: StopReason, detail?: string) => void) | undefined;

  /** @internal */
  constructor(id: string, body: (run: StressRun) => Promise<StressReport>) {
    this.id = id;
    this.done = body(this);
  }

  /** Changes the target mid-run: the arrival rate (open models) or virtual users (closed); undefined returns to the model. */
  setTarget(target: number | undefined): void {
    if (target !== undefined && !(Number.isFinite(target) && target >= 0))
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        `a target must be a number >= 0, got ${target}`,
        {
          details: { input: 'target' },
        },
      );
    this.#override = target;
  }

  /** Sets this generator's share of the run's target, 0..1 (agents: 1 / the number of agents). */
  setShare(share: number): void {
    if (!(share > 0 && share <= 1))
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        `a share must be above 0 and at most 1, got ${share}`,
        {
          details: { input: 'share' },
        },
      );
    this.#share = share;
  }

  /** This generator's share of the run's target. */
  get share(): number {
    return this.#share;
  }

  /** The target set by {@link setTarget}, if any. */
  get targetOverride(): number | undefined {
    return this.#override;
  }

  /** Ends the run now (reason `stopped`); the report still comes through {@link done}. */
  stop(): void {
    this.#stop?.('stopped');
  }

  /** @internal */
  bindStop(fn: (reason: StopReason, detail?: string) => void): void {
    this.#stop = fn;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a run of `scenario` (checked by `defineScenario`). */
export function startRun(scenario: Scenario, options: RunOptions = {}): StressRun {
  return new StressRun(options.runId ?? randomUUID(), (run) => execute(run, scenario, options));
}

async function execute(
  run: StressRun,
  scenario: Scenario,
  options: RunOptions,
): Promise<StressReport> {
  const now = options.now ?? (() => performance.now());
  if (options.share !== undefined) run.setShare(options.share);
  const maxInFlight = options.maxInFlight ?? 50_000;
  const model = scenario.load;
  const stress = scenario.stress !== false;
  const durationS = modelDurationS(model);
  const limitS = scenario.maxDurationS ?? durationS + 30;
  const timeoutMs = scenario.timeoutMs ?? 10_000;
  const pool =
    scenario.target === undefined
      ? undefined
      : new HttpPool({
          url: scenario.target,
          timeoutMs,
          ...(scenario.maxConnections === undefined
            ? {}
            : { maxConnections: scenario.maxConnections }),
        });
  const baseContext: CallContext | undefined = stress
    ? createContext({ stress: true, baggage: { [STRESS_RUN_BAGGAGE]: run.id } })
    : undefined;
  // Each iteration is a trace of its own (the run is named by its baggage, not by one trace
  // id): with one trace id a whole run would be one giant trace, sampled all or nothing.
  const iterationContext = (): CallContext =>
    createContext({ stress: true, baggage: baseContext!.baggage });
  /** The run's context headers for a prepared request: no `traceparent`, so the target starts a trace per request. */
  const runHeaders = (): Record<string, string> => {
    const { [ContextHeaders.traceparent]: _perRequest, ...headers } = encodeContext(baseContext!);
    return headers;
  };

  // ------------------------------------------------------------ measurement state
  const all = newHistogram();
  let interval = newHistogram();
  const windowS = scenario.thresholds?.windowS ?? 5;
  const window: { hist: ReturnType<typeof newHistogram>; ok: number; errors: number }[] = [];
  const scratch = newHistogram();
  const steps = new Map<string, StepStats>();
  const measured = new Set(scenario.steps.filter((s) => s.measured).map((s) => s.name));
  for (const name of measured)
    steps.set(name, {
      name,
      ok: 0,
      errors: 0,
      hist: measured.size > 1 ? newHistogram() : undefined,
    });
  const errorsByKey = new Map<string, StressReport['errors'][number]>();
  const seconds: SecondFigures[] = [];
  let iterations = 0;
  let completed = 0;
  let ok = 0;
  let errors = 0;
  let dropped = 0;
  let inFlight = 0;
  let maxSendLagMs = 0;
  let sec = { started: 0, ok: 0, errors: 0, dropped: 0 };

  const recordError = (step: string, err: unknown) => {
    const message = String((err as Error)?.message ?? err).slice(0, 200);
    const key = `${step}\u0000${message}`;
    const e = errorsByKey.get(key);
    if (e !== undefined) e.count++;
    else if (errorsByKey.size < 1000) {
      const sample = err instanceof PeakError ? err.details.sample : undefined;
      errorsByKey.set(key, {
        step,
        message,
        count: 1,
        ...(typeof sample === 'string' ? { sample } : {}),
      });
    }
  };

  // ------------------------------------------------------------ the step environment
  let merged: {
    ctx: CallContext | undefined;
    own: Record<string, string> | undefined;
    headers: Record<string, string>;
  } = { ctx: undefined, own: undefined, headers: {} };
  const rendezvousPoints = new Map<string, (() => void)[]>();
  const env: StepEnv = {
    http(request) {
      if (pool === undefined)
        throw new PeakError(
          ErrorCodes.STRESS_INVALID,
          `scenario ${scenario.name} has HTTP steps but no target`,
          {
            details: { input: 'target' },
          },
        );
      const ctx = currentContext();
      if (ctx === undefined) return pool.request(request);
      // A context without a deadline encodes the same every time: merge once per (context, headers).
      if (ctx !== merged.ctx || request.headers !== merged.own || ctx.deadline !== undefined)
        merged = {
          ctx,
          own: request.headers,
          headers: { ...encodeContext(ctx), ...request.headers },
        };
      return pool.request({ ...request, headers: merged.headers });
    },
    rpc() {
      if (scenario.rpc === undefined)
        throw new PeakError(
          ErrorCodes.STRESS_INVALID,
          `scenario ${scenario.name} has RPC steps but no rpc caller`,
          {
            details: { input: 'rpc' },
          },
        );
      return scenario.rpc;
    },
    rendezvous(name, count, waitMs) {
      const waiting = rendezvousPoints.get(name) ?? [];
      rendezvousPoints.set(name, waiting);
      return new Promise<void>((resolve) => {
        const timer = setTimeout(release, waitMs);
        function release() {
          clearTimeout(timer);
          const all = rendezvousPoints.get(name) ?? [];
          rendezvousPoints.set(name, []);
          for (const r of all) r();
        }
        waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
        if (waiting.length >= count) release();
      });
    },
    sleep,
  };

  // ------------------------------------------------------------ one iteration
  const passed = (st: StepStats, ms: number) => {
    recordMs(interval, ms);
    if (st.hist !== undefined) recordMs(st.hist, ms);
    st.ok++;
    ok++;
    sec.ok++;
  };
  const failed = (st: StepStats, ms: number, err: unknown) => {
    recordMs(interval, ms);
    if (st.hist !== undefined) recordMs(st.hist, ms);
    st.errors++;
    errors++;
    sec.errors++;
    recordError(st.name, err);
  };
  const ended = (then: (() => void) | undefined) => {
    if (--inFlight === 0) onDrained?.();
    then?.();
  };
  const iterate = async (index: number, vu: number | undefined, scheduledAt: number) => {
    const it: Iteration = { index, vu, row: scenario.feed?.next() ?? {}, vars: {}, runId: run.id };
    let from = scheduledAt;
    for (const step of scenario.steps) {
      if (!step.measured) {
        await step.run(it, env);
        // A rendezvous (or think time) the run's end released: the rest is not run.
        if (stopReason !== undefined) return;
        from = now();
        continue;
      }
      const st = steps.get(step.name)!;
      try {
        await step.run(it, env);
      } catch (err) {
        failed(st, now() - from, err);
        return;
      }
      const end = now();
      passed(st, end - from);
      from = end;
    }
    completed++;
  };
  // Every step a fixed HTTP call: each is serialised once (with the run's context headers)
  // and an iteration is a chain of callbacks, no promise, iteration object or header merge.
  const fixed =
    pool !== undefined && scenario.steps.every((s) => s.fixed !== undefined)
      ? scenario.steps.map((s) => {
          const f = s.fixed!;
          const headers = baseContext === undefined ? f.headers : { ...runHeaders(), ...f.headers };
          return {
            st: steps.get(s.name)!,
            verdict: f.verdict,
            request: pool.prepare({
              method: f.method,
              path: f.path,
              headers,
              ...(f.body === undefined ? {} : { body: f.body }),
            }),
          };
        })
      : undefined;
  const sendFixed = (i: number, from: number, then: (() => void) | undefined) => {
    const step = fixed![i]!;
    pool!.send(step.request, (err, res) => {
      const end = now();
      const bad = err ?? step.verdict(res!);
      if (bad !== undefined) failed(step.st, end - from, bad);
      else {
        passed(step.st, end - from);
        if (i + 1 < fixed!.length) return sendFixed(i + 1, end, then);
        completed++;
      }
      ended(then);
    });
  };
  /** Starts an iteration; `then` runs when it has ended. */
  const launch = (
    index: number,
    vu: number | undefined,
    scheduledAt: number,
    then?: () => void,
  ): void => {
    iterations++;
    sec.started++;
    inFlight++;
    if (fixed !== undefined) {
      sendFixed(0, scheduledAt, then);
      return;
    }
    const body = () => iterate(index, vu, scheduledAt);
    const p = baseContext === undefined ? body() : runWithContext(iterationContext(), body);
    p.then(
      () => ended(then),
      (err: unknown) => {
        errors++;
        sec.errors++;
        recordError('iteration', err);
        ended(then);
      },
    );
  };
  let onDrained: (() => void) | undefined;
  /** Resolves when nothing is in flight, or after `ms` (whichever first), leaving no timer behind. */
  const drained = (ms: number) =>
    new Promise<void>((resolve) => {
      if (inFlight === 0) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        onDrained = undefined;
        resolve();
      }
      onDrained = done;
    });

  // ------------------------------------------------------------ the clock of the run
  const startedAt = Date.now();
  const start = now();
  const cpu = process.cpuUsage();
  let stopReason: StopReason | undefined;
  let stopDetail: string | undefined;
  let wake: (() => void) | undefined;
  const stop = (reason: StopReason, detail?: string) => {
    if (stopReason !== undefined) return;
    stopReason = reason;
    stopDetail = detail;
    // Users waiting at a rendezvous would wait out its timeout for users who have stopped:
    // release them now (their iterations end there).
    for (const [name, waiting] of rendezvousPoints) {
      rendezvousPoints.set(name, []);
      for (const release of waiting) release();
    }
    wake?.();
  };
  run.bindStop(stop);
  const targetNow = (tS: number) =>
    (run.targetOverride ?? (isOpenModel(model) ? rateAt(model, tS) : model.vus)) * run.share;

  const flushSecond = (last: boolean) => {
    const elapsed = (now() - start) / 1000;
    const t = last ? Math.ceil(elapsed) : Math.round(elapsed);
    const s = percentilesMs(interval);
    all.add(interval);
    seconds.push({
      t,
      target: Math.round(targetNow(t - 0.5) * 1000) / 1000,
      ...sec,
      inFlight,
      p50Ms: s.p50Ms,
      p90Ms: s.p90Ms,
      p99Ms: s.p99Ms,
      maxMs: s.maxMs,
    });
    window.push({ hist: interval, ok: sec.ok, errors: sec.errors + sec.dropped });
    const reuse = window.length > windowS ? window.shift()!.hist : newHistogram();
    reuse.reset();
    interval = reuse;
    options.onProgress?.({
      runId: run.id,
      elapsedS: t,
      durationS,
      target: targetNow(t),
      throughput: sec.ok + sec.errors,
      iterations,
      ok,
      errors,
      dropped,
      inFlight,
      p99Ms: s.p99Ms,
    });
    sec = { started: 0, ok: 0, errors: 0, dropped: 0 };
    if (!last) judge();
  };
  const everySecond = setInterval(() => flushSecond(false), 1000);
  const judge = () => {
    const th = scenario.thresholds;
    if (th === undefined || window.length < Math.min(windowS, 2)) return;
    let n = 0;
    let bad = 0;
    scratch.reset();
    for (const w of window) {
      n += w.ok + w.errors;
      bad += w.errors;
      scratch.add(w.hist);
    }
    if (n < (th.minSamples ?? 20)) return;
    const p99 = percentilesMs(scratch).p99Ms;
    if (th.p99Ms !== undefined && p99 > th.p99Ms)
      stop(
        'sla',
        `p99 ${p99} ms over the last ${window.length} s is above the threshold ${th.p99Ms} ms`,
      );
    else if (th.errorRate !== undefined && bad / n > th.errorRate)
      stop(
        'sla',
        `error rate ${(bad / n).toFixed(4)} over the last ${window.length} s is above the threshold ${th.errorRate}`,
      );
  };
  const limitTimer = setTimeout(
    () => stop('time-limit', `the wall-clock limit of ${limitS} s was reached`),
    limitS * 1000,
  );

  try {
    if (isOpenModel(model)) {
      let nextMs = 0;
      let index = 0;
      const endMs = durationS * 1000;
      // One timer, refreshed while the next iteration is due within a millisecond (Node's
      // shortest delay), else set for the whole wait: each tick starts every iteration due.
      let timer: NodeJS.Timeout | undefined;
      let timerMs = 0;
      await new Promise<void>((resolve) => {
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const tick = () => {
          if (stopReason !== undefined) return resolve();
          const elapsed = now() - start;
          while (nextMs <= elapsed && nextMs < endMs) {
            const rate = targetNow(nextMs / 1000);
            if (rate <= 0) {
              nextMs += 10;
              continue;
            }
            const scheduledAt = start + nextMs;
            maxSendLagMs = Math.max(maxSendLagMs, elapsed - nextMs);
            if (inFlight >= maxInFlight) {
              iterations++;
              dropped++;
              sec.dropped++;
            } else launch(index, undefined, scheduledAt);
            index++;
            nextMs += 1000 / rate;
          }
          if (nextMs >= endMs) {
            stop('completed');
            return resolve();
          }
          const waitMs = Math.max(1, Math.floor(nextMs - elapsed));
          if (timer !== undefined && waitMs === timerMs) timer.refresh();
          else {
            timer = setTimeout(tick, waitMs);
            timerMs = waitMs;
          }
        };
        setImmediate(tick);
      });
    } else {
      const endAt = start + durationS * 1000;
      const active = new Set<number>();
      let index = 0;
      /** A virtual user's next iteration, when it is still wanted; else the user ends. */
      const vuNext = (vu: number) => {
        if (stopReason === undefined && now() < endAt && vu < Math.round(targetNow(0)))
          launch(index++, vu, now(), () => vuNext(vu));
        else active.delete(vu);
      };
      const spawnUpTo = () => {
        for (let v = 0; v < Math.round(targetNow(0)); v++)
          if (!active.has(v)) {
            active.add(v);
            vuNext(v);
          }
      };
      spawnUpTo();
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          spawnUpTo();
          if (now() >= endAt) stop('completed');
        }, 50);
        wake = () => {
          clearInterval(timer);
          resolve();
        };
        if (stopReason !== undefined) wake();
      });
    }
    await drained(timeoutMs + 1000);
  } finally {
    clearInterval(everySecond);
    if (sec.started + sec.ok + sec.errors + sec.dropped > 0) flushSecond(true);
    clearTimeout(limitTimer);
    pool?.close();
  }
  const unfinished = inFlight;
  if (unfinished > 0) {
    errors += unfinished;
    recordError(
      'iteration',
      `${unfinished} iterations had not ended ${timeoutMs + 1000} ms after the run`,
    );
  }
  const used = process.cpuUsage(cpu);
  const elapsedS = (now() - start) / 1000;
  const requests = ok + errors;
  return {
    runId: run.id,
    scenario: scenario.name,
    model,
    thresholds: scenario.thresholds,
    startedAt,
    durationS: Math.round(elapsedS * 1000) / 1000,
    stopReason: stopReason ?? 'completed',
    stopDetail,
    stress,
    totals: {
      iterations,
      completed,
      requests,
      ok,
      errors,
      dropped,
      throughput: Math.round((requests / Math.max(elapsedS, 0.001)) * 10) / 10,
      errorRate:
        requests + dropped === 0
          ? 0
          : Math.round(((errors + dropped) / (requests + dropped)) * 1e6) / 1e6,
    },
    latency: summarize(all),
    histogram: encodeHistogram(all),
    steps: [...steps.values()].map((s) => ({
      name: s.name,
      ok: s.ok,
      errors: s.errors,
      latency: summarize(s.hist ?? all),
    })),
    stages: stagesOf(model, seconds),
    seconds,
    errors: [...errorsByKey.values()].sort((a, b) => b.count - a.count),
    generator: {
      cpuUsPerRequest: Math.round((used.user + used.system) / Math.max(1, requests)),
      maxSendLagMs: Math.round(maxSendLagMs * 10) / 10,
      agents: 1,
    },
  };
}

/** Per stage of a stepped or ramping model, from the per-second figures. */
function stagesOf(model: Scenario['load'], seconds: readonly SecondFigures[]): StageFigures[] {
  if (model.kind !== 'steps' && model.kind !== 'ramping-rate') return [];
  const out: StageFigures[] = [];
  let fromS = 0;
  for (const [i, s] of model.stages.entries()) {
    const toS = fromS + s.durationS;
    const secs = seconds.filter((x) => x.t > fromS && x.t <= toS);
    const n = secs.length;
    if (n > 0)
      out.push({
        stage: i,
        fromS,
        toS,
        throughput: Math.round((secs.reduce((a, x) => a + x.ok + x.errors, 0) / n) * 10) / 10,
        errors: secs.reduce((a, x) => a + x.errors, 0),
        p99Ms: Math.max(...secs.map((x) => x.p99Ms)),
      });
    fromS = toS;
  }
  return out;
}
