import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isPeakError } from '../core/errors.js';
import {
  IDENTITY_AUDIENCE,
  newIdentityKeyPair,
  privateKeyOf,
  publicJwk,
  signIdentity,
} from '../core/identity-token.js';
import { IdentityVerifier } from './identity-verifier.js';

const pair = newIdentityKeyPair();
const key = { kid: pair.kid, privateKey: privateKeyOf(pair.privatePem) };
const jwks = { keys: [publicJwk(pair.kid, pair.publicPem)] };
const identity = (app: string, expSeconds: number) =>
  signIdentity(key, { sub: app, aud: IDENTITY_AUDIENCE, iat: 0, exp: expSeconds, jti: app });
const refused = (reason: string) => (err: unknown) =>
  isPeakError(err, ErrorCodes.UNAUTHENTICATED) && err.details.reason === reason;

describe('IdentityVerifier with keys in hand', () => {
  it('verifies synchronously, caches per token, and refuses once expired', () => {
    let now = 1_000_000;
    const verifier = new IdentityVerifier({ keys: jwks, now: () => now, clockSkewMs: 0 });
    const token = identity('shop.gateway', 2000);
    const first = verifier.verify(token);
    assert.ok(!(first instanceof Promise));
    assert.deepEqual(first, { app: 'shop.gateway', expiresAt: 2_000_000 });
    assert.equal(verifier.verify(token), first, 'the second check is the cached one');
    now = 2_000_000;
    assert.throws(() => verifier.verify(token), refused('expired'));
  });

  it('refuses a key it does not know without asking anyone when it has no control plane', () => {
    const verifier = new IdentityVerifier({ keys: jwks });
    const stranger = newIdentityKeyPair();
    const token = signIdentity(
      { kid: stranger.kid, privateKey: privateKeyOf(stranger.privatePem) },
      { sub: 'evil', aud: IDENTITY_AUDIENCE, iat: 0, exp: 4_000_000_000, jti: 'x' },
    );
    assert.throws(() => verifier.verify(token), refused('unknown-key'));
  });
});
