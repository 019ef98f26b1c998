/**
 * `peakware/drill`: fault drills and plans, the SDK side. A {@link DrillAgent} follows the
 * faults the control plane pushes through the config center and reverts them on its own
 * (expiry, stop, control plane out of reach, restart); hooks put it at RPC, HTTP, SQL, MQ
 * and cache; plan switches read what a plan changed.
 */
export { faultyRemoteTier } from './cache-faults.js';
export {
  type AgentReport,
  DrillAgent,
  type DrillAgentOptions,
  type FaultEnd,
  type FaultProbe,
  type HeldFault,
} from './drill-agent.js';
export {
  type CheckResult,
  checkDrillSpec,
  type DrillPorts,
  type DrillReport,
  type DrillSpec,
  type DrillStep,
  formatDrillReport,
  runDrill,
  type SteadyCheck,
  type TimelineEvent,
} from './drill-runner.js';
export { InjectedFaultError, runFault } from './fault-action.js';
export {
  checkFaultRequest,
  checkFaultSpec,
  FAULT_KINDS,
  FAULT_POINTS,
  FAULTS_ITEM,
  type FaultKind,
  type FaultMatch,
  type FaultPoint,
  type FaultRequest,
  type FaultScope,
  type FaultSpec,
  type FaultTableValue,
} from './fault-spec.js';
export { httpFault, httpFaultHandler, type RequestListener } from './http-faults.js';
export { faultyHandler, faultySender, type MessageSender } from './mq-faults.js';
export {
  PLAN_GROUPS,
  type PlanChange,
  type PlanSpec,
  type ResolvedChange,
  resolvePlan,
} from './plan-spec.js';
export {
  bindConsumerPause,
  consumerPaused,
  entryOpen,
  type PausableConsumer,
  readFlag,
} from './plan-switches.js';
export { rpcFaultFilter } from './rpc-faults.js';
export { sqlFaultHook } from './sql-faults.js';
