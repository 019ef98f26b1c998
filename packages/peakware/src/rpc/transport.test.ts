import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { z } from 'zod';
import { isPeakError } from '../core/errors.js';
import { InMemoryRegistry } from '../registry/in-memory-registry.js';
import { createDevPki } from '../security/dev-pki.js';
import { RpcClient } from './rpc-client.js';
import { RpcServer } from './rpc-server.js';
import { defineService } from './service-definition.js';
import { TlsTransport } from './transport.js';

const echo = defineService({
  name: 'tls.echo',
  version: '1.0.0',
  methods: { echo: { input: z.object({ s: z.string() }), output: z.string(), idempotent: true } },
});

describe('rpc over TLS and mutual TLS (real sockets, certificates from peak tls init)', () => {
  let dir: string;
  const registry = new InMemoryRegistry();
  let server: RpcServer;
  let serverTls: TlsTransport;
  let served = 0;
  const file = (name: string) => path.join(dir, name);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'peak-tls-'));
    // Two dev CAs (peak tls init's code), each with a provider and a consumer certificate.
    for (const ca of ['ca', 'rogue']) {
      const pki = await createDevPki({ dir: path.join(dir, ca), names: ['provider', 'consumer'] });
      for (const [name, c] of Object.entries(pki.certs)) {
        copyFileSync(c.certFile, file(`${ca}-${name}.pem`));
        copyFileSync(c.keyFile, file(`${ca}-${name}.key`));
      }
      copyFileSync(pki.caFile, file(`${ca}.pem`));
    }
    serverTls = new TlsTransport({
      certFile: file('ca-provider.pem'),
      keyFile: file('ca-provider.key'),
      caFile: file('ca.pem'),
      requireClientCert: true,
    });
    server = new RpcServer({ registry, transport: serverTls }).addService(echo, {
      echo: ({ s }) => {
        served++;
        return s;
      },
    });
    await server.start();
  });

  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (transport?: TlsTransport) =>
    new RpcClient({
      registry,
      app: 'tls-test',
      ...(transport === undefined ? {} : { connection: { transport, connectTimeoutMs: 2000 } }),
    });

  it('a consumer with a certificate from the CA calls through mutual TLS', async () => {
    const c = client(
      new TlsTransport({
        certFile: file('ca-consumer.pem'),
        keyFile: file('ca-consumer.key'),
        caFile: file('ca.pem'),
      }),
    );
    try {
      assert.equal(await c.service(echo).echo({ s: 'over tls' }, { timeoutMs: 3000 }), 'over tls');
    } finally {
      await c.close();
    }
  });

  // Under TLS 1.3 the consumer's handshake ends before the provider checks its certificate,
  // so a refused consumer sees the connection drop (CONNECTION_LOST) rather than a connect
  // error; either way the method never runs.
  const refused = async (c: RpcClient) => {
    const before = served;
    try {
      const err = await c
        .service(echo)
        .echo({ s: 'x' }, { timeoutMs: 1500 })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(isPeakError(err), `expected a PeakError, got ${String(err)}`);
      assert.ok(
        [
          'PEAK_RPC_UNAVAILABLE',
          'PEAK_RPC_CONNECTION_LOST',
          'PEAK_DEADLINE_EXCEEDED',
          'PEAK_RPC_NO_PROVIDER',
        ].includes(err.code),
        err.code,
      );
      assert.equal(served, before, 'the method did not run for a refused consumer');
    } finally {
      await c.close();
    }
  };

  it('refuses a consumer without a client certificate', async () => {
    await refused(client(new TlsTransport({ caFile: file('ca.pem') })));
  });

  it('refuses a consumer whose certificate comes from another CA', async () => {
    await refused(
      client(
        new TlsTransport({
          certFile: file('rogue-consumer.pem'),
          keyFile: file('rogue-consumer.key'),
          caFile: file('ca.pem'),
        }),
      ),
    );
  });

  it('a consumer refuses a provider its CA did not sign, and plain TCP gets nowhere', async () => {
    await refused(
      client(
        new TlsTransport({
          certFile: file('rogue-consumer.pem'),
          keyFile: file('rogue-consumer.key'),
          caFile: file('rogue.pem'),
        }),
      ),
    );
    await refused(client());
  });

  it('renewed files reach new connections without reload(): the provider watches, the consumer checks', async () => {
    const fingerprint = (name: string) =>
      new X509Certificate(readFileSync(file(`${name}.pem`))).fingerprint256;
    const renew = (from: string, to: string) => {
      copyFileSync(file(`${from}.pem`), file(`${to}.pem`));
      copyFileSync(file(`${from}.key`), file(`${to}.key`));
    };
    /** Polls (bounded) until `probe` answers `want`; answers the last answer. */
    const until = async (probe: () => Promise<string>, want: string) => {
      let got = '';
      for (let i = 0; i < 200 && got !== want; i++) {
        got = await probe();
        if (got !== want) await new Promise((r) => setTimeout(r, 25));
      }
      return got;
    };
    const listening = (s: net.Server) =>
      new Promise<number>((resolve) =>
        s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)),
      );

    // A provider: what certificate does a new connection see?
    renew('ca-provider', 'watched-provider');
    const providerTls = new TlsTransport({
      certFile: file('watched-provider.pem'),
      keyFile: file('watched-provider.key'),
      reloadIntervalMs: 20,
    });
    const provider = providerTls.createServer((socket) => socket.end());
    const providerPort = await listening(provider);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: providerPort, rejectUnauthorized: false });
        s.once('secureConnect', () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.destroy();
        });
        s.once('error', reject);
      });
    assert.equal(await served(), fingerprint('ca-provider'));
    renew('rogue-provider', 'watched-provider');
    assert.equal(await until(served, fingerprint('rogue-provider')), fingerprint('rogue-provider'));
    await new Promise((r) => provider.close(r));

    // A consumer with a client certificate: what does the provider see of a new connection?
    renew('ca-consumer', 'watched-consumer');
    const consumerTls = new TlsTransport({
      certFile: file('watched-consumer.pem'),
      keyFile: file('watched-consumer.key'),
      caFile: file('ca.pem'),
      reloadIntervalMs: 20,
    });
    const seen: string[] = [];
    const peer = tls.createServer(
      {
        cert: readFileSync(file('ca-provider.pem')),
        key: readFileSync(file('ca-provider.key')),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (socket) => {
        seen.push(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    const peerPort = await listening(peer);
    const presented = () =>
      new Promise<string>((resolve, reject) => {
        const s = consumerTls.connect('127.0.0.1', peerPort);
        s.once('error', reject);
        s.once('close', () => resolve(seen.at(-1) ?? ''));
        s.resume();
      });
    assert.equal(await presented(), fingerprint('ca-consumer'));
    renew('rogue-consumer', 'watched-consumer');
    assert.equal(
      await until(presented, fingerprint('rogue-consumer')),
      fingerprint('rogue-consumer'),
    );
    await new Promise((r) => peer.close(r));
  });

  it('reload picks up new certificate files for new connections', async () => {
    // Swap the provider onto a certificate from the rogue CA: a consumer trusting only the
    // rogue CA now connects, one trusting the first CA no longer does.
    copyFileSync(file('rogue-provider.pem'), file('ca-provider.pem'));
    copyFileSync(file('rogue-provider.key'), file('ca-provider.key'));
    serverTls.reload();
    await refused(
      client(
        new TlsTransport({
          certFile: file('ca-consumer.pem'),
          keyFile: file('ca-consumer.key'),
          caFile: file('ca.pem'),
        }),
      ),
    );
  });
});
