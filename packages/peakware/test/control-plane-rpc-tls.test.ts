/**
 * The control plane's RPC port on a node serving HTTPS: it serves TLS from the node's own
 * certificate files, the SDK reaches it only over TLS (trusting what its HTTPS trusts, the
 * certificate checked against the name it reached the node by), and the HTTP routes see none
 * of the SDK's hot calls. A client that does not trust the CA, or speaks plaintext, gets no
 * call through.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ControlPlaneClient } from '../src/core/control-plane-client.js';
import { isPeakError } from '../src/core/errors.js';
import { MQ_RPC_SERVICE } from '../src/mq/binary-protocol.js';
import {
  ControlPlaneRpcPath,
  RPC_ENDPOINT_ROUTE,
  USE_HTTP,
} from '../src/rpc/control-plane-path.js';
import { RpcConnection, TlsTransport, tcpTransport } from '../src/rpc/index.js';
import { createDevPki } from '../src/security/dev-pki.js';
import { killGroup, type PeakProcess, postgresPidsFor, spawnPeak } from './support/peak-process.js';

const fixture = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'control-plane-rpc-tls-fixture.js',
);

/** GET `url` over HTTPS trusting `ca`: the body as text. */
function getText(url: string, ca: Buffer, token?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      {
        ca,
        agent: false,
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
  });
}

/** The count of HTTP requests the node answered on `route` (from /metrics). */
async function httpCount(url: string, ca: Buffer, route: string): Promise<number> {
  let n = 0;
  for (const line of (await getText(`${url}/metrics`, ca)).split('\n')) {
    if (
      line.startsWith('peak_http_request_duration_seconds_count{') &&
      line.includes(`route="${route}"`)
    )
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

describe('the control plane RPC port under HTTPS', { timeout: 180_000 }, () => {
  let p: PeakProcess;
  let dir: string;
  let url: string;
  let ca: Buffer;
  let caFile: string;
  let otherCaFile: string;
  let credential: string;
  let ready: Record<string, unknown>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-tls-'));
    const pki = await createDevPki({ dir: path.join(dir, 'tls'), names: ['server'] });
    const other = await createDevPki({ dir: path.join(dir, 'tls-2'), names: ['server'] });
    caFile = pki.caFile;
    otherCaFile = other.caFile;
    ca = await readFile(caFile);
    p = spawnPeak([
      'server',
      '--data',
      dir,
      '--port',
      '0',
      '--json',
      '--log-level',
      'warn',
      '--tls-cert',
      pki.certs.server!.certFile,
      '--tls-key',
      pki.certs.server!.keyFile,
    ]);
    ready = await p.waitFor('ready');
    url = String(ready.url);
    credential = (await readFile(path.join(dir, 'credentials', 'local'), 'utf8')).trim();
    const adminToken = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    await new ControlPlaneClient({ servers: url, token: adminToken, ca }).post(
      '/api/v1/mq/topics',
      {
        name: 'tls-orders',
        queues: 2,
      },
    );
  });

  after(async () => {
    if (p !== undefined) {
      killGroup(p.child);
      await p.exited;
    }
    for (const pid of await postgresPidsFor(dir)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('announces a TLS port, and the ready event says so', async () => {
    assert.match(url, /^https:/);
    const info = JSON.parse(await getText(`${url}${RPC_ENDPOINT_ROUTE}`, ca, credential)) as {
      available: boolean;
      host: string;
      port: number;
      tls: boolean;
    };
    assert.equal(info.available, true, JSON.stringify(info));
    assert.equal(info.tls, true);
    assert.deepEqual(ready.rpc, { host: info.host, port: info.port, tls: true });
  });

  it("carries a user process's sends, receives, acks and saga submits: HTTP sees none", async () => {
    const routes = [
      '/api/v1/mq/topics/:topic/messages',
      '/api/v1/mq/groups/:group/receive',
      '/api/v1/mq/groups/:group/ack',
      '/api/v1/txn/sagas',
    ];
    const before = await Promise.all(routes.map((r) => httpCount(url, ca, r)));
    const child = spawn(process.execPath, [fixture], {
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: caFile,
        PEAK_SERVER: url,
        PEAK_CREDENTIAL: credential,
        RPC_TLS_TOPIC: 'tls-orders',
        RPC_TLS_COUNT: '60',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, err);
    assert.deepEqual(JSON.parse(out.trim()), { sent: 60, got: 60, saga: 'PEAK_TXN_ABORTED' });
    const afterCounts = await Promise.all(routes.map((r) => httpCount(url, ca, r)));
    assert.deepEqual(afterCounts, before, `HTTP route counts ${routes.join(', ')}`);
  });

  it('the SDK path given its CA in memory (ControlPlaneClient ca) calls over the TLS port', async () => {
    const http = new ControlPlaneClient({ servers: url, token: credential, ca, retries: 0 });
    const rpc = new ControlPlaneRpcPath(http, credential);
    const before = await httpCount(url, ca, '/api/v1/mq/topics/:topic/messages');
    const r = await rpc.call<{ ids: string[] }>(
      MQ_RPC_SERVICE,
      'send',
      { topic: 'tls-orders', body: { messages: [{ body: 'eA==' }] } },
      5000,
      true,
    );
    assert.notEqual(r, USE_HTTP, 'went over the port');
    assert.equal((r as { ids: string[] }).ids.length, 1);
    assert.equal(await httpCount(url, ca, '/api/v1/mq/topics/:topic/messages'), before);
    rpc.reset();
  });

  it('the SDK path trusts what its HTTPS trusts: another CA gets no HTTPS, so no port either', async () => {
    const other = await readFile(otherCaFile);
    const http = new ControlPlaneClient({ servers: url, token: credential, ca: other, retries: 0 });
    const rpc = new ControlPlaneRpcPath(http, credential);
    // The lookup of the port fails as HTTPS fails: the call is sent back to HTTP.
    const r = await rpc.call(
      MQ_RPC_SERVICE,
      'send',
      { topic: 'tls-orders', body: { messages: [{ body: 'eA==' }] } },
      5000,
      true,
    );
    assert.equal(r, USE_HTTP);
    rpc.reset();
  });

  it('the port refuses a plaintext client and one that does not trust the CA', async () => {
    const info = JSON.parse(await getText(`${url}${RPC_ENDPOINT_ROUTE}`, ca, credential)) as {
      host: string;
      port: number;
    };
    const args = { token: credential, topic: 'tls-orders', body: { messages: [{ body: 'eA==' }] } };
    for (const transport of [
      tcpTransport,
      new TlsTransport({ caFile: otherCaFile, reloadIntervalMs: 0 }),
    ]) {
      const conn = new RpcConnection(info.host, info.port, {
        transport,
        probeMs: 0,
        connectTimeoutMs: 2000,
      });
      await assert.rejects(
        conn.call(MQ_RPC_SERVICE, 'send', {}, args, 3000),
        (e) => isPeakError(e),
        transport.name,
      );
      conn.close();
    }
    // The same call with the right CA goes through.
    const ok = new RpcConnection(info.host, info.port, {
      transport: new TlsTransport({ caFile, reloadIntervalMs: 0 }),
      probeMs: 0,
    });
    const sent = (await ok.call(MQ_RPC_SERVICE, 'send', {}, args, 5000)) as { ids: string[] };
    assert.equal(sent.ids.length, 1);
    ok.close();
  });
});
