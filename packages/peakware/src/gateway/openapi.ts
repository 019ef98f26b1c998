/**
 * The OpenAPI 3.1 document of a gateway's routes, one per app (only the APIs it is approved
 * for): paths from the route patterns, request and answer schemas from the RPC methods'
 * zod schemas (carried by the route as JSON Schema), the two ways to authenticate, and the
 * one error shape every refusal has.
 */
import type { GatewayRouteSpec } from './gateway-objects.js';
import { apiOf } from './gateway-objects.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

const ERROR = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'object' },
      },
    },
  },
};

function operation(route: GatewayRouteSpec, method: string): Record<string, unknown> {
  const t = route.target;
  const params = [...route.path.matchAll(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const op: Record<string, unknown> = {
    operationId: route.name,
    tags: [apiOf(route)],
    summary:
      route.summary ??
      (t.kind === 'rpc'
        ? `${t.service}.${t.method}`
        : t.kind === 'mq'
          ? `send to ${t.topic}`
          : 'HTTP upstream'),
    ...(route.description === undefined ? {} : { description: route.description }),
    ...(params.length === 0 ? {} : { parameters: params }),
    security:
      route.auth === 'none' ? [] : route.auth === 'key' ? [{ apiKey: [] }] : [{ signature: [] }],
    responses: {
      [t.kind === 'mq' ? '202' : '200']: {
        description: 'the answer',
        content: {
          'application/json': {
            schema: t.kind === 'rpc' && t.output !== undefined ? t.output : {},
          },
        },
      },
      default: {
        description: 'a refusal or failure',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    },
  };
  if (method !== 'get' && method !== 'delete') {
    op.requestBody = {
      required: t.kind === 'rpc',
      content: {
        'application/json': { schema: t.kind === 'rpc' && t.input !== undefined ? t.input : {} },
      },
    };
  }
  return op;
}

/** Options of {@link gatewayOpenApi}. */
export interface GatewayOpenApiOptions {
  /** Only these APIs (an app's approved ones); absent: every route. */
  apis?: ReadonlySet<string>;
  /** The app the document is for (in its title). */
  app?: string;
  /** The gateway's URL. */
  server?: string;
}

/** The OpenAPI 3.1 document of `routes`. */
export function gatewayOpenApi(
  routes: readonly GatewayRouteSpec[],
  options: GatewayOpenApiOptions = {},
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of [...routes].sort((a, b) => a.name.localeCompare(b.name))) {
    if (options.apis !== undefined && route.auth !== 'none' && !options.apis.has(apiOf(route)))
      continue;
    const path = route.path.replace(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    paths[path] ??= {};
    const item = paths[path];
    for (const m of route.method === '*' ? METHODS : [route.method.toLowerCase()]) {
      if (m === 'head') continue;
      item[m] = operation(route, m);
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title:
        options.app === undefined
          ? 'Peakware gateway'
          : `Peakware gateway: APIs of app ${options.app}`,
      version: '1',
      description:
        'Signed requests carry x-peak-key, x-peak-timestamp (epoch ms), x-peak-nonce, x-peak-signed-headers and x-peak-signature: base64url HMAC-SHA256 under the key secret of "PEAK-HMAC-SHA256\\nMETHOD\\npath\\nsorted query\\nsigned header lines\\nsigned header names\\nhex SHA-256 of the body\\ntimestamp\\nnonce" (peakware/gateway signRequest).',
    },
    ...(options.server === undefined || options.server === ''
      ? {}
      : { servers: [{ url: options.server }] }),
    paths,
    components: {
      schemas: { Error: ERROR },
      securitySchemes: {
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'x-peak-api-key',
          description: '<key id>.<secret>',
        },
        signature: {
          type: 'apiKey',
          in: 'header',
          name: 'x-peak-signature',
          description: 'HMAC-SHA256 request signature (see info.description)',
        },
      },
    },
  };
}
