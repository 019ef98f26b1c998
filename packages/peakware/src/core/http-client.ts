/**
 * A small request/response HTTP client for the SDK's calls to the control plane (broker
 * sends and acks, span export, metrics pushes, registry calls): `node:http` over one
 * keep-alive agent per process, bodies read whole as text.
 *
 * Why not the global `fetch`: on the 2-core VM of BENCHMARKS.md a small POST through
 * undici's fetch cost 540–820 µs of client CPU against 100–260 µs here (WHATWG streams,
 * AbortSignal and Response objects per call), and these calls run once or more per order
 * in the buy chain. Streamed responses (SSE watches, NDJSON) go through {@link httpOpen}
 * on the same module, on an agent of their own (a process may hold a thousand streams;
 * they must not take the pooled sockets of short calls).
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
  /** CA certificates (PEM) to trust for an `https:` URL besides the system's roots. */
  ca?: string | Buffer;
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
// Streams hold their socket for their whole life: no pooling, no socket limit.
const streamHttpAgent = new http.Agent({ keepAlive: false });
const streamHttpsAgent = new https.Agent({ keepAlive: false });

// Agents of clients that trust a CA of their own (a dev CA from `peak tls init`), by CA.
const caAgents = new Map<string, { pooled: https.Agent; stream: https.Agent }>();

/** The https agent for `ca` (pooled for calls, unpooled for streams). */
function httpsAgentFor(ca: string | Buffer | undefined, stream: boolean): https.Agent {
  if (ca === undefined) return stream ? streamHttpsAgent : httpsAgent;
  const key = ca.toString();
  let agents = caAgents.get(key);
  if (agents === undefined) {
    agents = {
      pooled: new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, ca }),
      stream: new https.Agent({ keepAlive: false, ca }),
    };
    caAgents.set(key, agents);
  }
  return stream ? agents.stream : agents.pooled;
}

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
      agent: secure ? httpsAgentFor(init.ca, false) : httpAgent,
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

/** What {@link httpOpen} takes. */
export interface HttpOpenInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /**
   * Reject (or, once the stream runs, end it with an error) after this long without a
   * byte, ms: a server that never answers, or a stream gone quiet. Default 45 000.
   */
  idleMs?: number;
  signal?: AbortSignal;
  /** CA certificates (PEM) to trust for an `https:` URL besides the system's roots. */
  ca?: string | Buffer;
}

/** A response whose body is still streaming. */
export interface HttpStream {
  status: number;
  ok: boolean;
  headers: http.IncomingHttpHeaders;
  /** The body as it arrives; it errors when the connection breaks or goes idle. */
  body: http.IncomingMessage;
  /** Reads the rest of the body as text (for an error answer). */
  text(): Promise<string>;
  /** Ends the stream from this side. */
  close(): void;
}

/**
 * Sends one request and resolves as soon as the status and headers arrive, with the body
 * left streaming: the transport of SSE watches and NDJSON pushes. Failures look like
 * {@link httpRequest}'s (an Error whose `cause` carries the socket's `code`).
 */
export function httpOpen(url: string | URL, init: HttpOpenInit = {}): Promise<HttpStream> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  const body =
    init.body === undefined
      ? undefined
      : typeof init.body === 'string'
        ? Buffer.from(init.body, 'utf8')
        : init.body;
  const idleMs = init.idleMs ?? 45_000;
  return new Promise<HttpStream>((resolve, reject) => {
    if (init.signal?.aborted === true) {
      reject(failure('request aborted', 'ABORT_ERR', init.signal.reason));
      return;
    }
    const headers: Record<string, string | number> = { ...(init.headers ?? {}) };
    if (body !== undefined) headers['content-length'] = body.length;
    const req = (secure ? https : http).request(target, {
      method: init.method ?? 'GET',
      headers,
      agent: secure ? httpsAgentFor(init.ca, true) : streamHttpAgent,
    });
    let response: http.IncomingMessage | undefined;
    // Before the answer the request fails; after it, the body does (its reader sees why).
    const fail = (err: Error) => (response ?? req).destroy(err);
    const onAbort = () => fail(failure('request aborted', 'ABORT_ERR', init.signal?.reason));
    init.signal?.addEventListener('abort', onAbort, { once: true });
    req.once('close', () => init.signal?.removeEventListener('abort', onAbort));
    // Covers both a server that never answers and a stream gone quiet.
    req.setTimeout(idleMs, () => {
      fail(failure(`no byte from ${target.origin} in ${idleMs} ms`, 'ETIMEDOUT'));
    });
    req.on('error', (err: Error & { code?: string }) => {
      if (response !== undefined) return;
      reject(
        err.cause !== undefined && (err.cause as { code?: string }).code !== undefined
          ? err
          : failure(err.message, err.code ?? 'ECONNRESET', err),
      );
    });
    req.on('response', (res) => {
      response = res;
      const status = res.statusCode ?? 0;
      resolve({
        status,
        ok: status >= 200 && status < 300,
        headers: res.headers,
        body: res,
        text: async () => {
          const chunks: Buffer[] = [];
          for await (const c of res) chunks.push(c as Buffer);
          return Buffer.concat(chunks).toString('utf8');
        },
        close: () => {
          res.destroy();
          req.destroy();
        },
      });
    });
    req.end(body);
  });
}
