/**
 * The stress module's admin API (`/api/v1/stress`): runs (register, list, one with its
 * report, steer its target, stop it, store its report and isolation check), a run's
 * messages found in real topics, agents' heartbeats and reports, capacity figures.
 */
import type { CapacityFigure } from '../stress/capacity-plan.js';
import type { IsolationReport } from '../stress/isolation-check.js';
import type { LoadModel } from '../stress/load-model.js';
import type {
  RunControl,
  StressRunRecord,
  StressRunSummary,
} from '../stress/server/stress-store.js';
import type { StressReport } from '../stress/stress-report.js';
import type { AdminTransport } from './admin-transport.js';

export type {
  CapacityFigure,
  IsolationReport,
  RunControl,
  StressReport,
  StressRunRecord,
  StressRunSummary,
};

const BASE = '/api/v1/stress';
const enc = encodeURIComponent;

/** The stress module's calls. */
export class StressAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Registers a run as it starts (repeating it changes nothing). */
  createRun(run: { id: string; scenario: string; model: LoadModel }): Promise<StressRunSummary> {
    return this.#http.post(`${BASE}/runs`, run, { idempotent: true });
  }

  /** The newest runs, newest first. */
  async runs(limit = 50): Promise<StressRunSummary[]> {
    return (
      await this.#http.get<{ runs: StressRunSummary[] }>(`${BASE}/runs`, { query: { limit } })
    ).runs;
  }

  /** One run with its report and isolation check (PEAK_STRESS_NOT_FOUND when unknown). */
  run(id: string): Promise<StressRunRecord> {
    return this.#http.get(`${BASE}/runs/${enc(id)}`);
  }

  /** What a running run's generators poll: its target and whether to stop. */
  control(id: string): Promise<RunControl> {
    return this.#http.get(`${BASE}/runs/${enc(id)}/control`);
  }

  /** Changes a running run's rate (open models) or virtual users (closed); null: back to the model. */
  setTarget(id: string, target: number | null): Promise<RunControl> {
    return this.#http.put(`${BASE}/runs/${enc(id)}/target`, { target });
  }

  /** Asks a running run to stop. */
  stop(id: string): Promise<RunControl> {
    return this.#http.post(`${BASE}/runs/${enc(id)}/stop`, {}, { idempotent: true });
  }

  /** Stores the report (and isolation check) of a run that ended. */
  finish(id: string, report: StressReport, isolation?: IsolationReport): Promise<{ id: string }> {
    return this.#http.put(`${BASE}/runs/${enc(id)}/report`, {
      report,
      ...(isolation === undefined ? {} : { isolation }),
    });
  }

  /** Stores a run's isolation check. */
  putIsolation(id: string, isolation: IsolationReport): Promise<{ id: string }> {
    return this.#http.put(`${BASE}/runs/${enc(id)}/isolation`, isolation);
  }

  /** A run's messages in real topics since `sinceMs` (each one a leak), per topic. */
  async leakedMessages(
    id: string,
    sinceMs: number,
  ): Promise<{ topic: string; messages: number }[]> {
    return (
      await this.#http.get<{ topics: { topic: string; messages: number }[] }>(
        `${BASE}/runs/${enc(id)}/leaked-messages`,
        { query: { sinceMs: Math.floor(sinceMs) } },
      )
    ).topics;
  }

  /** An agent's heartbeat: its place among the run's live agents, the target, the stop flag. */
  heartbeat(id: string, agentId: string): Promise<RunControl & { index: number; count: number }> {
    return this.#http.post(
      `${BASE}/runs/${enc(id)}/agents/${enc(agentId)}`,
      {},
      { idempotent: true },
    );
  }

  /** Stores one agent's report of a run. */
  putAgentReport(
    id: string,
    agentId: string,
    report: StressReport,
  ): Promise<{ id: string; agent: string; finished: boolean }> {
    return this.#http.put(`${BASE}/runs/${enc(id)}/agents/${enc(agentId)}/report`, report);
  }

  /** Every service's measured capacity. */
  async capacity(): Promise<CapacityFigure[]> {
    return (await this.#http.get<{ capacity: CapacityFigure[] }>(`${BASE}/capacity`)).capacity;
  }

  /** Stores a service's measured capacity. */
  putCapacity(figure: CapacityFigure): Promise<{ service: string }> {
    const { service, measuredAt: _m, ...body } = figure;
    return this.#http.put(`${BASE}/capacity/${enc(service)}`, body);
  }
}
