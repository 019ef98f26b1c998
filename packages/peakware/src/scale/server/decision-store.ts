/**
 * Scaling decisions (`peak.scale_decisions`): every change of a service's count, by the
 * evaluator or by hand, and every hold worth knowing (cooldown, stabilisation, an invalid
 * policy), each with the figures behind it. `peak scale history` reads them.
 */
import type pg from 'pg';

/** What a decision did. */
export type DecisionAction = 'out' | 'in' | 'hold' | 'invalid';

/** One decision, as stored and shown. */
export interface ScaleDecision {
  id: number;
  at: string;
  app: string;
  service: string;
  action: DecisionAction;
  current: number;
  desired: number;
  metric: string | null;
  value: number | null;
  target: number | null;
  reason: string;
  figures: Record<string, unknown>;
  node: string;
}

/** A decision to record (id and time are the store's). */
export type NewDecision = Omit<ScaleDecision, 'id' | 'at' | 'metric' | 'value' | 'target'> & {
  metric?: string;
  value?: number;
  target?: number;
};

/** Records a decision; returns it as stored. */
export async function recordDecision(pool: pg.Pool, d: NewDecision): Promise<ScaleDecision> {
  const { rows } = await pool.query(
    `INSERT INTO peak.scale_decisions
       (app, service, action, current, desired, metric, value, target, reason, figures, node)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     RETURNING id, at, app, service, action, current, desired, metric, value, target, reason, figures, node`,
    [
      d.app,
      d.service,
      d.action,
      d.current,
      d.desired,
      d.metric ?? null,
      d.value ?? null,
      d.target ?? null,
      d.reason,
      JSON.stringify(d.figures),
      d.node,
    ],
  );
  return toDecision(rows[0]);
}

function toDecision(r: Record<string, unknown>): ScaleDecision {
  return {
    id: Number(r.id),
    at: (r.at as Date).toISOString(),
    app: r.app as string,
    service: r.service as string,
    action: r.action as DecisionAction,
    current: r.current as number,
    desired: r.desired as number,
    metric: (r.metric as string | null) ?? null,
    value: (r.value as number | null) ?? null,
    target: (r.target as number | null) ?? null,
    reason: r.reason as string,
    figures: r.figures as Record<string, unknown>,
    node: r.node as string,
  };
}

/** The newest decisions of an app (optionally one service), newest first. */
export async function decisionHistory(
  pool: pg.Pool,
  q: { app: string; service?: string; limit: number },
): Promise<ScaleDecision[]> {
  const { rows } = await pool.query(
    `SELECT id, at, app, service, action, current, desired, metric, value, target, reason, figures, node
       FROM peak.scale_decisions WHERE app = $1 AND ($2::text IS NULL OR service = $2)
      ORDER BY id DESC LIMIT $3`,
    [q.app, q.service ?? null, q.limit],
  );
  return rows.map(toDecision);
}

/** The newest decision of a service, if any. */
export async function lastDecision(
  pool: pg.Pool,
  app: string,
  service: string,
): Promise<ScaleDecision | undefined> {
  return (await decisionHistory(pool, { app, service, limit: 1 }))[0];
}
