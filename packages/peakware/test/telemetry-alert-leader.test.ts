/**
 * One alert evaluator across control-plane nodes: node A runs the embedded PostgreSQL and
 * serves the API only (`telemetry: { alertEvaluator: false }`); nodes B and C are `peak server`
 * processes on A's PostgreSQL, both willing to evaluate. A rule's fired and resolved
 * transitions produce exactly one event and one webhook each (not one per node); after the
 * evaluating node is killed with SIGKILL, the other takes the lock over and the next
 * transitions are again reported exactly once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PeakServer } from '../src/server/index.js';
import { bearer, useLocalCredential } from './support/credentials.js';
import { killGroup, type PeakProcess, spawnPeak } from './support/peak-process.js';
import { waitFor } from './support/wait.js';
import { startWebhookSink, type WebhookSink } from './support/webhook-sink.js';

interface Hook {
  rule: string;
  state: string;
}

describe('telemetry alerts: one evaluator across nodes', { timeout: 240_000 }, () => {
  let a: PeakServer;
  const dirs: string[] = [];
  const nodes: { name: string; proc: PeakProcess; url: string }[] = [];
  let webhook: WebhookSink | undefined;
  let webhookUrl: string;
  const hooks: Hook[] = [];

  const tmp = async (prefix: string) => {
    const d = await mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const json = async (url: string, method = 'GET', body?: unknown, token?: string) => {
    const res = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? bearer() : { authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const evaluating = async (url: string) =>
    (await json(`${url}/api/v1/telemetry/alerts/evaluator`).catch(() => undefined))?.body
      .evaluating === true;
  const leaders = async () => {
    const out = [];
    for (const n of nodes) if (await evaluating(n.url)) out.push(n);
    return out;
  };
  /** Error spans of service `leader-svc`, posted to node A's collector. */
  const failCalls = async (count: number) => {
    const nowUs = Date.now() * 1000;
    const spans = Array.from({ length: count }, (_, i) => ({
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      name: 'leader.call',
      kind: 'server',
      service: 'leader-svc',
      startUs: nowUs - i * 1000,
      durationUs: 500,
      error: true,
    }));
    const res = await json(`${a.info.url}/api/v1/telemetry/spans`, 'POST', { spans });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };
  /** One fired and one resolved transition; exactly one webhook each. */
  const transition = async (round: number) => {
    const before = hooks.length;
    await failCalls(20);
    await waitFor(`fired webhook of round ${round}`, () => hooks.length >= before + 1, 30_000);
    // The window (2 s) empties: the rule resolves.
    await waitFor(`resolved webhook of round ${round}`, () => hooks.length >= before + 2, 30_000);
    // Let every node run several more evaluations: no duplicates may arrive.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(
      hooks.slice(before).map((h) => h.state),
      ['fired', 'resolved'],
      `round ${round}: one webhook per transition`,
    );
    const events = await json(`${a.info.url}/api/v1/telemetry/alerts/events?rule=leader-errors`);
    const states = (events.body.events as { state: string }[]).map((e) => e.state);
    assert.deepEqual(states.slice(0, 2), ['resolved', 'fired']);
    assert.equal(states.length, round * 2, `round ${round}: one event per transition`);
  };

  before(async () => {
    a = await PeakServer.start({
      dataDir: await tmp('peak-leader-a-'),
      port: 0,
      telemetry: { alertEvaluator: false },
    });
    useLocalCredential(a);
    webhook = await startWebhookSink(hooks);
    webhookUrl = webhook.url;
    for (const name of ['b', 'c']) {
      const proc = spawnPeak(
        [
          'server',
          '--postgres',
          a.postgresUrl(),
          '--data',
          await tmp(`peak-leader-${name}-`),
          '--port',
          '0',
          '--json',
          '--log-level',
          'warn',
        ],
        { PEAK_TELEMETRY_ALERT_INTERVAL_MS: '200' },
      );
      const ready = await proc.waitFor('ready', 60_000);
      nodes.push({ name, proc, url: String(ready.url) });
    }
  });

  after(async () => {
    for (const n of nodes) {
      killGroup(n.proc.child);
      await n.proc.exited;
    }
    await webhook?.close();
    await a?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('reports each transition once, and another node takes over after a kill -9', async () => {
    const put = await json(
      `${a.info.url}/api/v1/telemetry/alerts/rules/leader-errors`,
      'PUT',
      {
        kind: 'error-rate',
        service: 'leader-svc',
        threshold: 0.5,
        windowSeconds: 2,
        webhook: webhookUrl,
      },
      a.info.adminToken,
    );
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(await evaluating(a.info.url), false, 'node A was told not to evaluate');
    await waitFor('one evaluating node', async () => (await leaders()).length === 1, 20_000);

    await transition(1);
    const [first] = await leaders();
    assert.ok(first !== undefined);
    assert.equal((await leaders()).length, 1, 'still exactly one evaluator');

    killGroup(first.proc.child, 'SIGKILL');
    await first.proc.exited;
    nodes.splice(nodes.indexOf(first), 1);
    const other = nodes[0]!;
    await waitFor(`node ${other.name} takes over`, () => evaluating(other.url), 30_000);
    const metrics = await fetch(`${other.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /^peak_telemetry_alert_evaluator 1$/m);

    await transition(2);
  });
});
