/**
 * Quota exactness across gateway processes: two `peak gateway` processes behind no load
 * balancer but the test's own round-robin, one app with a daily quota, calls in parallel to
 * both. Exactly the quota's calls are admitted over both processes (never more; none lost to
 * leases parked at the other gateway), the provider runs exactly those, and the control
 * plane's count says the same once the gateways stop. A subscription without a quota is
 * metered all the same: both gateways report its calls while they run, the last at close.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rpcRoute, signRequest } from '../src/gateway/index.js';
import { echoService, type GatewayFixture, gatewayFixture } from './gateway-fixture.js';

describe('peak gateway: quota across two processes', { timeout: 180_000 }, () => {
  let f: GatewayFixture;
  let urls: string[];
  const QUOTA = 37;

  before(async () => {
    f = await gatewayFixture('gw-quota');
    await f.admin.gateway.putRoute(
      rpcRoute(echoService, 'echo', {
        name: 'echo',
        api: 'echo',
        method: 'POST',
        path: '/echo',
        auth: 'key',
      }),
    );
    await f.admin.gateway.putRoute(
      rpcRoute(echoService, 'echo', {
        name: 'signed',
        api: 'signed',
        method: 'POST',
        path: '/signed',
      }),
    );
    await f.admin.gateway.putRoute(
      rpcRoute(echoService, 'echo', {
        name: 'free',
        api: 'free',
        method: 'POST',
        path: '/free',
        auth: 'key',
      }),
    );
    await f.admin.gateway.requestSubscription('partner', 'free');
    await f.admin.gateway.approve('partner', 'free');
    await f.admin.gateway.requestSubscription('partner', 'signed');
    await f.admin.gateway.approve('partner', 'signed');
    await f.admin.gateway.requestSubscription('partner', 'echo');
    await f.admin.gateway.approve('partner', 'echo', {
      quota: { perDay: QUOTA, perMonth: 10_000 },
    });
    urls = [await f.startGateway(), await f.startGateway()];
  });

  after(async () => {
    await f?.close();
  });

  it('refuses a signed request replayed to the other gateway (nonces in the shared store)', async () => {
    const body = JSON.stringify({ n: 1, s: 'once' });
    const headers = { 'content-type': 'application/json' };
    const once = {
      method: 'POST',
      body,
      headers: {
        ...headers,
        ...signRequest({
          method: 'POST',
          url: '/signed',
          body,
          headers,
          keyId: f.key.id,
          secret: f.key.secret,
        }),
      },
    };
    const first = await fetch(`${urls[0]}/signed`, once);
    assert.equal(first.status, 200, await first.text());
    const again = await fetch(`${urls[1]}/signed`, once);
    const answer = (await again.json()) as { error?: { code: string } };
    assert.equal(again.status, 401, JSON.stringify(answer));
    assert.equal(answer.error?.code, 'PEAK_GATEWAY_REPLAYED');
  });

  it('meters a subscription without a quota: both gateways report its calls, the last ones at close', async () => {
    const call = async (g: number) => {
      const res = await fetch(`${urls[g]}/free`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-peak-api-key': `${f.key.id}.${f.key.secret}`,
        },
        body: JSON.stringify({ n: g, s: 'metered' }),
      });
      await res.arrayBuffer();
      return res.status;
    };
    const usage = async () => (await f.admin.gateway.quota({ app: 'partner', api: 'free' }))[0];
    // 20 calls, 4 in flight at a time, alternating between the gateways: all admitted.
    for (let round = 0; round < 5; round++)
      assert.deepEqual(await Promise.all([0, 1, 0, 1].map(call)), [200, 200, 200, 200]);
    // Reported while the gateways run (every 5 s), not only when they stop.
    let seen = await usage();
    for (let t = Date.now(); seen?.usedToday !== 20 && Date.now() - t < 15_000; ) {
      await new Promise((r) => setTimeout(r, 200));
      seen = await usage();
    }
    assert.equal(seen?.usedToday, 20, `use as counted: ${JSON.stringify(seen)}`);
    assert.equal(seen?.usedThisMonth, 20);
    assert.equal(seen?.perDay, null);
    assert.equal(seen?.perMonth, null);
    // Three more through the second gateway, which then stops: its close reports them at once.
    assert.deepEqual(await Promise.all([1, 1, 1].map(call)), [200, 200, 200]);
    urls[1] = await f.restartGateway(1);
    assert.equal((await usage())?.usedToday, 23);
    assert.equal((await usage())?.usedThisMonth, 23);
  });

  it("counts a report's uses in one statement: the same counter twice summed, each subscription its own", async () => {
    const day = new Date().toISOString().slice(0, 10);
    const month = `${day.slice(0, 7)}-01`;
    const before = await f.admin.gateway.quota({ app: 'partner' });
    const usedOf = (rows: typeof before, api: string) =>
      rows.find((r) => r.api === api)?.usedToday ?? 0;
    const res = await fetch(`${f.server.info.url}/api/v1/gateway/quota/use`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${f.server.info.adminToken}`,
      },
      body: JSON.stringify({
        uses: [
          { app: 'partner', api: 'free', units: 2, day, month },
          { app: 'partner', api: 'signed', units: 5, day, month },
          // Two gateways' worth for one counter (a report after a failed one): summed.
          { app: 'partner', api: 'free', units: 3, day, month },
        ],
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { counted: 10 });
    const after = await f.admin.gateway.quota({ app: 'partner' });
    assert.equal(usedOf(after, 'free') - usedOf(before, 'free'), 5);
    assert.equal(usedOf(after, 'signed') - usedOf(before, 'signed'), 5);
    // A report with nothing in it is refused, and counts nothing.
    const empty = await fetch(`${f.server.info.url}/api/v1/gateway/quota/use`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${f.server.info.adminToken}`,
      },
      body: JSON.stringify({ uses: [] }),
    });
    assert.equal(empty.status, 400);
  });

  it('admits exactly the quota over both gateways, and the control plane counts the same', async () => {
    const ran = f.calls.echo;
    const statuses: number[] = [];
    const byGateway = [0, 0];
    let i = 0;
    // 120 calls, 8 in flight at a time, alternating between the gateways.
    for (let round = 0; round < 15; round++) {
      const batch = Array.from({ length: 8 }, () => {
        const g = i++ % 2;
        return fetch(`${urls[g]}/echo`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-peak-api-key': `${f.key.id}.${f.key.secret}`,
          },
          body: JSON.stringify({ n: i, s: 'q' }),
        }).then(async (res) => {
          await res.arrayBuffer();
          statuses.push(res.status);
          if (res.status === 200) byGateway[g]!++;
        });
      });
      await Promise.all(batch);
    }
    const ok = statuses.filter((s) => s === 200).length;
    assert.equal(ok, QUOTA, `statuses: ${JSON.stringify(statuses)}`);
    assert.equal(statuses.filter((s) => s === 429).length, 120 - QUOTA);
    assert.ok(byGateway[0]! > 0 && byGateway[1]! > 0, `both gateways admitted some: ${byGateway}`);
    assert.equal(f.calls.echo - ran, QUOTA);
    for (const g of f.gateways) g.child.kill('SIGTERM');
    await Promise.all(f.gateways.map((g) => g.exited));
    f.gateways.length = 0;
    const [usage] = await f.admin.gateway.quota({ app: 'partner', api: 'echo' });
    assert.equal(usage?.usedToday, QUOTA);
    assert.equal(usage?.usedThisMonth, QUOTA);
    assert.equal(usage?.perDay, QUOTA);
  });
});
