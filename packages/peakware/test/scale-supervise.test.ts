/**
 * `peak supervise` across real processes: a control plane, the supervisor (the real CLI)
 * and its instances (test/scale-fixture-service.ts: an RPC provider registered under the
 * id the supervisor gives it). A crashed instance is restarted; a count set on the
 * control plane is reached, and scaling in loses no call (graceful offline); the
 * supervisor killed outright leaves its instances running and adopts them when started
 * again; with the control plane gone nothing is stopped. No timing is asserted: the waits
 * are bounds for a loaded machine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HttpRegistry } from '../src/registry/index.js';
import { RpcClient, type ServiceClient } from '../src/rpc/index.js';
import { processAlive } from '../src/scale/index.js';
import { echoService } from './scale-fixture-service.js';
import { APP, type ScaleStack, SERVICE, startScaleStack } from './scale-fixture-stack.js';
import { killGroup, type PeakProcess } from './support/peak-process.js';
import { waitFor } from './support/wait.js';

describe('peak supervise', { timeout: 240_000 }, () => {
  let stack: ScaleStack;
  let registry: HttpRegistry;
  let client: RpcClient;
  let echo: ServiceClient<typeof echoService>;
  let supervisor: PeakProcess;

  const running = () => stack.instances('running');
  const registered = async () =>
    (await stack.admin.registry.instances()).filter((i) => i.service === SERVICE);

  before(async () => {
    stack = await startScaleStack({ instances: 2 });
    registry = new HttpRegistry({ servers: stack.server.info.url });
    client = new RpcClient({ registry, app: 'scaletest-caller', warmupMs: 0 });
    echo = client.service(echoService);
    supervisor = await stack.supervise();
  });

  after(async () => {
    await client?.close();
    await registry?.close();
    await stack?.stop();
  });

  it('runs the file’s count, registered under the ids it gives, and serves calls', async () => {
    await waitFor('two running instances, both registered', async () => {
      const ids = (await registered()).map((i) => i.instanceId).sort();
      return (await running()).length === 2 && ids.join() === `${SERVICE}-v1-1,${SERVICE}-v1-2`;
    });
    // A call may fail while the client's view of the registry is still being filled (on a
    // loaded machine); the wait goes on and names the last error if it never settles.
    const seen = new Set<string>();
    let reg: unknown;
    let lastError = 'none';
    await waitFor(
      () =>
        `calls reach both instances (saw ${[...seen].join()}; registered ${JSON.stringify(reg)}; last call error: ${lastError})`,
      async () => {
        reg = await registered();
        try {
          seen.add((await echo.echo({ n: 1 })).instance);
        } catch (err) {
          lastError = (err as Error).message;
        }
        return seen.size === 2;
      },
    );
  });

  it('restarts a crashed instance', async () => {
    const before = (await running()).find((i) => i.id === `${SERVICE}-v1-1`);
    assert.ok(before);
    process.kill(before.pid, 'SIGKILL');
    await waitFor('the instance restarted with a new pid', async () => {
      const now = (await running()).find((i) => i.id === `${SERVICE}-v1-1`);
      return now !== undefined && now.pid !== before.pid && now.restarts === 1;
    });
  });

  it('scales out and in to the count the control plane sets, losing no call on the way in', async () => {
    await stack.admin.scale.setInstances(APP, SERVICE, 3);
    await waitFor('three instances registered', async () => (await registered()).length === 3);
    let ok = 0;
    const failed: string[] = [];
    let stop = false;
    const callers = Array.from({ length: 4 }, async (_, c) => {
      for (let n = 0; !stop && n < 100_000; n++) {
        try {
          await echo.echo({ n: c * 100_000 + n });
          ok++;
        } catch (err) {
          failed.push((err as Error).message);
        }
      }
    });
    await waitFor('calls flowing', () => ok > 50);
    await stack.admin.scale.setInstances(APP, SERVICE, 1);
    await waitFor('one instance left, one registered', async () => {
      return (await running()).length === 1 && (await registered()).length === 1;
    });
    const atScaleIn = ok;
    await waitFor('calls flowing after the scale-in', () => ok > atScaleIn + 50);
    stop = true;
    await Promise.all(callers);
    assert.deepEqual(failed, [], 'no call failed while two instances stopped');
    const decisions = await stack.admin.scale.history(APP, { service: SERVICE });
    assert.deepEqual(
      decisions.slice(0, 2).map((d) => [d.action, d.desired]),
      [
        ['in', 1],
        ['out', 3],
      ],
    );
  });

  it('leaves its instances running when killed, and adopts them when started again', async () => {
    await stack.admin.scale.setInstances(APP, SERVICE, 2);
    await waitFor('two running', async () => (await running()).length === 2);
    const pids = (await running()).map((i) => i.pid).sort();
    killGroup(supervisor.child, 'SIGKILL');
    await supervisor.exited;
    for (const pid of pids) assert.ok(processAlive(pid), `instance ${pid} survived the supervisor`);
    supervisor = await stack.supervise();
    await waitFor('the new supervisor reports the same two instances, adopted', async () => {
      const r = await running();
      return (
        r.length === 2 &&
        r.every((i) => i.adopted) &&
        r
          .map((i) => i.pid)
          .sort()
          .join() === pids.join()
      );
    });
  });

  it('stops nothing while the control plane is gone, and stops every instance on SIGTERM', async () => {
    const pids = (await running()).map((i) => i.pid);
    await client.close();
    await registry.close();
    await stack.server.stop();
    await waitFor('the supervisor saw the control plane go', () =>
      supervisor.stderr().includes('keeping the instances as they are'),
    );
    for (const pid of pids) assert.ok(processAlive(pid), `instance ${pid} still runs`);
    supervisor.child.kill('SIGTERM');
    await supervisor.exited;
    for (const pid of pids) assert.ok(!processAlive(pid), `instance ${pid} stopped`);
    assert.deepEqual(await stack.pidsInState(), []);
  });
});
