/**
 * The `Transport` seam: how an RPC connection's bytes move. Frames (frame-codec.ts) ride on
 * whatever stream a transport gives; the connection and server code never name TCP or TLS.
 * Built in: {@link tcpTransport} (plain TCP, the default) and {@link TlsTransport} (TLS 1.2+,
 * optionally mutual, certificate files reloaded when they change, without a restart).
 */
import { readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';

/** How RPC connections are opened and accepted. */
export interface Transport {
  /** A short name for logs and registry metadata (`tcp`, `tls`). */
  readonly name: string;
  /** Starts a connection to `host:port`; the socket emits `readyEvent` once frames may flow. */
  connect(host: string, port: number): net.Socket;
  /** The socket event meaning "ready to carry frames": `connect` or `secureConnect`. */
  readonly readyEvent: 'connect' | 'secureConnect';
  /** A server calling `onConnection` with each connection once it is ready to carry frames. */
  createServer(onConnection: (socket: net.Socket) => void): net.Server;
}

/** Plain TCP with Nagle off: the default transport. */
export const tcpTransport: Transport = {
  name: 'tcp',
  readyEvent: 'connect',
  connect: (host, port) => net.connect({ host, port, noDelay: true }),
  createServer: (onConnection) => net.createServer({ noDelay: true }, onConnection),
};

/**
 * Options of {@link TlsTransport}: PEM file paths, read at construction, when they change
 * and on {@link TlsTransport.reload}.
 */
export interface TlsTransportOptions {
  /** This side's certificate chain (PEM file). Required on a provider; on a consumer, for mutual TLS. */
  certFile?: string;
  /** This side's private key (PEM file), with `certFile`. */
  keyFile?: string;
  /** The CA(s) that sign the peer's certificate (PEM file). Default: the system's roots. */
  caFile?: string;
  /**
   * Consumer: the CA(s) as PEM text instead of a file (a client given its trust in memory,
   * as `ControlPlaneClient`'s `ca`). `caFile` wins when both are given.
   */
  ca?: string | Buffer;
  /**
   * Provider: require and verify a client certificate signed by `caFile` (mutual TLS).
   * Default false.
   */
  requireClientCert?: boolean;
  /**
   * Consumer: the name checked against the provider's certificate, a host name or an IP
   * (an IP is checked against the certificate's subjectAltName and not sent as SNI).
   * Default: the host dialed.
   */
  servername?: string;
  /**
   * How often the files are checked for a change, ms: a provider's files are watched while
   * it listens, a consumer's checked when it opens a connection. 0: only {@link
   * TlsTransport.reload}. Default 2000, as the control plane's HTTPS files.
   */
  reloadIntervalMs?: number;
  /** Where reloads (and files that changed but do not load) are logged. Default: silent. */
  logger?: Logger;
}

/** The files' material, read. */
interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/**
 * TLS for RPC, optionally mutual. A peer whose certificate does not verify is refused during
 * the handshake, before any frame is read. Renewed certificate files are picked up without
 * a restart, as the control plane's HTTPS files are: a provider watches its files while it
 * listens, a consumer looks at its files' modification times before a new connection (at
 * most every `reloadIntervalMs`); {@link reload} re-reads them at once. New connections use
 * the new certificates, open ones keep theirs. Files that do not load as a whole (a key
 * not matching its certificate, as between the two copies of a renewal) leave the
 * certificates in use in place and are tried again at the next change or check.
 */
export class TlsTransport implements Transport {
  readonly name = 'tls';
  readonly readyEvent = 'secureConnect' as const;
  readonly #options: TlsTransportOptions;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #material: TlsMaterial;
  readonly #servers = new Set<tls.Server>();
  /** The files' sizes and modification times when last loaded (the consumer's check). */
  #stamp: string;
  #checkedAt = 0;
  #watching = false;
  readonly #onChange = () => {
    this.#reloadQuietly();
  };

  constructor(options: TlsTransportOptions) {
    if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
      throw new Error(
        'TlsTransport: give certFile and keyFile together (or neither, on a consumer without a client certificate)',
      );
    }
    if (options.requireClientCert === true && options.caFile === undefined) {
      throw new Error(
        'TlsTransport: requireClientCert needs caFile, the CA that signs client certificates',
      );
    }
    this.#options = options;
    this.#intervalMs = options.reloadIntervalMs ?? 2000;
    this.#logger = options.logger ?? silentLogger();
    this.#stamp = this.#stampNow();
    this.#material = this.#read();
  }

  #files(): string[] {
    const o = this.#options;
    return [o.certFile, o.keyFile, o.caFile].filter((f): f is string => f !== undefined);
  }

  #stampNow(): string {
    return this.#files()
      .map((f) => {
        try {
          const s = statSync(f);
          return `${s.size}:${s.mtimeMs}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  #read(): TlsMaterial {
    const o = this.#options;
    return {
      ...(o.certFile === undefined ? {} : { cert: readFileSync(o.certFile) }),
      ...(o.keyFile === undefined ? {} : { key: readFileSync(o.keyFile) }),
      ...(o.caFile === undefined ? {} : { ca: readFileSync(o.caFile) }),
    };
  }

  /**
   * Re-reads the certificate files (e.g. after a renewal); throws and keeps the ones in use
   * if they are unreadable or do not make a pair.
   */
  reload(): void {
    const stamp = this.#stampNow();
    const material = this.#read();
    // Checked as a whole before anything uses it: a key of the old pair with a new certificate fails here.
    tls.createSecureContext(TlsTransport.#context(material));
    this.#material = material;
    this.#stamp = stamp;
    for (const server of this.#servers) server.setSecureContext(this.#serverContext());
    this.#logger.info({ certFile: this.#options.certFile }, 'RPC TLS certificates reloaded');
  }

  #reloadQuietly(): void {
    try {
      this.reload();
    } catch (err) {
      this.#logger.warn(
        { certFile: this.#options.certFile, err: errorMessage(err) },
        'RPC TLS certificate files changed but do not load; the certificates in use stay',
      );
    }
  }

  /** A consumer's check before a new connection: reload when the files changed since. */
  #checkFiles(): void {
    if (this.#intervalMs <= 0) return;
    const now = Date.now();
    if (now - this.#checkedAt < this.#intervalMs) return;
    this.#checkedAt = now;
    if (this.#stampNow() !== this.#stamp) this.#reloadQuietly();
  }

  #watch(): void {
    if (this.#watching || this.#intervalMs <= 0) return;
    this.#watching = true;
    for (const f of this.#files()) {
      watchFile(f, { interval: this.#intervalMs, persistent: false }, this.#onChange);
    }
  }

  #unwatch(): void {
    if (!this.#watching) return;
    this.#watching = false;
    for (const f of this.#files()) unwatchFile(f, this.#onChange);
  }

  #serverContext(): tls.SecureContextOptions {
    return TlsTransport.#context(this.#material);
  }

  static #context(m: TlsMaterial): tls.SecureContextOptions {
    return {
      cert: m.cert,
      key: m.key,
      ...(m.ca === undefined ? {} : { ca: m.ca }),
      minVersion: 'TLSv1.2',
    };
  }

  connect(host: string, port: number): net.Socket {
    this.#checkFiles();
    const m = this.#material;
    const name = this.#options.servername ?? host;
    const ca = m.ca ?? this.#options.ca;
    const socket = tls.connect({
      host,
      port,
      // SNI takes host names only; the identity check takes either.
      ...(net.isIP(name) === 0 ? { servername: name } : {}),
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
      ...(ca === undefined ? {} : { ca }),
      ...(m.cert === undefined ? {} : { cert: m.cert, key: m.key }),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
    // As plain TCP: small frames go out at once (Nagle off).
    socket.setNoDelay(true);
    return socket;
  }

  createServer(onConnection: (socket: net.Socket) => void): net.Server {
    if (this.#material.cert === undefined) {
      throw new Error('TlsTransport: a provider needs certFile and keyFile');
    }
    const server = tls.createServer(
      {
        ...this.#serverContext(),
        requestCert: this.#options.requireClientCert === true,
        rejectUnauthorized: this.#options.requireClientCert === true,
      },
      (socket) => {
        socket.setNoDelay(true);
        onConnection(socket);
      },
    );
    this.#servers.add(server);
    this.#watch();
    server.once('close', () => {
      this.#servers.delete(server);
      if (this.#servers.size === 0) this.#unwatch();
    });
    return server;
  }
}
