/**
 * The API's OpenAPI 3.1 document, generated from the route table (`PeakServer.routes()`)
 * and the JSON schemas every route declares (route-schema.ts): nothing in it is written by
 * hand, so it cannot drift from what the server checks. Served at `GET
 * /api/v1/openapi.json`. Each operation carries its auth decision as `x-peak-auth`
 * (`admin`: needs the admin token; `sdk`: called by services without it; `none`: a read)
 * and, for admin routes, the bearer security requirement.
 */
import { PEAKWARE_VERSION } from '../core/version.js';
import type { RouteEntry } from './http-api.js';
import type { BodyByContentType } from './route-schema.js';

type JsonSchema = Record<string, unknown>;

/** An OpenAPI 3.1 document (the parts this generator writes). */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    securitySchemes: Record<string, unknown>;
    schemas: Record<string, JsonSchema>;
  };
}

/** One operation of {@link OpenApiDocument}. */
export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  'x-peak-auth': RouteEntry['auth'];
  /** The kind of grant an app credential needs (`sdk` and some `read` routes). */
  'x-peak-scope'?: string;
  security?: Record<string, string[]>[];
  parameters?: {
    name: string;
    in: 'path' | 'query';
    required: boolean;
    schema: JsonSchema;
    description?: string;
  }[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, unknown>;
}

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', description: 'a stable PEAK_* code (core/errors.ts)' },
        message: { type: 'string', description: 'what happened, which input, what to do' },
        details: { type: 'object', description: 'structured facts, e.g. input: the field' },
      },
    },
  },
};

/**
 * A route schema as plain JSON Schema: TypeBox's symbol keys dropped (JSON has none) and
 * the `takes` annotation folded into `description`.
 */
function plain(schema: unknown): JsonSchema {
  return JSON.parse(JSON.stringify(schema), (_key, value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const { takes, ...rest } = value as JsonSchema;
    if (typeof takes !== 'string') return value;
    return {
      ...rest,
      description: typeof rest.description === 'string' ? `${rest.description} (${takes})` : takes,
    };
  }) as JsonSchema;
}

/** `/api/v1/mq/topics/:topic` → `/api/v1/mq/topics/{topic}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The subsystem a route belongs to, from its URL. */
function tagOf(url: string): string {
  const api = /^\/api\/v1\/([^/]+)/.exec(url);
  if (api !== null)
    return ['info', 'nodes', 'admin', 'openapi.json'].includes(api[1]!) ? 'system' : api[1]!;
  if (url === '/metrics' || url.startsWith('/v1/')) return 'telemetry';
  return 'system';
}

function operationId(method: string, url: string): string {
  const words = url
    .replace(/^\/api\/v1\//, '')
    .split(/[/.:{}-]+/)
    .filter((w) => w.length > 0);
  return [method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

function parameters(
  schema: JsonSchema | undefined,
  where: 'path' | 'query',
): NonNullable<OpenApiOperation['parameters']> {
  if (schema === undefined) return [];
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(props).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: s,
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
  }));
}

function requestBody(body: unknown): OpenApiOperation['requestBody'] {
  if (body === undefined) return undefined;
  const byType = body as Partial<BodyByContentType>;
  if (byType.content !== undefined) {
    const content: Record<string, { schema: JsonSchema }> = {};
    for (const [type, { schema }] of Object.entries(byType.content))
      content[type] = { schema: plain(schema) };
    return { required: true, content };
  }
  const schema = plain(body);
  const required = Array.isArray(schema.required) && schema.required.length > 0;
  return { required, content: { 'application/json': { schema } } };
}

/** The OpenAPI 3.1 document of `routes`. */
export function openApiDocument(routes: readonly RouteEntry[]): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  for (const route of routes) {
    const s = route.schema;
    const params = [
      ...parameters(s.params === undefined ? undefined : plain(s.params), 'path'),
      ...parameters(s.querystring === undefined ? undefined : plain(s.querystring), 'query'),
    ];
    const body = requestBody(s.body);
    const op: OpenApiOperation = {
      operationId: operationId(route.method, route.url),
      summary: s.summary,
      ...(s.description === undefined ? {} : { description: s.description }),
      tags: s.tags ?? [tagOf(route.url)],
      'x-peak-auth': route.auth,
      ...(route.scope === undefined ? {} : { 'x-peak-scope': route.scope }),
      ...(route.auth === 'public' || route.auth === 'self'
        ? {}
        : {
            security:
              route.auth === 'sdk' || route.auth === 'read'
                ? [{ appCredential: [] }, { operatorToken: [] }]
                : [{ operatorToken: [] }],
          }),
      ...(params.length === 0 ? {} : { parameters: params }),
      ...(body === undefined ? {} : { requestBody: body }),
      responses: {
        '200': { description: 'done; the body is JSON unless the summary says otherwise' },
        default: {
          description: 'an error; the status is the one its code has in core/errors.ts',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    };
    const path = openApiPath(route.url);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Peakware control plane',
      version: PEAKWARE_VERSION,
      description:
        'The HTTP API of `peak server`. Every route but those marked `x-peak-auth: public` needs a credential (`Authorization: Bearer <credential>`): `read` routes any app credential or operator token, `sdk` routes an app credential holding a grant of the `x-peak-scope` kind (or the admin token), `viewer`, `operator` and `admin` routes an operator token of that role or a higher one (the admin token is the file admin-token in the data folder); `self` routes check a credential of their own (the console login and logout). Every error is `{ error: { code, message, details } }`.',
    },
    paths,
    components: {
      securitySchemes: {
        operatorToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'an operator token (role admin, operator or viewer); the admin token is in the data folder (file admin-token)',
        },
        appCredential: {
          type: 'http',
          scheme: 'bearer',
          description: "an app credential ('peak app create'), checked against its grants",
        },
      },
      schemas: { Error: ERROR_SCHEMA },
    },
  };
}
