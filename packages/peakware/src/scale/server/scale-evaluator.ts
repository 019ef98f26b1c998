/**
 * The scaling evaluator: on the one node holding the scale leader lock, every
 * `scale.intervalMs`, each service a live supervisor runs and whose app has a policy item
 * `scale/<service>` gets a decision (`../scale-decision.ts`) from its figure; a change sets
 * the service's count in `peak.scale_services` (the supervisors' next answer carries it),
 * and every change, refusal or notable hold is recorded with its figures. Nothing is
 * decided for a service none of whose supervisors reported lately: a control plane that
 * cannot see the instances does not scale them.
 */
import type pg from 'pg';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { ScaleRecommender, type ScaleVerdict } from '../scale-decision.js';
import {
  checkScalePolicy,
  POLICY_GROUP,
  type ResolvedPolicy,
  resolvePolicy,
  type ScalePolicy,
} from '../scale-policy.js';
import type { InstanceReport } from '../supervisor-report.js';
import { lastDecision, recordDecision } from './decision-store.js';
import { type ScaleModuleDeps, windowP99 } from './scale-ports.js';
import { SUPERVISOR_LIVE_MS, supervisors } from './supervisor-store.js';

interface Target {
  app: string;
  service: string;
  fileVersion: string;
  fileCount: number;
  instances: InstanceReport[];
}

/** Evaluates every policy once per call; keeps each service's recommendations between calls. */
export class ScaleEvaluator {
  readonly #deps: ScaleModuleDeps;
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #node: string;
  readonly #now: () => number;
  readonly #recs = new Map<string, ScaleRecommender>();

  constructor(pool: pg.Pool, deps: ScaleModuleDeps, logger: Logger, node: string, now = Date.now) {
    this.#pool = pool;
    this.#deps = deps;
    this.#logger = logger;
    this.#node = node;
    this.#now = now;
  }

  /** One round over every supervised service. */
  async evaluate(): Promise<void> {
    const targets = new Map<string, Target>();
    for (const s of await supervisors(this.#pool)) {
      if (s.age_ms > SUPERVISOR_LIVE_MS) continue;
      for (const svc of s.services) {
        const key = `${s.app}\u0000${svc.name}`;
        const t = targets.get(key) ?? {
          app: s.app,
          service: svc.name,
          fileVersion: svc.version,
          fileCount: svc.instances,
          instances: [],
        };
        t.instances.push(...s.instances.filter((i) => i.service === svc.name));
        targets.set(key, t);
      }
    }
    for (const [key, t] of targets) {
      try {
        await this.#evaluateOne(key, t);
      } catch (err) {
        this.#logger.warn(
          { app: t.app, service: t.service, err: errorMessage(err) },
          'scaling evaluation failed',
        );
      }
    }
    for (const key of this.#recs.keys()) if (!targets.has(key)) this.#recs.delete(key);
  }

  async #evaluateOne(key: string, t: Target): Promise<void> {
    const item = await this.#deps.config.get(this.#pool, {
      app: t.app,
      group: POLICY_GROUP,
      key: t.service,
    });
    if (item === undefined) {
      this.#recs.delete(key);
      return;
    }
    const { rows } = await this.#pool.query<{
      desired: number | null;
      primary_version: string | null;
      last_change_at: Date | null;
    }>(
      'SELECT desired, primary_version, last_change_at FROM peak.scale_services WHERE app = $1 AND service = $2',
      [t.app, t.service],
    );
    const row = rows[0];
    const primary = row?.primary_version ?? t.fileVersion;
    const live = t.instances.filter((i) => i.version === primary && i.state !== 'stopping');
    const current = row?.desired ?? live.length;
    let raw: unknown;
    try {
      raw = JSON.parse(item.value);
    } catch {
      raw = undefined;
    }
    const problems = checkScalePolicy(raw);
    if (problems.length > 0) {
      const reason = `policy ${POLICY_GROUP}/${t.service} v${item.version} refused: ${problems
        .map((p) => `${p.path} ${p.reason}`)
        .join('; ')}`;
      await this.#record(
        t,
        { action: 'hold', desired: current, raw: current, reason },
        current,
        {},
        'invalid',
      );
      return;
    }
    const policy = resolvePolicy(raw as ScalePolicy);
    const figure = await this.#figure(policy, t, live, current);
    let rec = this.#recs.get(key);
    if (rec === undefined) {
      rec = new ScaleRecommender();
      this.#recs.set(key, rec);
    }
    const verdict = rec.decide({
      policy,
      current,
      value: figure.value,
      now: this.#now(),
      lastChangeAt: row?.last_change_at?.getTime() ?? undefined,
    });
    if (verdict.action !== 'hold') {
      await this.#pool.query(
        `INSERT INTO peak.scale_services (app, service, desired, last_change_at)
         VALUES ($1, $2, $3, to_timestamp($4 / 1000.0))
         ON CONFLICT (app, service) DO UPDATE SET desired = $3, last_change_at = to_timestamp($4 / 1000.0)`,
        [t.app, t.service, verdict.desired, this.#now()],
      );
      this.#logger.info(
        {
          app: t.app,
          service: t.service,
          from: current,
          to: verdict.desired,
          reason: verdict.reason,
        },
        'scaling decision',
      );
    }
    const value = figure.value === undefined ? {} : { value: Math.round(figure.value * 100) / 100 };
    await this.#record(
      t,
      verdict,
      current,
      { ...figure.figures, ...value, policy },
      undefined,
      policy,
    );
  }

  /** The policy's figure now, and what it was computed from. */
  async #figure(
    p: ResolvedPolicy,
    t: Target,
    live: InstanceReport[],
    current: number,
  ): Promise<{ value: number | undefined; figures: Record<string, unknown> }> {
    if (p.metric === 'cpu') {
      const cpus = live.filter((i) => i.state === 'running' && i.cpuPercent !== undefined);
      if (cpus.length === 0) return { value: undefined, figures: { instances: 0 } };
      const avg = cpus.reduce((s, i) => s + (i.cpuPercent ?? 0), 0) / cpus.length;
      return {
        value: avg,
        figures: {
          instances: cpus.length,
          cpu: Object.fromEntries(cpus.map((i) => [i.id, i.cpuPercent])),
        },
      };
    }
    if (p.metric === 'mq-backlog') {
      const mq = p.mq!;
      const queues = await this.#deps.backlog(this.#pool).backlog(mq.group, mq.topic);
      const backlog = queues.reduce((s, q) => s + Math.max(0, q.backlog), 0);
      return {
        value: current === 0 ? backlog : backlog / current,
        figures: { backlog, queues: queues.length, instances: current },
      };
    }
    const now = this.#now();
    // The newest second is still being pushed: leave it out.
    const toMs = Math.floor(now / 1000) * 1000 - 1000;
    const buckets = await this.#deps.metrics(this.#pool).buckets({
      fromMs: toMs - p.windowMs,
      toMs,
      bucketSeconds: 1,
      by: 'total',
      service: p.telemetryService ?? t.service,
      ...(p.resource === undefined ? {} : { resource: p.resource }),
    });
    if (buckets.length === 0)
      // No call pushed in the window: no RT to speak of, and a QPS of zero.
      return { value: p.metric === 'qps' ? 0 : undefined, figures: { seconds: 0 } };
    if (p.metric === 'rt-p99') {
      const p99s = buckets.map((b) => b.p99).filter((v): v is number => v !== null);
      const p99 = windowP99(buckets);
      if (p99 === undefined) return { value: undefined, figures: { seconds: buckets.length } };
      return { value: p99, figures: { seconds: p99s.length, highestP99: Math.max(...p99s) } };
    }
    // Per instance: over the mean number of instances that pushed (every instance of the
    // service, supervised here or not, takes its share of the calls).
    const calls = buckets.reduce((s, b) => s + b.success + b.error, 0);
    const meanInstances =
      buckets.reduce((s, b) => s + Math.max(1, b.instances), 0) / buckets.length;
    const qps = calls / (p.windowMs / 1000);
    return {
      value: qps / meanInstances,
      figures: { qps, seconds: buckets.length, meanInstances },
    };
  }

  /** Records a change always, a hold only when it says something new. */
  async #record(
    t: Target,
    v: ScaleVerdict,
    current: number,
    figures: Record<string, unknown>,
    action?: 'invalid',
    policy?: ResolvedPolicy,
  ): Promise<void> {
    const kind = action ?? v.action;
    if (kind === 'hold' && v.raw === current) return;
    if (kind === 'hold' || kind === 'invalid') {
      const last = await lastDecision(this.#pool, t.app, t.service);
      const gist = (r: string) => r.replace(/[\d.]+/g, '#');
      if (last !== undefined && last.action === kind && gist(last.reason) === gist(v.reason))
        return;
    }
    const value = typeof figures.value === 'number' ? figures.value : undefined;
    await recordDecision(this.#pool, {
      app: t.app,
      service: t.service,
      action: kind,
      current,
      desired: v.desired,
      ...(policy === undefined ? {} : { metric: policy.metric, target: policy.target }),
      ...(value === undefined ? {} : { value }),
      reason: v.reason,
      figures: { raw: v.raw, ...figures },
      node: this.#node,
    });
  }
}
