/**
 * A small HTTP/1.1 client for load generation: keep-alive connections to one origin, one
 * request at a time on each, opened on demand up to a limit, responses parsed by
 * content-length or chunked encoding. It does only what a generator needs (no redirects,
 * no TLS, no pipelining), which keeps a request's cost close to wrk's: node:http spends
 * several times more CPU per request, and that CPU is load the generator cannot send.
 * A request that never varies is serialised once ({@link HttpPool.prepare}) and sent with a
 * callback ({@link HttpPool.send}): no string building, encoding or promise per request.
 */
import net from 'node:net';
import { ErrorCodes, PeakError } from '../core/errors.js';

/** One request. */
export interface HttpRequestSpec {
  method: string;
  /** Path and query, starting with `/`. */
  path: string;
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
}

/** One answer. */
export interface HttpResult {
  status: number;
  /** Header names in lower case (the last value when repeated). */
  headers: Record<string, string>;
  body: Buffer;
}

/** Options of {@link HttpPool}. */
export interface HttpPoolOptions {
  /** The origin, `http://host:port`. */
  url: string;
  /** Most connections open at once; further requests wait for one (their wait counts in their latency). Default 256. */
  maxConnections?: number;
  /** A request unanswered this long fails (its connection is closed). Default 10 000 ms. */
  timeoutMs?: number;
}

/** A request serialised once ({@link HttpPool.prepare}), sent as often as wanted. */
export interface PreparedRequest {
  /** The request's bytes: head and body. */
  readonly bytes: Buffer;
  /** A HEAD request (its answer has no body whatever its length says). */
  readonly head: boolean;
}

/** Called once per request sent: an error (network, timeout, malformed answer) or the answer. */
export type SendCallback = (err: Error | undefined, res: HttpResult | undefined) => void;

interface Pending {
  done: SendCallback;
  head: boolean;
  startedAt: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*([^\r]*?)[ \t]*(?:\r|$)/i;
const STATUS_LINE = /^HTTP\/1\.[01] [1-5]\d\d(?: |\r|$)/;
const CHUNK_SIZE = /^[0-9a-fA-F]{1,12}[ \t]*(?:;.*)?$/;
/** Most bytes of an answer's head (status line and headers). */
const MAX_HEAD = 64 * 1024;
const CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;
const CLOSE = /\r\nconnection:[ \t]*close/i;

/** An answer; its headers are parsed when first read (a generator rarely reads them). */
class Answer implements HttpResult {
  #headers: Record<string, string> | undefined;

  constructor(
    readonly status: number,
    readonly head: string,
    readonly body: Buffer,
  ) {}

  get headers(): Record<string, string> {
    if (this.#headers !== undefined) return this.#headers;
    const headers: Record<string, string> = {};
    const lines = this.head.split('\r\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon > 0)
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    this.#headers = headers;
    return headers;
  }
}

class Connection {
  readonly socket: net.Socket;
  current: Pending | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #status = 0;
  #head: string | undefined;
  #length = -1;
  #chunked = false;
  #close = false;
  #chunks: Buffer[] = [];
  #chunkPos = 0;

  constructor(
    socket: net.Socket,
    readonly onDone: (c: Connection, keep: boolean) => void,
    readonly onBroken: (c: Connection, err: Error) => void,
  ) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', (err) => this.onBroken(this, err));
    socket.on('close', () => this.onBroken(this, new Error('connection closed by the server')));
  }

  send(p: Pending, bytes: string | Buffer): void {
    this.current = p;
    if (typeof bytes === 'string') this.socket.write(bytes, 'latin1');
    else this.socket.write(bytes);
  }

  #reset(): void {
    this.#head = undefined;
    this.#status = 0;
    this.#length = -1;
    this.#chunked = false;
    this.#close = false;
    this.#chunks = [];
    this.#chunkPos = 0;
  }

  /**
   * Bytes read into the pool's shared read buffer: parsed now, and what is kept (a partial
   * answer, a body) is copied out, since the next read overwrites them.
   */
  read(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    this.#parse();
    if (this.#buf.length > 0 && this.#buf.buffer === d.buffer) {
      const kept = Buffer.allocUnsafe(this.#buf.length);
      this.#buf.copy(kept);
      this.#buf = kept;
    }
  }

  #parse(): void {
    for (;;) {
      if (this.current === undefined) {
        if (this.#buf.length > 0)
          this.onBroken(this, new Error('unsolicited bytes from the server'));
        return;
      }
      if (this.#head === undefined && !this.#parseHead()) return;
      const body = this.#parseBody();
      if (body === undefined) return;
      const p = this.current;
      const result = new Answer(this.#status, this.#head!, body);
      const keep = !this.#close;
      this.current = undefined;
      this.#reset();
      // The connection goes back to the pool first, so a callback may send on it at once.
      this.onDone(this, keep);
      p.done(undefined, result);
      if (this.#buf.length === 0 || !keep) return;
    }
  }

  #parseHead(): boolean {
    const end = this.#buf.indexOf(CRLF2);
    if (end < 0) {
      if (this.#buf.length > MAX_HEAD) this.#malformed(`a head longer than ${MAX_HEAD} bytes`);
      return false;
    }
    const head = this.#buf.toString('latin1', 0, end);
    if (!STATUS_LINE.test(head)) {
      this.#malformed(`not an HTTP/1.x answer: ${JSON.stringify(head.slice(0, 40))}`);
      return false;
    }
    const status = Number(head.slice(9, 12));
    const cl = CONTENT_LENGTH.exec(head);
    if (cl !== null && !/^\d{1,15}$/.test(cl[1]!)) {
      this.#malformed(`a bad content-length: ${JSON.stringify(cl[1])}`);
      return false;
    }
    this.#status = status;
    this.#head = head;
    this.#buf = this.#buf.subarray(end + 4);
    this.#chunked = CHUNKED.test(head);
    const noBody = this.current!.head || status === 204 || status === 304 || status < 200;
    // RFC 9112 6.3: chunked wins over a content-length; neither means read to the close.
    this.#length = noBody ? 0 : this.#chunked ? -1 : cl !== null ? Number(cl[1]) : -2;
    this.#close = CLOSE.test(head) || this.#length === -2;
    return true;
  }

  #malformed(what: string): void {
    this.onBroken(this, new Error(`malformed answer from the server: ${what}`));
  }

  /** The complete body, or undefined while more bytes are needed. */
  #parseBody(): Buffer | undefined {
    if (this.#length >= 0) {
      if (this.#buf.length < this.#length) return undefined;
      const body = Buffer.allocUnsafe(this.#length);
      this.#buf.copy(body, 0, 0, this.#length);
      this.#buf = this.#buf.subarray(this.#length);
      return body;
    }
    if (this.#length === -2) return undefined; // read to close: completed in onBroken
    // chunked: <hex size>\r\n<data>\r\n ... 0\r\n\r\n
    for (;;) {
      const nl = this.#buf.indexOf('\r\n', this.#chunkPos, 'latin1');
      if (nl < 0) {
        if (this.#buf.length - this.#chunkPos > MAX_HEAD)
          this.#malformed('a chunk size line too long');
        return undefined;
      }
      const line = this.#buf.toString('latin1', this.#chunkPos, nl);
      const size = CHUNK_SIZE.test(line) ? Number.parseInt(line, 16) : Number.NaN;
      if (!Number.isSafeInteger(size)) {
        this.#malformed(`a bad chunk size: ${JSON.stringify(line.slice(0, 40))}`);
        return undefined;
      }
      if (size === 0) {
        const end = this.#buf.indexOf(CRLF2, nl - 2 < 0 ? 0 : nl - 2);
        if (end < 0) return undefined;
        const body = Buffer.concat(this.#chunks);
        this.#buf = this.#buf.subarray(end + 4);
        return body;
      }
      if (this.#buf.length < nl + 2 + size + 2) return undefined;
      if (this.#buf[nl + 2 + size] !== 13 || this.#buf[nl + 3 + size] !== 10) {
        this.#malformed('a chunk not ended by CRLF');
        return undefined;
      }
      const chunk = Buffer.allocUnsafe(size);
      this.#buf.copy(chunk, 0, nl + 2, nl + 2 + size);
      this.#chunks.push(chunk);
      this.#chunkPos = nl + 2 + size + 2;
      this.#buf = this.#buf.subarray(this.#chunkPos);
      this.#chunkPos = 0;
    }
  }

  /** A body that ends when the server closes (no length given). */
  takeReadToClose(): HttpResult | undefined {
    if (this.current === undefined || this.#length !== -2 || this.#head === undefined)
      return undefined;
    return new Answer(this.#status, this.#head, this.#buf);
  }
}

/** Keep-alive connections to one origin for a load generator. */
export class HttpPool {
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #idle: Connection[] = [];
  readonly #readBuffer = Buffer.allocUnsafeSlow(64 * 1024);
  readonly #all = new Set<Connection>();
  readonly #waiting: { bytes: string | Buffer; p: Pending }[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** The head last built, reused while method, path and headers object stay the same. */
  #lastHead: { method: string; path: string; headers: HttpRequestSpec['headers']; text: string } = {
    method: '',
    path: '',
    headers: undefined,
    text: '',
  };

  constructor(options: HttpPoolOptions) {
    const u = new URL(options.url);
    if (u.protocol !== 'http:')
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        `the generator's HTTP client speaks plain http only, got ${options.url}`,
        { details: { input: 'target' } },
      );
    this.#host = u.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(u.port || 80);
    this.#hostHeader = u.host;
    this.#max = options.maxConnections ?? 256;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#all.size;
  }

  /** Sends one request; resolves with the answer (any status), rejects on a network error or timeout. */
  request(spec: HttpRequestSpec): Promise<HttpResult> {
    return new Promise<HttpResult>((resolve, reject) => {
      this.#dispatch(this.#serialise(spec), spec.method === 'HEAD', (err, res) => {
        if (err !== undefined) reject(err);
        else resolve(res!);
      });
    });
  }

  /** Serialises a request once (head with this pool's host header, content-length, body) for {@link send}. */
  prepare(spec: HttpRequestSpec): PreparedRequest {
    const bytes = this.#serialise(spec);
    return {
      bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes,
      head: spec.method === 'HEAD',
    };
  }

  /** Sends a prepared request; `done` is called once, with the answer (any status) or the error. */
  send(request: PreparedRequest, done: SendCallback): void {
    this.#dispatch(request.bytes, request.head, done);
  }

  #dispatch(bytes: string | Buffer, head: boolean, done: SendCallback): void {
    if (this.#closed) {
      done(new Error('the HTTP pool is closed'), undefined);
      return;
    }
    const p: Pending = { done, head, startedAt: performance.now() };
    this.#startSweeper();
    const c = this.#idle.pop();
    if (c !== undefined) c.send(p, bytes);
    else if (this.#all.size < this.#max) this.#open().send(p, bytes);
    else this.#waiting.push({ bytes, p });
  }

  /** A request's bytes: a latin1 string when it is all single-byte, else a buffer. */
  #serialise(spec: HttpRequestSpec): string | Buffer {
    let head: string;
    const cache = this.#lastHead;
    if (cache.method === spec.method && cache.path === spec.path && cache.headers === spec.headers)
      head = cache.text;
    else {
      head = `${spec.method} ${spec.path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\n`;
      if (spec.headers !== undefined)
        for (const k in spec.headers) head += `${k}: ${spec.headers[k]}\r\n`;
      this.#lastHead = { method: spec.method, path: spec.path, headers: spec.headers, text: head };
    }
    const body = spec.body;
    if (body === undefined || body.length === 0)
      return `${head}${body === undefined ? '' : 'content-length: 0\r\n'}\r\n`;
    if (typeof body === 'string') {
      const len = Buffer.byteLength(body);
      if (len === body.length) return `${head}content-length: ${len}\r\n\r\n${body}`;
      return Buffer.concat([
        Buffer.from(`${head}content-length: ${len}\r\n\r\n`, 'latin1'),
        Buffer.from(body),
      ]);
    }
    return Buffer.concat([
      Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1'),
      body,
    ]);
  }

  #open(): Connection {
    // Reads land in one buffer of the pool (net's `onread`): no buffer and no stream
    // machinery per read; the connection copies out what it keeps.
    const read = this.#readBuffer;
    const socket = net.connect({
      host: this.#host,
      port: this.#port,
      onread: {
        buffer: read,
        callback: (n) => {
          c.read(read.subarray(0, n));
          return true;
        },
      },
    });
    const c: Connection = new Connection(
      socket,
      (conn, keep) => this.#done(conn, keep),
      (conn, err) => this.#broken(conn, err),
    );
    this.#all.add(c);
    return c;
  }

  #done(c: Connection, keep: boolean): void {
    if (!keep) {
      this.#all.delete(c);
      c.socket.destroy();
    } else {
      const next = this.#waiting.shift();
      if (next !== undefined) {
        c.send(next.p, next.bytes);
        return;
      }
      this.#idle.push(c);
      return;
    }
    const next = this.#waiting.shift();
    if (next !== undefined) this.#open().send(next.p, next.bytes);
  }

  #broken(c: Connection, err: Error): void {
    if (!this.#all.delete(c)) return;
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    c.socket.destroy();
    const p = c.current;
    // Read before `current` is cleared: a body read to the close is complete now.
    const readToClose = c.takeReadToClose();
    c.current = undefined;
    if (p !== undefined) {
      p.done(readToClose === undefined ? err : undefined, readToClose);
    }
    const next = this.#waiting.shift();
    if (next !== undefined && !this.#closed) this.#open().send(next.p, next.bytes);
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(
      () => {
        const now = performance.now();
        for (const c of this.#all) {
          if (c.current !== undefined && now - c.current.startedAt > this.#timeoutMs)
            this.#broken(c, new Error(`no answer in ${this.#timeoutMs} ms`));
        }
        for (let i = this.#waiting.length - 1; i >= 0; i--) {
          const w = this.#waiting[i]!;
          if (now - w.p.startedAt > this.#timeoutMs) {
            this.#waiting.splice(i, 1);
            w.p.done(new Error(`no connection free in ${this.#timeoutMs} ms`), undefined);
          }
        }
      },
      Math.min(100, this.#timeoutMs),
    );
    this.#sweeper.unref();
  }

  /** Closes every connection; requests in flight or waiting fail. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const w of this.#waiting.splice(0))
      w.p.done(new Error('the HTTP pool is closed'), undefined);
    for (const c of [...this.#all]) this.#broken(c, new Error('the HTTP pool is closed'));
  }
}
