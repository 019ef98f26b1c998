/**
 * The gateway's HTTP/1.1 front: serves the common request straight off the socket and hands
 * the connection to node:http for everything else.
 *
 * Node's HTTP server costs about a quarter of the gateway's CPU a request (an IncomingMessage
 * stream, a ServerResponse, the body's events; see BENCHMARKS.md, gateway). Most requests an
 * API gateway takes are small and plain: a complete head, a `content-length` body, keep-alive.
 * The front parses those itself and answers with one write. The first request of a connection
 * that is anything else (a head or body split across reads, chunked bodies, `expect`,
 * `upgrade`, HTTP/1.0, HEAD, a duplicate or malformed header, a body over the front's limit, a
 * route that streams its answer) hands the whole connection, with every byte not yet answered,
 * to a node:http server, which parses it again and from then on serves it, with all of its
 * checks and its error answers. So the front never answers a request node:http would refuse.
 * Over TLS the front listens on a `tls.Server` and works on the decrypted stream alike.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes } from './errors.js';

/** A request the front read: its head parsed, its whole body in memory. */
export interface FrontRequest {
  readonly method: string;
  readonly url: string;
  /** By lowercase name, as node:http's `req.headers` (the front takes no duplicates). */
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly body: Buffer;
  /**
   * Gives the connection to node:http with this request unanswered, so node:http serves it
   * (and what follows on the connection). For a handler that needs node's streams. Only
   * before anything was written.
   */
  handOver(): void;
  /**
   * Calls `listener` once if the client closes the connection, or ends its side, before this
   * request's answer was written: the caller is gone, as node:http tells it (`res` closing
   * unfinished; node:http aborts a request whose client half-closed). The answer is still
   * written to a half-closed client.
   */
  onClientGone(listener: () => void): void;
}

/** The answer to a `FrontRequest`: the subset of `ServerResponse` the gateway uses. */
export interface FrontResponse {
  readonly headersSent: boolean;
  setHeader(name: string, value: string): void;
  writeHead(status: number, headers?: OutgoingHttpHeaders | string[]): void;
  end(body?: string): void;
  destroy(err?: Error): void;
}

/** How a front serves and where it sends what it does not. */
export interface HttpFrontOptions {
  /** Takes over the connections the front does not serve; not listening itself. */
  readonly fallback: http.Server;
  /** Called with each request the front serves. */
  handle(req: FrontRequest, res: FrontResponse): void;
  /** An idle keep-alive connection is closed after this long (node:http's `keepAliveTimeout`). */
  readonly keepAliveTimeoutMs: number;
  /** A body must arrive within this long of its head (node:http's `requestTimeout`). */
  readonly requestTimeoutMs: number;
  /** The largest body the front reads itself; a larger one goes to node:http. */
  readonly maxBodyBytes: number;
  /**
   * Serve HTTPS with these (key and certificate at least): the front listens on a
   * `tls.Server` and hands decrypted connections over as it does plain ones. Absent: plain
   * HTTP.
   */
  readonly tls?: tls.TlsOptions;
}

/**
 * The largest body the front reads itself, as its users set `maxBodyBytes` (a larger one is
 * node:http's, streamed): buffering more than this per request is not worth the saving.
 */
export const FRONT_MAX_BODY_BYTES = 256 * 1024;

const MAX_HEAD_BYTES = 16 * 1024; // node:http's default maxHeaderSize
/** Bytes a busy connection buffers (pipelined requests) before it stops reading. */
const MAX_BUFFERED = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** A header line: a token, a colon, a value of visible ASCII, spaces, tabs or obs-text. */
const HEADER_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*$/;
/** A request target in origin form without controls, spaces or non-ASCII. */
const TARGET = /^\/[\x21-\x7e]*$/;
const DIGITS = /^\d{1,15}$/;
const BAD_HEADER_TEXT = /[\r\n\0]/;
/** Headers whose presence sends the connection to node:http. */
const HANDED_OVER_HEADERS = new Set(['transfer-encoding', 'expect', 'upgrade']);

let dateSecond = -1;
let dateText = '';
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

type Parsed =
  | { readonly kind: 'wait' }
  | { readonly kind: 'hand-over' }
  | {
      readonly kind: 'request';
      readonly method: string;
      readonly url: string;
      readonly headers: IncomingHttpHeaders;
      readonly body: Buffer;
      readonly size: number;
      readonly close: boolean;
    };

const WAIT: Parsed = { kind: 'wait' };
const HAND_OVER: Parsed = { kind: 'hand-over' };

/** The request at the start of `buf`: complete, waiting for its body, or not the front's. */
function parse(buf: Buffer, maxBody: number): Parsed {
  const headEnd = buf.indexOf(HEAD_END);
  // A head that did not arrive whole in the bytes read so far goes to node:http, whose
  // headers timeout and size limit then apply.
  if (headEnd < 0 || headEnd > MAX_HEAD_BYTES) return HAND_OVER;
  const lines = buf.toString('latin1', 0, headEnd).split('\r\n');
  const start = lines[0]!;
  const sp1 = start.indexOf(' ');
  const sp2 = start.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || start.slice(sp2 + 1) !== 'HTTP/1.1') return HAND_OVER;
  const method = start.slice(0, sp1);
  const url = start.slice(sp1 + 1, sp2);
  if (!METHODS.has(method) || !TARGET.test(url)) return HAND_OVER;
  const headers = Object.create(null) as Record<string, string>;
  let close = false;
  let length = 0;
  let host = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!HEADER_LINE.test(line)) return HAND_OVER;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    if (headers[name] !== undefined || HANDED_OVER_HEADERS.has(name)) return HAND_OVER;
    const value = line.slice(colon + 1).trim();
    headers[name] = value;
    if (name === 'content-length') {
      if (!DIGITS.test(value)) return HAND_OVER;
      length = Number(value);
      if (length > maxBody) return HAND_OVER;
    } else if (name === 'connection') {
      const v = value.toLowerCase();
      if (v.includes('upgrade')) return HAND_OVER;
      if (v.includes('close')) close = true;
    } else if (name === 'host') host = true;
  }
  if (!host) return HAND_OVER;
  const size = headEnd + 4 + length;
  if (buf.length < size) return WAIT;
  return {
    kind: 'request',
    method,
    url,
    headers,
    body: buf.subarray(headEnd + 4, size),
    size,
    close,
  };
}

/** The front's listening server and its connections. */
export class HttpFront {
  /** The listening server: a `tls.Server` when the options hold `tls`, else a `net.Server`. */
  readonly server: net.Server;
  readonly #o: HttpFrontOptions;
  readonly #connections = new Set<FrontConnection>();
  /**
   * Connections handed to node:http, with node's requests in flight on each. node:http tracks
   * its connections only when it listens itself (`closeIdleConnections` does nothing here),
   * so `close()` needs this to end the idle ones.
   */
  readonly #handed = new Map<net.Socket, number>();
  #closing = false;

  constructor(options: HttpFrontOptions) {
    this.#o = options;
    options.fallback.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const s = req.socket;
      const n = this.#handed.get(s);
      if (n === undefined) return;
      this.#handed.set(s, n + 1);
      res.once('close', () => {
        const now = this.#handed.get(s);
        if (now === undefined) return;
        this.#handed.set(s, now - 1);
        if (this.#closing && now === 1) s.end();
      });
    });
    const connection = (socket: net.Socket) => {
      const c = new FrontConnection(socket, this.#o, this);
      this.#connections.add(c);
    };
    // Half-open as node:http's own server: a client that sends its request and then ends its
    // side still gets the answer.
    this.server =
      options.tls === undefined
        ? net.createServer({ allowHalfOpen: true }, connection)
        : tls.createServer({ ...options.tls, allowHalfOpen: true }, connection);
  }

  /** Whether `close()` was called: answers then say `connection: close`. */
  get closing(): boolean {
    return this.#closing;
  }

  /** @internal A connection ended or went to node:http. */
  forget(c: FrontConnection): void {
    this.#connections.delete(c);
  }

  /** @internal `socket` is node:http's from now on. */
  handedOver(socket: net.Socket): void {
    this.#handed.set(socket, 0);
    socket.once('close', () => this.#handed.delete(socket));
  }

  /**
   * Stops taking connections; idle ones close now, busy ones after their answer (node:http's
   * connections likewise). Resolves when every connection is gone.
   */
  close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.#connections) c.closeIfIdle();
    for (const [socket, inFlight] of this.#handed) if (inFlight === 0) socket.destroy();
    return closed;
  }
}

class FrontConnection {
  readonly #socket: net.Socket;
  readonly #o: HttpFrontOptions;
  readonly #front: HttpFront;
  #buf: Buffer | null = null;
  #busy = false;
  #looping = false;
  #gone = false;
  /** The client ended its side: answer what is complete, then end ours. */
  #peerEnded = false;
  #bodyTimer: NodeJS.Timeout | undefined;
  readonly #peer: { readonly remoteAddress?: string | undefined };
  /** Told if the connection closes while the request in flight has no answer yet. */
  #goneListener: (() => void) | undefined;

  constructor(socket: net.Socket, options: HttpFrontOptions, front: HttpFront) {
    this.#socket = socket;
    this.#peer = { remoteAddress: socket.remoteAddress };
    this.#o = options;
    this.#front = front;
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
    socket.setTimeout(options.keepAliveTimeoutMs, this.#onIdle);
  }

  closeIfIdle(): void {
    if (!this.#busy && !this.#gone) this.#socket.destroy();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#busy) {
      if (this.#buf.length > MAX_BUFFERED) this.#socket.pause();
      return;
    }
    this.#next();
  };

  readonly #onEnd = (): void => {
    this.#peerEnded = true;
    this.#clientGone();
    this.#next();
  };

  readonly #onError = (): void => {
    this.#socket.destroy();
  };

  readonly #onClose = (): void => {
    clearTimeout(this.#bodyTimer);
    if (!this.#gone) {
      this.#gone = true;
      this.#front.forget(this);
    }
    this.#clientGone();
  };

  /** Tells the request in flight, if it asked, that its client left (or ended its side). */
  #clientGone(): void {
    const listener = this.#goneListener;
    this.#goneListener = undefined;
    if (listener !== undefined && this.#busy) listener();
  }

  readonly #onIdle = (): void => {
    // A request in flight has the route's own timeout; only an idle connection is closed here.
    if (!this.#busy && this.#buf === null) this.#socket.destroy();
  };

  /** Serves the requests complete in the buffer, one at a time. */
  #next(): void {
    if (this.#looping) return;
    this.#looping = true;
    try {
      while (!this.#busy && !this.#gone && this.#buf !== null) {
        const p = parse(this.#buf, this.#o.maxBodyBytes);
        if (p.kind === 'hand-over') {
          this.#handOver(this.#buf);
          return;
        }
        if (p.kind === 'wait') {
          if (this.#peerEnded) break; // the rest of the body cannot come
          this.#bodyTimer ??= setTimeout(this.#bodyLate, this.#o.requestTimeoutMs);
          return;
        }
        clearTimeout(this.#bodyTimer);
        this.#bodyTimer = undefined;
        const raw = this.#buf;
        this.#buf = raw.length === p.size ? null : raw.subarray(p.size);
        this.#busy = true;
        const req = new Request(this, p.method, p.url, p.headers, p.body, raw.subarray(0, p.size));
        try {
          this.#o.handle(req, new Response(this, p.close));
        } catch {
          // A handler that throws leaves no answer to send: end the connection.
          this.#socket.destroy();
          return;
        }
      }
      if (this.#peerEnded && !this.#busy && !this.#gone) this.#socket.end();
    } finally {
      this.#looping = false;
    }
  }

  readonly #bodyLate = (): void => {
    this.#bodyTimer = undefined;
    if (this.#busy || this.#gone) return;
    const text = JSON.stringify({
      error: {
        code: ErrorCodes.GATEWAY_BAD_REQUEST,
        message: `the request's body did not arrive within ${this.#o.requestTimeoutMs} ms of its head; send the whole body its content-length announces`,
      },
    });
    this.#socket.end(
      `HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
    this.#buf = null;
    this.#busy = true; // the connection is ending: serve nothing more on it
  };

  /** @internal Calls `listener` if the client leaves before the answer in flight. */
  onClientGone(listener: () => void): void {
    if (this.#gone || this.#socket.destroyed || this.#peerEnded) listener();
    else this.#goneListener = listener;
  }

  /** @internal Writes an answer and goes on with the next request (or closes). */
  answer(text: string, close: boolean): void {
    this.#goneListener = undefined;
    if (this.#gone || this.#socket.destroyed) return;
    if (close) {
      this.#socket.end(text);
      this.#buf = null;
      return;
    }
    this.#socket.write(text);
    this.#busy = false;
    if (this.#socket.isPaused()) this.#socket.resume();
    if (this.#front.closing && this.#buf === null) {
      this.#socket.end();
      return;
    }
    if (!this.#looping) this.#next();
  }

  /** @internal Ends the connection without an answer. */
  destroy(err?: Error): void {
    this.#socket.destroy(err);
  }

  /**
   * @internal Gives the connection to node:http with `request` (the bytes of the request in
   * flight) and everything read after it as the next bytes it reads.
   */
  handOver(request: Buffer): void {
    this.#goneListener = undefined;
    if (this.#busy) this.#busy = false;
    this.#handOver(this.#buf === null ? request : Buffer.concat([request, this.#buf]));
  }

  #handOver(unanswered: Buffer | null): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#front.forget(this);
    clearTimeout(this.#bodyTimer);
    const s = this.#socket;
    if (s.readableEnded) {
      // The client has ended its side: node:http could read nothing more (a stream takes no
      // bytes back after its end), so the request is dropped with the connection.
      s.destroy();
      return;
    }
    s.removeListener('data', this.#onData);
    s.removeListener('error', this.#onError);
    s.removeListener('close', this.#onClose);
    s.setTimeout(0);
    s.removeListener('timeout', this.#onIdle);
    s.pause();
    if (unanswered !== null && unanswered.length > 0) s.unshift(unanswered);
    this.#buf = null;
    this.#front.handedOver(s);
    this.#o.fallback.emit('connection', s);
    s.resume();
  }

  /** Whether the front is closing: the answer in flight is the connection's last. */
  get frontClosing(): boolean {
    return this.#front.closing;
  }

  /** The peer's address, as `req.socket` gives it. */
  get peer(): { readonly remoteAddress?: string | undefined } {
    return this.#peer;
  }

  /** The `keep-alive: timeout=` an answer announces. */
  get keepAliveSeconds(): number {
    return Math.floor(this.#o.keepAliveTimeoutMs / 1000);
  }
}

class Request implements FrontRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly #conn: FrontConnection;
  /** This request's bytes (head and body). */
  readonly #raw: Buffer;

  constructor(
    conn: FrontConnection,
    method: string,
    url: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
    raw: Buffer,
  ) {
    this.#conn = conn;
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.body = body;
    this.#raw = raw;
  }

  get socket(): { readonly remoteAddress?: string | undefined } {
    return this.#conn.peer;
  }

  handOver(): void {
    this.#conn.handOver(this.#raw);
  }

  onClientGone(listener: () => void): void {
    this.#conn.onClientGone(listener);
  }
}

class Response implements FrontResponse {
  headersSent = false;
  readonly #conn: FrontConnection;
  #close: boolean;
  #ended = false;
  #status = 200;
  /** Name/value pairs from `setHeader`, then from `writeHead`. */
  #headers: string[] = [];

  constructor(conn: FrontConnection, close: boolean) {
    this.#conn = conn;
    this.#close = close;
  }

  setHeader(name: string, value: string): void {
    if (this.headersSent) throw new Error('headers were already written');
    checkHeader(name, value);
    const lower = name.toLowerCase();
    for (let i = 0; i < this.#headers.length; i += 2)
      if (this.#headers[i]!.toLowerCase() === lower) {
        this.#headers[i + 1] = value;
        return;
      }
    this.#headers.push(name, value);
  }

  /** As node's: checks every header (nothing is kept when one is invalid), then the head is set. */
  writeHead(status: number, headers?: OutgoingHttpHeaders | string[]): void {
    if (this.headersSent) throw new Error('headers were already written');
    const pairs: string[] = [];
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) pairs.push(headers[i]!, headers[i + 1]!);
    } else if (headers !== undefined) {
      for (const k in headers) {
        const v = (headers as OutgoingHttpHeaders)[k];
        if (v === undefined) continue;
        if (Array.isArray(v)) for (const one of v) pairs.push(k, String(one));
        else pairs.push(k, String(v));
      }
    }
    for (let i = 0; i < pairs.length; i += 2) checkHeader(pairs[i]!, pairs[i + 1]!);
    for (const p of pairs) this.#headers.push(p);
    this.#status = status;
    this.headersSent = true;
  }

  end(body = ''): void {
    if (this.#ended) return;
    this.#ended = true;
    this.headersSent = true;
    let head = `HTTP/1.1 ${this.#status} ${http.STATUS_CODES[this.#status] ?? 'Unknown'}\r\n`;
    let length = false;
    const h = this.#headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      const value = h[i + 1]!;
      const lower = name.length === 14 || name.length === 10 ? name.toLowerCase() : '';
      if (lower === 'content-length') length = true;
      else if (lower === 'connection') {
        if (value.toLowerCase().includes('close')) this.#close = true;
        continue;
      }
      head += `${name}: ${value}\r\n`;
    }
    if (this.#conn.frontClosing) this.#close = true;
    const bodyless = this.#status === 204 || this.#status === 304 || this.#status < 200;
    if (!length && !bodyless) head += `content-length: ${Buffer.byteLength(body)}\r\n`;
    head += `date: ${httpDate()}\r\n`;
    head += this.#close
      ? 'connection: close\r\n\r\n'
      : `connection: keep-alive\r\nkeep-alive: timeout=${this.#conn.keepAliveSeconds}\r\n\r\n`;
    this.#conn.answer(bodyless ? head : head + body, this.#close);
  }

  destroy(err?: Error): void {
    this.#ended = true;
    this.headersSent = true;
    this.#conn.destroy(err);
  }
}

/** Throws, as node:http does, for a header that would split the answer. */
function checkHeader(name: string, value: string): void {
  if (BAD_HEADER_TEXT.test(name) || BAD_HEADER_TEXT.test(value))
    throw new TypeError(`invalid character in header ${JSON.stringify(name)}`);
}
