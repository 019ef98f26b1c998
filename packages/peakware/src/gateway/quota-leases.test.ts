/**
 * Quota leases against a slow control plane (a real HTTP server that answers each lease
 * after 100 ms): the lease grows with the round trip, so calls do not run out while the next
 * one travels. Rates come from the injected clock; only the lease's round trip is real time.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ControlPlaneClient } from '../core/control-plane-client.js';
import { silentLogger } from '../core/logger.js';
import { QuotaLeases } from './quota-leases.js';

const LEASE_DELAY_MS = 100;

describe('quota leases', () => {
  const asked: number[] = [];
  /** What gateways reported of subscriptions without a quota (POST .../quota/use). */
  const used: { app: string; units: number; day: string; month: string }[] = [];
  /** Lease requests for subscriptions without a quota. */
  let unlimitedAsked = 0;
  /** Lease requests of app 'flaky' (unlimited once, then a failing control plane). */
  let flakyAsked = 0;
  /** Lease requests of app 'flakyq' (100 calls once, then a failing control plane). */
  let flakyqAsked = 0;
  let server: http.Server;
  let url: string;

  before(async () => {
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => {
        text += d.toString();
      });
      req.on('end', () => {
        const answer = (body: unknown) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const answerUnlimited = (want: number) =>
          answer({
            granted: want,
            unlimited: true,
            validUntil: Number.MAX_SAFE_INTEGER,
            resetAt: 0,
            remaining: Number.MAX_SAFE_INTEGER,
            day: '2026-12-05',
            month: '2026-12-01',
          });
        if (req.url === '/api/v1/gateway/quota/use') {
          used.push(...(JSON.parse(text) as { uses: typeof used }).uses);
          return answer({});
        }
        if (req.url !== '/api/v1/gateway/quota/lease') return answer({});
        const { want, app } = JSON.parse(text) as { want: number; app: string };
        if (app === 'flaky') {
          flakyAsked++;
          // The first answer holds; every later one finds the control plane failing.
          if (flakyAsked === 1) return answerUnlimited(want);
          res.writeHead(503, { 'content-type': 'application/json' });
          return res.end('{"error":{"code":"PEAK_UNAVAILABLE","message":"down"}}');
        }
        if (app === 'flakyq') {
          flakyqAsked++;
          if (flakyqAsked === 1)
            return answer({
              granted: 100,
              unlimited: false,
              validUntil: Number.MAX_SAFE_INTEGER,
              resetAt: Number.MAX_SAFE_INTEGER,
              remaining: 1e9,
              day: '2026-12-05',
              month: '2026-12-01',
            });
          res.writeHead(503, { 'content-type': 'application/json' });
          return res.end('{"error":{"code":"PEAK_UNAVAILABLE","message":"down"}}');
        }
        if (app === 'free' || app === 'free2') {
          unlimitedAsked++;
          return answerUnlimited(want);
        }
        asked.push(want);
        setTimeout(
          () =>
            answer({
              granted: want,
              unlimited: false,
              validUntil: Number.MAX_SAFE_INTEGER,
              resetAt: Number.MAX_SAFE_INTEGER,
              remaining: 1e9,
              day: '2026-12-05',
              month: '2026-12',
            }),
          LEASE_DELAY_MS,
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  /** Leases from the test's control plane, on the test's clock. */
  const leasesOn = (clock: () => number) =>
    new QuotaLeases(new ControlPlaneClient({ servers: url }), silentLogger(), clock);

  it('asks for four round trips of traffic when the control plane is slower than 50 ms', async () => {
    let clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const leases = leasesOn(() => clock);
    try {
      // One second of 1000 calls, then the next second's first lease: 1000/s for four round
      // trips of about 100 ms is about 400 calls (200 ms of traffic, the old horizon, would be
      // 200). The server's 100 ms timer counts from the event loop's cached time, which a
      // busy turn leaves behind the real clock, so a measured round trip may be a few ms short
      // of 100: more than 300 tells the two apart.
      for (let i = 0; i < 1000; i++) {
        const taken = leases.take('app', 'api');
        assert.equal(taken instanceof Promise ? await taken : taken, true);
      }
      clock += 1000;
      const before = asked.length;
      for (let i = 0; asked.length === before && i < 1000; i++) {
        const taken = leases.take('app', 'api');
        assert.equal(taken instanceof Promise ? await taken : taken, true);
      }
      assert.ok(asked.length > before, 'a lease was asked for in the second second');
      assert.ok(
        asked[before]! > 300,
        `asked for ${asked[before]} calls at 1000/s with ${LEASE_DELAY_MS} ms leases`,
      );
    } finally {
      await leases.close();
    }
  });

  it('meters calls without a quota: counted in the UTC day they were taken, refused ones given back, reported at close', async () => {
    let clock = Date.UTC(2026, 11, 5, 23, 59, 59, 0);
    const leases = leasesOn(() => clock);
    const take = async () => {
      const taken = leases.take('free', 'api');
      assert.equal(taken instanceof Promise ? await taken : taken, true);
    };
    for (let i = 0; i < 5; i++) await take();
    // Two were refused later (a guard rule): not metered.
    leases.giveBack('free', 'api');
    leases.giveBack('free', 'api');
    // Past midnight: the next day's calls are counted apart from the old day's.
    clock += 2000;
    for (let i = 0; i < 4; i++) await take();
    await leases.close();
    const byDay = used
      .filter((u) => u.app === 'free')
      .reduce<Record<string, number>>((m, u) => {
        m[`${u.day} ${u.month}`] = (m[`${u.day} ${u.month}`] ?? 0) + u.units;
        return m;
      }, {});
    assert.deepEqual(byDay, { '2026-12-05 2026-12-01': 3, '2026-12-06 2026-12-01': 4 });
  });

  it('asks again for an unlimited answer before it lapses, so no call waits for it', async () => {
    let clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const leases = leasesOn(() => clock);
    try {
      const first = leases.take('free2', 'api');
      assert.ok(first instanceof Promise, 'the first call waits for the first answer');
      assert.equal(await first, true);
      const before = unlimitedAsked;
      // 4.5 s into the 5 s hold: answered at once, and the next answer asked for meanwhile.
      clock += 4500;
      assert.equal(leases.take('free2', 'api'), true);
      for (let i = 0; i < 200 && unlimitedAsked === before; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(unlimitedAsked, before + 1);
      await new Promise((r) => setTimeout(r, 50));
      // Past the first hold's end: the renewed answer holds, nothing waits.
      clock += 1000;
      assert.equal(leases.take('free2', 'api'), true);
    } finally {
      await leases.close();
    }
  });

  it('tries the renewal once a second while the control plane fails, not on every call', async () => {
    let clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const leases = leasesOn(() => clock);
    try {
      assert.equal(await leases.take('flaky', 'api'), true);
      // In the hold's last second, 300 calls over 600 ms of the test's clock: the first
      // starts a renewal, which fails; the next try waits a second.
      clock += 4100;
      for (let i = 0; i < 300; i++) {
        assert.equal(leases.take('flaky', 'api'), true);
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 20));
        clock += 2;
      }
      assert.equal(flakyAsked, 2, `lease requests: ${flakyAsked}`);
    } finally {
      await leases.close();
    }
  });

  it('asks for the next lease once a second while the control plane fails, not on every call', async () => {
    let clock = Date.UTC(2026, 11, 5, 12, 0, 0);
    const leases = leasesOn(() => clock);
    try {
      // 100 calls leased; the next lease is asked for when few are left, and fails: the
      // calls left are spent without asking again on each.
      for (let i = 0; i < 100; i++) {
        const taken = leases.take('flakyq', 'api');
        assert.equal(taken instanceof Promise ? await taken : taken, true);
        // Time for a failed lease's answer between the last calls.
        if (i % 10 === 0 || i > 80) await new Promise((r) => setTimeout(r, 15));
        clock += 2;
      }
      assert.equal(flakyqAsked, 2, `lease requests: ${flakyqAsked}`);
    } finally {
      await leases.close();
    }
  });
});
