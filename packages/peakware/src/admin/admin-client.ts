/**
 * `AdminClient`: the typed admin API of the control plane, one section per subsystem
 * (`config`, `mq`, `telemetry`, `alerts`, `registry`, `guard`, `gateway`, `apps`, `system`,
 * `console`, `drill`, `stress`, `txn`, `scale`), over the one
 * {@link ControlPlaneClient}. The `peak` CLI, the shop and the console call the control
 * plane through it, so nobody writes a URL or re-declares an answer's type.
 *
 * ```ts
 * const admin = new AdminClient({ servers: 'http://127.0.0.1:7420', token });
 * await admin.mq.createTopic({ name: 'orders', queues: 8 });
 * const tree = await admin.telemetry.trace(traceId);
 * ```
 */
import {
  ControlPlaneClient,
  type ControlPlaneClientOptions,
} from '../core/control-plane-client.js';
import { AlertsAdmin } from './alerts-admin.js';
import { AppsAdmin } from './apps-admin.js';
import { ConfigAdmin } from './config-admin.js';
import { ConsoleAdmin } from './console-admin.js';
import { DrillAdmin } from './drill-admin.js';
import { GatewayAdmin } from './gateway-admin.js';
import { GuardAdmin } from './guard-admin.js';
import { MqAdmin } from './mq-admin.js';
import { RegistryAdmin } from './registry-admin.js';
import { ScaleAdmin } from './scale-admin.js';
import { StressAdmin } from './stress-admin.js';
import { SystemAdmin } from './system-admin.js';
import { TelemetryAdmin } from './telemetry-admin.js';
import { TxnAdmin } from './txn-admin.js';

/**
 * Options of an {@link AdminClient}: those of the {@link ControlPlaneClient} (`servers`,
 * `token` for the changes, timeouts, retries), with the same defaults.
 */
export type AdminClientOptions = ControlPlaneClientOptions;

/** The typed admin API of the control plane. */
export class AdminClient {
  /** The control-plane client underneath (failover state, the node in use). */
  readonly http: ControlPlaneClient;
  /** Config center: items, publish, history, diff, rollback, gray release, audit. */
  readonly config: ConfigAdmin;
  /** Message queue: topics, message query and trace, dead letters, replay, stats. */
  readonly mq: MqAdmin;
  /** Telemetry queries: traces, topology, endpoints, slow SQL, live metrics. */
  readonly telemetry: TelemetryAdmin;
  /** SLA alerts: rules, silences, events. */
  readonly alerts: AlertsAdmin;
  /** Registry: services, instances, offline / online / weight. */
  readonly registry: RegistryAdmin;
  /** Guard: rules in force, resource stats, cluster token server. */
  readonly guard: GuardAdmin;
  /** Gateway: routes, apps, keys, subscriptions, quota usage. */
  readonly gateway: GatewayAdmin;
  /** Apps and their credentials: create, grants, rotate, revoke, list. */
  readonly apps: AppsAdmin;
  /** The control plane itself: health, readiness, info, nodes, token rotation. */
  readonly system: SystemAdmin;
  /** The console's API: metrics history (a week, downsampled), the audit trail, sessions. */
  readonly console: ConsoleAdmin;
  /** Fault drills and plans: inject, stop, status; plans' diff, apply, rollback. */
  readonly drill: DrillAdmin;
  /** Stress runs and their reports, agents, capacity figures. */
  readonly stress: StressAdmin;
  /** The transaction coordinator: global transactions, their timelines, retry and stop. */
  readonly txn: TxnAdmin;
  /** Elastic scaling and releases: supervisors, counts, policies' decisions, releases. */
  readonly scale: ScaleAdmin;

  constructor(options: AdminClientOptions | ControlPlaneClient) {
    this.http = options instanceof ControlPlaneClient ? options : new ControlPlaneClient(options);
    this.config = new ConfigAdmin(this.http);
    this.mq = new MqAdmin(this.http);
    this.telemetry = new TelemetryAdmin(this.http);
    this.alerts = new AlertsAdmin(this.http);
    this.registry = new RegistryAdmin(this.http);
    this.guard = new GuardAdmin(this.http);
    this.gateway = new GatewayAdmin(this.http);
    this.apps = new AppsAdmin(this.http);
    this.system = new SystemAdmin(this.http);
    this.console = new ConsoleAdmin(this.http);
    this.drill = new DrillAdmin(this.http);
    this.stress = new StressAdmin(this.http);
    this.txn = new TxnAdmin(this.http);
    this.scale = new ScaleAdmin(this.http);
  }
}
