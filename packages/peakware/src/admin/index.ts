/**
 * `peakware/admin`: the typed admin API of the control plane (`AdminClient`): config,
 * mq admin, telemetry queries, alerts, registry, guard, gateway, apps, txn and the control plane itself, over
 * the one `ControlPlaneClient` of `peakware/core`. Loads no server code: the answers'
 * types are the server halves' own, imported as types only. See README.md.
 */
export { AdminClient, type AdminClientOptions } from './admin-client.js';
export type { AdminTransport } from './admin-transport.js';
export {
  type AlertEvent,
  type AlertKind,
  type AlertRule,
  type AlertRuleBody,
  type AlertRuleInput,
  type AlertRuleState,
  AlertsAdmin,
} from './alerts-admin.js';
export {
  type AppCredentialView,
  AppsAdmin,
  type AppView,
  type IssuedCredential,
} from './apps-admin.js';
export {
  type AbortGrayResult,
  type AuditView,
  ConfigAdmin,
  type ConfigApp,
  type ConfigDiff,
  type ConfigFormat,
  type ConfigItem,
  type GrayEndRequest,
  type GrayRequest,
  type GrayResult,
  type GrayView,
  type ItemRef,
  type ItemView,
  type PromoteResult,
  type PublishRequest,
  type PublishResult,
  type RemoveRequest,
  type RemoveResult,
  type RollbackRequest,
  type RollbackResult,
  type VersionView,
} from './config-admin.js';
export {
  type AuditEntry,
  ConsoleAdmin,
  type LoginRequest,
  type MetricsHistory,
  type MetricsHistoryQuery,
  type SessionView,
} from './console-admin.js';
export {
  DrillAdmin,
  type DrillStatus,
  type InstanceStatus as DrillInstanceStatus,
  type PlanDiffEntry,
  type PlanRun,
  type PlanView,
  type RunItem,
} from './drill-admin.js';
export {
  GatewayAdmin,
  type GatewayAppSpec,
  type GatewayKey,
  type GatewayQuotaSpec,
  type GatewayRouteSpec,
  type GatewaySubscription,
  type KeyView,
  type QuotaUsageRow,
  type SubscriptionStatus,
} from './gateway-admin.js';
export {
  type ClusterBudget,
  GuardAdmin,
  type GuardClusterView,
  type GuardRules,
  type GuardStats,
  type InstanceRules,
  type StatsRow,
} from './guard-admin.js';
export {
  type CreatedTopic,
  type DeadLetter,
  type MessageDescription,
  type MessagePage,
  type MessageQuery,
  type MessageTraceEvent,
  MqAdmin,
  type MqStats,
  type QueueOffset,
  type ReceivedMessage,
  type Removal,
  type TimeArg,
  type TopicSpec,
  type TopicUse,
  type TopicView,
} from './mq-admin.js';
export {
  type InstanceChange,
  type InstanceStatus,
  type InstanceView,
  RegistryAdmin,
  type ServiceSummary,
} from './registry-admin.js';
export {
  type ReleaseEvent,
  type ReleaseRequest,
  type ReleaseState,
  type ReleaseView,
  ScaleAdmin,
  type ScaleDecision,
  type ScalePolicy,
  type ScaleStatus,
} from './scale-admin.js';
export {
  type CapacityFigure,
  type IsolationReport,
  type RunControl,
  StressAdmin,
  type StressReport,
  type StressRunRecord,
  type StressRunSummary,
} from './stress-admin.js';
export {
  type NodeView,
  type Readiness,
  type RotatedToken,
  type ServerInfo,
  SystemAdmin,
} from './system-admin.js';
export {
  type EndpointStats,
  type LiveMetrics,
  type LiveResource,
  type SlowSql,
  TelemetryAdmin,
  type Topology,
  type TopologyEdge,
  type TraceHit,
  type TraceNode,
  type TraceSearchQuery,
  type TraceTree,
} from './telemetry-admin.js';
export {
  TxnAdmin,
  type TxnKind,
  type TxnListFilter,
  type TxnStatus,
  type TxnSummary,
  type TxnView,
} from './txn-admin.js';
