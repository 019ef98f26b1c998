/**
 * The signed identity the control plane issues an app and RPC providers verify offline: a
 * JWT (compact JWS) signed with Ed25519 (`alg: EdDSA`), claims `sub` (the app), `aud`
 * (`peak-rpc`), `iat`, `exp` and `jti`, the key named by `kid`. Public keys travel as a JSON
 * Web Key Set (`kty: OKP`, `crv: Ed25519`).
 *
 * Written on node:crypto, not a JOSE library: one algorithm is all the stack needs, so
 * there is no `alg` to negotiate (a token that names another is refused before any key is
 * touched), and the SDK gains no dependency. Verifying is one `crypto.verify` (about 50 µs);
 * callers cache the result per token, so RPC pays it once per connection.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { ErrorCodes, PeakError } from './errors.js';

/** The audience of identities presented to RPC providers. */
export const IDENTITY_AUDIENCE = 'peak-rpc';

/** One public key of a JSON Web Key Set. */
export interface IdentityJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  /** The public key, base64url. */
  x: string;
  kid: string;
  use?: 'sig';
  alg?: 'EdDSA';
}

/** A JSON Web Key Set of identity keys. */
export interface IdentityJwks {
  keys: IdentityJwk[];
}

/** What an identity says. */
export interface IdentityClaims {
  /** The app. */
  sub: string;
  aud: string;
  /** Issued at, epoch seconds. */
  iat: number;
  /** Expires at, epoch seconds. */
  exp: number;
  /** A unique id, for logs. */
  jti: string;
  iss?: string;
}

/** A decoded identity whose signature has not been checked yet. */
export interface DecodedIdentity {
  kid: string;
  claims: IdentityClaims;
  /** The signed part (`header.payload`). */
  signed: Buffer;
  signature: Buffer;
}

/** A signing key: its id and private key. */
export interface IdentitySigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** A new Ed25519 key pair as PEM (PKCS#8 private, SPKI public) with a random key id. */
export function newIdentityKeyPair(): { kid: string; privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    kid: randomBytes(9).toString('base64url'),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The JWK of an Ed25519 public key (PEM). */
export function publicJwk(kid: string, publicPem: string): IdentityJwk {
  const jwk = createPublicKey(publicPem).export({ format: 'jwk' }) as { x?: string };
  if (jwk.x === undefined) throw new Error('not an Ed25519 public key');
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, use: 'sig', alg: 'EdDSA' };
}

/** The key object of a JWK of the set; throws on anything but an Ed25519 key. */
export function jwkKey(jwk: IdentityJwk): KeyObject {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new Error(`key ${String(jwk.kid)} is not an Ed25519 key`);
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
}

/** The private key object of a PEM. */
export function privateKeyOf(pem: string): KeyObject {
  return createPrivateKey(pem);
}

const HEADER_CACHE = new Map<string, string>();

/** Signs `claims` with `key`: a compact JWS. */
export function signIdentity(key: IdentitySigningKey, claims: IdentityClaims): string {
  let header = HEADER_CACHE.get(key.kid);
  if (header === undefined) {
    header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: key.kid })).toString(
      'base64url',
    );
    HEADER_CACHE.set(key.kid, header);
  }
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signature = sign(null, Buffer.from(`${header}.${payload}`), key.privateKey);
  return `${header}.${payload}.${signature.toString('base64url')}`;
}

/** Why an identity was refused: `missing`, `malformed`, `unknown-key`, `forged`, `expired`, `audience`. */
export type IdentityRefusal =
  | 'missing'
  | 'malformed'
  | 'unknown-key'
  | 'forged'
  | 'expired'
  | 'audience';

/** PEAK_UNAUTHENTICATED for an identity refused for `reason`, with `details.reason`. */
export function identityError(reason: IdentityRefusal, message: string): PeakError {
  return new PeakError(ErrorCodes.UNAUTHENTICATED, message, { details: { reason } });
}

function parseJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/**
 * Splits and parses a token without checking its signature; throws PEAK_UNAUTHENTICATED
 * (`malformed`) for anything but an EdDSA JWT with the claims an identity carries.
 */
export function decodeIdentity(token: string): DecodedIdentity {
  const malformed = (why: string) =>
    identityError('malformed', `the caller identity is not a Peakware identity token: ${why}`);
  if (token.length > 4096) throw malformed('it is longer than 4096 characters');
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed('a JWT has three dot-separated parts');
  let header: { alg?: unknown; kid?: unknown };
  let claims: Partial<IdentityClaims>;
  try {
    header = parseJson(parts[0]!) as typeof header;
    claims = parseJson(parts[1]!) as Partial<IdentityClaims>;
  } catch {
    throw malformed('its header or payload is not base64url JSON');
  }
  if (header.alg !== 'EdDSA') throw malformed(`its alg is ${String(header.alg)}, not EdDSA`);
  if (typeof header.kid !== 'string') throw malformed('it names no key (kid)');
  if (
    typeof claims.sub !== 'string' ||
    typeof claims.aud !== 'string' ||
    typeof claims.exp !== 'number' ||
    typeof claims.iat !== 'number' ||
    typeof claims.jti !== 'string'
  ) {
    throw malformed('it lacks sub, aud, iat, exp or jti');
  }
  return {
    kid: header.kid,
    claims: claims as IdentityClaims,
    signed: Buffer.from(`${parts[0]}.${parts[1]}`),
    signature: Buffer.from(parts[2]!, 'base64url'),
  };
}

/**
 * Checks a decoded identity's signature with `key`, its audience and its expiry at
 * `nowMs` (allowing `skewMs` of clock difference); returns its claims or throws
 * PEAK_UNAUTHENTICATED naming why.
 */
export function checkIdentity(
  decoded: DecodedIdentity,
  key: KeyObject,
  options: { audience: string; nowMs: number; skewMs: number },
): IdentityClaims {
  if (!verify(null, decoded.signed, key, decoded.signature)) {
    throw identityError(
      'forged',
      `the caller identity of app '${decoded.claims.sub}' does not carry a valid signature of key ${decoded.kid}: it was not issued by this control plane, or it was changed`,
    );
  }
  if (decoded.claims.aud !== options.audience) {
    throw identityError(
      'audience',
      `the caller identity is for '${decoded.claims.aud}', not '${options.audience}'`,
    );
  }
  if (decoded.claims.exp * 1000 + options.skewMs <= options.nowMs) {
    throw identityError(
      'expired',
      `the caller identity of app '${decoded.claims.sub}' expired at ${new Date(decoded.claims.exp * 1000).toISOString()}; the app renews it from the control plane (AppIdentity)`,
    );
  }
  return decoded.claims;
}
