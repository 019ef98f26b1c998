/**
 * Releases in PostgreSQL (`peak.scale_releases`, `peak.scale_release_events`): start one
 * (at most one in progress per service), read them, move their state, and log every step.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { VersionFigures } from '../release-judge.js';
import { type ReleaseRequest, type ReleaseSettings, releasePlanLabel } from '../release-spec.js';
import type { GrayGroup } from './supervisor-store.js';

/** Where a release stands. */
export type ReleaseState = 'running' | 'paused' | 'promoted' | 'rolled-back' | 'aborted';

/** One step of a release's log. */
export interface ReleaseEvent {
  at: string;
  kind: string;
  message: string;
  detail: Record<string, unknown>;
  author: string;
}

/** A release as `peak release show` shows it. */
export interface ReleaseView {
  id: number;
  app: string;
  service: string;
  version: string;
  command: string;
  fromVersion: string;
  settings: ReleaseSettings;
  state: ReleaseState;
  phase: 'starting' | 'step' | 'done';
  /** The step index (into `settings.steps`). */
  step: number;
  /**
   * The new version's share now, percent (0 before the first step and after a rollback):
   * of calls by weight, of users with a userHash rule, 100 during a header rule's step.
   */
  weight: number;
  stepStartedAt: string;
  baseline: VersionFigures | null;
  outcome: string | null;
  author: string;
  createdAt: string;
  updatedAt: string;
  events: ReleaseEvent[];
}

const COLUMNS = `id, app, service, version, command, from_version, settings, state, phase, step,
  step_started_at, baseline, outcome, author, created_at, updated_at`;

function toView(r: Record<string, unknown>, events: ReleaseEvent[]): ReleaseView {
  const settings = r.settings as ReleaseSettings;
  const state = r.state as ReleaseState;
  const phase = r.phase as ReleaseView['phase'];
  const step = r.step as number;
  return {
    id: Number(r.id),
    app: r.app as string,
    service: r.service as string,
    version: r.version as string,
    command: r.command as string,
    fromVersion: r.from_version as string,
    settings,
    state,
    phase,
    step,
    weight:
      state === 'promoted'
        ? 100
        : phase === 'step' && (state === 'running' || state === 'paused')
          ? (settings.steps[step] ?? 0)
          : 0,
    stepStartedAt: (r.step_started_at as Date).toISOString(),
    baseline: (r.baseline as VersionFigures | null) ?? null,
    outcome: (r.outcome as string | null) ?? null,
    author: r.author as string,
    createdAt: (r.created_at as Date).toISOString(),
    updatedAt: (r.updated_at as Date).toISOString(),
    events,
  };
}

async function eventsOf(pool: pg.Pool, id: number): Promise<ReleaseEvent[]> {
  const { rows } = await pool.query(
    'SELECT at, kind, message, detail, author FROM peak.scale_release_events WHERE release_id = $1 ORDER BY id',
    [id],
  );
  return rows.map((e) => ({
    at: (e.at as Date).toISOString(),
    kind: e.kind as string,
    message: e.message as string,
    detail: e.detail as Record<string, unknown>,
    author: e.author as string,
  }));
}

/** Starts a release; PEAK_SCALE_CONFLICT when one of the service is in progress. */
export async function createRelease(
  pool: pg.Pool,
  r: ReleaseRequest,
  settings: ReleaseSettings,
  fromVersion: string,
  author: string,
): Promise<ReleaseView> {
  try {
    // The release and its first step in one statement, as every later move (updateRelease).
    const { rows } = await pool.query(
      `WITH created AS (
         INSERT INTO peak.scale_releases (app, service, version, command, from_version, settings, state, phase, author)
         VALUES ($1, $2, $3, $4, $5, $6, 'running', 'starting', $7) RETURNING ${COLUMNS}),
       logged AS (
         INSERT INTO peak.scale_release_events (release_id, kind, message, detail, author)
         SELECT id, 'start', $8, $9, $7 FROM created)
       SELECT * FROM created`,
      [
        r.app,
        r.service,
        r.version,
        r.command,
        fromVersion,
        JSON.stringify(settings),
        author,
        `started ${r.version} beside ${fromVersion}: ${settings.grayInstances} gray instance(s), ${releasePlanLabel(settings)}`,
        JSON.stringify({ settings, command: r.command }),
      ],
    );
    return toView(rows[0], await eventsOf(pool, Number(rows[0].id)));
  } catch (err) {
    if ((err as { code?: string }).code === '23505')
      throw new PeakError(
        ErrorCodes.SCALE_CONFLICT,
        `a release of ${r.service} in app ${r.app} is in progress; 'peak release abort ${r.service} --app ${r.app}' it first`,
      );
    throw err;
  }
}

/** The newest release of a service (in progress or not), with its log; PEAK_SCALE_NOT_FOUND when none. */
export async function latestRelease(
  pool: pg.Pool,
  app: string,
  service: string,
): Promise<ReleaseView> {
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM peak.scale_releases WHERE app = $1 AND service = $2 ORDER BY id DESC LIMIT 1`,
    [app, service],
  );
  if (rows.length === 0)
    throw new PeakError(ErrorCodes.SCALE_NOT_FOUND, `no release of ${service} in app ${app}`);
  return toView(rows[0], await eventsOf(pool, Number(rows[0].id)));
}

/** An app's releases, newest first, without their logs. */
export async function listReleases(
  pool: pg.Pool,
  app: string,
  limit: number,
): Promise<ReleaseView[]> {
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM peak.scale_releases WHERE app = $1 ORDER BY id DESC LIMIT $2`,
    [app, limit],
  );
  return rows.map((r) => toView(r, []));
}

/** Every release in progress (running or paused), for the runner. */
export async function releasesInProgress(pool: pg.Pool): Promise<ReleaseView[]> {
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM peak.scale_releases WHERE state IN ('running', 'paused') ORDER BY id`,
  );
  return rows.map((r) => toView(r, []));
}

/** A step of a release's log, as {@link updateRelease} writes it with the move. */
export interface ReleaseEventInput {
  kind: string;
  message: string;
  detail: Record<string, unknown>;
  author: string;
}

/**
 * Moves a release and logs the step in one statement (a reader never sees the new state
 * without its step); only from the `from` states given (false, nothing logged, when it was
 * elsewhere).
 */
export async function updateRelease(
  pool: pg.Pool,
  id: number,
  from: readonly ReleaseState[],
  patch: {
    state?: ReleaseState;
    phase?: ReleaseView['phase'];
    step?: number;
    stepStarted?: boolean;
    baseline?: VersionFigures;
    outcome?: string;
  },
  event: ReleaseEventInput,
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `WITH moved AS (
       UPDATE peak.scale_releases SET
         state = coalesce($3, state), phase = coalesce($4, phase), step = coalesce($5, step),
         step_started_at = CASE WHEN $6 THEN now() ELSE step_started_at END,
         baseline = coalesce($7, baseline), outcome = coalesce($8, outcome), updated_at = now()
       WHERE id = $1 AND state = ANY($2::text[])
       RETURNING id)
     INSERT INTO peak.scale_release_events (release_id, kind, message, detail, author)
     SELECT id, $9, $10, $11, $12 FROM moved`,
    [
      id,
      from,
      patch.state ?? null,
      patch.phase ?? null,
      patch.step ?? null,
      patch.stepStarted === true,
      patch.baseline === undefined ? null : JSON.stringify(patch.baseline),
      patch.outcome ?? null,
      event.kind,
      event.message,
      JSON.stringify(event.detail),
      event.author,
    ],
  );
  return rowCount === 1;
}

/** The gray groups of an app's releases in progress, for the supervisors' orders. */
export async function grayGroups(pool: pg.Pool, app: string): Promise<GrayGroup[]> {
  const { rows } = await pool.query(
    `SELECT service, version, command, settings FROM peak.scale_releases
      WHERE app = $1 AND state IN ('running', 'paused')`,
    [app],
  );
  return rows.map((r) => ({
    service: r.service as string,
    version: r.version as string,
    command: r.command as string,
    count: (r.settings as ReleaseSettings).grayInstances,
  }));
}
