/**
 * The control plane's HTTP API (Fastify): `/health`, `/ready`, and versioned routes under
 * `/api/v1`. One request lifecycle for every route:
 *
 *   1. route lookup (unknown → 404 PEAK_NOT_FOUND)
 *   2. authentication and the route's auth decision (missing credential → 401, wrong one or
 *      one that does not allow the route → 403, too many wrong ones from an address → 429),
 *      decided on the route the router matched, never on the raw URL: `/%61pi/...`,
 *      `//api/...` or a trailing dot cannot slip past it, because whatever spelling the
 *      router accepts for a route gets that route's decision, and a spelling it does not
 *      accept is a 404
 *   3. body parsing, then the route's JSON schemas for params, body and query (route-schema.ts:
 *      bad → 400 PEAK_INVALID_ARGUMENT naming the field, what it takes and what it got)
 *   4. the handler, which checks the resources the request names (`authorize` in access.ts:
 *      this topic, this group, this service)
 *   5. errors → `{ error: { code, message, details } }` with the status core/errors.ts gives
 *      the code; routes never choose statuses for errors themselves
 *
 * Every route has an auth decision ({@link RouteAuth}), `config: { auth }`, defaulting to
 * `read` for GET and `admin` for a route that changes state; routes services call through
 * the SDK say `{ auth: 'sdk', scope: <kind> }`, the handful anyone may call say `public`,
 * and a route that checks a credential of its own (the console's login and logout) `self`.
 *
 * Credentials: a bearer token (an operator token of a role, or an app credential with its
 * grants: authenticator.ts), or, without one, whatever a module's
 * {@link RequestAuthenticator} vouches for (the console's session cookie, added with
 * `app.addAuthenticator`). Either way the call gets a {@link Caller} (`request.caller`):
 * who it is for the audit, its role or its app and grants. Subsystems add routes as {@link ApiModule}s; they never set up their own auth or
 * errors. Every route declares a {@link RouteSchema} (summary, body on POST/PUT/PATCH,
 * params); a route without one fails the start. The route table and those schemas are the
 * API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json` (openapi.ts).
 */

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type pg from 'pg';
import { ErrorCodes, httpStatusOf, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { hasScopeKind, SCOPE_KINDS, type ScopeKind } from './app-scopes.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
import {
  Authenticator,
  type Caller,
  type OperatorCaller,
  ROLE_RANK,
  type Role,
} from './authenticator.js';
import type { ControlPlaneRpc } from './control-plane-rpc.js';
import type { HttpRequestMetrics } from './http-request-metrics.js';
import { openApiDocument } from './openapi.js';
import {
  checkRouteSchema,
  type RouteSchema,
  routeValidatorCompiler,
  type TypeBoxProvider,
  validationError,
} from './route-schema.js';
import type { ServerSettings } from './server-settings.js';

/** What route modules get to work with. */
export interface ApiContext {
  pool: pg.Pool;
  logger: Logger;
  /** This control-plane node's id. */
  nodeId: string;
  /** The data folder (absolute). */
  dataDir: string;
  /** `embedded` or `external` PostgreSQL. */
  postgresMode: 'embedded' | 'external';
  /** The schema version migrations brought the database to. */
  schemaVersion: number;
  /** When this node started, epoch ms. */
  startedAt: number;
  /** The node's subsystem settings, defaults applied and checked (server-settings.ts has the table). */
  settings: ServerSettings;
  /** The subsystems (module names) this node serves. */
  roles: readonly string[];
  /** Request latency by route, recorded for every answered request (read by `/metrics`). */
  httpMetrics?: HttpRequestMetrics;
  /** This node's authentication counters since start (for /metrics); absent in bare test hosts. */
  authCounters?: () => AuthCounters;
  /**
   * Verifies a credential as the lifecycle does (the node's Authenticator and its cache), for
   * credentials that arrive outside HTTP (the MQTT bridge's); absent in bare test hosts.
   */
  authenticate?: (token: string) => Promise<Caller | undefined>;
  /**
   * The node's limit on failed authentications per address, shared by every way in: the
   * MQTT bridge counts its failed logins here as the lifecycle counts wrong bearer tokens
   * (one budget per address, one set of /metrics counters); absent in bare test hosts.
   */
  authFailures?: AuthFailureCounter;
  /**
   * Issues a signed caller identity of one of the control plane's own apps (the txn
   * coordinator's `peak-txn`) for its RPC calls; absent in bare test hosts.
   */
  issueIdentity?: (app: string) => Promise<{ token: string; expiresAt: number }>;
  /**
   * The node's RPC port (control-plane-rpc.ts): a module hosts its SDK hot path there while
   * its routes register; absent when the port is off, and in bare test hosts.
   */
  rpc?: ControlPlaneRpc;
  /** Where the RPC port listens once the node is ready (`GET /api/v1/rpc`). */
  rpcEndpoint?: () => { host: string; port: number; tls: boolean } | undefined;
}

/** What a way in other than HTTP records of failed authentications (AuthFailureLimiter). */
export interface AuthFailureCounter {
  /** Milliseconds `address` must wait before it may try again (counted as refused when > 0). */
  retryAfterMs(address: string): number;
  /** Records one failed authentication from `address`. */
  fail(address: string): void;
  /** Working credentials refused what they asked. */
  denied: number;
}

/** Failed and refused authentications on one node since it started. */
export interface AuthCounters {
  /** Wrong, expired or revoked credentials. */
  failures: number;
  /** Requests refused because their address had too many failures (429). */
  rateLimited: number;
  /** Working credentials refused a route (role too low, grant missing). */
  denied: number;
}

/**
 * Who may call a route:
 *
 * - `public`: anyone, no credential (liveness, readiness, the OpenAPI document, /metrics);
 * - `self`: the route checks a credential of its own (the console's login takes a token in
 *   its body); the lifecycle checks nothing;
 * - `read`: any working credential: an operator's token of any role, or an app credential
 *   (holding a grant of the route's `scope` kind when it names one);
 * - `sdk`: an app credential holding a grant of the route's `scope` kind (the handler
 *   checks the resource), or the admin token;
 * - `viewer`, `operator`, `admin`: an operator's token of that role or a higher one.
 */
export type RouteAuth = 'public' | 'self' | 'read' | 'sdk' | 'viewer' | 'operator' | 'admin';

/** Every auth decision a route may declare. */
export const ROUTE_AUTHS: readonly RouteAuth[] = [
  'public',
  'self',
  'read',
  'sdk',
  'viewer',
  'operator',
  'admin',
];

/**
 * A route's `config`: its auth decision (default `read` for GET, `admin` for routes that
 * change state) and, for app credentials, the kind of grant it needs (required with `sdk`).
 */
export interface RouteAuthConfig {
  auth?: RouteAuth;
  scope?: ScopeKind;
}

export type { Caller, OperatorCaller, Role } from './authenticator.js';

/**
 * A credential the lifecycle accepts besides a bearer token (the console's session cookie):
 * answers the caller, undefined when the request does not carry this credential, or throws
 * a PeakError (401/403) when it carries a bad one.
 */
export type RequestAuthenticator = (request: FastifyRequest) => Promise<Caller | undefined>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Adds a credential the lifecycle accepts besides a bearer token. */
    addAuthenticator(authenticate: RequestAuthenticator): void;
    /**
     * Checks a bearer operator token as the lifecycle would (failed tries from `from`
     * limited the same way): the caller it is, or a PeakError (403 wrong or an app
     * credential, 429 too many tries).
     */
    verifyCredential(token: string, from: string): Promise<OperatorCaller>;
  }
  interface FastifyRequest {
    /** Who the lifecycle admitted this call as; undefined on `public` and `self` routes. */
    caller: Caller | undefined;
  }
}

/** One entry of the route table: what a test walks to check every route's auth decision. */
export interface RouteEntry {
  method: string;
  /** The route's pattern, e.g. `/api/v1/mq/topics/:topic`. */
  url: string;
  /** Who may call it (see {@link RouteAuth}). */
  auth: RouteAuth;
  /** The kind of grant an app credential needs, when the route names one. */
  scope?: ScopeKind;
  /** What the route declares it takes (checked by ajv, documented in OpenAPI). */
  schema: RouteSchema;
}

/** The Fastify app route modules get: request parts typed from their TypeBox schemas. */
export type ApiApp = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxProvider
>;

/** A group of routes a subsystem contributes; registered under the common lifecycle. */
export type ApiModule = (app: ApiApp, ctx: ApiContext) => void;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Options for {@link createHttpApi}. */
export interface HttpApiOptions {
  /** Largest request body accepted, bytes. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * Most request-body bytes held at once over all requests not yet answered (received and
   * still arriving). A body that would pass it is refused with 503 PEAK_SERVER_BUSY, so no
   * number of slow or half-sent bodies moves memory past this bound. Default 64 MiB.
   */
  maxInflightBodyBytes?: number;
  /** Longest a client may take to send a whole request (headers and body), ms. Default 30 000. */
  requestTimeoutMs?: number;
  /** How long shutdown waits for in-flight requests is up to the caller's close timeout. */
  modules: readonly ApiModule[];
  /** Verifies credentials (one per node, shared with the routes that change them). Default: a new one. */
  authenticator?: Authenticator;
  /** Counts failed authentications per address (for /metrics too). Default: a new one. */
  authFailures?: AuthFailureLimiter;
  /** Serve HTTPS with this certificate chain and key (PEM); absent: plain HTTP. */
  https?: { cert: Buffer; key: Buffer };
}

/** Builds the Fastify app with the shared lifecycle and the given route modules. */
export function createHttpApi(ctx: ApiContext, options: HttpApiOptions): ApiApp {
  const { app } = createHttpApiWithRoutes(ctx, options);
  return app;
}

/** The route's auth decision, from its method and its config. */
function authOf(method: string, config: unknown): RouteAuth {
  return (config as RouteAuthConfig | undefined)?.auth ?? (MUTATING.has(method) ? 'admin' : 'read');
}

/** Throws (failing the start) when a route's auth config is not one the lifecycle knows. */
function checkRouteAuth(method: string, url: string, config: unknown): RouteAuthConfig {
  const c = (config ?? {}) as RouteAuthConfig;
  if (c.auth !== undefined && !ROUTE_AUTHS.includes(c.auth)) {
    throw new Error(`route ${method} ${url}: config.auth must be one of ${ROUTE_AUTHS.join(', ')}`);
  }
  if (c.scope !== undefined && !SCOPE_KINDS.includes(c.scope)) {
    throw new Error(
      `route ${method} ${url}: config.scope must be one of ${SCOPE_KINDS.join(', ')}`,
    );
  }
  if (c.auth === 'sdk' && c.scope === undefined) {
    throw new Error(
      `route ${method} ${url}: an sdk route names the grant app credentials need (config.scope: ${SCOPE_KINDS.join(' | ')})`,
    );
  }
  return c;
}

const bearerPattern = /^Bearer\s+(\S+)\s*$/i;

/** Why `caller` may not call a route of decision `auth` (scope kind `scope`), or undefined when it may. */
function refusal(
  caller: Caller,
  auth: RouteAuth,
  scope: ScopeKind | undefined,
  what: string,
  mutating: boolean,
): string | undefined {
  if (caller.kind === 'role') {
    const need: Role | undefined =
      auth === 'sdk' ? 'admin' : auth === 'read' ? 'viewer' : (auth as Role);
    if (ROLE_RANK[caller.role] >= ROLE_RANK[need]) return undefined;
    if (caller.role === 'viewer' && mutating) {
      return `${what} changes state, and ${caller.who} may only read (role viewer)`;
    }
    return `${what} needs the ${need} role; ${caller.who} has the ${caller.role} role`;
  }
  if (auth !== 'sdk' && auth !== 'read') {
    return `${what} needs an operator token of the ${auth} role; an app credential (app '${caller.app}') cannot call it`;
  }
  if (scope !== undefined && !hasScopeKind(caller.scopes, scope)) {
    return `${what} needs a ${scope} grant; app '${caller.app}' holds none (an admin adds one with 'peak app scopes ${caller.app} --can ${scope}:...')`;
  }
  return undefined;
}

/** The operator calls the lifecycle audits (changes, and reads marked `admin`). */
const auditedCalls = new WeakSet<object>();

/**
 * Whether the lifecycle admitted `request` as an operator call it audits (a change, or a
 * read that hands out secrets); the console's audit trail records the same calls.
 */
export function isAuditedCall(request: FastifyRequest): boolean {
  return auditedCalls.has(request);
}

/** {@link createHttpApi}, also returning the route table as it fills (for tests and docs). */
export function createHttpApiWithRoutes(
  ctx: ApiContext,
  options: HttpApiOptions,
): { app: ApiApp; routes: RouteEntry[] } {
  const routes: RouteEntry[] = [];
  // Typed as the HTTP server the routes see; with `https` the server is an https.Server,
  // which serves them the same way.
  const app = Fastify({
    ...(options.https === undefined ? {} : { https: options.https as unknown as null }),
    loggerInstance: ctx.logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // Slow senders: a request must arrive whole within this; the answer may take longer
    // (long polls and streams are unaffected).
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    // Close idle keep-alive sockets at shutdown; in-flight requests still finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // A failed schema check is a PeakError like any other (route-schema.ts words it).
    schemaErrorFormatter: (errors, where) => validationError(errors, where),
  }).withTypeProvider<TypeBoxProvider>();
  app.setValidatorCompiler(routeValidatorCompiler());

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      const config = checkRouteAuth(method, route.url, route.config);
      routes.push({
        method,
        url: route.url,
        auth: authOf(method, config),
        ...(config.scope === undefined ? {} : { scope: config.scope }),
        schema: checkRouteSchema(method, route.url, route.schema),
      });
    }
  });

  // An absent (or JSON null) body is checked as `{}`, so a route whose fields are all
  // optional takes no body, and a missing required field is named rather than "the body".
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) {
      if (request.routeOptions.schema?.body !== undefined) request.body = {};
    }
  });

  const authFailures = options.authFailures ?? new AuthFailureLimiter();
  const authenticator = options.authenticator ?? new Authenticator(ctx.pool);
  const authenticators: RequestAuthenticator[] = [];
  app.decorate('addAuthenticator', (authenticate: RequestAuthenticator) => {
    authenticators.push(authenticate);
  });
  app.decorateRequest('caller', undefined);

  /** The caller a bearer token proves; 429 after too many wrong ones from `from`, 403 when wrong. */
  const verifyBearer = async (token: string, from: string, wrong: string): Promise<Caller> => {
    const wait = authFailures.retryAfterMs(from);
    if (wait > 0) {
      throw new PeakError(
        ErrorCodes.AUTH_RATE_LIMITED,
        `too many wrong credentials from ${from}; try again in ${Math.ceil(wait / 1000)} s with a working one (the admin token is in the data folder, file admin-token)`,
        { details: { retryAfterMs: wait } },
      );
    }
    const caller = await authenticator.authenticate(token);
    if (caller === undefined) {
      authFailures.fail(from);
      throw new PeakError(ErrorCodes.FORBIDDEN, wrong, { details: { reason: 'wrong-credential' } });
    }
    return caller;
  };
  app.decorate('verifyCredential', async (token: string, from: string): Promise<OperatorCaller> => {
    const caller = await verifyBearer(
      token,
      from,
      'the token is wrong or has been rotated; use the admin token from the data folder (file admin-token) or another operator token',
    );
    if (caller.kind !== 'role') {
      authFailures.denied++;
      throw new PeakError(
        ErrorCodes.FORBIDDEN,
        `${caller.who} is an app credential; this takes an operator token (the admin token is in the data folder, file admin-token)`,
        { details: { caller: caller.who } },
      );
    }
    return caller;
  });

  app.addHook('onRequest', async (request) => {
    // The matched route decides (request.routeOptions.url is its pattern); an unmatched
    // request has no route and ends in the 404 handler, changing nothing.
    if (request.routeOptions.url === undefined) return;
    const config = request.routeOptions.config as RouteAuthConfig | undefined;
    const auth = authOf(request.method, config);
    if (auth === 'public' || auth === 'self') return;
    const what = `${request.method} ${request.url.split('?')[0]}`;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? bearerPattern.exec(header) : null;
    let caller: Caller | undefined;
    if (match === null) {
      for (const authenticate of authenticators) {
        caller = await authenticate(request);
        if (caller !== undefined) break;
      }
      if (caller === undefined) {
        throw new PeakError(
          ErrorCodes.UNAUTHENTICATED,
          auth === 'admin'
            ? `${what} changes state and needs the admin token: send 'Authorization: Bearer <token>' (the token is in the server's data folder, file admin-token)`
            : `${what} needs a credential: send 'Authorization: Bearer <credential>' with an app credential ('peak app create') or an operator token (the admin token is in the server's data folder, file admin-token)`,
        );
      }
    } else {
      try {
        caller = await verifyBearer(
          match[1]!,
          request.ip,
          auth === 'admin'
            ? 'the admin token is wrong or has been rotated; use the current one from the data folder (file admin-token)'
            : 'the credential is wrong, expired or revoked; use a working app credential or operator token',
        );
      } catch (err) {
        if (err instanceof PeakError && err.code === ErrorCodes.FORBIDDEN) {
          request.log.warn(
            { from: request.ip, method: request.method, route: request.routeOptions.url },
            'wrong credential',
          );
        }
        throw err;
      }
    }
    const refused = refusal(caller, auth, config?.scope, what, MUTATING.has(request.method));
    if (refused !== undefined) {
      authFailures.denied++;
      throw new PeakError(ErrorCodes.FORBIDDEN, refused, {
        details: {
          caller: caller.who,
          need: auth,
          ...(caller.kind === 'role' ? { who: caller.who, role: caller.role } : {}),
        },
      });
    }
    request.caller = caller;
    if (caller.kind === 'role' && (MUTATING.has(request.method) || auth === 'admin')) {
      auditedCalls.add(request);
    }
  });

  // Every operator call that changes state (or reads secrets) is audited: who (the token's
  // name, or a console session's user), the credential, from where, what, and how it ended.
  // No credential is ever logged.
  app.addHook('onResponse', async (request, reply) => {
    const caller = request.caller;
    if (caller === undefined || !auditedCalls.has(request)) return;
    request.log.info(
      {
        audit: true,
        who: caller.who,
        via: caller.via,
        role: caller.kind === 'role' ? caller.role : 'app',
        from: request.ip,
        method: request.method,
        route: request.routeOptions.url,
        url: request.url.split('?')[0],
        status: reply.statusCode,
      },
      'admin call',
    );
  });

  // Bodies in flight count against one process-wide budget from their first byte until the
  // response is finished or the connection closes.
  const maxInflight = options.maxInflightBodyBytes ?? 64 * 1024 * 1024;
  let inflightBodyBytes = 0;
  app.addHook('preParsing', async (_request, reply, payload) => {
    let counted = 0;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inflightBodyBytes -= counted;
    };
    reply.raw.once('close', release);
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        if (inflightBodyBytes + chunk.length > maxInflight) {
          done(
            new PeakError(
              ErrorCodes.SERVER_BUSY,
              `the server holds ${inflightBodyBytes} bytes of request bodies, its limit (maxInflightBodyBytes ${maxInflight}); retry shortly`,
            ),
          );
          return;
        }
        counted += chunk.length;
        inflightBodyBytes += chunk.length;
        done(null, chunk);
      },
    });
    payload.on('error', (err) => meter.destroy(err));
    return payload.pipe(meter);
  });

  app.addHook('onResponse', async (request, reply) => {
    ctx.httpMetrics?.record(
      request.method,
      request.routeOptions.url,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    request.log.debug(
      { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
      'request',
    );
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({
      error: {
        code: ErrorCodes.NOT_FOUND,
        message: `no route ${request.method} ${request.url.split('?')[0]}; routes live under /health, /ready and /api/v1`,
        details: {},
      },
    });
  });

  app.setErrorHandler((err: FastifyError | PeakError, request, reply) => {
    if (err instanceof PeakError) {
      const status = httpStatusOf(err.code);
      if (status >= 500) request.log.error({ err }, 'request failed');
      void reply.status(status).send({ error: err.toJSON() });
      return;
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status < 500) {
      // Fastify's own client errors: bad JSON, body too large, unsupported content type.
      void reply.status(status).send({
        error: {
          code: ErrorCodes.INVALID_ARGUMENT,
          message: err.message,
          details: { fastifyCode: err.code },
        },
      });
      return;
    }
    request.log.error({ err }, 'request failed');
    void reply.status(500).send({
      error: {
        code: ErrorCodes.INTERNAL,
        message: `internal error: ${err.message}; see the server log`,
        details: {},
      },
    });
  });

  // A client can open a connection and send nothing on it (undici opens a spare one when
  // a request such as a long poll is aborted). Node's close() counts such a socket as busy
  // and waits until the client drops it, seconds later; at shutdown, end every socket that
  // has not sent a byte (a request on it would only get a 503 now).
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  app.addHook('preClose', async () => {
    const endSilent = () => {
      for (const s of sockets) if (s.bytesRead === 0) s.destroy();
    };
    endSilent();
    const sweep = setInterval(endSilent, 100);
    sweep.unref();
    app.server.once('close', () => clearInterval(sweep));
  });

  for (const register of options.modules) register(app, ctx);

  // Built from the route table once every route is in it (the first request comes after).
  let openapi: unknown;
  app.get(
    '/api/v1/openapi.json',
    {
      config: { auth: 'public' },
      schema: {
        summary: 'This API as an OpenAPI 3.1 document, generated from the routes and their schemas',
        tags: ['system'],
      },
    },
    async () => {
      openapi ??= openApiDocument(routes);
      return openapi;
    },
  );
  return { app, routes };
}
