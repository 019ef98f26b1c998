/**
 * An RPC method published to outside callers through the gateway, and a TypeScript client
 * that signs its requests: the route (built from the method's zod schemas, so the gateway
 * checks arguments before the provider sees them), an app with a key, its approved
 * subscription with a daily quota, a gateway, and calls signed with `signRequest`
 * (HMAC-SHA256 over method, path, sorted query, signed headers, body digest, timestamp and
 * nonce). A replayed request and one with a wrong argument are refused.
 */
import { Gateway, type GatewayKey, rpcRoute, signRequest } from 'peakware/gateway';
import { HttpRegistry } from 'peakware/registry';
import { defineService, RpcServer } from 'peakware/rpc';
import { z } from 'zod';
import { admin, adminToken, check, server } from '../env.js';

const greeter = defineService({
  name: 'snippet.greeter',
  methods: {
    greet: {
      input: z.object({ name: z.string().min(1).max(40), times: z.number().int().min(1).max(3) }),
      output: z.object({ text: z.string() }),
    },
  },
});

/** The client side: sign and send one JSON call. */
async function signedPost(
  gatewayUrl: string,
  key: GatewayKey,
  path: string,
  value: unknown,
  replay?: Record<string, string>,
) {
  const body = JSON.stringify(value);
  const headers = { 'content-type': 'application/json' };
  const signature =
    replay ??
    signRequest({ method: 'POST', url: path, body, headers, keyId: key.id, secret: key.secret });
  const res = await fetch(`${gatewayUrl}${path}`, {
    method: 'POST',
    headers: { ...headers, ...signature },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, signature };
}

// The provider, registered with the control plane.
const registry = new HttpRegistry({ servers: server });
const provider = new RpcServer({ registry, port: 0 }).addService(greeter, {
  greet: ({ name, times }) => ({ text: `hello ${name}`.repeat(times) }),
});
await provider.start();

// What an admin publishes: the route, the app, its key, its approved subscription.
const control = admin();
await control.gateway.putRoute(
  rpcRoute(greeter, 'greet', {
    name: 'greet',
    api: 'greetings',
    method: 'POST',
    path: '/v1/greet',
  }),
);
await control.gateway.putApp({ name: 'snippet-partner', description: 'a partner of the snippet' });
const key = await control.gateway.createKey('snippet-partner');
await control.gateway.requestSubscription('snippet-partner', 'greetings');
await control.gateway.approve('snippet-partner', 'greetings', { quota: { perDay: 100 } });

// The gateway (what `peak gateway` runs), on a free port.
const gateway = new Gateway({ servers: server, token: adminToken(), port: 0, telemetry: false });
const { url } = await gateway.start();
try {
  const ok = await signedPost(url, key, '/v1/greet', { name: 'ada', times: 1 });
  check(
    ok.status === 200 && ok.body.text === 'hello ada',
    `signed call: ${ok.status} ${JSON.stringify(ok.body)}`,
  );
  const again = await signedPost(url, key, '/v1/greet', { name: 'ada', times: 1 }, ok.signature);
  check(again.status === 401, `a replay must be refused, got ${again.status}`);
  const bad = await signedPost(url, key, '/v1/greet', { name: 'ada', times: 9 });
  check(bad.status === 400, `times 9 breaks the method's schema, got ${bad.status}`);
  console.log(
    `signed call answered: ${ok.body.text}; replay: ${(again.body.error as { code: string }).code}; bad argument: ${(bad.body.error as { message: string }).message}`,
  );
} finally {
  await gateway.close();
  await provider.stop();
  await registry.close();
  await control.gateway.deleteApp('snippet-partner');
  await control.gateway.deleteRoute('greet');
}
console.log('ok');
