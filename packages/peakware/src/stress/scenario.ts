/**
 * Scenarios in TypeScript: a list of steps each iteration runs in order (HTTP routes, RPC
 * methods through the SDK, think time, rendezvous, or a function of your own), the test data
 * rows handed to iterations, the load model, the SLA thresholds that stop a run, and the
 * wall-clock limit. A step fails when its call throws or its check says no; the iteration
 * stops at its first failed step.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { type DataFeed, type DataRow, DataFeed as Feed } from './data-feed.js';
import type { HttpResult } from './http-pool.js';
import type { IsolationProbes, IsolationSources } from './isolation-check.js';
import { type LoadModel, validateModel } from './load-model.js';

/** One iteration of a scenario, as its steps see it. */
export interface Iteration {
  /** The iteration's number in this generator, from 0. */
  readonly index: number;
  /** The virtual user running it (closed model), else undefined. */
  readonly vu: number | undefined;
  /** This iteration's row of test data (empty without a data feed). */
  readonly row: DataRow;
  /** Values steps hand to later steps of the same iteration (an order id, a token). */
  readonly vars: Record<string, unknown>;
  /** The run's id (also in the stress context's baggage as `peak-stress-run`). */
  readonly runId: string;
}

/** Calls an RPC method by service key; `RpcClient#call` of `peakware/rpc` is one. */
export interface RpcCaller {
  call(key: string, method: string, input: unknown): Promise<unknown>;
}

/** What a step may use while it runs. */
export interface StepEnv {
  /** Sends an HTTP request to the scenario's target, with the stress context's headers. */
  http(request: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }): Promise<HttpResult>;
  /** The scenario's RPC caller (PEAK_STRESS_INVALID when it has none). */
  rpc(): RpcCaller;
  /** Waits until `count` iterations wait at `name`, then lets them all go (or after `timeoutMs`). */
  rendezvous(name: string, count: number, timeoutMs: number): Promise<void>;
  /** Sleeps `ms`. */
  sleep(ms: number): Promise<void>;
}

/** One step of a scenario. */
export interface ScenarioStep {
  readonly name: string;
  /** Measured steps (their latency and errors are reported) or pauses (think, rendezvous). */
  readonly measured: boolean;
  /** Runs the step; throws when it failed. */
  run(it: Iteration, env: StepEnv): Promise<void>;
  /**
   * Set by {@link httpStep} when nothing of its request varies per iteration and it has no
   * check: the generator may then serialise the request once and send it without `run`.
   */
  readonly fixed?: FixedHttpCall;
}

/** An HTTP call that is the same in every iteration (see {@link ScenarioStep.fixed}). */
export interface FixedHttpCall {
  readonly method: string;
  /** Path and query, starting with `/`. */
  readonly path: string;
  /** The step's own headers (the generator adds the stress context's). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** The step's error for an answer, or undefined when the answer passes. */
  verdict(res: HttpResult): Error | undefined;
}

/** A check's verdict: true or nothing passes, false or a message fails. */
export type CheckResult = boolean | string | undefined;

/** An HTTP answer as checks see it. */
export interface CheckedResponse extends HttpResult {
  /** The body parsed as JSON (throws when it is not JSON). */
  json(): unknown;
}

/** How an HTTP step sends and checks. */
export interface HttpStepSpec {
  name: string;
  /** Default GET, or POST when there is a body. */
  method?: string;
  path: string | ((it: Iteration) => string);
  /** A JSON body (sent with content-type application/json). */
  json?: (it: Iteration) => unknown;
  /** A raw body. */
  body?: string | ((it: Iteration) => string);
  headers?: Record<string, string>;
  /** Statuses that pass; default any 2xx. */
  expect?: number | readonly number[];
  /** A further assertion on the answer; may also save values into `it.vars`. */
  check?: (res: CheckedResponse, it: Iteration) => CheckResult;
}

function checkFailed(step: string, message: string, sample?: string): PeakError {
  return new PeakError(ErrorCodes.STRESS_CHECK_FAILED, `${step}: ${message}`, {
    details: { step, ...(sample === undefined ? {} : { sample }) },
  });
}

function verdict(step: string, r: CheckResult): void {
  if (r === false) throw checkFailed(step, 'check failed');
  if (typeof r === 'string') throw checkFailed(step, r);
}

/** A step sending one HTTP request to the scenario's target. */
export function httpStep(spec: HttpStepSpec): ScenarioStep {
  const expect = spec.expect === undefined ? undefined : new Set([spec.expect].flat());
  const method =
    spec.method ?? (spec.json !== undefined || spec.body !== undefined ? 'POST' : 'GET');
  const baseHeaders = {
    ...(spec.json !== undefined ? { 'content-type': 'application/json' } : {}),
    ...spec.headers,
  };
  const failure = (res: HttpResult): Error | undefined => {
    const ok =
      expect === undefined ? res.status >= 200 && res.status < 300 : expect.has(res.status);
    return ok
      ? undefined
      : checkFailed(spec.name, `status ${res.status}`, res.body.toString('utf8', 0, 200));
  };
  const fixed: FixedHttpCall | undefined =
    typeof spec.path === 'string' &&
    spec.json === undefined &&
    typeof spec.body !== 'function' &&
    spec.check === undefined
      ? {
          method,
          path: spec.path,
          headers: baseHeaders,
          ...(spec.body === undefined ? {} : { body: spec.body }),
          verdict: failure,
        }
      : undefined;
  return {
    name: spec.name,
    measured: true,
    ...(fixed === undefined ? {} : { fixed }),
    async run(it, env) {
      const path = typeof spec.path === 'function' ? spec.path(it) : spec.path;
      const body =
        spec.json !== undefined
          ? JSON.stringify(spec.json(it))
          : typeof spec.body === 'function'
            ? spec.body(it)
            : spec.body;
      const res = await env.http({
        method,
        path,
        headers: baseHeaders,
        ...(body === undefined ? {} : { body }),
      });
      const failed = failure(res);
      if (failed !== undefined) throw failed;
      if (spec.check !== undefined) {
        // Not a spread: an answer's headers are a getter, parsed when first read.
        const checked: CheckedResponse = {
          status: res.status,
          body: res.body,
          get headers() {
            return res.headers;
          },
          json: () => JSON.parse(res.body.toString('utf8')),
        };
        verdict(spec.name, spec.check(checked, it));
      }
    },
  };
}

/** How an RPC step calls. */
export interface RpcStepSpec {
  name: string;
  /** The service key, `group/name:version`. */
  service: string;
  method: string;
  input: (it: Iteration) => unknown;
  check?: (output: unknown, it: Iteration) => CheckResult;
}

/** A step calling one RPC method through the scenario's caller (the stress flag rides in its context). */
export function rpcStep(spec: RpcStepSpec): ScenarioStep {
  return {
    name: spec.name,
    measured: true,
    async run(it, env) {
      const out = await env.rpc().call(spec.service, spec.method, spec.input(it));
      if (spec.check !== undefined) verdict(spec.name, spec.check(out, it));
    },
  };
}

/** A step of your own: any async work, measured like a call. */
export function customStep(
  name: string,
  run: (it: Iteration) => Promise<CheckResult>,
): ScenarioStep {
  return {
    name,
    measured: true,
    async run(it) {
      const r = await run(it);
      verdict(name, r);
    },
  };
}

/** Think time: a pause of `ms`, or uniformly between `min` and `max` ms. */
export function think(ms: number | { min: number; max: number }): ScenarioStep {
  return {
    name: 'think',
    measured: false,
    run(_it, env) {
      const d = typeof ms === 'number' ? ms : ms.min + Math.random() * (ms.max - ms.min);
      return env.sleep(d);
    },
  };
}

/** A rendezvous (PTS 集合点): iterations wait until `count` are here, then go on together. */
export function rendezvous(name: string, count: number, timeoutMs = 10_000): ScenarioStep {
  return {
    name: `rendezvous ${name}`,
    measured: false,
    run: (_it, env) => env.rendezvous(name, count, timeoutMs),
  };
}

/** SLA thresholds: the run stops itself when the last window breaks one. */
export interface SlaThresholds {
  /** Most p99 latency (from the scheduled send time), ms. */
  p99Ms?: number;
  /** Most share of failed iterations, 0..1. */
  errorRate?: number;
  /** The window the thresholds are judged over, seconds. Default 5. */
  windowS?: number;
  /** Fewest iterations in the window before it is judged. Default 20. */
  minSamples?: number;
}

/** A scenario as written. */
export interface ScenarioSpec {
  name: string;
  /** Base URL of HTTP steps, `http://host:port`. */
  target?: string;
  load: LoadModel;
  steps: readonly ScenarioStep[];
  /** Test data: rows or a feed (see `loadDataFile`). */
  data?: DataFeed | readonly DataRow[];
  thresholds?: SlaThresholds;
  /** Wall-clock limit, seconds: the run stops then whatever the model says. Default: the model's length + 30. */
  maxDurationS?: number;
  /** A call unanswered this long fails, ms. Default 10 000. */
  timeoutMs?: number;
  /** Most HTTP connections to the target; past them requests queue (and the wait counts). Default 256. */
  maxConnections?: number;
  /** Carry the stress flag (shadow tables, topics, keys). Default true. */
  stress?: boolean;
  rpc?: RpcCaller;
  /**
   * The isolation check `peak stress run` does after the run: what stress data looks like,
   * and the database and Redis to look in (the control plane's topics are always checked).
   */
  isolation?: { probes: IsolationProbes; sources?: Omit<IsolationSources, 'messages'> };
}

/** A checked scenario. */
export interface Scenario extends ScenarioSpec {
  readonly feed: DataFeed | undefined;
}

/** Checks a scenario (PEAK_STRESS_INVALID naming the field) and returns it ready to run. */
export function defineScenario(spec: ScenarioSpec): Scenario {
  const bad = (input: string, message: string) =>
    new PeakError(ErrorCodes.STRESS_INVALID, `scenario ${JSON.stringify(spec?.name)}: ${message}`, {
      details: { input },
    });
  if (typeof spec !== 'object' || spec === null) throw bad('scenario', 'expected an object');
  if (typeof spec.name !== 'string' || !/^[\w.:-]{1,100}$/.test(spec.name))
    throw bad('name', 'name must be 1-100 of letters, digits, _ . : -');
  validateModel(spec.load);
  if (!Array.isArray(spec.steps) || spec.steps.length === 0)
    throw bad('steps', 'steps must be a non-empty array (httpStep, rpcStep, think, ...)');
  if (!spec.steps.some((s) => s.measured)) throw bad('steps', 'no step is a call to measure');
  if (spec.target !== undefined && !/^http:\/\/[^/]+\/?$/.test(spec.target))
    throw bad('target', `target must be http://host:port, got ${JSON.stringify(spec.target)}`);
  const t = spec.thresholds;
  if (t?.errorRate !== undefined && !(t.errorRate >= 0 && t.errorRate <= 1))
    throw bad('thresholds.errorRate', 'errorRate must be from 0 to 1');
  if (t?.p99Ms !== undefined && !(t.p99Ms > 0))
    throw bad('thresholds.p99Ms', 'p99Ms must be above 0');
  if (spec.maxDurationS !== undefined && !(spec.maxDurationS > 0))
    throw bad('maxDurationS', 'maxDurationS must be above 0');
  const feed =
    spec.data === undefined
      ? undefined
      : spec.data instanceof Feed
        ? spec.data
        : new Feed(spec.data);
  return { ...spec, feed };
}
