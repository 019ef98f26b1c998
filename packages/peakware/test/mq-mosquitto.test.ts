/**
 * MQTT interop with the reference command-line clients (mosquitto_sub / mosquitto_pub,
 * Debian package mosquitto-clients, installed by scripts/run-tests.mjs when missing)
 * against `peak server` with its MQTT bridge on: `#` and `+` wildcard subscriptions get
 * every tag at QoS 1 as asked, QoS 1 publishes are acknowledged, and a filter the bridge
 * cannot serve is refused in its SUBACK rather than by dropping the connection. Failed
 * logins count like wrong HTTP credentials: on /metrics, and against the address's budget
 * (CONNACK 3 past it, and HTTP from that address gets 429 too).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BrokerClient } from '../src/mq/index.js';
import { PeakServer } from '../src/server/peak-server.js';
import { waitFor } from './support/wait.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** A running mosquitto client and everything it printed (with -d: the protocol too). */
interface Client {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
}

function run(bin: string, args: string[]): Client {
  // Line-buffered stdout (stdbuf, coreutils): the test reads the SUBACK line while it runs.
  const child = spawn('stdbuf', ['-oL', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, out: () => out, exited };
}

describe('mq over MQTT with mosquitto_sub and mosquitto_pub', { timeout: 120_000 }, () => {
  let server: PeakServer;
  let dataDir: string;
  let port: number;
  const running: Client[] = [];

  // The MQTT username is the client's credential (an app's, or here the admin token).
  const mqttArgs = () => [
    ...['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'],
    ...['-u', server.info.adminToken!],
  ];

  before(async () => {
    port = await freePort();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-mosquitto-'));
    server = await PeakServer.start({ dataDir, port: 0, mq: { mqtt: { port } } });
    const admin = new BrokerClient({ servers: server.info.url, token: server.info.adminToken! });
    await admin.call('POST', '/api/v1/mq/topics', { name: 'devices', queues: 2 });
  });

  after(async () => {
    for (const c of running) c.child.kill('SIGKILL');
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('# and + subscriptions at QoS 1 get every tag at QoS 1; QoS 1 publishes are acknowledged', async () => {
    const subscribe = (filter: string) => {
      // -d prints the protocol (SUBACK's granted QoS, each PUBLISH's QoS); -C 2: exit after
      // two messages; -W: give up after 60 s.
      const c = run('mosquitto_sub', [
        ...mqttArgs(),
        '-d',
        '-q',
        '1',
        '-v',
        '-C',
        '2',
        '-W',
        '60',
        '-t',
        filter,
      ]);
      running.push(c);
      return c;
    };
    const hash = subscribe('mq/devices/#');
    const plus = subscribe('mq/devices/+');
    for (const c of [hash, plus]) {
      await waitFor(
        () => `the SUBACK: ${c.out()}`,
        () => /Subscribed \(mid: \d+\): 1\b/.test(c.out()),
      );
    }
    for (const [tag, body] of [
      ['temp', '21.5'],
      ['humidity', '40'],
    ]) {
      const pub = run('mosquitto_pub', [
        ...mqttArgs(),
        '-d',
        '-q',
        '1',
        '-t',
        `mq/devices/${tag}`,
        '-m',
        body!,
      ]);
      assert.equal(await pub.exited, 0, pub.out());
      assert.match(pub.out(), /Client \S+ received PUBACK/, 'QoS 1: the broker acknowledged');
    }
    for (const c of [hash, plus]) {
      assert.equal(await c.exited, 0, c.out());
      const lines = c.out().split('\n');
      assert.ok(lines.includes('mq/devices/temp 21.5'), c.out());
      assert.ok(lines.includes('mq/devices/humidity 40'), c.out());
      // Every delivery at the QoS the subscription asked for (was always 0).
      const deliveries = c.out().match(/received PUBLISH \(d\d, q(\d)/g) ?? [];
      assert.equal(deliveries.length, 2, c.out());
      assert.ok(
        deliveries.every((d) => d.endsWith('q1')),
        deliveries.join(', '),
      );
    }
  });

  it('a filter that cannot name one topic is refused in its SUBACK (0x80), with no dropped connection', async () => {
    const c = run('mosquitto_sub', [...mqttArgs(), '-d', '-q', '1', '-W', '30', '-t', 'mq/#']);
    running.push(c);
    await c.exited;
    assert.match(c.out(), /Subscribed \(mid: \d+\): 128/, c.out());
    assert.doesNotMatch(c.out(), /Connection lost|Error: The connection was lost/, c.out());
  });

  it('failed logins count like HTTP ones: on /metrics and against the address’s budget', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`${server.info.url}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
    };
    const failures = await metric('peak_auth_failures_total');
    const limited = await metric('peak_auth_rate_limited_total');
    // From an address of its own (127.3.0.1), so the other tests' calls keep their budget.
    const login = async (username: string) => {
      const pub = run('mosquitto_pub', [
        ...['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', '-A', '127.3.0.1'],
        ...['-u', username, '-t', 'mq/devices/temp', '-m', '1'],
      ]);
      running.push(pub);
      const code = await pub.exited;
      return { code, out: pub.out() };
    };
    for (let i = 0; i < 10; i++) {
      const wrong = await login(`peakapp_wrong${i}`);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.out, /bad user name or password/i, wrong.out);
    }
    assert.equal(await metric('peak_auth_failures_total'), failures + 10);
    // The address spent its budget: even the right credential is refused for now.
    const right = await login(server.info.adminToken!);
    assert.notEqual(right.code, 0);
    assert.match(right.out, /unavailable/i, right.out);
    assert.equal(await metric('peak_auth_rate_limited_total'), limited + 1);
    // One budget per address for every way in: HTTP from there is refused too.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(new URL('/api/v1/nodes', server.info.url), {
        localAddress: '127.3.0.1',
        headers: { authorization: `Bearer ${server.info.adminToken!}` },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.end();
    });
    assert.equal(status, 429);
  });
});
