/**
 * The OpenAPI document at `GET /api/v1/openapi.json`: generated from the route table and the
 * routes' JSON schemas, it lists every route `PeakServer.routes()` has, with its method,
 * auth decision, path parameters and (for POST/PUT/PATCH) request body, and every schema in
 * it is a valid JSON Schema. A route added without the schema this needs fails the start.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type TSchema, Type } from '@sinclair/typebox';
import { Ajv2020 } from 'ajv/dist/2020.js';
import pg from 'pg';
import { silentLogger } from '../src/core/logger.js';
import {
  type ApiContext,
  type ApiModule,
  createHttpApiWithRoutes,
} from '../src/server/http-api.js';
import { PeakServer } from '../src/server/index.js';
import type { OpenApiDocument } from '../src/server/openapi.js';
import { type BodyByContentType, routeValidatorCompiler } from '../src/server/route-schema.js';
import { resolveServerSettings } from '../src/server/server-settings.js';

describe('openapi', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let doc: OpenApiDocument;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-openapi-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    // A read route: no token.
    const res = await fetch(`${server.info.url}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as OpenApiDocument;
  });

  after(async () => {
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('is OpenAPI 3.1 with every route of the route table, its method and auth', () => {
    assert.equal(doc.openapi, '3.1.0');
    const routes = server.routes();
    assert.ok(routes.length >= 60, `${routes.length} routes`);
    const listed = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    assert.equal(listed, routes.length, 'one operation per route, nothing else');
    for (const route of routes) {
      const op = doc.paths[route.url.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase()];
      assert.ok(op, `${route.method} ${route.url} is in the document`);
      assert.ok(op.summary.length > 0, `${route.method} ${route.url} has a summary`);
      assert.equal(op['x-peak-auth'], route.auth, `${route.method} ${route.url} auth`);
      // `self` routes (the console's login and logout) check a credential of their own.
      assert.equal(
        op.security !== undefined,
        route.auth !== 'public' && route.auth !== 'self',
        `${route.url} security`,
      );
      assert.equal(op['x-peak-scope'], route.scope, `${route.method} ${route.url} scope`);
      if (['POST', 'PUT', 'PATCH'].includes(route.method))
        assert.ok(op.requestBody, `${route.method} ${route.url} documents its body`);
      for (const [, name] of route.url.matchAll(/:(\w+)/g)) {
        assert.ok(
          op.parameters?.some((p) => p.in === 'path' && p.name === name && p.required),
          `${route.method} ${route.url} documents path parameter ${name}`,
        );
      }
    }
    const send = doc.paths['/api/v1/mq/topics/{topic}/messages']?.post;
    assert.equal(send?.['x-peak-auth'], 'sdk');
    assert.equal(send?.['x-peak-scope'], 'produce');
    const body = send?.requestBody?.content['application/json']?.schema as {
      required: string[];
      properties: { messages: { maxItems: number } };
    };
    assert.deepEqual(body.required, ['messages']);
    assert.equal(body.properties.messages.maxItems, 1000);
    const limit = doc.paths['/api/v1/telemetry/traces']?.get?.parameters?.find(
      (p) => p.name === 'limit',
    );
    assert.deepEqual(
      { in: limit?.in, required: limit?.required, max: limit?.schema.maximum },
      { in: 'query', required: false, max: 1000 },
    );
  });

  it('every route answers a body without a required field with a 400 naming that field', async () => {
    let walked = 0;
    for (const [url, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const schema = op.requestBody?.content['application/json']?.schema as
          | { required?: string[] }
          | undefined;
        const required = schema?.required ?? [];
        if (required.length === 0) continue;
        // A path parameter takes a value its schema allows (the first of an enum or of a
        // union of constants), so the body, not the path, is what the route refuses.
        const path = url.replace(/\{(\w+)\}/g, (_, name: string) => {
          const param = op.parameters?.find((p) => p.in === 'path' && p.name === name);
          const schema = param?.schema as
            | { enum?: unknown[]; anyOf?: { const?: unknown }[] }
            | undefined;
          const allowed = schema?.enum?.[0] ?? schema?.anyOf?.[0]?.const;
          return allowed === undefined ? 'x' : String(allowed);
        });
        const res = await fetch(`${server.info.url}${path}`, {
          method: method.toUpperCase(),
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${server.info.adminToken}`,
          },
          body: '{}',
        });
        const { error } = (await res.json()) as {
          error: { code: string; message: string; details: { input?: string } };
        };
        const what = `${method.toUpperCase()} ${url}: ${error.message}`;
        assert.equal(res.status, 400, what);
        assert.equal(error.code, 'PEAK_INVALID_ARGUMENT', what);
        assert.ok(required.includes(error.details.input ?? ''), what);
        assert.ok(error.message.includes(error.details.input!), what);
        walked++;
      }
    }
    assert.ok(walked >= 40, `${walked} routes with required body fields`);
  });

  it('a handful of bad requests: each 4xx names the field, never "undefined"', async () => {
    const call = async (method: string, url: string, body: unknown) => {
      const res = await fetch(`${server.info.url}${url}`, {
        method,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${server.info.adminToken}`,
        },
        body: JSON.stringify(body),
      });
      const { error } = (await res.json()) as {
        error: { message: string; details: { input?: string } };
      };
      assert.doesNotMatch(error.message, /undefined/, `${url}: ${error.message}`);
      return { status: res.status, input: error.details.input, message: error.message };
    };
    // The example: an ack without its topic.
    assert.deepEqual(
      await call('POST', '/api/v1/mq/groups/g/ack', { consumerId: 'c', receipts: [] }),
      {
        status: 400,
        input: 'topic',
        message: 'body field topic is missing: it takes a non-empty string',
      },
    );
    const wrongType = await call('POST', '/api/v1/mq/groups/g/receive', {
      topic: 't',
      consumerId: 'c',
      max: 'ten',
    });
    assert.equal(wrongType.input, 'max');
    assert.match(wrongType.message, /max must be an integer from 1 to 1000, got "ten"/);
    const notText = await call('PUT', '/api/v1/config/items/a/g/k', { value: 5 });
    assert.equal(notText.input, 'value');
    const nested = await call('POST', '/api/v1/mq/topics/t/messages', {
      messages: [{ body: 'aGk=' }, { body: 'aGk=', keys: 'k' }],
    });
    assert.equal(nested.input, 'messages[1].keys');
    const otlp = await call('POST', '/v1/traces', {});
    assert.equal(otlp.status, 400);
    assert.equal(otlp.input, 'resourceSpans');
    const rule = await call('PUT', '/api/v1/telemetry/alerts/rules/slow', {
      kind: 'p99',
      threshold: 5,
    });
    assert.equal(rule.status, 400);
    assert.equal(rule.input, 'service');
  });

  it("compiles every route's checks under the API's strict validators", () => {
    // The server compiles a route's check on its first request; this is every one at once.
    const compile = routeValidatorCompiler();
    let parts = 0;
    for (const route of server.routes()) {
      for (const httpPart of ['body', 'querystring', 'params'] as const) {
        const declared = route.schema[httpPart];
        if (declared === undefined) continue;
        // A body given per content type is a check per type (Fastify compiles each).
        const schemas: TSchema[] =
          'content' in declared
            ? Object.values((declared as BodyByContentType).content).map((c) => c.schema)
            : [declared as TSchema];
        for (const schema of schemas) {
          const validate = compile({ schema, httpPart, method: route.method, url: route.url });
          assert.doesNotThrow(
            () => validate({}),
            `${route.method} ${route.url} ${httpPart} compiles under strict mode`,
          );
          parts++;
        }
      }
    }
    assert.ok(parts > 100, `${parts} checks compiled`);
  });

  it('holds only valid JSON Schemas, with `takes` folded into descriptions', () => {
    const ajv = new Ajv2020({ strict: true, strictTypes: false, logger: false });
    const schemas: unknown[] = [];
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const p of op.parameters ?? []) schemas.push(p.schema);
        for (const c of Object.values(op.requestBody?.content ?? {})) schemas.push(c.schema);
      }
    }
    assert.ok(schemas.length > 50);
    for (const s of schemas) assert.equal(ajv.validateSchema(s as object), true, JSON.stringify(s));
    assert.doesNotMatch(JSON.stringify(doc), /"takes"/);
    const id = doc.paths['/api/v1/registry/instances']?.post?.requestBody?.content[
      'application/json'
    ]?.schema as { properties: { instanceId: { description: string } } };
    assert.equal(id.properties.instanceId.description, '1-128 letters, digits or _ . : @ -');
  });
});

describe('route schemas are required', () => {
  const ctx: ApiContext = {
    pool: new pg.Pool({ max: 1 }), // never connected: registration does not query
    logger: silentLogger(),
    nodeId: 'test',
    dataDir: '/nonexistent',
    postgresMode: 'external',
    schemaVersion: 0,
    startedAt: 0,
    settings: resolveServerSettings(),
    roles: [],
  };
  const starts = async (module: ApiModule): Promise<Error | undefined> => {
    let app: ReturnType<typeof createHttpApiWithRoutes>['app'] | undefined;
    try {
      // Routes added at once throw here; routes in a plugin throw from ready().
      app = createHttpApiWithRoutes(ctx, { modules: [module] }).app;
      await app.ready();
      return undefined;
    } catch (err) {
      return err as Error;
    } finally {
      await app?.close();
    }
  };

  it('refuses a route without a summary, a mutating route without a body schema', async () => {
    const bare = await starts((app) => {
      app.post('/api/v1/things', async () => ({}));
    });
    assert.match(
      bare?.message ?? 'started',
      /route POST \/api\/v1\/things needs a schema\.summary .*, and a schema\.body/,
    );
    const noBody = await starts((app) => {
      app.put('/api/v1/things', { schema: { summary: 'put a thing' } }, async () => ({}));
    });
    assert.match(noBody?.message ?? 'started', /PUT \/api\/v1\/things needs a schema\.body/);
  });

  it('refuses path parameters the params schema does not name exactly', async () => {
    const missing = await starts((app) => {
      app.get('/api/v1/things/:id', { schema: { summary: 'one thing' } }, async () => ({}));
    });
    assert.match(missing?.message ?? 'started', /path parameters \(id; declared: none\)/);
    const wrong = await starts((app) => {
      app.delete(
        '/api/v1/things/:id',
        { schema: { summary: 'drop', params: Type.Object({ name: Type.String() }) } },
        async () => ({}),
      );
    });
    assert.match(wrong?.message ?? 'started', /path parameters \(id; declared: name\)/);
  });

  it('starts with routes that declare what they take', async () => {
    const ok = await starts((app) => {
      app.get('/api/v1/things/:id', {
        schema: { summary: 'one thing', params: Type.Object({ id: Type.String() }) },
        handler: async () => ({}),
      });
      app.post('/api/v1/things', {
        schema: { summary: 'add one', body: Type.Object({}) },
        handler: async () => ({}),
      });
    });
    assert.equal(ok, undefined);
  });

  after(async () => {
    await ctx.pool.end();
  });
});
