/**
 * How a caller signs a gateway request and how the gateway checks it: HMAC-SHA256, keyed by
 * the app key's secret, over a canonical form of the request (after Alibaba API Gateway and
 * AWS SigV4):
 *
 *   PEAK-HMAC-SHA256\n
 *   <METHOD>\n
 *   <path, as sent, without the query>\n
 *   <query: name=value pairs RFC 3986-encoded, sorted by name then value, joined by &>\n
 *   <signed headers: one `name:value` line each, names lowercase, sorted, values trimmed>\n
 *   <signed header names, sorted, joined by ;>\n
 *   <hex SHA-256 of the body bytes (of nothing when there is no body)>\n
 *   <timestamp: epoch ms, as sent in x-peak-timestamp>\n
 *   <nonce, as sent in x-peak-nonce>
 *
 * sent as base64url in `x-peak-signature`, with the key id in `x-peak-key` and the names of
 * the signed headers in `x-peak-signed-headers`. The timestamp must be within the gateway's
 * clock skew (default 5 min) and the nonce unused within its replay window (default 15 min).
 */
import { hmacSha256, randomSecret, sha256Hex } from '../core/secrets.js';

/** The headers a signed (or key-authenticated) request carries. */
export const SignatureHeaders = {
  key: 'x-peak-key',
  timestamp: 'x-peak-timestamp',
  nonce: 'x-peak-nonce',
  signature: 'x-peak-signature',
  signedHeaders: 'x-peak-signed-headers',
  /** `<key id>.<secret>`, for routes with `auth: 'key'`. */
  apiKey: 'x-peak-api-key',
} as const;

/** The algorithm line of the canonical request. */
export const SIGNATURE_ALGORITHM = 'PEAK-HMAC-SHA256';

/** SHA-256 of nothing, the body digest of a request without a body. */
export const EMPTY_BODY_SHA256 = sha256Hex('');

function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decodeLoose(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The canonical form of a raw query string (without `?`): decoded, re-encoded, sorted. */
export function canonicalQuery(raw: string): string {
  if (raw === '') return '';
  const pairs: [string, string][] = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([rfc3986(decodeLoose(name)), rfc3986(decodeLoose(value))]);
  }
  pairs.sort((a, b) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0,
  );
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** The parts of a request the signature covers. */
export interface CanonicalParts {
  method: string;
  /** The path as sent (percent-encoded), without the query. */
  path: string;
  /** The raw query string, without `?` ('' for none). */
  query: string;
  /** Header values by lowercase name (node:http's `req.headers` form). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Lowercase names of the headers to sign. */
  signedHeaders: readonly string[];
  /** Hex SHA-256 of the body bytes. */
  bodySha256: string;
  timestamp: string;
  nonce: string;
}

/** The string that is signed. */
export function canonicalRequest(p: CanonicalParts): string {
  const names = [...p.signedHeaders].sort();
  let headerLines = '';
  for (const name of names) {
    const v = p.headers[name];
    const value = Array.isArray(v) ? v.join(',') : (v ?? '');
    headerLines += `${name}:${value.trim()}\n`;
  }
  return `${SIGNATURE_ALGORITHM}\n${p.method.toUpperCase()}\n${p.path}\n${canonicalQuery(p.query)}\n${headerLines}${names.join(';')}\n${p.bodySha256}\n${p.timestamp}\n${p.nonce}`;
}

/** The signature of `parts` under `secret` (base64url). */
export function signCanonical(secret: string, parts: CanonicalParts): string {
  return hmacSha256(secret, canonicalRequest(parts));
}

/** What {@link signRequest} needs. */
export interface SignRequestOptions {
  method: string;
  /** The request's path and query (`/orders/7?x=1`), or a whole URL. */
  url: string;
  /** The body exactly as it will be sent (a string is sent as UTF-8). */
  body?: string | Uint8Array;
  /** Headers that will be sent; those named in `signedHeaders` are signed. */
  headers?: Readonly<Record<string, string>>;
  /** Header names to sign (lowercase). Default: `content-type` when given in `headers`. */
  signedHeaders?: readonly string[];
  keyId: string;
  secret: string;
  /** Epoch ms; default now. */
  timestamp?: number;
  /** Default: 16 random bytes, base64url. */
  nonce?: string;
}

/**
 * The headers to add to a request so the gateway accepts its signature: `x-peak-key`,
 * `x-peak-timestamp`, `x-peak-nonce`, `x-peak-signed-headers` and `x-peak-signature`.
 */
export function signRequest(o: SignRequestOptions): Record<string, string> {
  const url = new URL(o.url, 'http://gateway.invalid');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.headers ?? {})) headers[k.toLowerCase()] = v;
  const signed = (
    o.signedHeaders ?? (headers['content-type'] === undefined ? [] : ['content-type'])
  ).map((h) => h.toLowerCase());
  const timestamp = String(o.timestamp ?? Date.now());
  const nonce = o.nonce ?? randomSecret(16);
  const body = o.body ?? '';
  const signature = signCanonical(o.secret, {
    method: o.method,
    path: url.pathname,
    query: url.search.slice(1),
    headers,
    signedHeaders: signed,
    bodySha256: sha256Hex(body),
    timestamp,
    nonce,
  });
  return {
    [SignatureHeaders.key]: o.keyId,
    [SignatureHeaders.timestamp]: timestamp,
    [SignatureHeaders.nonce]: nonce,
    [SignatureHeaders.signedHeaders]: [...signed].sort().join(';'),
    [SignatureHeaders.signature]: signature,
  };
}
