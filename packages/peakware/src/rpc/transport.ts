/**
 * The `Transport` seam: how an RPC connection's bytes move. Frames (frame-codec.ts) ride on
 * whatever stream a transport gives; the connection and server code never name TCP or TLS.
 * Built in: {@link tcpTransport} (plain TCP, the default) and {@link TlsTransport} (TLS 1.2+,
 * optionally mutual, certificates reloadable without a restart).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

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

/** Options of {@link TlsTransport}: PEM file paths, read at construction and on {@link TlsTransport.reload}. */
export interface TlsTransportOptions {
  /** This side's certificate chain (PEM file). Required on a provider; on a consumer, for mutual TLS. */
  certFile?: string;
  /** This side's private key (PEM file), with `certFile`. */
  keyFile?: string;
  /** The CA(s) that sign the peer's certificate (PEM file). Default: the system's roots. */
  caFile?: string;
  /**
   * Provider: require and verify a client certificate signed by `caFile` (mutual TLS).
   * Default false.
   */
  requireClientCert?: boolean;
  /**
   * Consumer: the name checked against the provider's certificate. Default: the host dialed
   * (for an IP, its subjectAltName must list that IP).
   */
  servername?: string;
}

/**
 * TLS for RPC, optionally mutual. A peer whose certificate does not verify is refused during
 * the handshake, before any frame is read. {@link reload} re-reads the files: new connections
 * use the new certificates, open ones keep theirs.
 */
export class TlsTransport implements Transport {
  readonly name = 'tls';
  readonly readyEvent = 'secureConnect' as const;
  readonly #options: TlsTransportOptions;
  #material: { cert?: Buffer; key?: Buffer; ca?: Buffer };
  readonly #servers = new Set<tls.Server>();

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
    this.#material = this.#read();
  }

  #read(): { cert?: Buffer; key?: Buffer; ca?: Buffer } {
    const o = this.#options;
    return {
      ...(o.certFile === undefined ? {} : { cert: readFileSync(o.certFile) }),
      ...(o.keyFile === undefined ? {} : { key: readFileSync(o.keyFile) }),
      ...(o.caFile === undefined ? {} : { ca: readFileSync(o.caFile) }),
    };
  }

  /** Re-reads the certificate files (e.g. after a renewal); throws and keeps the old ones if they are unreadable. */
  reload(): void {
    this.#material = this.#read();
    for (const server of this.#servers) server.setSecureContext(this.#serverContext());
  }

  #serverContext(): tls.SecureContextOptions {
    const m = this.#material;
    return {
      cert: m.cert,
      key: m.key,
      ...(m.ca === undefined ? {} : { ca: m.ca }),
      minVersion: 'TLSv1.2',
    };
  }

  connect(host: string, port: number): net.Socket {
    const m = this.#material;
    const servername = this.#options.servername ?? (net.isIP(host) === 0 ? host : undefined);
    return tls.connect({
      host,
      port,
      ...(servername === undefined ? {} : { servername }),
      ...(m.ca === undefined ? {} : { ca: m.ca }),
      ...(m.cert === undefined ? {} : { cert: m.cert, key: m.key }),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
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
    server.once('close', () => this.#servers.delete(server));
    return server;
  }
}
