/**
 * The analysis API over stored spans:
 *
 * - `GET /api/v1/telemetry/traces/:traceId`: one trace as a tree with its critical path.
 * - `GET /api/v1/telemetry/traces?service=&name=&minDurationMs=&error=&stress=&tag=k=v&sinceMinutes=&limit=`
 * - `GET /api/v1/telemetry/topology?sinceMinutes=`: caller → callee edges (calls, errors,
 *   QPS, RT avg/p99), stress traffic on edges of its own.
 * - `GET /api/v1/telemetry/endpoints?service=&sinceMinutes=`: p50/p90/p99 per endpoint.
 * - `GET /api/v1/telemetry/slow-sql?sinceMinutes=&limit=`: slowest statement fingerprints.
 */
import { Type } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { ApiApp } from '../../server/http-api.js';
import { buildTraceTree } from '../trace-tree.js';
import { bool, flag, limit, sinceMinutes } from './telemetry-route-params.js';
import type { TelemetryStore } from './telemetry-store.js';

/** The trace, topology, endpoint and slow-SQL queries over `store`. */
export function traceQueryRoutes(app: ApiApp, store: TelemetryStore): void {
  app.get(
    '/api/v1/telemetry/traces/:traceId',
    {
      schema: {
        summary: 'One trace as a tree of spans, with its critical path',
        params: Type.Object({
          traceId: Type.String({
            pattern: '^[0-9a-fA-F]{32}$',
            takes: '32 hex characters (the middle part of a traceparent)',
          }),
        }),
      },
    },
    async (request) => {
      const id = request.params.traceId.toLowerCase();
      const spans = await store.trace(id);
      if (spans.length === 0) {
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `no spans of trace ${id} are stored: it was not sampled, not yet flushed (SDKs send every second), or is past retention`,
        );
      }
      return buildTraceTree(spans);
    },
  );

  app.get(
    '/api/v1/telemetry/traces',
    {
      schema: {
        summary: 'Traces matching a search, newest first',
        querystring: Type.Object({
          service: Type.Optional(Type.String()),
          name: Type.Optional(Type.String({ description: 'a span name' })),
          minDurationMs: Type.Optional(Type.Number({ minimum: 0 })),
          error: flag,
          stress: flag,
          tag: Type.Optional(
            Type.String({ pattern: '^[^=]+=', takes: 'key=value (an attribute of a span)' }),
          ),
          sinceMinutes: sinceMinutes(60),
          limit: limit(50, 1000),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      let tag: { key: string; value: string } | undefined;
      if (q.tag !== undefined) {
        const at = q.tag.indexOf('=');
        tag = { key: q.tag.slice(0, at), value: q.tag.slice(at + 1) };
      }
      const minMs = q.minDurationMs;
      const error = bool(q.error);
      const stress = bool(q.stress);
      const traces = await store.search({
        sinceUs: (Date.now() - q.sinceMinutes * 60_000) * 1000,
        limit: q.limit,
        ...(q.service === undefined ? {} : { service: q.service }),
        ...(q.name === undefined ? {} : { name: q.name }),
        ...(minMs === undefined ? {} : { minDurationUs: Math.round(minMs * 1000) }),
        ...(error === undefined ? {} : { error }),
        ...(stress === undefined ? {} : { stress }),
        ...(tag === undefined ? {} : { tag }),
      });
      return { traces };
    },
  );

  app.get(
    '/api/v1/telemetry/topology',
    {
      schema: {
        summary: 'Caller → callee edges with calls, errors, QPS and RT (stress traffic apart)',
        querystring: Type.Object({ sinceMinutes: sinceMinutes(15) }),
      },
    },
    async (request) => {
      const nowUs = Date.now() * 1000;
      const sinceUs = nowUs - request.query.sinceMinutes * 60e6;
      const edges = await store.topology(sinceUs, nowUs);
      const services = [...new Set(edges.flatMap((e) => [e.caller, e.callee]))].sort();
      return { sinceUs, services, edges };
    },
  );

  app.get(
    '/api/v1/telemetry/endpoints',
    {
      schema: {
        summary: 'p50/p90/p99 per endpoint',
        querystring: Type.Object({
          service: Type.Optional(Type.String()),
          sinceMinutes: sinceMinutes(15),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const sinceUs = (Date.now() - q.sinceMinutes * 60_000) * 1000;
      return { endpoints: await store.endpoints(sinceUs, q.service) };
    },
  );

  app.get(
    '/api/v1/telemetry/slow-sql',
    {
      schema: {
        summary: 'The slowest statement fingerprints',
        querystring: Type.Object({ sinceMinutes: sinceMinutes(60), limit: limit(20, 500) }),
      },
    },
    async (request) => {
      const q = request.query;
      const sinceUs = (Date.now() - q.sinceMinutes * 60_000) * 1000;
      return { statements: await store.slowSql(sinceUs, q.limit) };
    },
  );
}
