/**
 * HTTPS for the control plane: certificate files from `peak tls init` (createDevPki), a
 * client that trusts the CA gets through and one that does not is refused in the
 * handshake, plain HTTP gets nothing, and replaced certificate files are served to new
 * connections without a restart. A node bound to a non-loopback address without TLS says
 * so at start.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { AdminClient } from '../src/admin/admin-client.js';
import { ErrorCodes, isPeakError } from '../src/core/errors.js';
import { createLogger } from '../src/core/logger.js';
import { createDevPki, type DevPki } from '../src/security/index.js';
import { isLoopbackHost, PeakServer } from '../src/server/index.js';
import { waitFor } from './support/wait.js';

describe('HTTPS for the control plane', { timeout: 120_000 }, () => {
  let dataDir: string;
  let pki: DevPki;
  let other: DevPki;
  let server: PeakServer;
  let certFile: string;
  let keyFile: string;

  /** Whether a new TLS connection that trusts `caFile` gets through the handshake. */
  const handshake = async (caFile: string) => {
    const { hostname, port } = new URL(server.info.url);
    const ca = await readFile(caFile);
    return new Promise<boolean>((resolve) => {
      const socket = tls.connect({ host: hostname, port: Number(port), ca, servername: 'server' });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  };

  const client = async (caFile: string) =>
    new AdminClient({
      servers: server.info.url,
      token: server.credential(),
      ca: await readFile(caFile),
      retries: 0,
    });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-https-'));
    pki = await createDevPki({ dir: path.join(dataDir, 'tls'), names: ['server'] });
    other = await createDevPki({ dir: path.join(dataDir, 'tls-2'), names: ['server'] });
    // The watched files: copies, so the test can replace them.
    certFile = path.join(dataDir, 'server.pem');
    keyFile = path.join(dataDir, 'server.key');
    await copyFile(pki.certs.server!.certFile, certFile);
    await copyFile(pki.certs.server!.keyFile, keyFile);
    server = await PeakServer.start({
      dataDir,
      port: 0,
      tls: { certFile, keyFile, reloadIntervalMs: 100 },
    });
  });

  after(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS to a client that trusts the CA', async () => {
    assert.match(server.info.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.info.tls, true);
    const admin = await client(pki.caFile);
    assert.equal((await admin.system.ready()).status, 'ready');
    assert.ok((await admin.system.nodes()).some((n) => n.httpUrl === server.info.url));
  });

  it('refuses a client that does not trust its certificate, and plain HTTP', async () => {
    await assert.rejects((await client(other.caFile)).system.info(), (err) =>
      isPeakError(err, ErrorCodes.SERVER_UNREACHABLE),
    );
    const plain = server.info.url.replace('https:', 'http:');
    await assert.rejects(fetch(`${plain}/health`, { signal: AbortSignal.timeout(5000) }));
  });

  it('serves replaced certificate files to new connections without a restart', async () => {
    assert.equal(await handshake(pki.caFile), true);
    await copyFile(other.certs.server!.keyFile, keyFile);
    await copyFile(other.certs.server!.certFile, certFile);
    await waitFor('the new certificate served', () => handshake(other.caFile));
    assert.equal(await handshake(pki.caFile), false, 'the old certificate is no longer served');
    assert.equal((await (await client(other.caFile)).system.ready()).status, 'ready');
  });

  it('warns at start when bound beyond loopback without TLS', async () => {
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('::1') && isLoopbackHost('localhost'));
    assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('10.1.2.3'));
    const lines: string[] = [];
    const destination = new PassThrough();
    destination.on('data', (d: Buffer) => lines.push(...d.toString().split('\n')));
    const dir2 = await mkdtemp(path.join(os.tmpdir(), 'peak-https-open-'));
    const open = await PeakServer.start({
      dataDir: dir2,
      host: '0.0.0.0',
      port: 0,
      postgresUrl: server.postgresUrl(),
      logger: createLogger({ level: 'warn', destination }),
    });
    try {
      assert.equal(open.info.tls, false);
      assert.ok(
        lines.some((l) => l.includes('non-loopback address without TLS')),
        lines.join('\n'),
      );
    } finally {
      await open.stop();
      await rm(dir2, { recursive: true, force: true });
    }
  });
});
