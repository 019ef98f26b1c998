/**
 * The audit trail of admin calls in PostgreSQL (`peak.console_audit`): every operator call
 * that changes state (an operator token or a console session; `isAuditedCall`), and every console login and
 * logout, with who, the credential, the address, the user agent, the route and the status
 * it ended with. Kept 90 days; read with `GET /api/v1/console/audit` (newest first, pages
 * by `before`).
 */
import { Type } from '@sinclair/typebox';
import type pg from 'pg';
import { type ApiApp, isAuditedCall } from '../../server/http-api.js';
import { WithDefault } from '../../server/route-schema.js';
import type { AuditEntry } from '../console-views.js';
import { SESSION_ROUTE } from './session-routes.js';

/** How long audit entries are kept, ms (90 days). */
export const AUDIT_KEEP_MS = 90 * 86_400_000;

/** Writes and reads the audit trail. */
export class AdminAudit {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Records one call. */
  async record(e: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    await this.#pool.query(
      `INSERT INTO peak.console_audit
         (who, via, role, from_addr, user_agent, method, route, url, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [e.who, e.via, e.role, e.from, e.userAgent, e.method, e.route, e.url, e.status],
    );
  }

  /** Entries newest first, before the entry `before` when given. */
  async list(limit: number, before?: number): Promise<AuditEntry[]> {
    const { rows } = await this.#pool.query(
      `SELECT id, at, who, via, role, from_addr, user_agent, method, route, url, status
         FROM peak.console_audit WHERE ($2::bigint IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $1`,
      [limit, before ?? null],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      at: (r.at as Date).toISOString(),
      who: r.who,
      via: r.via,
      role: r.role,
      from: r.from_addr,
      userAgent: r.user_agent,
      method: r.method,
      route: r.route,
      url: r.url,
      status: r.status,
    }));
  }

  /** Deletes entries older than {@link AUDIT_KEEP_MS}, at most `batch`. */
  async prune(batch = 10_000): Promise<number> {
    const { rowCount } = await this.#pool.query(
      `DELETE FROM peak.console_audit WHERE id IN (
         SELECT id FROM peak.console_audit WHERE at < now() - $1 * interval '1 millisecond' LIMIT $2)`,
      [AUDIT_KEEP_MS, batch],
    );
    return rowCount ?? 0;
  }
}

/** Records every admitted admin call and console login/logout; serves the trail. */
export function auditRoutes(app: ApiApp, audit: AdminAudit): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    const session = route === SESSION_ROUTE && request.method !== 'GET';
    const admitted = isAuditedCall(request) || (session && request.caller !== undefined);
    if (!admitted && !session) return;
    // A failed login has no caller: it is named by the name it gave.
    const named = (request.body as { name?: unknown } | undefined)?.name;
    const caller =
      request.caller === undefined
        ? {
            who: `console:${typeof named === 'string' ? named : 'unknown'}`,
            role: 'none',
            via: 'console-login',
          }
        : {
            who: request.caller.who,
            role: request.caller.kind === 'role' ? request.caller.role : 'app',
            via: request.caller.via,
          };
    const ua = request.headers['user-agent'];
    try {
      await audit.record({
        who: caller.who,
        via: caller.via,
        role: caller.role,
        from: request.ip,
        userAgent: typeof ua === 'string' ? ua.slice(0, 256) : '',
        method: request.method,
        route: route ?? '',
        url: request.url.split('?')[0]!,
        status: reply.statusCode,
      });
    } catch (err) {
      request.log.error({ err, who: caller.who, route }, 'console: writing the audit entry failed');
    }
  });

  app.get(
    '/api/v1/console/audit',
    {
      config: { auth: 'viewer' },
      schema: {
        summary: 'Admin calls and console logins, newest first: who, from where, what, the status',
        querystring: Type.Object({
          limit: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 100),
          before: Type.Optional(
            Type.Integer({ minimum: 1, description: 'entries before this id' }),
          ),
        }),
      },
    },
    async (request) => ({ entries: await audit.list(request.query.limit, request.query.before) }),
  );
}
