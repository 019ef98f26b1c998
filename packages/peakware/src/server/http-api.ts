/**
 * The control plane's HTTP API (Fastify): `/health`, `/ready`, and versioned routes under
 * `/api/v1`. One request lifecycle for every route:
 *
 *   1. route lookup (unknown → 404 PEAK_NOT_FOUND)
 *   2. admin check for every mutating route (and reads marked `auth: 'admin'`) (missing → 401, wrong → 403), decided on the
 *      route the router matched, never on the raw URL: `/%61pi/...`, `//api/...` or a
 *      trailing dot cannot slip past it, because whatever spelling the router accepts for a
 *      route gets that route's decision, and a spelling it does not accept is a 404
 *   3. body parsing, then the route's JSON schemas for params, body and query (route-schema.ts:
 *      bad → 400 PEAK_INVALID_ARGUMENT naming the field, what it takes and what it got)
 *   4. the handler
 *   5. errors → `{ error: { code, message, details } }` with the status core/errors.ts gives
 *      the code; routes never choose statuses for errors themselves
 *
 * Subsystems add routes as {@link ApiModule}s; they never set up their own auth or errors.
 * Every route declares a {@link RouteSchema} (summary, body on POST/PUT/PATCH, params); a
 * route without one fails the start. The route table and those schemas are the API's
 * OpenAPI 3.1 document, served at `GET /api/v1/openapi.json` (openapi.ts).
 * A mutating route that data-plane SDKs call (register an instance, take a cluster token)
 * opts out of the admin check with `{ config: { auth: 'sdk' } }`; one that checks a
 * credential itself (the console's login and logout) with `{ config: { auth: 'self' } }`.
 *
 * Credentials: the admin check admits a bearer admin token, or whatever a module's
 * {@link Authenticator} vouches for (the console's session cookie, added with
 * `app.addAuthenticator`). Either way the call gets a {@link Caller} (`request.caller`): who
 * it is for the audit and its role; a `viewer` is refused every change (403).
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
import { verifyAdminToken } from './admin-token.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
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
}

/**
 * Route config read by the admin check: `auth: 'sdk'` marks a mutating route that services
 * call through the SDK, which does not carry the admin token; `auth: 'self'` one that
 * checks a credential of its own (the console's login takes the admin token in its body).
 */
export interface RouteAuthConfig {
  auth?: 'admin' | 'sdk' | 'self';
}

/** What a caller may do: `admin` changes anything, `viewer` only reads. */
export type CallerRole = 'admin' | 'viewer';

/** Who a call was admitted as: what the audit names and what the role check decides on. */
export interface Caller {
  /** Who, for the audit: `admin-token`, `console:alice`. */
  who: string;
  role: CallerRole;
  /** The credential presented: `admin-token`, `console-session`. */
  via: string;
}

/** The caller a valid bearer admin token is. */
export const ADMIN_TOKEN_CALLER: Caller = { who: 'admin-token', role: 'admin', via: 'admin-token' };

/**
 * A credential the admin check accepts besides the bearer admin token (the console's
 * session cookie): answers the caller, undefined when the request does not carry this
 * credential, or throws a PeakError (401/403) when it carries a bad one.
 */
export type Authenticator = (request: FastifyRequest) => Promise<Caller | undefined>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Adds a credential the admin check accepts besides the admin token. */
    addAuthenticator(authenticate: Authenticator): void;
    /**
     * Checks a bearer credential as the admin check would (failed tries from `from` limited
     * the same way): the caller it is, or a PeakError (403 wrong, 429 too many tries).
     */
    verifyCredential(token: string, from: string): Promise<Caller>;
  }
  interface FastifyRequest {
    /** Who the admin check admitted this call as; undefined on routes it does not check. */
    caller: Caller | undefined;
  }
}

/** One entry of the route table: what a test walks to check every route's auth decision. */
export interface RouteEntry {
  method: string;
  /** The route's pattern, e.g. `/api/v1/mq/topics/:topic`. */
  url: string;
  /**
   * `admin` for a mutating route without `auth: 'sdk'` or `'self'`, `sdk` or `self` for one
   * with it, `none` for reads.
   */
  auth: 'admin' | 'sdk' | 'self' | 'none';
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
}

/** Builds the Fastify app with the shared lifecycle and the given route modules. */
export function createHttpApi(ctx: ApiContext, options: HttpApiOptions): ApiApp {
  const { app } = createHttpApiWithRoutes(ctx, options);
  return app;
}

/**
 * The route's auth decision, from its method and its config: a read marked `auth: 'admin'`
 * (one that hands out secrets, such as the gateway's change stream) needs the token too.
 */
function authOf(method: string, config: unknown): RouteEntry['auth'] {
  const auth = (config as RouteAuthConfig | undefined)?.auth;
  if (!MUTATING.has(method)) return auth === 'admin' ? 'admin' : 'none';
  return auth === 'sdk' || auth === 'self' ? auth : 'admin';
}

/** {@link createHttpApi}, also returning the route table as it fills (for tests and docs). */
export function createHttpApiWithRoutes(
  ctx: ApiContext,
  options: HttpApiOptions,
): { app: ApiApp; routes: RouteEntry[] } {
  const routes: RouteEntry[] = [];
  const app = Fastify({
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
      routes.push({
        method,
        url: route.url,
        auth: authOf(method, route.config),
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

  const authFailures = new AuthFailureLimiter();
  const admitted = new WeakSet<object>();
  const authenticators: Authenticator[] = [];
  app.decorate('addAuthenticator', (authenticate: Authenticator) => {
    authenticators.push(authenticate);
  });
  const verifyCredential = async (token: string, from: string): Promise<Caller> => {
    const wait = authFailures.retryAfterMs(from);
    if (wait > 0) {
      throw new PeakError(
        ErrorCodes.AUTH_RATE_LIMITED,
        `too many wrong admin tokens from ${from}; try again in ${Math.ceil(wait / 1000)} s with the current token from the data folder (file admin-token)`,
        { details: { retryAfterMs: wait } },
      );
    }
    if (!(await verifyAdminToken(ctx.pool, token))) {
      authFailures.fail(from);
      throw new PeakError(
        ErrorCodes.FORBIDDEN,
        'the admin token is wrong or has been rotated; use the current one from the data folder (file admin-token)',
      );
    }
    return ADMIN_TOKEN_CALLER;
  };
  app.decorate('verifyCredential', verifyCredential);
  app.decorateRequest('caller', undefined);

  // Admits a caller to a mutating route: a read-only one is refused, anyone else audited.
  const admit = (request: FastifyRequest, caller: Caller) => {
    if (caller.role !== 'admin') {
      throw new PeakError(
        ErrorCodes.FORBIDDEN,
        `${request.method} ${request.url.split('?')[0]} changes state, and ${caller.who} may only read (role ${caller.role})`,
        { details: { who: caller.who, role: caller.role } },
      );
    }
    request.caller = caller;
    admitted.add(request);
  };

  app.addHook('onRequest', async (request) => {
    // The matched route decides (request.routeOptions.url is its pattern); an unmatched
    // request has no route and ends in the 404 handler, changing nothing.
    if (request.routeOptions.url === undefined) return;
    if (authOf(request.method, request.routeOptions.config) !== 'admin') return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (match === null) {
      for (const authenticate of authenticators) {
        const caller = await authenticate(request);
        if (caller !== undefined) return admit(request, caller);
      }
      throw new PeakError(
        ErrorCodes.UNAUTHENTICATED,
        `${request.method} ${request.url.split('?')[0]} changes state and needs the admin token: send 'Authorization: Bearer <token>' (the token is in the server's data folder, file admin-token)`,
      );
    }
    try {
      admit(request, await verifyCredential(match[1]!, request.ip));
    } catch (err) {
      if (err instanceof PeakError && err.code === ErrorCodes.FORBIDDEN) {
        request.log.warn(
          { from: request.ip, method: request.method, route: request.routeOptions.url },
          'wrong admin token',
        );
      }
      throw err;
    }
  });

  // Every admin call that passed the check is audited: who (the admin token, or a console
  // session's user), from where, what, and how it ended. No credential is ever logged.
  app.addHook('onResponse', async (request, reply) => {
    if (!admitted.has(request)) return;
    request.log.info(
      {
        audit: true,
        who: request.caller?.who,
        via: request.caller?.via,
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
