/**
 * The console's session cookie and its CSRF token. The cookie holds 32 random bytes
 * (base64url), HttpOnly and SameSite=Strict, so page scripts cannot read it and other
 * sites' pages do not send it; the server stores only its SHA-256. The CSRF token is an
 * HMAC of the cookie, so the server checks it without storing it, and only a page that was
 * given it (the console, through `GET /api/v1/console/session`) can send it.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The cookie's name. */
export const SESSION_COOKIE = 'peak_session';

/** The header every change made with a session carries its CSRF token in. */
export const CSRF_HEADER = 'x-peak-csrf';

/** A new session cookie value. */
export function newSessionSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** What the database keeps of a cookie value. */
export function sessionHash(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** The CSRF token of a session. */
export function csrfTokenOf(secret: string): string {
  return createHmac('sha256', secret).update('peak-console-csrf').digest('base64url');
}

/** Whether `presented` is the session's CSRF token (constant time). */
export function csrfMatches(secret: string, presented: string): boolean {
  const want = Buffer.from(csrfTokenOf(secret));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** One cookie's value from a `Cookie` header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value.length === 0 ? undefined : value;
    }
  }
  return undefined;
}

/** The `Set-Cookie` value that sets (or, with `maxAgeSeconds` 0, clears) the session cookie. */
export function sessionCookieHeader(
  secret: string,
  maxAgeSeconds: number,
  secure: boolean,
): string {
  return `${SESSION_COOKIE}=${secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
