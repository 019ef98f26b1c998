/**
 * MQTT access with a real MQTT client (mqtt.js over TCP) against `peak server` with
 * PEAK_MQ_MQTT_PORT set: devices publish into topics (tag from the MQTT topic) and
 * subscribe to them with their app credential as the MQTT username (refused without one,
 * or out of its grants); secured topics take their secrets as the MQTT password; a bad
 * publish disconnects only that client.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { AdminClient } from '../src/admin/index.js';
import { BrokerClient, Consumer, Producer } from '../src/mq/index.js';
import { PeakServer } from '../src/server/peak-server.js';
import { useLocalCredential } from './support/credentials.js';
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

describe('mq over MQTT', { timeout: 120_000 }, () => {
  let server: PeakServer;
  let dataDir: string;
  let port: number;
  let wsPort: number;
  let admin: BrokerClient;
  const clients: mqtt.MqttClient[] = [];
  const closers: (() => Promise<void>)[] = [];

  /** A device with the local app's credential (every grant) unless given another. */
  const connect = async (password?: string, credential?: string): Promise<mqtt.MqttClient> => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
      username: credential ?? server.credential(),
      ...(password === undefined ? {} : { password }),
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    port = await freePort();
    wsPort = await freePort();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-mq-mqtt-'));
    server = await PeakServer.start({ dataDir, port: 0, mq: { mqtt: { port, wsPort } } });
    useLocalCredential(server);
    admin = new BrokerClient({ servers: server.info.url, token: server.info.adminToken! });
    await admin.call('POST', '/api/v1/mq/topics', { name: 'telemetry', queues: 2 });
  });

  after(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    for (const close of closers) await close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('stores device publishes (QoS 1 acked after commit) and delivers them to SDK consumers with the tag', async () => {
    const device = await connect();
    await device.publishAsync('mq/telemetry/temp', '21.5', { qos: 1 });
    const got: { tag: string | null; text: string }[] = [];
    const consumer = new Consumer({
      servers: server.info.url,
      group: 'dash',
      topic: 'telemetry',
      waitMs: 300,
      handler: (m) => void got.push({ tag: m.tag, text: m.text() }),
    }).start();
    closers.push(() => consumer.close());
    await waitFor('the device reading', () => got.length === 1);
    assert.deepEqual(got, [{ tag: 'temp', text: '21.5' }]);
  });

  it('pushes messages to MQTT subscribers, filtered by tag', async () => {
    const sub = await connect();
    const received: { topic: string; payload: string }[] = [];
    sub.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
    await sub.subscribeAsync('mq/telemetry/alarm', { qos: 0 });
    await new Promise((r) => setTimeout(r, 800));
    const producer = new Producer({ servers: server.info.url });
    closers.push(() => producer.close());
    await producer.send('telemetry', { body: 'ignored', tag: 'temp' });
    await producer.send('telemetry', { body: 'fire!', tag: 'alarm' });
    await waitFor('the alarm', () => received.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(received, [{ topic: 'mq/telemetry/alarm', payload: 'fire!' }]);
  });

  it('serves browsers over WebSocket: publish and subscribe, the same credentials refused the same way', async () => {
    const ws = (username: string) =>
      mqtt.connectAsync(`ws://127.0.0.1:${wsPort}/mqtt`, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        username,
      });
    const browser = await ws(server.credential());
    clients.push(browser);
    const received: string[] = [];
    browser.on('message', (_t, payload) => received.push(payload.toString()));
    await browser.subscribeAsync('mq/telemetry/ws', { qos: 1 });
    await new Promise((r) => setTimeout(r, 800));
    const device = await ws(server.credential());
    clients.push(device);
    await device.publishAsync('mq/telemetry/ws', 'over websocket', { qos: 1 });
    await waitFor('the message over websocket', () => received.length >= 1);
    assert.deepEqual(received, ['over websocket']);
    // Stored in the topic like any publish: an SDK consumer sees it with its tag.
    const stored = await admin.call<{ messages: { tag: string | null }[] }>(
      'GET',
      `/api/v1/mq/messages?topic=telemetry&tag=ws&from=${Date.now() - 60_000}&to=${Date.now() + 1000}`,
    );
    assert.equal(stored.messages[0]?.tag, 'ws');
    await assert.rejects(ws('not-a-credential'), /Bad username or password|Not authorized/i);
  });

  it('a wildcard subscription gets every tag at the QoS asked; an unservable filter is refused in its SUBACK', async () => {
    const sub = await connect();
    const received: { topic: string; payload: string; qos: number }[] = [];
    sub.on('message', (topic, payload, packet) =>
      received.push({ topic, payload: payload.toString(), qos: packet.qos }),
    );
    const granted = await sub.subscribeAsync('mq/telemetry/#', { qos: 1 });
    assert.deepEqual(
      granted.map((g) => g.qos),
      [1],
    );
    // A wildcard in the topic's place cannot map to one topic: SUBACK 0x80 (mqtt.js reports
    // it as "Unspecified error"), and the connection stays up.
    await assert.rejects(sub.subscribeAsync('mq/#', { qos: 1 }), /Unspecified error/);
    assert.equal(sub.connected, true);
    await new Promise((r) => setTimeout(r, 800));
    const producer = new Producer({ servers: server.info.url });
    closers.push(() => producer.close());
    await producer.send('telemetry', { body: 'a', tag: 'temp' });
    await producer.send('telemetry', { body: 'b', tag: 'humidity' });
    await waitFor('both tags', () => received.length >= 2);
    assert.deepEqual(
      received.map((r) => [r.topic, r.payload, r.qos]),
      [
        ['mq/telemetry/temp', 'a', 1],
        ['mq/telemetry/humidity', 'b', 1],
      ],
    );
  });

  it('takes an app credential as the username, and its grants: produce per topic, consume per topic and group', async () => {
    for (const username of [undefined, 'peakapp_wrong']) {
      await assert.rejects(
        mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
          reconnectPeriod: 0,
          connectTimeout: 5000,
          ...(username === undefined ? {} : { username }),
        }),
        /Bad username or password/,
      );
    }
    const apps = new AdminClient({ servers: server.info.url, token: server.info.adminToken! });
    const sensor = (
      await apps.apps.create('mqtt.sensor', [
        'produce:telemetry',
        'consume:telemetry/mqtt-sensor-1',
      ])
    ).credential;
    const stranger = (await apps.apps.create('mqtt.stranger', ['produce:other'])).credential;
    // In its grants: publishes, and subscribes in its own group.
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      reconnectPeriod: 0,
      clientId: 'sensor-1',
      username: sensor,
    });
    clients.push(device);
    await device.publishAsync('mq/telemetry/granted', 'ok', { qos: 1 });
    assert.deepEqual(
      (await device.subscribeAsync('mq/telemetry/granted', { qos: 1 })).map((g) => g.qos),
      [1],
    );
    // Out of its grants: the subscription is refused in its SUBACK, the publish drops it.
    const other = await connect(undefined, stranger);
    await assert.rejects(other.subscribeAsync('mq/telemetry', { qos: 1 }), /Unspecified error/);
    const closed = new Promise<void>((resolve) => other.once('close', () => resolve()));
    other.publish('mq/telemetry/forged', 'x', { qos: 1 });
    await closed;
    const { messages } = await admin.call<{ messages: { tag: string | null }[] }>(
      'GET',
      '/api/v1/mq/messages?topic=telemetry&tag=forged',
    );
    assert.deepEqual(messages, [], 'nothing of the stranger was stored');
    // A revoked credential stops working on the open connection too.
    await apps.apps.revoke('mqtt.sensor');
    let dropped = false;
    device.once('close', () => {
      dropped = true;
    });
    await waitFor('the revoked device is dropped at its next publish', async () => {
      if (!dropped) device.publish('mq/telemetry/granted', 'after revoke', { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
      return dropped;
    });
  });

  it('secured topics take their secrets as the MQTT password; bad publishes drop only that client', async () => {
    const t = await admin.call<{ produceSecret: string; consumeSecret: string }>(
      'POST',
      '/api/v1/mq/topics',
      {
        name: 'locks',
        secured: true,
      },
    );
    const good = await connect(t.produceSecret);
    await good.publishAsync('mq/locks/open', 'door-1', { qos: 1 });
    const { messages } = await admin.call<{ messages: { body: string }[] }>(
      'GET',
      '/api/v1/mq/messages?topic=locks&tag=open',
    );
    assert.deepEqual(
      messages.map((m) => Buffer.from(m.body, 'base64').toString()),
      ['door-1'],
    );
    for (const [password, topic] of [
      ['wrong', 'mq/locks/open'],
      [undefined, 'mq/no-such-topic'],
      [undefined, 'not/our/namespace'],
    ] as const) {
      const bad = await connect(password);
      const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()));
      bad.publish(topic, 'x', { qos: 1 });
      await closed;
    }
    // The broker keeps serving the well-behaved client.
    await good.publishAsync('mq/locks/close', 'door-1', { qos: 1 });
    const after = await admin.call<{ messages: unknown[] }>(
      'GET',
      '/api/v1/mq/messages?topic=locks',
    );
    assert.equal(after.messages.length, 2);
  });
});
