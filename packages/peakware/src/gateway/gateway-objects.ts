/**
 * What the gateway's state is made of, as the control plane stores it and pushes it to
 * every `peak gateway` process: routes, apps (consumers), their keys, and subscriptions
 * (which app may call which API, approved by an admin, with its quota). Each shape is a
 * TypeBox schema, so the control plane checks what it is given against the very schema the
 * types here come from.
 */
import { type Static, Type } from '@sinclair/typebox';

const NAME = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$';
const NAME_TAKES = '1-128 letters, digits or _ . : - (starting with a letter or digit)';

/** A route, app or API name. */
export const GatewayName = Type.String({ pattern: NAME, takes: NAME_TAKES });

/** An IPv4/IPv6 address or CIDR block, for allow and deny lists. */
const Cidr = Type.String({ minLength: 2, maxLength: 64, takes: 'an IP address or CIDR block' });

/** Where a request field comes from, in field mappings: `path.id`, `query.page`, `header.x-user`, `body`, `body.sku`, `app`. */
export const FieldSource = Type.String({
  pattern:
    '^(path\\.[A-Za-z0-9_-]+|query\\.[A-Za-z0-9_.-]+|header\\.[a-z0-9-]+|body|body\\.[A-Za-z0-9_.-]+|app)$',
  takes: 'path.<param>, query.<name>, header.<name>, body, body.<field> or app',
});

/** A Peakware RPC method as the target: HTTP/JSON in, one RPC call, JSON out. */
export const RpcTarget = Type.Object(
  {
    kind: Type.Literal('rpc'),
    service: GatewayName,
    method: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', takes: 'a method name' }),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    group: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /**
     * The method's input as JSON Schema (from its zod schema: `rpcRoute()` fills it in);
     * the gateway refuses a request that does not fit before the provider sees it.
     */
    input: Type.Optional(Type.Unknown()),
    /** The method's output as JSON Schema, for the OpenAPI document. */
    output: Type.Optional(Type.Unknown()),
    /**
     * The method's argument built field by field (`{ id: 'path.id', sku: 'body.sku' }`);
     * absent: the JSON body (or the query when there is none) plus the path parameters.
     */
    mapping: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 64 }), FieldSource)),
    /** Whether a retry on another provider is safe. Default false. */
    idempotent: Type.Optional(Type.Boolean()),
    /** HTTP status by the value of one field of the answer (`status: sold-out` → 409). */
    statusField: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    statuses: Type.Optional(
      Type.Record(Type.String(), Type.Integer({ minimum: 200, maximum: 599 })),
    ),
  },
  { additionalProperties: false },
);

/** A plain HTTP upstream: the registered instances of a service, load balanced and health-checked. */
export const HttpTarget = Type.Object(
  {
    kind: Type.Literal('http'),
    /** The registry service whose instances (host:port) serve HTTP. */
    service: Type.Optional(GatewayName),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    group: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** Fixed upstream URLs (`http://10.0.0.5:8080`) instead of, or besides, a service. */
    urls: Type.Optional(
      Type.Array(Type.String({ pattern: '^http://[^/?#\\s]+$', takes: 'http://host:port' }), {
        maxItems: 64,
      }),
    ),
    /** The upstream path: the request's path with `stripPrefix` removed and `prefix` added. */
    stripPrefix: Type.Optional(Type.String({ maxLength: 256 })),
    prefix: Type.Optional(Type.String({ maxLength: 256 })),
    /** Probed with GET every `healthIntervalMs` (default 2000); 2xx/3xx is healthy. Default `/health`. */
    healthPath: Type.Optional(Type.String({ pattern: '^/', maxLength: 256 })),
    healthIntervalMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
  },
  { additionalProperties: false },
);

/** An MQ topic: an HTTP POST becomes one message (key and tag from the request). */
export const MqTarget = Type.Object(
  {
    kind: Type.Literal('mq'),
    topic: GatewayName,
    /** Where the message key comes from (`header.x-order-id`, `body.orderId`). */
    key: Type.Optional(FieldSource),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);

/** CORS for a route: which origins may call it from a browser. */
export const CorsPolicy = Type.Object(
  {
    origins: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      minItems: 1,
      maxItems: 64,
    }),
    headers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 }),
    ),
    maxAgeSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
    credentials: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** One route: method + path pattern (+ host) → target, with its checks. */
export const GatewayRoute = Type.Object(
  {
    name: GatewayName,
    /** The API the route belongs to: subscriptions, quotas and figures are per API. Default: the route's name. */
    api: Type.Optional(GatewayName),
    method: Type.Union(
      ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', '*'].map((m) => Type.Literal(m)),
      { takes: 'GET, POST, PUT, PATCH, DELETE, HEAD or *' },
    ),
    /** `/orders/:id`, `/files/*rest`; segments are matched exactly otherwise. */
    path: Type.String({
      pattern: '^/[^?#\\s]*$',
      maxLength: 512,
      takes: 'a path starting with /, with :param and a final *rest',
    }),
    /** `api.example.com` or `*.example.com`; absent: any host. */
    host: Type.Optional(
      Type.String({
        pattern: '^(\\*\\.)?[a-z0-9.-]+$',
        maxLength: 255,
        takes: 'a lowercase host name, optionally *.suffix',
      }),
    ),
    /** `signature` (default): key + HMAC signature; `key`: key and secret; `none`: public. */
    auth: Type.Optional(
      Type.Union([Type.Literal('signature'), Type.Literal('key'), Type.Literal('none')]),
    ),
    target: Type.Union([RpcTarget, HttpTarget, MqTarget]),
    /** The call's deadline, ms (a caller's shorter `peak-timeout` wins). Default 3000. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 300_000 })),
    /** The largest request body, bytes. Default 1 MiB. */
    maxBodyBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024 })),
    ipAllow: Type.Optional(Type.Array(Cidr, { maxItems: 256 })),
    ipDeny: Type.Optional(Type.Array(Cidr, { maxItems: 256 })),
    cors: Type.Optional(CorsPolicy),
    /** Route tags put on the call context (gray routing: `{ route: 'canary' }`). */
    tags: Type.Optional(
      Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 128 })),
    ),
    /** The guard resource of the route. Default `<METHOD> <path>`. */
    resource: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    /** Request fields given to guard as the call's arguments (hot-parameter rules). */
    guardArgs: Type.Optional(Type.Array(FieldSource, { maxItems: 8 })),
    /** Headers the signature must cover, besides what the caller chose to sign. */
    signedHeaders: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z0-9-]{1,64}$' }), { maxItems: 16 }),
    ),
    summary: Type.Optional(Type.String({ maxLength: 256 })),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);

/** A route as written (see {@link GatewayRoute}). */
export type GatewayRouteSpec = Static<typeof GatewayRoute>;
/** A route's target. */
export type GatewayTarget = GatewayRouteSpec['target'];

/** A consumer of the gateway's APIs (a partner, an app). */
export const GatewayApp = Type.Object(
  {
    name: GatewayName,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Addresses the app may call from; absent: any. */
    ipAllow: Type.Optional(Type.Array(Cidr, { maxItems: 256 })),
    ipDeny: Type.Optional(Type.Array(Cidr, { maxItems: 256 })),
    /** A disabled app's calls are refused (its keys and subscriptions stay). */
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** An app as written. */
export type GatewayAppSpec = Static<typeof GatewayApp>;

/** One key of an app, as the gateway holds it (the secret signs and authenticates). */
export interface GatewayKey {
  /** The public key id (`gk_...`), sent as `x-peak-key`. */
  id: string;
  app: string;
  /** The secret: HMAC key for signatures, or the second half of an API key. */
  secret: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which the key is refused (set by a rotation's overlap), or null. */
  expiresAt: number | null;
  revoked: boolean;
}

/** A quota: calls per UTC day and/or per UTC month. */
export const GatewayQuota = Type.Object(
  {
    perDay: Type.Optional(Type.Integer({ minimum: 0 })),
    perMonth: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

/** A quota as written. */
export type GatewayQuotaSpec = Static<typeof GatewayQuota>;

/** Where a subscription stands. */
export type SubscriptionStatus = 'pending' | 'approved' | 'rejected' | 'revoked';

/** An app's subscription to an API. */
export interface GatewaySubscription {
  app: string;
  api: string;
  status: SubscriptionStatus;
  quota: GatewayQuotaSpec;
  /** Epoch ms. */
  requestedAt: number;
  decidedAt: number | null;
  note: string | null;
}

/** The kinds of object the control plane pushes. */
export type GatewayObjectKind = 'route' | 'app' | 'key' | 'subscription';

/** One object in the change feed: its value, or null when it was deleted. */
export interface GatewayChange {
  kind: GatewayObjectKind;
  /** Route name, app name, key id, or `app/api` for a subscription. */
  id: string;
  /** The feed position of this change; increases with every change. */
  rev: number;
  value: GatewayRouteSpec | GatewayAppSpec | GatewayKey | GatewaySubscription | null;
}

/** The API a route belongs to. */
export function apiOf(route: GatewayRouteSpec): string {
  return route.api ?? route.name;
}

/** The guard resource of a route (`POST /api/buy` unless it names one). */
export function resourceOf(route: GatewayRouteSpec): string {
  return route.resource ?? `${route.method === '*' ? 'ANY' : route.method} ${route.path}`;
}

/** The id of a subscription in the feed. */
export function subscriptionId(app: string, api: string): string {
  return `${app}/${api}`;
}
