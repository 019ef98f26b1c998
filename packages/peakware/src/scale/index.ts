/**
 * `peakware/scale`: elastic scaling and gray release, the SDK side. A {@link Supervisor}
 * runs an app file's services as instances (restarts, graceful scale-in, adoption after
 * its own restart) and takes its orders from the control plane, which scales on policies
 * from the config center and runs releases.
 */
export {
  type AppSpec,
  checkAppSpec,
  loadAppSpec,
  SERVICE_DEFAULTS,
  type ServiceSpec,
  splitCommand,
} from './app-spec.js';
export { CpuMeter, processAlive, processCpuMs } from './process-probe.js';
export { SUPERVISOR_DEFAULTS, Supervisor, type SupervisorOptions } from './supervisor.js';
export type {
  DesiredGroup,
  InstanceReport,
  InstanceState,
  ReportedService,
  SupervisorOrders,
  SupervisorReport,
} from './supervisor-report.js';
export { parseYamlSubset, type YamlValue } from './yaml-subset.js';
