/**
 * Every error Peakware raises on purpose is a `PeakError` with a stable `code`, so callers
 * branch on the code (never on message text) and users get a message that says what
 * happened, which input caused it, and what to do.
 */

/** The stable error codes. New subsystems add theirs here, grouped by prefix. */
export const ErrorCodes = {
  /** A command line, option object or argument is malformed. */
  USAGE: 'PEAK_USAGE',
  /** A value failed validation (a header, an id, a rule). */
  INVALID_ARGUMENT: 'PEAK_INVALID_ARGUMENT',
  /** A time-ordered id could not be produced (worker id out of range, clock stuck). */
  ID_GENERATOR: 'PEAK_ID_GENERATOR',
  /** The call's deadline had passed before the work began. */
  DEADLINE_EXCEEDED: 'PEAK_DEADLINE_EXCEEDED',
  /** PostgreSQL could not be reached or refused the credentials. */
  DB_UNREACHABLE: 'PEAK_DB_UNREACHABLE',
  /** A PostgreSQL URL could not be parsed. */
  DB_URL_INVALID: 'PEAK_DB_URL_INVALID',
  /** The `peak` schema is newer than this build of Peakware knows. */
  SCHEMA_TOO_NEW: 'PEAK_SCHEMA_TOO_NEW',
  /** A migration failed; nothing of it was applied. */
  MIGRATION_FAILED: 'PEAK_MIGRATION_FAILED',
  /** The data folder is missing, unwritable, or held by another server. */
  DATA_FOLDER: 'PEAK_DATA_FOLDER',
  /** The embedded PostgreSQL could not be installed, initialised or started. */
  EMBEDDED_POSTGRES: 'PEAK_EMBEDDED_POSTGRES',
  /** A TCP port the server wanted is already taken. */
  PORT_IN_USE: 'PEAK_PORT_IN_USE',
  /** A call came without the credential it needs (an admin token or an app credential). */
  UNAUTHENTICATED: 'PEAK_UNAUTHENTICATED',
  /** A call came with a wrong credential, or one that does not allow what it asked. */
  FORBIDDEN: 'PEAK_FORBIDDEN',
  /** An app of that name exists already (`peak app create`). */
  APP_EXISTS: 'PEAK_APP_EXISTS',
  /** An operator token of that name is working already, or the name is the admin token's. */
  TOKEN_EXISTS: 'PEAK_TOKEN_EXISTS',
  /** No app (or credential) of that name or id. */
  APP_NOT_FOUND: 'PEAK_APP_NOT_FOUND',
  /** The requested API route or resource does not exist. */
  NOT_FOUND: 'PEAK_NOT_FOUND',
  /** The route exists for a protocol's sake but this server does not serve it (OTLP metrics, logs). */
  NOT_IMPLEMENTED: 'PEAK_NOT_IMPLEMENTED',
  /** An optional dependency a feature needs is not installed (`npm install <package>`). */
  MISSING_DEPENDENCY: 'PEAK_MISSING_DEPENDENCY',
  /** The control plane could not be reached from the CLI or an SDK. */
  SERVER_UNREACHABLE: 'PEAK_SERVER_UNREACHABLE',
  /** The control plane refused a request to protect itself (e.g. too many bodies in flight); retry later. */
  SERVER_BUSY: 'PEAK_SERVER_BUSY',
  /** Too many failed authentications from one address; it must wait before trying again. */
  AUTH_RATE_LIMITED: 'PEAK_AUTH_RATE_LIMITED',
  /** An RPC call did not get its answer before its deadline. */
  RPC_TIMEOUT: 'PEAK_RPC_TIMEOUT',
  /** The provider does not host the named service (or that version of it). */
  RPC_UNKNOWN_SERVICE: 'PEAK_RPC_UNKNOWN_SERVICE',
  /** The service has no method of that name. */
  RPC_UNKNOWN_METHOD: 'PEAK_RPC_UNKNOWN_METHOD',
  /** The call's arguments failed the method's input schema; nothing was executed. */
  RPC_BAD_ARGUMENTS: 'PEAK_RPC_BAD_ARGUMENTS',
  /** The provider's answer failed the method's output schema. */
  RPC_BAD_RESPONSE: 'PEAK_RPC_BAD_RESPONSE',
  /** A frame was larger than the configured maximum frame size. */
  RPC_FRAME_TOO_LARGE: 'PEAK_RPC_FRAME_TOO_LARGE',
  /** Bytes on an RPC connection were not a valid frame. */
  RPC_PROTOCOL: 'PEAK_RPC_PROTOCOL',
  /** The connection broke while the call was in flight; it may or may not have run. */
  RPC_CONNECTION_LOST: 'PEAK_RPC_CONNECTION_LOST',
  /** The call could not be sent (connect failed, instance in backoff); it did not run. */
  RPC_UNAVAILABLE: 'PEAK_RPC_UNAVAILABLE',
  /** No instance of the service is available after routing. */
  RPC_NO_PROVIDER: 'PEAK_RPC_NO_PROVIDER',
  /** Too many calls pending (client) or in flight (provider); the call did not run. */
  RPC_OVERLOADED: 'PEAK_RPC_OVERLOADED',
  /** The provider is shutting down and refused the call; it did not run. */
  RPC_SHUTTING_DOWN: 'PEAK_RPC_SHUTTING_DOWN',
  /** The provider's method threw something that is not a PeakError. */
  RPC_REMOTE: 'PEAK_RPC_REMOTE',
  /** A registry registration, rule or request is malformed. */
  REGISTRY_INVALID: 'PEAK_REGISTRY_INVALID',
  /** The instance is not (or no longer) registered; its lease may have expired. */
  REGISTRY_NOT_FOUND: 'PEAK_REGISTRY_NOT_FOUND',
  /** An instance in traffic (status up) was asked to be removed without `--force`. */
  REGISTRY_INSTANCE_UP: 'PEAK_REGISTRY_INSTANCE_UP',
  /** A guard rule refused the call (flow, degrade, param, system or authority). */
  GUARD_BLOCKED: 'PEAK_GUARD_BLOCKED',
  /** The guard's cluster token server (the leading control-plane node) did not answer. */
  GUARD_TOKEN_SERVER_UNAVAILABLE: 'PEAK_GUARD_TOKEN_SERVER_UNAVAILABLE',
  /** A guard rule set failed validation; the rules in force stay in force. */
  GUARD_INVALID_RULES: 'PEAK_GUARD_INVALID_RULES',
  /** MQ: the topic (or group) does not exist; create it with `peak mq topics create`. */
  MQ_UNKNOWN_TOPIC: 'PEAK_MQ_UNKNOWN_TOPIC',
  /** MQ: a message's HMAC signature did not match; it was refused and reported. */
  MQ_BAD_SIGNATURE: 'PEAK_MQ_BAD_SIGNATURE',
  /** A signed message seen before (its nonce), or signed too long ago: a replay. */
  MQ_REPLAYED: 'PEAK_MQ_REPLAYED',
  /** MQ: missing or wrong topic credential for producing or consuming. */
  MQ_FORBIDDEN: 'PEAK_MQ_FORBIDDEN',
  /** MQ: a message is larger than its topic allows. */
  MQ_MESSAGE_TOO_LARGE: 'PEAK_MQ_MESSAGE_TOO_LARGE',
  /** MQ: an encrypted body could not be decrypted (unknown key id, changed bytes). */
  MQ_DECRYPT_FAILED: 'PEAK_MQ_DECRYPT_FAILED',
  /** MQ: no half (transactional) message with that id is waiting for commit or rollback. */
  MQ_UNKNOWN_TRANSACTION: 'PEAK_MQ_UNKNOWN_TRANSACTION',
  /** MQ: a topic or group asked to be removed still has unconsumed messages or live consumers. */
  MQ_IN_USE: 'PEAK_MQ_IN_USE',
  /** Data: a sharding layout (tables, algorithms, data sources) failed validation. */
  DATA_LAYOUT: 'PEAK_DATA_LAYOUT',
  /** Data: a statement could not be parsed by the PostgreSQL parser. */
  DATA_SQL: 'PEAK_DATA_SQL',
  /** Data: a statement could not be routed (no sharding value, value outside every shard). */
  DATA_ROUTE: 'PEAK_DATA_ROUTE',
  /** Data: the statement is valid SQL but not supported over shards (the message says why). */
  DATA_UNSUPPORTED: 'PEAK_DATA_UNSUPPORTED',
  /** Data: a transaction bound to one shard database was asked to touch another. */
  DATA_CROSS_SHARD: 'PEAK_DATA_CROSS_SHARD',
  /** Data: a two-phase commit over shard databases could not run or was rolled back (the message says which stage). */
  DATA_XA: 'PEAK_DATA_XA',
  /** Config: a value failed JSON parsing or its schema; the message names the path. */
  CONFIG_INVALID: 'PEAK_CONFIG_INVALID',
  /** Config: the item changed since the version the writer read (optimistic check). */
  CONFIG_CONFLICT: 'PEAK_CONFIG_CONFLICT',
  /** Config: the app, item or version does not exist. */
  CONFIG_NOT_FOUND: 'PEAK_CONFIG_NOT_FOUND',
  /** Config: a value is larger than the size limit. */
  CONFIG_TOO_LARGE: 'PEAK_CONFIG_TOO_LARGE',
  /** Cache: the Redis tier (or redis-server) cannot be reached or started; reads fall back to the loader. */
  CACHE_UNAVAILABLE: 'PEAK_CACHE_UNAVAILABLE',
  /** Cache: a value is larger than the cache's `maxValueBytes`; it was not stored. */
  CACHE_VALUE_TOO_LARGE: 'PEAK_CACHE_VALUE_TOO_LARGE',
  /** Cache: the loader threw or did not answer in time, and no grace value was left to serve. */
  CACHE_LOAD_FAILED: 'PEAK_CACHE_LOAD_FAILED',
  /** Cache: writes are frozen for a promotion window (config switch); nothing was changed. */
  CACHE_WRITES_FROZEN: 'PEAK_CACHE_WRITES_FROZEN',
  /** Stock: the SKU is not loaded into the stock engine (load it first). */
  STOCK_UNKNOWN_SKU: 'PEAK_STOCK_UNKNOWN_SKU',
  /** Telemetry: a span batch could not be delivered to the collector. */
  TELEMETRY_EXPORT_FAILED: 'PEAK_TELEMETRY_EXPORT_FAILED',
  /** Gateway: no route matches the request's method, host and path. */
  GATEWAY_NO_ROUTE: 'PEAK_GATEWAY_NO_ROUTE',
  /** Gateway: the request carries no credential (API key or signature) the route needs. */
  GATEWAY_UNAUTHENTICATED: 'PEAK_GATEWAY_UNAUTHENTICATED',
  /** Gateway: the key is unknown, expired or revoked, or the secret or signature is wrong. */
  GATEWAY_BAD_CREDENTIAL: 'PEAK_GATEWAY_BAD_CREDENTIAL',
  /** Gateway: the signed timestamp is outside the allowed clock skew. */
  GATEWAY_EXPIRED: 'PEAK_GATEWAY_EXPIRED',
  /** Gateway: the nonce was used before within the replay window. */
  GATEWAY_REPLAYED: 'PEAK_GATEWAY_REPLAYED',
  /** Gateway: the app is not approved for this API, or its address is not allowed. */
  GATEWAY_FORBIDDEN: 'PEAK_GATEWAY_FORBIDDEN',
  /** Gateway: the app's quota for this API is spent until the period resets. */
  GATEWAY_QUOTA_EXCEEDED: 'PEAK_GATEWAY_QUOTA_EXCEEDED',
  /** Gateway: the request body is larger than the route allows. */
  GATEWAY_TOO_LARGE: 'PEAK_GATEWAY_TOO_LARGE',
  /** Gateway: the request is malformed (JSON, headers, fields the target's schema refuses). */
  GATEWAY_BAD_REQUEST: 'PEAK_GATEWAY_BAD_REQUEST',
  /** Gateway: the target is down or refused the call; it did not run. */
  GATEWAY_UPSTREAM_UNAVAILABLE: 'PEAK_GATEWAY_UPSTREAM_UNAVAILABLE',
  /** Gateway: the target did not answer within the call's deadline. */
  GATEWAY_TIMEOUT: 'PEAK_GATEWAY_TIMEOUT',
  /** Gateway (control plane): a route, app, key or subscription is malformed. */
  GATEWAY_INVALID: 'PEAK_GATEWAY_INVALID',
  /** Gateway (control plane): the route, app, key or subscription does not exist. */
  GATEWAY_NOT_FOUND: 'PEAK_GATEWAY_NOT_FOUND',
  /** Drill: a fault, drill or report is malformed (the message names the field). */
  DRILL_INVALID: 'PEAK_DRILL_INVALID',
  /** Drill: no live instance matches a fault's scope, so nothing would be injected. */
  DRILL_NO_TARGET: 'PEAK_DRILL_NO_TARGET',
  /** Drill: the failure a fault of kind `error` throws when it names no code of its own. */
  DRILL_INJECTED: 'PEAK_DRILL_INJECTED',
  /** Plan: a plan or one of its changes is malformed or refused; nothing was changed. */
  PLAN_INVALID: 'PEAK_PLAN_INVALID',
  /** Plan: no plan (or no applied run of it) by that name. */
  PLAN_NOT_FOUND: 'PEAK_PLAN_NOT_FOUND',
  /** Plan: an item moved since the plan touched it, or the plan is applied already. */
  PLAN_CONFLICT: 'PEAK_PLAN_CONFLICT',
  /** Stress: a scenario, load model, threshold or capacity target is malformed. */
  STRESS_INVALID: 'PEAK_STRESS_INVALID',
  /** Stress: a scenario file could not be loaded (missing, not a module, no scenario export). */
  STRESS_SCENARIO: 'PEAK_STRESS_SCENARIO',
  /** Stress (control plane): the run, or the capacity figure, does not exist. */
  STRESS_NOT_FOUND: 'PEAK_STRESS_NOT_FOUND',
  /** Stress: the isolation check found stress data in real tables, topics or cache keys. */
  STRESS_LEAK: 'PEAK_STRESS_LEAK',
  /** Stress: a scenario step's answer failed its check (status or assertion). */
  STRESS_CHECK_FAILED: 'PEAK_STRESS_CHECK_FAILED',
  /** Scale: an app file, scaling policy or release is malformed (the message names the path). */
  SCALE_INVALID: 'PEAK_SCALE_INVALID',
  /** Scale: no such release (or no release of that service in progress). */
  SCALE_NOT_FOUND: 'PEAK_SCALE_NOT_FOUND',
  /** Scale: the release is not in a state that allows this, or one is in progress already. */
  SCALE_CONFLICT: 'PEAK_SCALE_CONFLICT',
  /** Txn: the global transaction does not exist. */
  TXN_NOT_FOUND: 'PEAK_TXN_NOT_FOUND',
  /** Txn: a saga, TCC or message definition is malformed; the message names the field. */
  TXN_INVALID: 'PEAK_TXN_INVALID',
  /** Txn: the global transaction is not in a status that allows this (retry a finished one). */
  TXN_STATE: 'PEAK_TXN_STATE',
  /** Txn: a branch refused its step for good (out of stock): the transaction rolls back. */
  TXN_BRANCH_FAILED: 'PEAK_TXN_BRANCH_FAILED',
  /** Txn: the global transaction rolled back (compensated); details name the branch and cause. */
  TXN_ABORTED: 'PEAK_TXN_ABORTED',
  /** Txn: a barrier was used outside a branch call (no global id in the call context). */
  TXN_NO_BRANCH: 'PEAK_TXN_NO_BRANCH',
  /** Txn: an HTTP branch did not answer, or answered other than 2xx or 409: tried again. */
  TXN_BRANCH_UNAVAILABLE: 'PEAK_TXN_BRANCH_UNAVAILABLE',
  /** Something failed that is not the caller's fault; the message carries the cause. */
  INTERNAL: 'PEAK_INTERNAL',
} as const;

/** One of the stable error code strings in {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * The HTTP status of each code that is not a 500, in one place for every HTTP surface (the
 * control plane's API and the RPC server's HTTP/JSON access): a code keeps its status
 * whichever route or module throws it.
 */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.USAGE]: 400,
  [ErrorCodes.INVALID_ARGUMENT]: 400,
  [ErrorCodes.UNAUTHENTICATED]: 401,
  [ErrorCodes.FORBIDDEN]: 403,
  [ErrorCodes.NOT_FOUND]: 404,
  [ErrorCodes.NOT_IMPLEMENTED]: 501,
  [ErrorCodes.AUTH_RATE_LIMITED]: 429,
  [ErrorCodes.APP_EXISTS]: 409,
  [ErrorCodes.TOKEN_EXISTS]: 409,
  [ErrorCodes.APP_NOT_FOUND]: 404,
  [ErrorCodes.DB_UNREACHABLE]: 503,
  [ErrorCodes.SERVER_BUSY]: 503,
  [ErrorCodes.GUARD_TOKEN_SERVER_UNAVAILABLE]: 503,
  [ErrorCodes.DEADLINE_EXCEEDED]: 504,
  [ErrorCodes.RPC_BAD_ARGUMENTS]: 400,
  [ErrorCodes.RPC_PROTOCOL]: 400,
  [ErrorCodes.RPC_UNKNOWN_SERVICE]: 404,
  [ErrorCodes.RPC_UNKNOWN_METHOD]: 404,
  [ErrorCodes.RPC_FRAME_TOO_LARGE]: 413,
  [ErrorCodes.RPC_OVERLOADED]: 429,
  [ErrorCodes.RPC_SHUTTING_DOWN]: 503,
  [ErrorCodes.RPC_UNAVAILABLE]: 503,
  [ErrorCodes.RPC_TIMEOUT]: 504,
  [ErrorCodes.MQ_UNKNOWN_TOPIC]: 404,
  [ErrorCodes.MQ_UNKNOWN_TRANSACTION]: 404,
  [ErrorCodes.MQ_BAD_SIGNATURE]: 400,
  [ErrorCodes.MQ_REPLAYED]: 409,
  [ErrorCodes.MQ_IN_USE]: 409,
  [ErrorCodes.MQ_DECRYPT_FAILED]: 400,
  [ErrorCodes.MQ_FORBIDDEN]: 403,
  [ErrorCodes.MQ_MESSAGE_TOO_LARGE]: 413,
  [ErrorCodes.CONFIG_INVALID]: 400,
  [ErrorCodes.CONFIG_NOT_FOUND]: 404,
  [ErrorCodes.CONFIG_CONFLICT]: 409,
  [ErrorCodes.REGISTRY_INSTANCE_UP]: 409,
  [ErrorCodes.CONFIG_TOO_LARGE]: 413,
  [ErrorCodes.CACHE_UNAVAILABLE]: 503,
  [ErrorCodes.CACHE_VALUE_TOO_LARGE]: 413,
  [ErrorCodes.CACHE_LOAD_FAILED]: 503,
  [ErrorCodes.CACHE_WRITES_FROZEN]: 409,
  [ErrorCodes.STOCK_UNKNOWN_SKU]: 404,
  [ErrorCodes.GATEWAY_NO_ROUTE]: 404,
  [ErrorCodes.GATEWAY_UNAUTHENTICATED]: 401,
  [ErrorCodes.GATEWAY_BAD_CREDENTIAL]: 401,
  [ErrorCodes.GATEWAY_EXPIRED]: 401,
  [ErrorCodes.GATEWAY_REPLAYED]: 401,
  [ErrorCodes.GATEWAY_FORBIDDEN]: 403,
  [ErrorCodes.GATEWAY_QUOTA_EXCEEDED]: 429,
  [ErrorCodes.GATEWAY_TOO_LARGE]: 413,
  [ErrorCodes.GATEWAY_BAD_REQUEST]: 400,
  [ErrorCodes.GATEWAY_UPSTREAM_UNAVAILABLE]: 502,
  [ErrorCodes.GATEWAY_TIMEOUT]: 504,
  [ErrorCodes.GATEWAY_INVALID]: 400,
  [ErrorCodes.GATEWAY_NOT_FOUND]: 404,
  [ErrorCodes.DRILL_INVALID]: 400,
  [ErrorCodes.DRILL_NO_TARGET]: 409,
  [ErrorCodes.PLAN_INVALID]: 400,
  [ErrorCodes.PLAN_NOT_FOUND]: 404,
  [ErrorCodes.PLAN_CONFLICT]: 409,
  [ErrorCodes.STRESS_INVALID]: 400,
  [ErrorCodes.STRESS_SCENARIO]: 400,
  [ErrorCodes.STRESS_NOT_FOUND]: 404,
  [ErrorCodes.STRESS_LEAK]: 409,
  [ErrorCodes.SCALE_INVALID]: 400,
  [ErrorCodes.SCALE_NOT_FOUND]: 404,
  [ErrorCodes.SCALE_CONFLICT]: 409,
  [ErrorCodes.TXN_NOT_FOUND]: 404,
  [ErrorCodes.TXN_INVALID]: 400,
  [ErrorCodes.TXN_STATE]: 409,
  [ErrorCodes.TXN_BRANCH_FAILED]: 409,
  [ErrorCodes.TXN_ABORTED]: 409,
  [ErrorCodes.TXN_NO_BRANCH]: 400,
  [ErrorCodes.TXN_BRANCH_UNAVAILABLE]: 502,
};

/** The HTTP status an error code is answered with (500 for codes not listed). */
export function httpStatusOf(code: string): number {
  return HTTP_STATUS[code as ErrorCode] ?? 500;
}

/** Options for {@link PeakError}: a cause to chain, and details a program may read. */
export interface PeakErrorOptions {
  /** The lower-level error this one explains. */
  cause?: unknown;
  /** Structured facts about the failure (the input, the limit), safe to show a user. */
  details?: Record<string, unknown>;
}

/** The base class of every deliberate Peakware error. */
export class PeakError extends Error {
  /** The stable code; branch on this, not on the message. */
  readonly code: ErrorCode;
  /** Structured facts about the failure, safe to show a user. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: PeakErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A plain object for JSON responses and `--json` output. */
  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** A command line, option object or argument is malformed; the message says how to fix it. */
export class UsageError extends PeakError {
  constructor(message: string, options: PeakErrorOptions = {}) {
    super(ErrorCodes.USAGE, message, options);
  }
}

/** A value failed validation; `details.input` names the offending input. */
export class InvalidArgumentError extends PeakError {
  constructor(message: string, options: PeakErrorOptions = {}) {
    super(ErrorCodes.INVALID_ARGUMENT, message, options);
  }
}

/** The deadline carried by the call context had passed. */
export class DeadlineExceededError extends PeakError {
  constructor(message: string, options: PeakErrorOptions = {}) {
    super(ErrorCodes.DEADLINE_EXCEEDED, message, options);
  }
}

/** An optional dependency is not installed; `details.package` names what to install. */
export class MissingDependencyError extends PeakError {
  constructor(message: string, options: PeakErrorOptions = {}) {
    super(ErrorCodes.MISSING_DEPENDENCY, message, options);
  }
}

/** True when `err` is a {@link PeakError}, optionally with the given code. */
export function isPeakError(err: unknown, code?: ErrorCode): err is PeakError {
  return err instanceof PeakError && (code === undefined || err.code === code);
}

/** The message of any thrown value, for logs and one-line CLI errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
