/**
 * The shop's edge: an HTTP/JSON gateway in front of the buy chain. It turns an HTTP
 * request into a call context (W3C traceparent, deadline, route tags from the headers),
 * calls the order service over Peakware RPC, and maps outcomes to HTTP statuses.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigClient, ConfigRuleSource } from 'peakware/config';
import {
  childContext,
  currentContext,
  decodeContext,
  deriveContext,
  errorMessage,
  isPeakError,
  runWithContext,
} from 'peakware/core';
import { Guard, type GuardRules, isBlockError } from 'peakware/guard';
import type { Registry } from 'peakware/registry';
import { RpcClient } from 'peakware/rpc';
import { rpcTracingFilter, traceHttp } from 'peakware/telemetry';
import { orderService } from './catalog.js';
import { shopTelemetry } from './shop-telemetry.js';

/** A running gateway. */
export interface Gateway {
  url: string;
  /** The gateway's flow control; its rules can be swapped at runtime with `loadRules`. */
  guard: Guard;
  close(): Promise<void>;
}

/** The resource name the guard rules below protect. */
export const BUY_RESOURCE = 'POST /api/buy';

/**
 * The flash-sale rules, Sentinel style: the buy route as a whole, the hot item on its own
 * (hot-parameter rule on the SKU, so one item's rush cannot starve the rest), and system
 * protection against piling up requests in flight.
 */
export function flashSaleRules(hotSku: string): GuardRules {
  return {
    flow: [{ resource: BUY_RESOURCE, count: BUY_LIMITS.routeQps }],
    param: [
      {
        resource: BUY_RESOURCE,
        paramIndex: 0,
        count: BUY_LIMITS.itemQps,
        items: [{ value: hotSku, count: BUY_LIMITS.hotItemQps }],
      },
    ],
    system: [{ maxConcurrency: BUY_LIMITS.maxInFlight }],
  };
}

/** The limits the shop runs with (the inventory provider sets `deductConcurrency`). */
export const BUY_LIMITS = {
  routeQps: 1500,
  itemQps: 1000,
  hotItemQps: 150,
  maxInFlight: 200,
  deductConcurrency: 12,
} as const;

const MAX_BODY = 16 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Starts the gateway on 127.0.0.1:`port` (0 picks one). Its guard rules come from the
 * config center (item `governance/guard-rules` of app `shop`): a `peak config set` changes
 * the flash-sale limits of every gateway at once, no restart; a rule set that fails
 * validation is refused at publish time and the rules in force stay.
 */
export async function startGateway(
  registry: Registry,
  controlPlane: string,
  port = 0,
  sampleRatio = 1,
): Promise<Gateway> {
  const config = new ConfigClient({ servers: [controlPlane], app: 'shop' });
  await config.start();
  const guard = new Guard();
  guard.useRuleSource(new ConfigRuleSource(config));
  const telemetry = shopTelemetry('shop.gateway', controlPlane, guard, sampleRatio);
  const { tracer } = telemetry;
  const client = new RpcClient({
    registry,
    app: 'shop.gateway',
    loadBalancer: 'p2c-ewma',
    filters: [rpcTracingFilter(tracer)],
  });
  const orders = client.service(orderService);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/api/buy') {
      let body: { userId?: unknown; sku?: unknown; qty?: unknown };
      try {
        body = (await readJson(req)) as typeof body;
      } catch (err) {
        send(res, 400, {
          error: { code: 'BAD_REQUEST', message: `invalid JSON body: ${errorMessage(err)}` },
        });
        return;
      }
      // The edge sets the deadline for the whole chain: 2 s, or less if the caller asked.
      // traceHttp has already made the server span's context from the request headers.
      const base = currentContext() ?? childContext(decodeContext(req.headers));
      const ctx = deriveContext(base, { timeoutMs: 2000 });
      const sku = String(body.sku);
      try {
        const result = await runWithContext(ctx, () =>
          guard.run(
            BUY_RESOURCE,
            () =>
              orders.place({
                userId: Number(body.userId),
                sku,
                qty: body.qty === undefined ? 1 : Number(body.qty),
              }),
            { args: [sku], type: 'in' },
          ),
        );
        send(res, result.status === 'placed' ? 200 : 409, { ...result, traceId: ctx.traceId });
      } catch (err) {
        // Blocked here, or by a provider's guard further down the chain: "busy, retry".
        if (isBlockError(err) || isPeakError(err, 'PEAK_GUARD_BLOCKED')) {
          send(res, 429, { error: { code: 'PEAK_GUARD_BLOCKED', message: errorMessage(err) } });
          return;
        }
        const code = isPeakError(err) ? err.code : 'PEAK_INTERNAL';
        const status =
          code === 'PEAK_RPC_BAD_ARGUMENTS' ? 400 : code === 'PEAK_RPC_TIMEOUT' ? 504 : 503;
        send(res, status, { error: { code, message: errorMessage(err) } });
      }
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      send(res, 200, { status: 'ok' });
      return;
    }
    send(res, 404, {
      error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}; try POST /api/buy` },
    });
  };

  const server: Server = createServer(
    traceHttp(tracer, (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          send(res, 500, { error: { code: 'PEAK_INTERNAL', message: errorMessage(err) } });
        }
      });
    }),
  );
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    guard,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await client.close();
      await config.close();
      await telemetry.close();
      guard.close();
    },
  };
}
