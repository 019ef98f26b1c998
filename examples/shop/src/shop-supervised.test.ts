/**
 * The chain's service processes run under the shop's supervisor (issue 19, item 4): while
 * `npm start` runs, `peak scale status --app shop` lists every one of them (app `shop`,
 * one service per role) with the pids that run under the shop; a service killed with
 * SIGKILL is reported in one line naming the signal and its replacement's pid, which the
 * status then shows for the same instance, restarted once. Waits are bounds for a loaded
 * machine; no timing is asserted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { alive, descendants, startShop, waitUntil } from './testing/shop-process.js';

const peakCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('peakware/package.json')),
  'bin',
  'peak.js',
);

interface StatusJson {
  supervisors: { supervisorId: string; live: boolean }[];
  services: {
    service: string;
    instances: { id: string; pid: number; state: string; restarts: number }[];
  }[];
}

test('peak scale status lists the chain’s own instances; a killed one is restarted under its id', {
  timeout: 360_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-shop-supervised-'));
  const shop = startShop([
    ...['--data', dataDir, '--port', '0'],
    ...['--stock', '20', '--buyers', '60', '--concurrency', '8', '--seconds', '5'],
  ]);
  let tree: { pid: number }[] = [];
  try {
    await waitUntil(
      'the chain up for the user',
      () => shop.io.out.includes('Stop with Ctrl-C.'),
      240_000,
      shop.child,
      shop.io,
    );
    const server = /control plane\s+(http:\S+)/.exec(shop.io.out)?.[1];
    assert.ok(server, shop.io.out);
    const status = async (): Promise<StatusJson> => {
      const { stdout } = await promisify(execFile)(process.execPath, [
        peakCli,
        ...['scale', 'status', '--app', 'shop', '--server', server, '--data', dataDir],
        ...['-o', 'json'],
      ]);
      return JSON.parse(stdout) as StatusJson;
    };
    const instancesOf = (s: StatusJson) =>
      s.services.flatMap((svc) => svc.instances).sort((a, b) => a.id.localeCompare(b.id));
    let seen = await status();
    // The first report may still be on its way.
    await waitUntil(
      'six running instances in the status',
      async () => {
        seen = await status();
        const all = instancesOf(seen);
        return all.length === 6 && all.every((i) => i.state === 'running');
      },
      30_000,
    );
    assert.deepEqual(
      instancesOf(seen).map((i) => i.id),
      [
        'shop.coupon-v1-1',
        'shop.inventory-v1-1',
        'shop.inventory-v1-2',
        'shop.order-v1-1',
        'shop.order-v1-2',
        'shop.points-v1-1',
      ],
    );
    assert.equal(seen.supervisors.filter((s) => s.live).length, 1, JSON.stringify(seen));
    tree = await descendants(shop.child.pid!);
    const under = new Set(tree.map((p) => p.pid));
    for (const i of instancesOf(seen)) assert.ok(under.has(i.pid), `${i.id} pid ${i.pid}`);

    const victim = instancesOf(seen).find((i) => i.id === 'shop.inventory-v1-2')!;
    process.kill(victim.pid, 'SIGKILL');
    const line = new RegExp(
      `inventory process \\(pid ${victim.pid}\\) died, killed by SIGKILL; restarted as pid (\\d+)`,
    );
    await waitUntil('the death line', () => line.test(shop.io.err), 120_000, shop.child, shop.io);
    const replacement = Number(line.exec(shop.io.err)![1]);
    await waitUntil(
      'the replacement in the status',
      async () => {
        const now = instancesOf(await status()).find((i) => i.id === victim.id);
        return now?.pid === replacement && now.restarts === 1 && now.state === 'running';
      },
      30_000,
    );
    assert.ok(alive(replacement));
    // One line per death: the supervisor's own exit warning is not on stderr as well.
    assert.doesNotMatch(shop.io.err, /restarting after backoff/);
    shop.child.kill('SIGINT');
    const { code } = await shop.exited;
    assert.equal(code, 130, shop.io.err);
  } finally {
    shop.child.kill('SIGKILL');
    for (const p of tree) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
