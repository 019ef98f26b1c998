/**
 * The scale module's background work: on every node that takes part
 * (`scale.evaluator`), a timer every `scale.intervalMs`; the node holding the scale leader
 * lock (`SCALE_EVALUATOR_LOCK_KEY`) evaluates the scaling policies, then moves the
 * releases in progress. When that node stops or dies another takes the lock at its next
 * tick and carries on from what is stored. Once a minute it also prunes old state.
 */

import type pg from 'pg';
import { errorMessage } from '../../core/errors.js';
import { AdvisoryLeader, SCALE_EVALUATOR_LOCK_KEY } from '../../server/advisory-leader.js';
import type { ApiContext, ApiModule } from '../../server/http-api.js';
import { ScaleEvaluator } from './scale-evaluator.js';
import type { ScaleModuleDeps } from './scale-ports.js';

/** How often the leader prunes old state, ms. */
const PRUNE_EVERY_MS = 60_000;

/**
 * Forgets supervisors silent for a day and decisions and finished releases older than 30
 * days, so the tables stay the size of what is running and recent.
 */
export async function pruneScaleState(pool: pg.Pool): Promise<void> {
  await pool.query(
    "DELETE FROM peak.scale_supervisors WHERE reported_at < now() - interval '1 day'",
  );
  await pool.query("DELETE FROM peak.scale_decisions WHERE at < now() - interval '30 days'");
  await pool.query(
    `DELETE FROM peak.scale_releases
      WHERE state NOT IN ('running', 'paused') AND updated_at < now() - interval '30 days'`,
  );
}

/** Extra work each leader tick runs after the scaling round (the release runner). */
export type LeaderTask = (ctx: ApiContext) => { tick(): Promise<void> };

/** Starts the leader loop on `onReady` and ends it on `onClose`. */
export function scaleWorker(deps: ScaleModuleDeps, tasks: readonly LeaderTask[]): ApiModule {
  return (app, ctx) => {
    if (!ctx.settings.scale.evaluator) return;
    const logger = ctx.logger.child({ component: 'scale' });
    const leader = new AdvisoryLeader(
      ctx.pool,
      SCALE_EVALUATOR_LOCK_KEY,
      logger,
      `scale:${ctx.nodeId}`,
    );
    const evaluator = new ScaleEvaluator(ctx.pool, deps, logger, ctx.nodeId);
    const others = tasks.map((t) => t(ctx));
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let prunedAt = 0;
    const tick = async () => {
      if (!(await leader.holds())) return;
      await evaluator.evaluate();
      for (const t of others) await t.tick();
      if (Date.now() - prunedAt > PRUNE_EVERY_MS) {
        prunedAt = Date.now();
        await pruneScaleState(ctx.pool);
      }
    };
    app.addHook('onReady', async () => {
      timer = setInterval(() => {
        running ??= tick()
          .catch((err) => logger.warn({ err: errorMessage(err) }, 'scale round failed'))
          .finally(() => {
            running = undefined;
          });
      }, ctx.settings.scale.intervalMs);
      timer.unref();
    });
    app.addHook('preClose', async () => clearInterval(timer));
    app.addHook('onClose', async () => {
      await running;
      await leader.close();
    });
  };
}
