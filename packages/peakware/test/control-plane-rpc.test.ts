/**
 * The control plane's RPC port against a real `peak server` process: the SDK's mq sends,
 * receives, acks and nacks and its txn submits travel over it (the HTTP routes never see
 * them), every call is authenticated and checked as HTTP checks it, bad frames and bad calls
 * are refused to their sender only, a long poll whose connection closes claims nothing, and
 * a node without the port (or a client told to) works over HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/index.js';
import { isPeakError } from '../src/core/errors.js';
import { MQ_RPC_SERVICE } from '../src/mq/binary-protocol.js';
import { BrokerClient, Consumer, Producer } from '../src/mq/index.js';
import { RPC_ENDPOINT_ROUTE } from '../src/rpc/control-plane-path.js';
import { RpcConnection } from '../src/rpc/index.js';
import { TxnClient } from '../src/txn/index.js';
import { bearer, useDataFolderCredential } from './support/credentials.js';
import { killGroup, type PeakProcess, postgresPidsFor, spawnPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

/** The count of HTTP requests the node answered on `route` (from /metrics). */
async function httpCount(url: string, route: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (
      line.startsWith('peak_http_request_duration_seconds_count{') &&
      line.includes(`route="${route}"`)
    )
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

describe('the control plane RPC port', { timeout: 240_000 }, () => {
  const nodes: { p: PeakProcess; dir: string }[] = [];
  let url: string;
  let credential: string;
  let adminToken: string;
  let endpoint: { host: string; port: number };
  /** The `rpc` of the node's ready event. */
  let readyRpc: unknown;

  const startNode = async (env: NodeJS.ProcessEnv = {}) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-binary-'));
    const p = spawnPeak(
      ['server', '--data', dir, '--port', '0', '--json', '--log-level', 'warn'],
      env,
    );
    nodes.push({ p, dir });
    const ready = await p.waitFor('ready');
    return { url: String(ready.url), dir, rpc: ready.rpc };
  };

  /** A raw connection to the endpoint, as a client in another language would open one. */
  const raw = () => new RpcConnection(endpoint.host, endpoint.port, { probeMs: 0 });
  const call = (conn: RpcConnection, method: string, args: unknown, timeoutMs = 10_000) =>
    conn.call(MQ_RPC_SERVICE, method, {}, args, timeoutMs);

  before(async () => {
    const node = await startNode();
    url = node.url;
    readyRpc = node.rpc;
    credential = await useDataFolderCredential(node.dir);
    adminToken = (await readFile(path.join(node.dir, 'admin-token'), 'utf8')).trim();
    const admin = new BrokerClient({ servers: url, token: adminToken });
    await admin.call('POST', '/api/v1/mq/topics', { name: 'orders', queues: 4 });
    const info = (await (
      await fetch(`${url}${RPC_ENDPOINT_ROUTE}`, { headers: bearer() })
    ).json()) as {
      available: boolean;
      host: string;
      port: number;
    };
    assert.equal(info.available, true);
    endpoint = { host: info.host, port: info.port };
    // The ready event (and the banner) say where it is, as the route does.
    assert.deepEqual(readyRpc, { ...endpoint, tls: false });
  });

  after(async () => {
    for (const { p, dir } of nodes) {
      killGroup(p.child);
      await p.exited;
      for (const pid of await postgresPidsFor(dir)) process.kill(pid, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('carries the SDK’s sends, receives and acks: the HTTP routes see none of them', async () => {
    const sendRoute = '/api/v1/mq/topics/:topic/messages';
    const receiveRoute = '/api/v1/mq/groups/:group/receive';
    const ackRoute = '/api/v1/mq/groups/:group/ack';
    const before = {
      send: await httpCount(url, sendRoute),
      receive: await httpCount(url, receiveRoute),
      ack: await httpCount(url, ackRoute),
    };
    const producer = new Producer({ servers: url });
    const sent = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        producer.send('orders', { body: `m${i}`, keys: [`k${i}`] }),
      ),
    );
    const got = new Set<string>();
    const consumer = new Consumer({
      servers: url,
      group: 'binary-sdk',
      topic: 'orders',
      waitMs: 300,
      handler: (m) => {
        got.add(m.text());
      },
    }).start();
    await waitFor(
      () => `300 consumed (${got.size})`,
      () => got.size === 300,
      30_000,
    );
    await consumer.close();
    await producer.close();
    assert.equal(new Set(sent.map((s) => s.id)).size, 300);
    // Acked: nothing of the group is left to deliver.
    const admin = new BrokerClient({ servers: url, token: adminToken });
    const stats = await admin.call<{ groups: { group: string; topic: string; backlog: number }[] }>(
      'GET',
      '/api/v1/mq/stats',
    );
    const group = stats.groups.find((g) => g.group === 'binary-sdk' && g.topic === 'orders');
    assert.ok(group, JSON.stringify(stats.groups));
    assert.equal(group.backlog, 0, JSON.stringify(group));
    assert.equal(await httpCount(url, sendRoute), before.send, 'no send went over HTTP');
    assert.equal(await httpCount(url, receiveRoute), before.receive, 'no receive went over HTTP');
    assert.equal(await httpCount(url, ackRoute), before.ack, 'no ack went over HTTP');
  });

  it('authenticates every call and checks it as HTTP does: credential, grant, body, topic', async () => {
    const conn = raw();
    const messages = [{ body: Buffer.from('x').toString('base64') }];
    const refused = async (
      args: unknown,
      code: Parameters<typeof isPeakError>[1] & string,
      pattern: RegExp,
      method = 'send',
    ) => {
      await assert.rejects(call(conn, method, args), (e) => {
        assert.ok(isPeakError(e, code), `${code} expected, got ${String(e)}`);
        assert.match(e.message, pattern);
        return true;
      });
    };
    await refused(
      { topic: 'orders', body: { messages } },
      'PEAK_UNAUTHENTICATED',
      /RPC port needs a credential/,
    );
    await refused(
      { token: 'peakapp_wrong', topic: 'orders', body: { messages } },
      'PEAK_UNAUTHENTICATED',
      /not a working app credential/,
    );
    const admin = new AdminClient({ servers: url, token: adminToken });
    const stranger = (await admin.apps.create('binary.stranger', ['produce:other'])).credential;
    await refused(
      { token: stranger, topic: 'orders', body: { messages } },
      'PEAK_FORBIDDEN',
      /may not produce orders/,
    );
    await refused(
      { token: stranger, group: 'g', body: { topic: 'orders', consumerId: 'c1' } },
      'PEAK_FORBIDDEN',
      /a consume call needs a consume grant; app 'binary.stranger' holds produce:other/,
      'receive',
    );
    // The body is checked by the HTTP route's schema, with its words.
    await refused(
      { token: credential, topic: 'orders', body: { messages: [] } },
      'PEAK_INVALID_ARGUMENT',
      /messages/,
    );
    await refused(
      { token: credential, group: 'g', body: { topic: 'orders', consumerId: 'c1', max: 5000 } },
      'PEAK_INVALID_ARGUMENT',
      /max must be an integer from 1 to 1000/,
      'receive',
    );
    await refused(
      { token: credential, topic: 'nope', body: { messages } },
      'PEAK_MQ_UNKNOWN_TOPIC',
      /nope/,
    );
    // The envelope: a call without its topic is refused before anything runs.
    await refused({ token: credential, body: { messages } }, 'PEAK_RPC_BAD_ARGUMENTS', /topic/);
    await refused({ token: credential }, 'PEAK_RPC_UNKNOWN_METHOD', /has no method 'drop'/, 'drop');
    // The connection still serves.
    const ok = (await call(conn, 'send', {
      token: credential,
      topic: 'orders',
      body: { messages },
    })) as {
      ids: string[];
    };
    assert.equal(ok.ids.length, 1);
    conn.close();
  });

  it('bad frames close only their own connection; the node keeps serving both ways in', async () => {
    // Garbage where a frame header should be, then a frame header announcing 2 GiB.
    for (const bytes of [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2]),
    ]) {
      const socket = net.connect(endpoint.port, endpoint.host);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const answer: Buffer[] = [];
      socket.on('data', (b: Buffer) => answer.push(b));
      socket.write(bytes);
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      assert.ok(Buffer.concat(answer).length > 0, 'the peer was told why before the close');
    }
    const conn = raw();
    const r = (await call(conn, 'send', {
      token: credential,
      topic: 'orders',
      body: { messages: [{ body: 'eQ==' }] },
    })) as { ids: string[] };
    assert.equal(r.ids.length, 1);
    conn.close();
    const health = await fetch(`${url}/ready`);
    assert.equal(health.status, 200);
  });

  it('a long poll whose connection closes ends at once and claims nothing for it', async () => {
    const admin = new BrokerClient({ servers: url, token: adminToken });
    await admin.call('POST', '/api/v1/mq/topics', { name: 'polls', queues: 1 });
    const conn = raw();
    const sub = { topic: 'polls', consumerId: 'gone-1', invisibleMs: 60_000 };
    // Join the group (a first short receive), then wait long, then go away.
    await call(conn, 'receive', {
      token: credential,
      group: 'polls-g',
      body: { ...sub, waitMs: 0 },
    });
    const waiting = call(
      conn,
      'receive',
      {
        token: credential,
        group: 'polls-g',
        body: { ...sub, waitMs: 20_000 },
      },
      30_000,
    ).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    conn.close();
    assert.ok(isPeakError(await waiting, 'PEAK_RPC_CONNECTION_LOST'));
    const producer = new Producer({ servers: url });
    await producer.send('polls', { body: 'after' });
    await producer.close();
    // The consumer, back on a new connection, gets it now, not after the 60 s invisibility
    // of a delivery nobody received.
    const other = raw();
    const sub2 = sub;
    const { messages: got } = (await call(other, 'receive', {
      token: credential,
      group: 'polls-g',
      body: { ...sub2, waitMs: 5000 },
    })) as { messages: unknown[] };
    assert.equal(got.length, 1, 'the message was not claimed for the closed connection');
    other.close();
  });

  it('a node without the RPC port, or a client told to, works over HTTP', async () => {
    const off = await startNode({ PEAK_RPC_PORT: 'off' });
    const offCredential = (
      await readFile(path.join(off.dir, 'credentials', 'local'), 'utf8')
    ).trim();
    const offAdmin = (await readFile(path.join(off.dir, 'admin-token'), 'utf8')).trim();
    const info = (await (
      await fetch(`${off.url}${RPC_ENDPOINT_ROUTE}`, {
        headers: { authorization: `Bearer ${offCredential}` },
      })
    ).json()) as { available: boolean; reason: string };
    assert.deepEqual(info, {
      available: false,
      reason: 'this node runs without it (PEAK_RPC_PORT=off)',
    });
    await new BrokerClient({ servers: off.url, token: offAdmin }).call(
      'POST',
      '/api/v1/mq/topics',
      {
        name: 'plain',
        queues: 2,
      },
    );
    const sendRoute = '/api/v1/mq/topics/:topic/messages';
    for (const [server, token, transport] of [
      [off.url, offCredential, undefined],
      [url, credential, 'http'],
    ] as const) {
      if (server === url)
        await new BrokerClient({ servers: url, token: adminToken })
          .call('POST', '/api/v1/mq/topics', { name: 'plain', queues: 2 })
          .catch(() => undefined);
      const before = await httpCount(server, sendRoute);
      const client = new BrokerClient({
        servers: server,
        token,
        ...(transport ? { transport } : {}),
      });
      const r = await client.send('plain', [{ body: 'aGk=' }]);
      assert.equal(r.ids.length, 1);
      assert.equal(
        await httpCount(server, sendRoute),
        before + 1,
        `${server}: the send went over HTTP`,
      );
      client.close();
    }
  });

  it('carries txn submits: the saga route sees none, and a bad body is refused in its words', async () => {
    const route = '/api/v1/txn/sagas';
    const before = await httpCount(url, route);
    const txn = new TxnClient({ servers: url });
    // A saga whose only branch names a service nobody provides: it rolls back, and says so.
    await assert.rejects(
      txn.saga({
        steps: [
          {
            name: 'nobody',
            action: { service: 'default/rpc.test.nobody:1.0.0', method: 'run' },
            retries: 0,
          },
        ],
        timeoutMs: 5000,
      }),
      (e) => isPeakError(e, 'PEAK_TXN_ABORTED'),
    );
    assert.equal(await httpCount(url, route), before, 'the submit did not go over HTTP');
    const conn = raw();
    await assert.rejects(
      conn.call('peak.txn:1', 'saga', {}, { token: credential, body: { steps: [] } }, 10_000),
      (e) => isPeakError(e, 'PEAK_INVALID_ARGUMENT') && /steps/.test(e.message),
    );
    conn.close();
  });

  it('carries two-phase messages: prepare, submit and abort reach no msgs route; a bad gid is refused', async () => {
    const routes = [
      '/api/v1/txn/msgs',
      '/api/v1/txn/msgs/:gid/submit',
      '/api/v1/txn/msgs/:gid/abort',
    ];
    const before = await Promise.all(routes.map((r) => httpCount(url, r)));
    const txn = new TxnClient({ servers: url });
    const spec = (gid: string) => ({
      gid,
      topic: 'orders',
      message: { body: `${gid} placed` },
      check: { service: 'default/rpc.test.nobody:1.0.0', method: 'check' },
      checkAfterMs: 60_000,
    });
    const sent = await txn.message(spec('rpc-msg-sent'));
    assert.equal((await sent.submit()).status, 'succeeded');
    assert.equal((await sent.submit()).status, 'succeeded', 'a second submit changes nothing');
    const dropped = await txn.message(spec('rpc-msg-dropped'));
    assert.equal((await dropped.abort()).status, 'failed');
    await assert.rejects(dropped.submit(), (e) => isPeakError(e, 'PEAK_TXN_STATE'));
    assert.deepEqual(
      await Promise.all(routes.map((r) => httpCount(url, r))),
      before,
      'none went over HTTP',
    );
    // The counts are of these routes: a client told to use HTTP moves them.
    const overHttp = new TxnClient({ servers: url, transport: 'http' });
    await (await overHttp.message(spec('http-msg-dropped'))).abort();
    assert.deepEqual(await Promise.all(routes.map((r) => httpCount(url, r))), [
      before[0]! + 1,
      before[1]!,
      before[2]! + 1,
    ]);
    const conn = raw();
    await assert.rejects(
      conn.call('peak.txn:1', 'msgSubmit', {}, { token: credential, body: { gid: '' } }, 10_000),
      (e) => isPeakError(e, 'PEAK_INVALID_ARGUMENT') && /gid/.test(e.message),
    );
    await assert.rejects(
      conn.call(
        'peak.txn:1',
        'msgAbort',
        {},
        { token: 'wrong', body: { gid: 'rpc-msg-sent' } },
        10_000,
      ),
      (e) => isPeakError(e, 'PEAK_UNAUTHENTICATED'),
    );
    conn.close();
  });

  it('a fixed RPC port already in use stops the start, naming that port (not the HTTP one)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-rpc-in-use-'));
    const p = spawnPeak(['server', '--data', dir, '--port', '0', '--json', '--log-level', 'warn'], {
      PEAK_RPC_PORT: String(endpoint.port),
    });
    nodes.push({ p, dir });
    const { code } = await p.exited;
    assert.notEqual(code, 0);
    assert.match(
      p.stderr() + p.stdout(),
      new RegExp(
        `RPC port ${endpoint.port} on 127\\.0\\.0\\.1 is already in use; set PEAK_RPC_PORT`,
      ),
    );
  });
});
