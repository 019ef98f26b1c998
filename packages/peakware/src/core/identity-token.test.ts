import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from './errors.js';
import {
  checkIdentity,
  decodeIdentity,
  IDENTITY_AUDIENCE,
  jwkKey,
  newIdentityKeyPair,
  privateKeyOf,
  publicJwk,
  signIdentity,
} from './identity-token.js';

const pair = newIdentityKeyPair();
const key = { kid: pair.kid, privateKey: privateKeyOf(pair.privatePem) };
const publicKey = jwkKey(publicJwk(pair.kid, pair.publicPem));
const now = 1_700_000_000_000;
const claims = {
  sub: 'shop.gateway',
  aud: IDENTITY_AUDIENCE,
  iat: now / 1000,
  exp: now / 1000 + 600,
  jti: 'j1',
};
const check = (token: string, at = now) =>
  checkIdentity(decodeIdentity(token), publicKey, {
    audience: IDENTITY_AUDIENCE,
    nowMs: at,
    skewMs: 0,
  });
const refused = (reason: string) => (err: unknown) =>
  isPeakError(err, ErrorCodes.UNAUTHENTICATED) && err.details.reason === reason;

describe('identity tokens (Ed25519 JWT)', () => {
  it('verifies what it signed, with the claims it signed', () => {
    const token = signIdentity(key, claims);
    assert.equal(token.split('.').length, 3);
    assert.deepEqual(check(token), claims);
  });

  it('refuses a changed payload, another key, and an expired or foreign-audience token', () => {
    const token = signIdentity(key, claims);
    const [h, , s] = token.split('.');
    const other = Buffer.from(JSON.stringify({ ...claims, sub: 'evil' })).toString('base64url');
    assert.throws(() => check(`${h}.${other}.${s}`), refused('forged'));
    const stranger = newIdentityKeyPair();
    const signedElsewhere = signIdentity(
      { kid: pair.kid, privateKey: privateKeyOf(stranger.privatePem) },
      claims,
    );
    assert.throws(() => check(signedElsewhere), refused('forged'));
    assert.throws(() => check(token, now + 600_000), refused('expired'));
    assert.throws(() => check(signIdentity(key, { ...claims, aud: 'other' })), refused('audience'));
  });

  it('refuses anything but an EdDSA JWT with the claims of an identity', () => {
    const none = `${Buffer.from('{"alg":"none","kid":"k"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    assert.throws(() => decodeIdentity(none), refused('malformed'));
    assert.throws(() => decodeIdentity('a.b'), refused('malformed'));
    assert.throws(() => decodeIdentity('x'.repeat(5000)), refused('malformed'));
    const noExp = signIdentity(key, { ...claims, exp: undefined as unknown as number });
    assert.throws(() => decodeIdentity(noExp), refused('malformed'));
  });
});
