/**
 * Faults at SQL: the data layer's statement hook (`db.setStatementHook(sqlFaultHook(agent))`),
 * run before each routed statement, in transactions too. A fault of kind `delay` is a slow
 * statement, `error` a failing one (PEAK_DRILL_INJECTED unless it names its code), `drop`
 * a lost connection; a failure inside a transaction rolls it back as a real one would.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { RoutePlan } from '../data/route-plan.js';
import type { StatementHook } from '../data/statement-hook.js';
import type { DrillAgent } from './drill-agent.js';
import { runFault } from './fault-action.js';

/** The statement hook injecting `agent`'s faults at `sql`. */
export function sqlFaultHook(agent: DrillAgent): StatementHook {
  return async (plan: RoutePlan) => {
    if (!agent.has('sql')) return;
    const fault = agent.find('sql', {
      dataSources: [...new Set(plan.units.map((u) => u.dataSource))],
      tables: plan.tables,
      sql: plan.sql,
      write: plan.write,
    });
    if (fault === undefined) return;
    const where = `sql ${plan.kind} ${plan.tables.join(',') || plan.sql.slice(0, 60)}`;
    if ((await runFault(fault, where)) === 'drop')
      throw new PeakError(
        ErrorCodes.DB_UNREACHABLE,
        `fault ${fault.id} dropped the connection at ${where}`,
        {
          details: { faultId: fault.id, injected: true },
        },
      );
  };
}
