/**
 * Fault drills and plans (`/api/v1/drill`): inject and stop faults, the instances' own
 * reports of what they hold, and plans (store, list, show, diff, apply, rollback). Answers
 * are the drill server's own view types.
 */
import type { FaultRequest, FaultSpec } from '../drill/fault-spec.js';
import type { PlanSpec } from '../drill/plan-spec.js';
import type {
  DrillStatus,
  InstanceStatus,
  PlanDiffEntry,
  PlanRun,
  PlanSchedule,
  PlanView,
  RunItem,
} from '../drill/server/index.js';
import type { AdminTransport } from './admin-transport.js';

export type {
  DrillStatus,
  InstanceStatus,
  PlanDiffEntry,
  PlanRun,
  PlanSchedule,
  PlanView,
  RunItem,
};

const BASE = '/api/v1/drill';

/** The drill module's admin calls. */
export class DrillAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Injects faults into the live instances of `app` their scope names (all or none). */
  async inject(
    app: string,
    faults: readonly FaultRequest[],
    author?: string,
  ): Promise<{ faults: FaultSpec[]; version: number }> {
    return this.#http.post(`${BASE}/faults`, {
      app,
      faults,
      ...(author === undefined ? {} : { author }),
    });
  }

  /** Stops `app`'s faults: those of one drill, some ids, or (neither given) all. */
  async stop(
    app: string,
    which: { drill?: string; ids?: readonly string[]; author?: string } = {},
  ): Promise<{ stopped: string[]; version: number }> {
    return this.#http.post(`${BASE}/faults/stop`, { app, ...which });
  }

  /** `app`'s published faults and what every instance reports holding. */
  async status(app: string): Promise<DrillStatus> {
    return this.#http.get(`${BASE}/status`, { query: { app } });
  }

  /** Every plan. */
  async plans(): Promise<PlanView[]> {
    return (await this.#http.get<{ plans: PlanView[] }>(`${BASE}/plans`)).plans;
  }

  /** Stores a plan (checked as a whole; nothing is applied). */
  async putPlan(plan: PlanSpec, author?: string): Promise<PlanView> {
    const r = await this.#http.put<{ plan: PlanView }>(
      `${BASE}/plans/${encodeURIComponent(plan.name)}`,
      { plan, ...(author === undefined ? {} : { author }) },
    );
    return r.plan;
  }

  /** A plan, its runs (newest first) and its pending scheduled runs. */
  async plan(
    name: string,
  ): Promise<{ plan: PlanSpec; runs: PlanRun[]; schedules: PlanSchedule[] }> {
    return this.#http.get(`${BASE}/plans/${encodeURIComponent(name)}`);
  }

  /** What applying the plan would change, against the items in force. */
  async diff(name: string): Promise<PlanDiffEntry[]> {
    return (
      await this.#http.get<{ changes: PlanDiffEntry[] }>(
        `${BASE}/plans/${encodeURIComponent(name)}/diff`,
      )
    ).changes;
  }

  /** Applies a plan: all its changes in one config transaction, or none. */
  async apply(name: string, options: { author?: string; comment?: string } = {}): Promise<PlanRun> {
    return this.#http.post(`${BASE}/plans/${encodeURIComponent(name)}/apply`, options);
  }

  /** Rolls the plan's last apply back to the exact versions before it. */
  async rollback(
    name: string,
    options: { author?: string; comment?: string; force?: boolean } = {},
  ): Promise<PlanRun> {
    return this.#http.post(`${BASE}/plans/${encodeURIComponent(name)}/rollback`, options);
  }

  /**
   * Schedules the plan's apply at `at` (and, with `rollbackAt`, its rollback), or with
   * `action: 'rollback'` a rollback; times as Dates, ISO text or epoch ms. `everyMs` repeats
   * them (a daily sale: 86 400 000; at least a minute); cancelling the pending occurrence ends
   * the series. Every control-plane node looks for due runs each second and one of them runs
   * each.
   */
  async schedule(
    name: string,
    options: {
      at: Date | string | number;
      rollbackAt?: Date | string | number;
      everyMs?: number;
      action?: 'apply' | 'rollback';
      author?: string;
      comment?: string;
    },
  ): Promise<PlanSchedule[]> {
    const t = (v: Date | string | number) => (v instanceof Date ? v.getTime() : v);
    const { at, rollbackAt, ...rest } = options;
    return (
      await this.#http.post<{ schedules: PlanSchedule[] }>(
        `${BASE}/plans/${encodeURIComponent(name)}/schedules`,
        { ...rest, at: t(at), ...(rollbackAt === undefined ? {} : { rollbackAt: t(rollbackAt) }) },
      )
    ).schedules;
  }

  /** Scheduled runs, soonest first: pending and running ones, or (`all`) every one. */
  async schedules(options: { plan?: string; all?: boolean } = {}): Promise<PlanSchedule[]> {
    return (
      await this.#http.get<{ schedules: PlanSchedule[] }>(`${BASE}/schedules`, {
        query: {
          ...(options.plan === undefined ? {} : { plan: options.plan }),
          ...(options.all === true ? { all: 'true' } : {}),
        },
      })
    ).schedules;
  }

  /** Cancels a pending scheduled run. */
  async cancelSchedule(id: number, author?: string): Promise<PlanSchedule> {
    return (
      await this.#http.delete<{ schedule: PlanSchedule }>(`${BASE}/schedules/${id}`, {
        ...(author === undefined ? {} : { query: { author } }),
      })
    ).schedule;
  }

  /** Deletes a plan (its runs stay). */
  async deletePlan(name: string): Promise<void> {
    await this.#http.delete(`${BASE}/plans/${encodeURIComponent(name)}`);
  }
}
