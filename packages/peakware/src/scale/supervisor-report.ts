/**
 * What a supervisor and the control plane say to each other, once a second: the
 * supervisor reports its app file's services and every instance it runs
 * (`POST /api/v1/scale/reports`), and the answer is what it should run now, per service:
 * one group per version with its command and count (the scaling evaluator's count for the
 * primary version, a release's gray group beside it). With no answer the supervisor keeps
 * what it runs: a control-plane outage never stops an instance.
 */

/**
 * The life of a supervised instance: `starting` (spawned, its ready line not seen yet:
 * only with the supervisor's ready check), `running`, `stopping`, `backoff` (waiting out
 * a restart delay).
 */
export type InstanceState = 'starting' | 'running' | 'stopping' | 'backoff';

/** One instance, as its supervisor reports it. */
export interface InstanceReport {
  /** The instance id (the registry and metrics id it is given as PEAK_INSTANCE_ID). */
  id: string;
  service: string;
  version: string;
  /** Its pid (0 while waiting out a restart backoff). */
  pid: number;
  state: InstanceState;
  /** Crash restarts so far. */
  restarts: number;
  /** When it (last) started, epoch ms. */
  startedAt: number;
  /** CPU use over the last sample, percent of one core; absent when not measured. */
  cpuPercent?: number;
  /** Whether this supervisor adopted it from a previous run of its own. */
  adopted: boolean;
}

/** A service as the app file gives it. */
export interface ReportedService {
  name: string;
  version: string;
  command: string;
  /** The file's instance count. */
  instances: number;
}

/** A supervisor's report. */
export interface SupervisorReport {
  /** Stable across the supervisor's restarts (default `<host>/<app>`). */
  supervisorId: string;
  app: string;
  host: string;
  pid: number;
  services: ReportedService[];
  instances: InstanceReport[];
}

/** One version of a service to run, and how many. */
export interface DesiredGroup {
  version: string;
  command: string;
  count: number;
  /** A release's gray group: its instances start with weight 0 (`PEAK_WEIGHT`). */
  gray: boolean;
}

/** The control plane's answer: what to run per service (a service not named: keep as is). */
export interface SupervisorOrders {
  desired: Record<string, DesiredGroup[]>;
}
