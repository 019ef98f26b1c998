/**
 * `peak server` stops promptly while consumers hold long polls: an open long poll is
 * answered (empty), a push stream is ended, an aborted poll and a connection that never sent a request do not hold
 * up the HTTP close (Node's close() waits for such sockets until the client drops them).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { BrokerClient } from '../src/mq/index.js';
import { PeakServer } from '../src/server/peak-server.js';
import { bearer, useLocalCredential } from './support/credentials.js';

// A bound for a loaded host: it covers starting the server (an embedded PostgreSQL) too, and
// 60 s ran out once in a full run with test files side by side.
describe('mq long polls at server shutdown', { timeout: 120_000 }, () => {
  let dataDir: string | undefined;
  let server: PeakServer | undefined;
  const sockets: net.Socket[] = [];

  after(async () => {
    for (const s of sockets) s.destroy();
    await server?.stop();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it('stop answers open long polls and push streams, and does not wait for aborted polls or silent sockets', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-stop-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    useLocalCredential(server);
    const url = server.info.url;
    await new BrokerClient({ servers: url, token: server.info.adminToken! }).call(
      'POST',
      '/api/v1/mq/topics',
      { name: 'idle', queues: 2 },
    );
    const receive = (consumerId: string, signal?: AbortSignal) =>
      fetch(`${url}/api/v1/mq/groups/g/receive`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer() },
        body: JSON.stringify({ topic: 'idle', consumerId, waitMs: 30_000 }),
        ...(signal === undefined ? {} : { signal }),
      });
    const open = receive('open-1');
    // A push stream is ended too.
    const stream = await fetch(`${url}/api/v1/mq/groups/g/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer() },
      body: JSON.stringify({ topic: 'idle', consumerId: 'pushed-1', inflight: 4 }),
    });
    assert.equal(stream.status, 200);
    const streamEnded = stream.text();
    const aborter = new AbortController();
    const aborted = receive('aborted-1', aborter.signal).catch((err: Error) => err.name);
    // A client that connects and sends nothing (as undici's spare connections do).
    const { port, hostname } = new URL(url);
    const silent = net.connect(Number(port), hostname);
    sockets.push(silent);
    await new Promise<void>((resolve, reject) => {
      silent.once('connect', resolve);
      silent.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 500));
    aborter.abort();
    assert.equal(await aborted, 'AbortError');
    await new Promise((r) => setTimeout(r, 200));

    const stopping = server.stop();
    const answer = await open;
    assert.equal(answer.status, 200);
    assert.deepEqual(((await answer.json()) as { messages: unknown[] }).messages, []);
    assert.equal((await streamEnded).trim(), '', 'the stream ends with no deliveries');
    // stop() says whether every step finished on its own: with a long poll, an aborted poll
    // or the silent socket holding the HTTP close, it would run out its budget and force.
    assert.equal(await stopping, true, 'stop had to force the HTTP close');
    server = undefined;
  });
});
