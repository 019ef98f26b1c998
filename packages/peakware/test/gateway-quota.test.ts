/**
 * Quota exactness across gateway processes: two `peak gateway` processes behind no load
 * balancer but the test's own round-robin, one app with a daily quota, calls in parallel to
 * both. Exactly the quota's calls are admitted over both processes (never more; none lost to
 * leases parked at the other gateway), the provider runs exactly those, and the control
 * plane's count says the same once the gateways stop.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rpcRoute } from '../src/gateway/index.js';
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
    await f.admin.gateway.requestSubscription('partner', 'echo');
    await f.admin.gateway.approve('partner', 'echo', {
      quota: { perDay: QUOTA, perMonth: 10_000 },
    });
    urls = [await f.startGateway(), await f.startGateway()];
  });

  after(async () => {
    await f?.close();
  });

  it('admits exactly the quota over both gateways, and the control plane counts the same', async () => {
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
    assert.equal(f.calls.echo, QUOTA);
    for (const g of f.gateways) g.child.kill('SIGTERM');
    await Promise.all(f.gateways.map((g) => g.exited));
    f.gateways.length = 0;
    const [usage] = await f.admin.gateway.quota({ app: 'partner', api: 'echo' });
    assert.equal(usage?.usedToday, QUOTA);
    assert.equal(usage?.usedThisMonth, QUOTA);
    assert.equal(usage?.perDay, QUOTA);
  });
});
