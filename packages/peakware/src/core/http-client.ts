/**
 * A small request/response HTTP client for the SDK's calls to the control plane (broker
 * sends and acks, span export, metrics pushes, registry calls): `node:http` over one
 * keep-alive agent per process, bodies read whole as text.
 *
 * Why not the global `fetch`: on the 2-core VM of BENCHMARKS.md a small POST through
 * undici's fetch cost 540–820 µs of client CPU against 100–260 µs here (WHATWG streams,
 * AbortSignal and Response objects per call), and these calls run once or more per order
 * in the buy chain. Streamed responses (long-lived watches, NDJSON) still use fetch.
 *
 * Failures look like fetch's: a network failure or a timeout rejects with an Error whose
 * `cause` carries the socket's `code` (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...); any
 * HTTP status resolves.
 */
import http from 'node:http';
import https from 'node:https';

/** What {@link httpRequest} takes. */
export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Abort and reject after this long, ms. Default 15 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A whole response. */
export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: http.IncomingHttpHeaders;
  text: string;
}

// Sockets are kept open between calls (a new loopback connection costs more than the call).
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });

function failure(message: string, code: string, cause?: unknown): Error {
  const inner = Object.assign(new Error(message, { cause }), { code });
  return new Error(`${message} (${code})`, { cause: inner });
}

/** Sends one request and resolves with the whole response (any status). */
export function httpRequest(url: string | URL, init: HttpRequestInit = {}): Promise<HttpResponse> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  const body =
    init.body === undefined
      ? undefined
      : typeof init.body === 'string'
        ? Buffer.from(init.body, 'utf8')
        : init.body;
  return new Promise<HttpResponse>((resolve, reject) => {
    if (init.signal?.aborted === true) {
      reject(failure('request aborted', 'ABORT_ERR', init.signal.reason));
      return;
    }
    const headers: Record<string, string | number> = { ...(init.headers ?? {}) };
    if (body !== undefined) headers['content-length'] = body.length;
    const req = (secure ? https : http).request(target, {
      method: init.method ?? 'GET',
      headers,
      agent: secure ? httpsAgent : httpAgent,
    });
    let settled = false;
    const timeoutMs = init.timeoutMs ?? 15_000;
    const timer = setTimeout(() => {
      req.destroy(failure(`no answer from ${target.origin} in ${timeoutMs} ms`, 'ETIMEDOUT'));
    }, timeoutMs);
    const onAbort = () => req.destroy(failure('request aborted', 'ABORT_ERR', init.signal?.reason));
    init.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (err: Error | undefined, response?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(response!);
    };
    req.on('error', (err: Error & { code?: string }) => {
      finish(
        err.cause !== undefined && (err.cause as { code?: string }).code !== undefined
          ? err
          : failure(err.message, err.code ?? 'ECONNRESET', err),
      );
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: Error & { code?: string }) =>
        finish(failure(err.message, err.code ?? 'ECONNRESET', err)),
      );
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        finish(undefined, {
          status,
          ok: status >= 200 && status < 300,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    req.end(body);
  });
}
