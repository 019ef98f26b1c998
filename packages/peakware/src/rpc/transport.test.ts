import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
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
