/**
 * Console login: `POST /api/v1/console/session` exchanges a credential (the admin token
 * today) for a session cookie; `GET` answers the session with its CSRF token;
 * `DELETE` logs out. The session is also a credential of the admin check (an
 * `Authenticator`): a change made with the cookie passes only with the session's CSRF
 * token in `x-peak-csrf`, and a read-only session's changes are refused. Rotating the admin
 * token ends every session made from it.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { ApiApp, Caller, RequestAuthenticator } from '../../server/http-api.js';
import { WithDefault } from '../../server/route-schema.js';
import type { SessionView } from '../console-views.js';
import {
  CSRF_HEADER,
  csrfMatches,
  readCookie,
  SESSION_COOKIE,
  sessionCookieHeader,
} from './session-cookie.js';
import {
  SESSION_TTL_MS,
  type SessionRecord,
  type SessionStore,
  sessionView,
} from './session-store.js';

/** The session routes' path. */
export const SESSION_ROUTE = '/api/v1/console/session';

const ROTATE_ROUTE = '/api/v1/admin/token/rotate';

function notLoggedIn(): PeakError {
  return new PeakError(
    ErrorCodes.UNAUTHENTICATED,
    'no console session, or it has ended or expired: log in with the admin token (POST /api/v1/console/session, or the console at /console)',
  );
}

function secure(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

/** The live session a request's cookie names: its secret and record, or a 401. */
async function sessionOf(
  store: SessionStore,
  request: FastifyRequest,
): Promise<{ secret: string; session: SessionRecord }> {
  const secret = readCookie(request.headers.cookie, SESSION_COOKIE);
  const session = secret === undefined ? undefined : await store.find(secret);
  if (secret === undefined || session === undefined) throw notLoggedIn();
  return { secret, session };
}

function checkCsrf(request: FastifyRequest, secret: string): void {
  const presented = request.headers[CSRF_HEADER];
  if (typeof presented !== 'string' || !csrfMatches(secret, presented)) {
    throw new PeakError(
      ErrorCodes.FORBIDDEN,
      `${request.method} ${request.url.split('?')[0]} with a console session needs the session's CSRF token in header ${CSRF_HEADER} (GET ${SESSION_ROUTE} answers it); the request had ${typeof presented === 'string' ? 'a wrong one' : 'none'}`,
      { details: { reason: 'csrf' } },
    );
  }
}

/**
 * The lifecycle's view of a console session: the caller, for a change once its CSRF token
 * matches (a read needs none: another site's page cannot read the answer).
 */
export function sessionAuthenticator(store: SessionStore): RequestAuthenticator {
  return async (request) => {
    if (readCookie(request.headers.cookie, SESSION_COOKIE) === undefined) return undefined;
    const { secret, session } = await sessionOf(store, request);
    if (request.method !== 'GET' && request.method !== 'HEAD') checkCsrf(request, secret);
    return sessionCaller(session);
  };
}

/** The caller a console session is. */
function sessionCaller(session: SessionRecord): Caller {
  return {
    kind: 'role',
    role: session.role,
    name: session.name,
    who: `console:${session.name}`,
    via: 'console-session',
  };
}

const loginBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 512, description: 'the admin token' }),
  name: WithDefault(
    Type.String({
      pattern: '^[A-Za-z0-9_.@-]{1,64}$',
      takes: '1-64 letters, digits or _ . @ -',
      description: 'who is logging in, for the audit',
    }),
    'admin',
  ),
  readOnly: WithDefault(Type.Boolean({ description: 'a session that may only read' }), false),
});

function setCookie(reply: FastifyReply, value: string): void {
  void reply.header('set-cookie', value);
}

/** Registers the session routes and the session as a credential of the admin check. */
export function sessionRoutes(app: ApiApp, store: SessionStore): void {
  app.addAuthenticator(sessionAuthenticator(store));

  app.post(
    SESSION_ROUTE,
    {
      config: { auth: 'self' },
      schema: {
        summary: 'Log in to the console: an operator token for an HttpOnly session cookie',
        body: loginBody,
      },
    },
    async (request, reply): Promise<SessionView> => {
      const { token, name, readOnly } = request.body;
      const caller = await app.verifyCredential(token, request.ip);
      const role = readOnly ? 'viewer' : caller.role;
      const ua = request.headers['user-agent'];
      const { secret, record } = await store.create({
        name,
        role,
        credential: caller.via,
        from: request.ip,
        userAgent: typeof ua === 'string' ? ua.slice(0, 256) : '',
      });
      request.caller = { kind: 'role', role, name, who: `console:${name}`, via: caller.via };
      setCookie(reply, sessionCookieHeader(secret, SESSION_TTL_MS / 1000, secure(request)));
      return sessionView(secret, record);
    },
  );

  app.get(
    SESSION_ROUTE,
    {
      config: { auth: 'self' },
      schema: { summary: "The console session the request's cookie names, with its CSRF token" },
    },
    async (request): Promise<SessionView> => {
      const { secret, session } = await sessionOf(store, request);
      return sessionView(secret, session);
    },
  );

  app.delete(
    SESSION_ROUTE,
    {
      config: { auth: 'self' },
      schema: { summary: 'Log out of the console: ends the session and clears its cookie' },
    },
    async (request, reply) => {
      const { secret, session } = await sessionOf(store, request);
      checkCsrf(request, secret);
      await store.end(secret);
      request.caller = sessionCaller(session);
      setCookie(reply, sessionCookieHeader('', 0, secure(request)));
      return { ended: true };
    },
  );

  // A rotated admin token ends the sessions made from it, as it ends the token's own use.
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url !== ROTATE_ROUTE || reply.statusCode !== 200) return;
    const ended = await store.endAllOf('admin-token');
    request.log.warn({ ended }, 'admin token rotated: console sessions made from it ended');
  });
}
