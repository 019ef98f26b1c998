/**
 * The console's routes and worker: its static files at `/console`, login sessions (also a
 * credential of the admin check), the audit trail, the metrics history, and the rollup of
 * pushed metrics into that history (every 15 s, sessions and audit pruned hourly).
 */
import { errorMessage } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import { AdminAudit, auditRoutes } from './admin-audit.js';
import type { ConsoleModuleOptions } from './metric-bucket-source.js';
import { MetricsHistoryStore } from './metrics-history.js';
import { metricsRoutes } from './metrics-routes.js';
import { sessionRoutes } from './session-routes.js';
import { SessionStore } from './session-store.js';
import { staticRoutes } from './static-assets.js';

/** How often pushed metrics are rolled into the history, ms. */
export const ROLLUP_INTERVAL_MS = 15_000;
const PRUNE_EVERY = 240;

/** The console's routes, given telemetry's metrics reader. */
export function consoleRoutes(options: ConsoleModuleOptions): ApiModule {
  return (app, ctx) => {
    const logger = ctx.logger.child({ component: 'console' });
    const sessions = new SessionStore(ctx.pool);
    const audit = new AdminAudit(ctx.pool);
    const history = new MetricsHistoryStore(ctx.pool, options.metrics(ctx.pool), logger);
    staticRoutes(app);
    sessionRoutes(app, sessions);
    auditRoutes(app, audit);
    metricsRoutes(app, history);

    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let passes = 0;
    const pass = async () => {
      try {
        await history.rollUp(Date.now());
        if (passes++ % PRUNE_EVERY === 0) {
          await sessions.prune();
          await audit.prune();
        }
      } catch (err) {
        logger.warn(
          { err: errorMessage(err) },
          'console: metrics rollup failed; next pass retries',
        );
      }
    };
    app.addHook('onReady', async () => {
      timer = setInterval(() => {
        running ??= pass().finally(() => {
          running = undefined;
        });
      }, ROLLUP_INTERVAL_MS);
      timer.unref();
    });
    app.addHook('preClose', async () => {
      clearInterval(timer);
      await running;
    });
  };
}
