/**
 * Moves the releases in progress, on the scale leader after each scaling round:
 *
 * - **starting**: the supervisors start the gray group (the orders carry it); once every
 *   gray instance runs and is registered (with weight 0), the first step's weights go out;
 * - **step**: the new version's share is set by weights, through the config item
 *   `release/<service>` of the app (schema `lb-weights`: the config store applies it to
 *   the registry, which pushes it to every consumer's balancer; each change is a config
 *   version in the config audit). The step's figures per version (pushed per-second
 *   metrics, by instance id) are judged (`../release-judge.ts`) every round: a failure
 *   rolls back at once; a pass once the step has been held `stepHoldMs` moves to the next
 *   step or, after the last, promotes; no verdict within `progressDeadlineMs` pauses the
 *   release for a person (as Argo Rollouts does with an inconclusive run);
 * - **promote**: all weight to the new version, which becomes the service's primary: the
 *   supervisors run it at the service's count and stop the old one gracefully;
 * - **roll back / abort**: all weight back to the old version, then the gray group is
 *   stopped gracefully.
 *
 * A release by rule (`settings.rule`) moves the same way, but its steps are condition
 * routing rules instead of weight shares: its gray instances are tagged `release-<id>` in
 * the registry (so a call without that route tag never reaches them while a primary
 * instance is up), and the step's rule (`releaseCondition`: a header's value, or
 * `hash(key) % 100 < N`) goes first into the app's `governance/rpc-routes` item, one rule
 * per RPC service of the gray instances, named `release/<service>`; consumers that called
 * `bindRoutingRules` send the matching calls to the tag. Promote: all weight to the new
 * version, its tags cleared, the rule removed; roll back: the rule removed, weight 0.
 *
 * A gray instance that keeps crashing (3 restarts) fails the release too.
 */
import type pg from 'pg';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ApiContext } from '../../server/http-api.js';
import { judgeStep, type VersionFigures } from '../release-judge.js';
import { releaseCondition, releaseStepLabel } from '../release-spec.js';
import type { InstanceReport } from '../supervisor-report.js';
import { type ReleaseView, releasesInProgress, updateRelease } from './release-store.js';
import { type Actor, type ScaleModuleDeps, windowP99 } from './scale-ports.js';
import { liveInstances } from './supervisor-store.js';

/** The config group of release weight items (the key is the service). */
export const RELEASE_WEIGHTS_GROUP = 'release';

/** The item consumers bind routing rules from (`bindRoutingRules`' default), in the release's app. */
export const RELEASE_RULES_ITEM = { group: 'governance', key: 'rpc-routes' } as const;

/** A condition routing rule as the `rpc-routes` item holds it (rpc's `ConditionRule`). */
interface RouteRule {
  name?: string;
  service?: string;
  method?: string;
  when: string;
  tag: string;
}

/** The route tag of a release by rule's gray instances. */
export function releaseTag(r: Pick<ReleaseView, 'id'>): string {
  return `release-${r.id}`;
}

/** The name of a release's rules in the rules item (one per RPC service). */
function ruleName(r: Pick<ReleaseView, 'service'>): string {
  return `release/${r.service}`;
}

/**
 * Puts a release's rules first in the app's rules item, in place of its earlier ones
 * (`rules` empty: removes them). The other rules stay as they are; nothing is published
 * when the item already holds that list.
 */
export async function publishRules(
  deps: ScaleModuleDeps,
  pool: pg.Pool,
  r: Pick<ReleaseView, 'id' | 'app' | 'service' | 'version'>,
  rules: RouteRule[],
  comment: string,
  actor: Actor,
): Promise<void> {
  const ref = { app: r.app, ...RELEASE_RULES_ITEM };
  const current = await deps.config.get(pool, ref);
  let list: RouteRule[] = [];
  if (current !== undefined) {
    const parsed = JSON.parse(current.value) as unknown;
    if (Array.isArray(parsed)) list = parsed as RouteRule[];
  }
  const others = list.filter((x) => x.name !== ruleName(r));
  const next = [...rules, ...others];
  if (JSON.stringify(next) === JSON.stringify(list)) return;
  await deps.config.publish(
    pool,
    ref,
    {
      format: 'json',
      value: JSON.stringify(next),
      ...(current === undefined ? { schema: { $peak: 'rpc-routes' } } : {}),
      comment: `release #${r.id} of ${r.version}: ${comment}`,
    },
    actor,
  );
}

/**
 * Publishes a running release's step rules, and removes them again when the release ended
 * meanwhile (an abort by hand between this round's read and its write; the abort removes
 * them once more after its move, so one of the two always runs last).
 */
async function publishStepRules(
  deps: ScaleModuleDeps,
  pool: pg.Pool,
  r: ReleaseView,
  rules: RouteRule[],
  comment: string,
  actor: Actor,
): Promise<void> {
  await publishRules(deps, pool, r, rules, comment, actor);
  if (!(await stillRunning(pool, r.id)))
    await publishRules(deps, pool, r, [], 'the release ended meanwhile', actor);
}

/** The rules of step `step` of a release by rule, one per RPC service of its gray instances. */
function stepRules(r: ReleaseView, step: number, services: readonly string[]): RouteRule[] {
  const rule = r.settings.rule;
  if (rule === undefined) return [];
  const when = releaseCondition(rule, r.settings.steps[step] ?? 0);
  return services.map((service) => ({ name: ruleName(r), service, when, tag: releaseTag(r) }));
}

/** The weights of a step: the share by weight, or, by rule, every instance weighted alike. */
function stepWeights(
  r: ReleaseView,
  step: number,
  primary: readonly string[],
  gray: readonly string[],
): Record<string, number> {
  const share = r.settings.rule === undefined ? (r.settings.steps[step] ?? 0) / 100 : 0.5;
  return releaseWeights(primary, gray, share);
}

/** Restarts of a gray instance that fail its release. */
const CRASH_RESTARTS = 3;

/** The total weight split between the versions. */
const TOTAL_WEIGHT = 1000;

/** The weight of each instance when the new version (`gray`) takes `share` (0-1) of calls. */
export function releaseWeights(
  primary: readonly string[],
  gray: readonly string[],
  share: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of primary)
    out[id] =
      share >= 1 ? 0 : Math.max(1, Math.round((TOTAL_WEIGHT * (1 - share)) / primary.length));
  for (const id of gray)
    out[id] = share <= 0 ? 0 : Math.max(1, Math.round((TOTAL_WEIGHT * share) / gray.length));
  return out;
}

/** The instances of each version of a release, as the supervisors report them now. */
export async function releaseInstances(
  pool: pg.Pool,
  r: Pick<ReleaseView, 'app' | 'service' | 'version' | 'fromVersion'>,
): Promise<{ primary: InstanceReport[]; gray: InstanceReport[] }> {
  const all = await liveInstances(pool, r.app, r.service);
  return {
    primary: all.filter((i) => i.version === r.fromVersion && i.state === 'running'),
    gray: all.filter((i) => i.version === r.version && i.state !== 'stopping'),
  };
}

/** Publishes a release's weights (one config version, in the config audit). */
export async function publishWeights(
  deps: ScaleModuleDeps,
  pool: pg.Pool,
  r: Pick<ReleaseView, 'id' | 'app' | 'service' | 'version'>,
  weights: Record<string, number>,
  comment: string,
  actor: Actor,
): Promise<void> {
  await deps.config.publish(
    pool,
    { app: r.app, group: RELEASE_WEIGHTS_GROUP, key: r.service },
    {
      format: 'json',
      value: JSON.stringify(weights),
      schema: { $peak: 'lb-weights' },
      comment: `release #${r.id} of ${r.version}: ${comment}`,
    },
    actor,
  );
}

/** Ends a release with all traffic back on the old version (rollback or abort). */
export async function endWithOldVersion(
  deps: ScaleModuleDeps,
  pool: pg.Pool,
  r: ReleaseView,
  state: 'rolled-back' | 'aborted',
  reason: string,
  detail: Record<string, unknown>,
  actor: Actor,
): Promise<boolean> {
  const { primary, gray } = await releaseInstances(pool, r);
  const ids = (xs: InstanceReport[]) => xs.map((i) => i.id);
  if (r.settings.rule !== undefined) await publishRules(deps, pool, r, [], state, actor);
  await publishWeights(deps, pool, r, releaseWeights(ids(primary), ids(gray), 0), state, actor);
  const moved = await updateRelease(
    pool,
    r.id,
    ['running', 'paused'],
    { state, phase: 'done', outcome: reason },
    {
      kind: state === 'aborted' ? 'abort' : 'rollback',
      message: `${state === 'aborted' ? 'aborted' : 'rolled back'}: ${reason}; all traffic back on ${r.fromVersion}, the gray group stops`,
      detail,
      author: actor.author,
    },
  );
  // Again once it has ended: a round that read it running may have put the rule back.
  if (r.settings.rule !== undefined) await publishRules(deps, pool, r, [], state, actor);
  return moved;
}

/** The runner, as a leader task of the scale worker. */
export function releaseRunner(deps: ScaleModuleDeps) {
  return (ctx: ApiContext) => {
    const logger = ctx.logger.child({ component: 'release' });
    const actor: Actor = { author: 'peak-release', source: ctx.nodeId };
    return {
      async tick(): Promise<void> {
        for (const r of await releasesInProgress(ctx.pool)) {
          if (r.state !== 'running') continue;
          try {
            await advance(deps, ctx.pool, r, actor, logger);
          } catch (err) {
            logger.warn({ release: r.id, err: errorMessage(err) }, 'release step failed');
          }
        }
      },
    };
  };
}

async function figuresOf(
  deps: ScaleModuleDeps,
  pool: pg.Pool,
  r: ReleaseView,
  ids: readonly string[],
  fromMs: number,
  toMs: number,
): Promise<VersionFigures> {
  if (ids.length === 0 || toMs <= fromMs) return { calls: 0, errors: 0 };
  const buckets = await deps.metrics(pool).buckets({
    fromMs,
    toMs,
    bucketSeconds: 1,
    by: 'total',
    service: r.settings.telemetryService ?? r.service,
    ...(r.settings.resource === undefined ? {} : { resource: r.settings.resource }),
    instances: ids,
  });
  const calls = buckets.reduce((s, b) => s + b.success + b.error, 0);
  const errors = buckets.reduce((s, b) => s + b.error, 0);
  const rtSum = buckets.reduce((s, b) => s + b.rtSum, 0);
  const p99 = windowP99(buckets);
  return {
    calls,
    errors,
    ...(calls === 0 ? {} : { rtAvg: rtSum / calls }),
    ...(p99 === undefined ? {} : { p99 }),
  };
}

async function advance(
  deps: ScaleModuleDeps,
  pool: pg.Pool,
  r: ReleaseView,
  actor: Actor,
  logger: Logger,
): Promise<void> {
  const now = Date.now();
  const s = r.settings;
  const elapsed = now - Date.parse(r.stepStartedAt);
  const { primary, gray } = await releaseInstances(pool, r);
  const crashing = gray.find((i) => i.restarts >= CRASH_RESTARTS);
  if (crashing !== undefined) {
    await endWithOldVersion(
      deps,
      pool,
      r,
      'rolled-back',
      `gray instance ${crashing.id} restarted ${crashing.restarts} times`,
      {},
      actor,
    );
    return;
  }
  const running = gray.filter((i) => i.state === 'running');
  const rows = await deps.registered(pool);
  const registered = new Map(rows.map((i) => [i.instanceId, i.weight]));
  const ids = (xs: InstanceReport[]) => xs.map((i) => i.id);
  const byRule = s.rule !== undefined;
  const tag = releaseTag(r);
  // A release by rule tags its gray instances before they get any weight (and again after
  // a restart registered one afresh): a call without the tag never reaches them.
  const retag = async () => {
    if (!byRule) return;
    for (const i of running)
      if (rows.some((x) => x.instanceId === i.id && !x.tags.includes(tag)))
        await deps.retag(pool, i.id, [tag]);
  };
  const services = [
    ...new Set(rows.filter((x) => ids(running).includes(x.instanceId)).map((x) => x.service)),
  ].sort();

  if (r.phase === 'starting') {
    const up = running.length >= s.grayInstances && running.every((i) => registered.has(i.id));
    if (!up) {
      if (elapsed > s.progressDeadlineMs)
        await pause(
          pool,
          r,
          `the gray instances were not up within ${s.progressDeadlineMs} ms`,
          actor,
        );
      return;
    }
    await retag();
    const weights = stepWeights(r, 0, ids(primary), ids(running));
    await publishWeights(deps, pool, r, weights, `step 1: ${releaseStepLabel(s, 0)}`, actor);
    const rules = stepRules(r, 0, services);
    if (byRule)
      await publishStepRules(deps, pool, r, rules, `step 1: ${releaseStepLabel(s, 0)}`, actor);
    await updateRelease(
      pool,
      r.id,
      ['running'],
      { phase: 'step', step: 0, stepStarted: true },
      {
        kind: 'step',
        message: `gray instances up (${ids(running).join(', ')}${byRule ? `, tagged ${tag}` : ''}); step 1 of ${s.steps.length}: ${releaseStepLabel(s, 0)} to ${r.version}`,
        detail: { weights, ...(byRule ? { rules } : {}) },
        author: actor.author,
      },
    );
    return;
  }

  // Keep the tags, rule and weights in force as instances come and go (a restart registers
  // afresh) and as people edit the rules item.
  await retag();
  if (byRule && services.length > 0)
    await publishStepRules(
      deps,
      pool,
      r,
      stepRules(r, r.step, services),
      `step ${r.step + 1}: ${releaseStepLabel(s, r.step)} (rule restored)`,
      actor,
    );
  const weights = stepWeights(r, r.step, ids(primary), ids(running));
  const drifted = Object.entries(weights).some(
    ([id, w]) => registered.has(id) && registered.get(id) !== w,
  );
  if (drifted)
    await publishWeights(
      deps,
      pool,
      r,
      weights,
      `step ${r.step + 1}: ${releaseStepLabel(s, r.step)} (instances changed)`,
      actor,
    );

  // Whole seconds after the step began and before the one still being pushed.
  const fromMs = Math.ceil((Date.parse(r.stepStartedAt) + 1000) / 1000) * 1000;
  const toMs = Math.floor(now / 1000) * 1000 - 1000;
  const canary = await figuresOf(deps, pool, r, ids(gray), fromMs, toMs);
  const current = await figuresOf(deps, pool, r, ids(primary), fromMs, toMs);
  const baseline = current.calls > 0 ? current : (r.baseline ?? current);
  const v = judgeStep(baseline, canary, s);
  const detail = {
    step: r.step,
    weight: s.steps[r.step],
    ...(byRule ? { rule: releaseStepLabel(s, r.step) } : {}),
    canary,
    baseline,
    verdict: v,
  };
  if (v.verdict === 'fail') {
    logger.info({ release: r.id, reason: v.reason }, 'release analysis failed; rolling back');
    await endWithOldVersion(
      deps,
      pool,
      r,
      'rolled-back',
      `step ${r.step + 1} (${byRule ? releaseStepLabel(s, r.step) : `${s.steps[r.step]}%`}): ${v.reason}`,
      detail,
      actor,
    );
    return;
  }
  if (v.verdict === 'wait' || elapsed < s.stepHoldMs) {
    if (elapsed > s.progressDeadlineMs)
      await pause(pool, r, `inconclusive at step ${r.step + 1}: ${v.reason}`, actor);
    return;
  }
  if (r.step + 1 < s.steps.length) {
    const next = r.step + 1;
    const label = `step ${next + 1}: ${releaseStepLabel(s, next)}`;
    await publishWeights(
      deps,
      pool,
      r,
      stepWeights(r, next, ids(primary), ids(running)),
      label,
      actor,
    );
    if (byRule) await publishStepRules(deps, pool, r, stepRules(r, next, services), label, actor);
    await updateRelease(
      pool,
      r.id,
      ['running'],
      { step: next, stepStarted: true, ...(current.calls > 0 ? { baseline: current } : {}) },
      {
        kind: 'step',
        message: `step ${r.step + 1} passed (${v.reason}); step ${next + 1} of ${s.steps.length}: ${releaseStepLabel(s, next)} to ${r.version}`,
        detail,
        author: actor.author,
      },
    );
    return;
  }
  await publishWeights(
    deps,
    pool,
    r,
    releaseWeights(ids(primary), ids(running), 1),
    'promoted',
    actor,
  );
  if (byRule) {
    // All weight is the new version's; untagged, it takes every call; then the rule goes.
    for (const i of running) await deps.retag(pool, i.id, []);
    await publishRules(deps, pool, r, [], 'promoted', actor);
  }
  await pool.query(
    `INSERT INTO peak.scale_services (app, service, primary_version, primary_command)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (app, service) DO UPDATE SET primary_version = $3, primary_command = $4`,
    [r.app, r.service, r.version, r.command],
  );
  await updateRelease(
    pool,
    r.id,
    ['running'],
    { state: 'promoted', phase: 'done', outcome: v.reason },
    {
      kind: 'promote',
      message: `promoted: ${r.version} is the primary version (${v.reason}); ${r.fromVersion} stops`,
      detail,
      author: actor.author,
    },
  );
  logger.info({ release: r.id, service: r.service, version: r.version }, 'release promoted');
}

async function stillRunning(pool: pg.Pool, id: number): Promise<boolean> {
  const { rows } = await pool.query('SELECT state FROM peak.scale_releases WHERE id = $1', [id]);
  return rows[0]?.state === 'running';
}

async function pause(pool: pg.Pool, r: ReleaseView, reason: string, actor: Actor): Promise<void> {
  await updateRelease(
    pool,
    r.id,
    ['running'],
    { state: 'paused' },
    {
      kind: 'pause',
      message: `paused: ${reason}; 'peak release resume|abort' decides`,
      detail: {},
      author: actor.author,
    },
  );
}
