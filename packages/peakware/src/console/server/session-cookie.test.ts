import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  csrfMatches,
  csrfTokenOf,
  newSessionSecret,
  readCookie,
  sessionCookieHeader,
  sessionHash,
} from './session-cookie.js';

describe('session cookie', () => {
  it('reads one cookie among several', () => {
    assert.equal(readCookie('a=1; peak_session=abc_-9; b=2', 'peak_session'), 'abc_-9');
    assert.equal(readCookie('a=1', 'peak_session'), undefined);
    assert.equal(readCookie('peak_session=', 'peak_session'), undefined);
    assert.equal(readCookie(undefined, 'peak_session'), undefined);
  });
  it('derives a CSRF token only the session secret gives', () => {
    const a = newSessionSecret();
    const b = newSessionSecret();
    assert.notEqual(a, b);
    assert.ok(csrfMatches(a, csrfTokenOf(a)));
    assert.ok(!csrfMatches(a, csrfTokenOf(b)));
    assert.ok(!csrfMatches(a, ''));
    assert.equal(sessionHash(a).length, 32);
  });
  it('sets the cookie HttpOnly and SameSite=Strict, Secure over HTTPS', () => {
    assert.equal(
      sessionCookieHeader('v', 60, false),
      'peak_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60',
    );
    assert.match(sessionCookieHeader('v', 0, true), /Max-Age=0; Secure$/);
  });
});
