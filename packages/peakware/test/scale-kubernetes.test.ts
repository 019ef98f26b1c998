/**
 * The Kubernetes actuator against a recorded API: a local HTTP server answers the
 * Deployment `scale` subresource as the API server does (the Scale object and the 404
 * Status of Kubernetes' apps/v1 API, with the shapes the API reference gives), records
 * every request, and applies a merge patch of spec.replicas. The actuator reports the
 * Deployment to a real control plane and patches it to the count set there.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../src/admin/index.js';
import { KubernetesActuator } from '../src/scale/index.js';
import { PeakServer } from '../src/server/index.js';
import { waitFor } from './support/wait.js';

const SCALE_PATH = '/apis/apps/v1/namespaces/shop/deployments/order/scale';

interface Recorded {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

/** The recorded API: GET and PATCH of one Deployment's scale, 404 Status for the rest. */
function fakeApiServer(replicas: { n: number }, log: Recorded[]): http.Server {
  return http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      log.push({
        method: req.method ?? '',
        path: req.url ?? '',
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body,
      });
      res.setHeader('content-type', 'application/json');
      if (req.url !== SCALE_PATH) {
        res.statusCode = 404;
        res.end(
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: 'deployments.apps "missing" not found',
            reason: 'NotFound',
            details: { name: 'missing', group: 'apps', kind: 'deployments' },
            code: 404,
          }),
        );
        return;
      }
      if (req.method === 'PATCH') {
        replicas.n = (JSON.parse(body) as { spec: { replicas: number } }).spec.replicas;
      }
      res.end(
        JSON.stringify({
          kind: 'Scale',
          apiVersion: 'autoscaling/v1',
          metadata: {
            name: 'order',
            namespace: 'shop',
            uid: 'b2f3c5e4-0000-4000-8000-000000000001',
            resourceVersion: '4711',
          },
          spec: { replicas: replicas.n },
          status: { replicas: replicas.n, selector: 'app=order' },
        }),
      );
    });
  });
}

describe('Kubernetes actuator', { timeout: 120_000 }, () => {
  let dir: string;
  let server: PeakServer;
  let admin: AdminClient;
  let api: http.Server;
  let apiUrl: string;
  let actuator: KubernetesActuator;
  const replicas = { n: 2 };
  const log: Recorded[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-scale-k8s-'));
    server = await PeakServer.start({ dataDir: dir, port: 0 });
    admin = new AdminClient({
      servers: server.info.url,
      token: (await readFile(server.info.adminTokenFile, 'utf8')).trim(),
    });
    // The actuator reports with an app credential whose grant covers only its service.
    const credential = (await admin.apps.create('k8stest.actuator', ['scale:shop.order']))
      .credential;
    api = fakeApiServer(replicas, log);
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
    actuator = new KubernetesActuator({
      app: 'k8stest',
      service: 'shop.order',
      deployment: 'order',
      namespace: 'shop',
      apiServer: apiUrl,
      apiToken: 't0ken',
      servers: server.info.url,
      token: credential,
      everyMs: 200,
    }).start();
  });

  after(async () => {
    await actuator?.stop();
    await new Promise((r) => api?.close(r));
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the Deployment and patches it to the count set on the control plane', async () => {
    const instances = async () =>
      (await admin.scale.status('k8stest')).services.find((s) => s.service === 'shop.order')
        ?.instances.length;
    await waitFor('the two replicas reported', async () => (await instances()) === 2);
    await admin.scale.setInstances('k8stest', 'shop.order', 4, 'test');
    await waitFor('a patch to 4 replicas', () => replicas.n === 4);
    const patch = log.find((r) => r.method === 'PATCH');
    assert.deepEqual(patch, {
      method: 'PATCH',
      path: SCALE_PATH,
      contentType: 'application/merge-patch+json',
      authorization: 'Bearer t0ken',
      body: '{"spec":{"replicas":4}}',
    });
    await waitFor('four replicas reported', async () => (await instances()) === 4);
    assert.equal(log.filter((r) => r.method === 'PATCH').length, 1, 'patched once');
  });

  it('names the API server’s answer when the Deployment does not exist', async () => {
    const missing = new KubernetesActuator({
      app: 'k8stest',
      service: 'x',
      deployment: 'missing',
      namespace: 'shop',
      apiServer: apiUrl,
      servers: server.info.url,
    });
    await assert.rejects(missing.replicas(), {
      code: 'PEAK_SCALE_NOT_FOUND',
      message: /answered 404 .*deployments\.apps "missing" not found/,
    });
  });
});
