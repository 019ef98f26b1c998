/**
 * `peakware/gateway`: the open API gateway (`Gateway`, run by `peak gateway`), and what a
 * caller needs to sign its requests (`signRequest`) and a publisher to describe an RPC route
 * (`rpcRoute`, which carries the method's zod schemas as JSON Schema). See README.md.
 */

export {
  type FrontRequest,
  type FrontResponse,
  HttpFront,
  type HttpFrontOptions,
} from '../core/http-front.js';
export { GATEWAY_DEFAULTS, Gateway, type GatewayOptions } from './gateway.js';
export { GatewayMetrics } from './gateway-metrics.js';
export {
  apiOf,
  type GatewayAppSpec,
  type GatewayChange,
  type GatewayKey,
  type GatewayObjectKind,
  type GatewayQuotaSpec,
  type GatewayRouteSpec,
  type GatewaySubscription,
  type GatewayTarget,
  resourceOf,
  type SubscriptionStatus,
} from './gateway-objects.js';
export { type GatewayOpenApiOptions, gatewayOpenApi } from './openapi.js';
export { type QuotaPeriods, quotaPeriods } from './quota-periods.js';
export {
  type CanonicalParts,
  canonicalQuery,
  canonicalRequest,
  EMPTY_BODY_SHA256,
  SIGNATURE_ALGORITHM,
  SignatureHeaders,
  type SignRequestOptions,
  signCanonical,
  signRequest,
} from './request-signing.js';
export {
  isMatch,
  patternShape,
  type RouteMatch,
  type RouteMiss,
  RouteTable,
} from './route-table.js';
export { type RpcRouteOptions, rpcRoute } from './rpc-route.js';
