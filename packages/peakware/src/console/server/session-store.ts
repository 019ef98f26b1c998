/**
 * Console sessions in PostgreSQL (`peak.console_sessions`), so any control-plane node
 * checks a session any node made. A session is made from a credential (the admin token
 * today) and carries a role (`admin`, or `viewer` for a read-only session); when roles come
 * with other credentials, a session takes the role of the one it was made from.
 */
import type pg from 'pg';
import type { ConsoleRole, SessionView } from '../console-views.js';
import { csrfTokenOf, newSessionSecret, sessionHash } from './session-cookie.js';

/** How long a session lasts from its login, ms (12 hours). */
export const SESSION_TTL_MS = 12 * 3_600_000;

/** A live session, as the store finds it. */
export interface SessionRecord {
  name: string;
  role: ConsoleRole;
  credential: string;
  createdFrom: string;
  createdAt: Date;
  expiresAt: Date;
}

/** What a new session is made of. */
export interface NewSession {
  name: string;
  role: ConsoleRole;
  credential: string;
  from: string;
  userAgent: string;
}

/** The session as the API shows it to its own holder. */
export function sessionView(secret: string, s: SessionRecord): SessionView {
  return {
    who: `console:${s.name}`,
    name: s.name,
    role: s.role,
    credential: s.credential,
    from: s.createdFrom,
    createdAt: s.createdAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    csrfToken: csrfTokenOf(secret),
  };
}

/** Makes, finds and ends console sessions. */
export class SessionStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Makes a session; answers its cookie value (shown to the browser only) and its record. */
  async create(s: NewSession): Promise<{ secret: string; record: SessionRecord }> {
    const secret = newSessionSecret();
    const { rows } = await this.#pool.query(
      `INSERT INTO peak.console_sessions
         (id_hash, name, role, credential, created_from, user_agent, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 millisecond')
       RETURNING created_at, expires_at`,
      [sessionHash(secret), s.name, s.role, s.credential, s.from, s.userAgent, SESSION_TTL_MS],
    );
    const r = rows[0]!;
    return {
      secret,
      record: {
        name: s.name,
        role: s.role,
        credential: s.credential,
        createdFrom: s.from,
        createdAt: r.created_at,
        expiresAt: r.expires_at,
      },
    };
  }

  /** The live session a cookie value names (not ended, not expired), or undefined. */
  async find(secret: string): Promise<SessionRecord | undefined> {
    const { rows } = await this.#pool.query(
      `UPDATE peak.console_sessions
          SET last_seen_at = CASE WHEN last_seen_at < now() - interval '1 minute'
                                  THEN now() ELSE last_seen_at END
        WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > now()
        RETURNING name, role, credential, created_from, created_at, expires_at`,
      [sessionHash(secret)],
    );
    const r = rows[0];
    if (r === undefined) return undefined;
    return {
      name: r.name,
      role: r.role,
      credential: r.credential,
      createdFrom: r.created_from,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
    };
  }

  /** Ends one session (logout); false when it was not live. */
  async end(secret: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      'UPDATE peak.console_sessions SET ended_at = now() WHERE id_hash = $1 AND ended_at IS NULL',
      [sessionHash(secret)],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Ends every live session made from `credential` (its token was rotated); answers how many. */
  async endAllOf(credential: string): Promise<number> {
    const { rowCount } = await this.#pool.query(
      'UPDATE peak.console_sessions SET ended_at = now() WHERE credential = $1 AND ended_at IS NULL',
      [credential],
    );
    return rowCount ?? 0;
  }

  /** Deletes sessions that ended or expired more than a day ago. */
  async prune(): Promise<number> {
    const { rowCount } = await this.#pool.query(
      `DELETE FROM peak.console_sessions
        WHERE coalesce(ended_at, expires_at) < now() - interval '1 day'`,
    );
    return rowCount ?? 0;
  }
}
