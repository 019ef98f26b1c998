/**
 * `peakware/rpc`: typed RPC over persistent multiplexed TCP (msgpack frames, context in
 * headers, deadlines), with discovery, routing, load balancing, cluster strategies, a
 * filter chain on both sides, graceful offline and HTTP/JSON access.
 */

export type {
  CallerVerifier,
  IdentitySource,
  PresentedCaller,
  ProviderIdentityOptions,
  VerifiedCaller,
} from './caller-identity.js';
export {
  type ClusterCall,
  type ClusterStrategy,
  type ClusterStrategyName,
  FailfastStrategy,
  FailoverStrategy,
  FailsafeStrategy,
  ForkingStrategy,
  notExecuted,
  retryable,
} from './cluster-strategy.js';
export { type Condition, compileCondition } from './condition-expression.js';
export { Endpoint } from './endpoint.js';
export {
  DEFAULT_MAX_FRAME_BYTES,
  decodeFrameBody,
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameType,
  type WireError,
} from './frame-codec.js';
export { httpStatus } from './http-json-access.js';
export {
  ConsistentHashBalancer,
  type ConsistentHashOptions,
  createLoadBalancer,
  hash32,
  LeastActiveBalancer,
  type LoadBalancer,
  type LoadBalancerName,
  P2cEwmaBalancer,
  SmoothRoundRobinBalancer,
  WeightedRandomBalancer,
} from './load-balancer.js';
export { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
export {
  type ConditionRule,
  ConditionRules,
  ROUTE_TAG,
  type Router,
  routeTags,
  TagRouter,
} from './router.js';
export {
  CLIENT_DEFAULTS,
  RpcClient,
  type RpcClientOptions,
  type ServiceClientOptions,
} from './rpc-client.js';
export {
  CONNECTION_DEFAULTS,
  type ConnectionOptions,
  type ConnectionState,
  RpcConnection,
} from './rpc-connection.js';
export { type Invocation, type RpcFilter, runFilters } from './rpc-filter.js';
export { RpcServer } from './rpc-server.js';
export { type RpcServerOptions, SERVER_DEFAULTS } from './rpc-server-options.js';
export {
  type CallOptions,
  defineService,
  definitionKey,
  type FailsafeServiceClient,
  type MethodMap,
  type MethodSpec,
  type ProviderCall,
  type ServiceClient,
  type ServiceDefinition,
  type ServiceImplementation,
  type ServiceSpec,
} from './service-definition.js';
export {
  TlsTransport,
  type TlsTransportOptions,
  type Transport,
  tcpTransport,
} from './transport.js';
export { toWireError } from './wire-error.js';
