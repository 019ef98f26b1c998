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
export { type HpaTarget, hpaManifest } from './hpa-manifest.js';
export { KubernetesActuator, type KubernetesActuatorOptions } from './kubernetes-actuator.js';
export { CpuMeter, processAlive, processCpuMs } from './process-probe.js';
export { judgeStep, type StepVerdict, type VersionFigures, zOf } from './release-judge.js';
export {
  checkReleaseRequest,
  parseReleaseFile,
  RELEASE_DEFAULTS,
  type ReleaseRequest,
  type ReleaseRule,
  type ReleaseSettings,
  releaseCondition,
  releasePlanLabel,
  releaseStepLabel,
} from './release-spec.js';
export { type ScaleInput, ScaleRecommender, type ScaleVerdict } from './scale-decision.js';
export {
  checkScalePolicy,
  POLICY_DEFAULTS,
  POLICY_GROUP,
  type PolicyProblem,
  type ResolvedPolicy,
  resolvePolicy,
  SCALE_METRICS,
  SCALE_POLICY_SCHEMA,
  type ScaleMetric,
  type ScalePolicy,
} from './scale-policy.js';
export {
  SUPERVISOR_DEFAULTS,
  Supervisor,
  type SupervisorEvent,
  type SupervisorEventInstance,
  type SupervisorOptions,
} from './supervisor.js';
export type {
  DesiredGroup,
  InstanceReport,
  InstanceState,
  ReportedService,
  SupervisorOrders,
  SupervisorReport,
} from './supervisor-report.js';
export { parseYamlSubset, type YamlValue } from './yaml-subset.js';
