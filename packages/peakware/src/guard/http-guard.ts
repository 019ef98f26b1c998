/**
 * Guarding a node:http request handler: each request is one inbound call to the resource
 * `METHOD route` (route from `options.route`, default the path without the query). A refused
 * request gets 429 (403 for authority rules) with a JSON error body and `retry-after`; an
 * admitted one runs the handler and exits when the response closes, counted as an error
 * when the status is 5xx or the handler threw.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { currentContext } from '../core/context.js';
import { ErrorCodes, errorMessage } from '../core/errors.js';
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import type { Guard } from './guard.js';

/** A node:http request handler. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Options for {@link guardHttpHandler}. */
export interface GuardHttpOptions {
  /**
   * The route part of the resource name. Default: the path without the query. Give a route
   * template (`/orders/:id`) when paths carry ids, or every id becomes its own resource.
   */
  route?: (req: IncomingMessage) => string;
  /** The caller app. Default: the call context's callerApp, else the `peak-caller` header. */
  origin?: (req: IncomingMessage) => string | undefined;
  /** Arguments for hot-parameter rules, e.g. `[url.searchParams.get('itemId')]`. */
  args?: (req: IncomingMessage) => readonly unknown[] | undefined;
}

function defaultRoute(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function defaultOrigin(req: IncomingMessage): string | undefined {
  const fromContext = currentContext()?.callerApp;
  if (fromContext !== undefined) return fromContext;
  const header = req.headers['peak-caller'];
  return typeof header === 'string' && header.length > 0 ? header : undefined;
}

/** Wraps `handler` so every request passes the guard first. */
export function guardHttpHandler(
  guard: Guard,
  handler: HttpHandler,
  options: GuardHttpOptions = {},
): HttpHandler {
  const route = options.route ?? defaultRoute;
  const originOf = options.origin ?? defaultOrigin;
  const internal = (res: ServerResponse, message: string) => {
    const body = JSON.stringify({ error: { code: ErrorCodes.INTERNAL, message, details: {} } });
    res.writeHead(500, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };
  return (req, res) => {
    let entry: Entry;
    let resource = `${req.method ?? 'GET'} ?`;
    try {
      resource = `${req.method ?? 'GET'} ${route(req)}`;
      const origin = originOf(req);
      const args = options.args === undefined ? undefined : (options.args(req) ?? []);
      entry = guard.entry(resource, {
        type: 'in',
        ...(origin === undefined ? {} : { origin }),
        ...(args === undefined ? {} : { args }),
      });
    } catch (err) {
      if (!(err instanceof BlockError)) {
        // A throwing route/origin/args function must not take the server down.
        internal(res, `guard: could not classify ${resource}: ${errorMessage(err)}`);
        return;
      }
      const body = JSON.stringify({ error: err.toJSON() });
      res.writeHead(err.kind === 'authority' ? 403 : 429, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'retry-after': '1',
      });
      res.end(body);
      return;
    }
    let thrown: unknown;
    res.once('close', () => {
      const failed =
        thrown !== undefined
          ? thrown
          : res.statusCode >= 500
            ? new Error(`HTTP ${res.statusCode}`)
            : undefined;
      entry.exit(failed);
    });
    const fail = (err: unknown) => {
      thrown = err;
      if (!res.headersSent) {
        internal(res, `${resource} failed: ${errorMessage(err)}`);
      } else {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const start = () => {
      try {
        const result = handler(req, res);
        if (result !== undefined) result.catch(fail);
      } catch (err) {
        fail(err);
      }
    };
    if (entry.waitMs > 0) void entry.ready().then(start);
    else start();
  };
}
