/**
 * `peakware/stress`: full-link stress testing. Scenarios in TypeScript (HTTP and RPC steps,
 * think time, rendezvous, test data, checks), open and closed load models, a generator that
 * measures from the scheduled send time into HDR histograms and stops itself on SLA
 * thresholds, reports as JSON and self-contained HTML. See ./README.md.
 */

export {
  type CallEdge,
  type CapacityFigure,
  type CapacityPlan,
  type CapacitySla,
  type CapacityStep,
  type CapacityTarget,
  forecastQps,
  type PlanRow,
  parseTargets,
  planCapacity,
} from './capacity-plan.js';
export {
  type CapacityProbeResult,
  type ProbeOptions,
  type ProbeTarget,
  probeCapacity,
} from './capacity-probe.js';
export { DataFeed, type DataRow, loadDataFile, parseCsv } from './data-feed.js';
export { renderHtmlReport } from './html-report.js';
export {
  HttpPool,
  type HttpPoolOptions,
  type HttpRequestSpec,
  type HttpResult,
  type PreparedRequest,
  type SendCallback,
} from './http-pool.js';
export {
  assertIsolated,
  checkIsolation,
  type IsolationDatabase,
  type IsolationLeak,
  type IsolationProbes,
  type IsolationRedis,
  type IsolationReport,
  type IsolationSources,
} from './isolation-check.js';
export {
  decodeHistogram,
  encodeHistogram,
  type LatencySummary,
  newHistogram,
  percentilesMs,
  recordMs,
  summarize,
} from './latency-recorder.js';
export {
  type ConstantRateModel,
  constantRate,
  isOpenModel,
  type LoadModel,
  modelDurationS,
  type OpenModel,
  type RampingRateModel,
  type RateStage,
  rampingRate,
  rateAt,
  rateSteps,
  type SteppedRateModel,
  type VirtualUsersModel,
  validateModel,
  virtualUsers,
} from './load-model.js';
export { mergeReports } from './merge-reports.js';
export { formatProgress } from './progress-line.js';
export {
  type CheckedResponse,
  type CheckResult,
  customStep,
  defineScenario,
  type FixedHttpCall,
  type HttpStepSpec,
  httpStep,
  type Iteration,
  type RpcCaller,
  type RpcStepSpec,
  rendezvous,
  rpcStep,
  type Scenario,
  type ScenarioSpec,
  type ScenarioStep,
  type SlaThresholds,
  type StepEnv,
  think,
} from './scenario.js';
export { loadScenarioFile } from './scenario-file.js';
export type {
  SecondFigures,
  StageFigures,
  StepFigures,
  StopReason,
  StressReport,
} from './stress-report.js';
export {
  type RunOptions,
  type RunProgress,
  STRESS_RUN_BAGGAGE,
  StressRun,
  startRun,
} from './stress-run.js';
