/**
 * HTTP/JSON access to a provider, for callers without the binary protocol (curl, other
 * languages): `POST /rpc/<service>/<method>` with the argument as the JSON body (header
 * `peak-version` picks a version; the context travels in the same headers as on TCP) answers
 * `{ result }` or `{ error }` with the error code's HTTP status; `GET /rpc` lists the hosted
 * services and methods. Bodies are bounded by `maxFrameBytes` (413); a draining provider
 * answers 503 PEAK_RPC_SHUTTING_DOWN. On a provider that verifies identities, a call's is
 * its `authorization: Bearer` header.
 */
import type http from 'node:http';
import { ErrorCodes, httpStatusOf } from '../core/errors.js';
import type { FrontRequest, FrontResponse } from '../core/http-front.js';
import { type CallerVerifier, presentedOverHttp } from './caller-identity.js';
import type { HostedServices } from './hosted-services.js';
import { toWireError } from './wire-error.js';

/** What the HTTP/JSON access reads of its provider. */
export interface HttpJsonProvider {
  /** The provider's instance id, shown by `GET /rpc`. */
  instanceId: string;
  /** The hosted services the calls go to. */
  services: HostedServices;
  /** Largest body accepted, bytes. */
  maxFrameBytes: number;
  /** True once the provider is stopping: calls are refused. */
  draining(): boolean;
  /** Checks the identity a call presents; absent: none is read. */
  verifier?: CallerVerifier | undefined;
}

/** A request as node:http or core's HTTP front gives it. */
type AnyRequest = http.IncomingMessage | FrontRequest;

/**
 * The request handler of a provider's HTTP/JSON port, for node:http's server and for core's
 * HTTP front alike (the front has read the body already; node's request is a stream).
 */
export function httpJsonHandler(
  provider: HttpJsonProvider,
): (req: AnyRequest, res: http.ServerResponse | FrontResponse) => void {
  return (req: AnyRequest, res: http.ServerResponse | FrontResponse): void => {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    const url = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && (url === '/rpc' || url === '/rpc/')) {
      reply(200, {
        instanceId: provider.instanceId,
        services: provider.services.definitions().map((def) => ({
          name: def.name,
          version: def.version,
          methods: Object.entries(def.methods).map(([name, m]) => ({
            name,
            idempotent: m.idempotent === true,
          })),
        })),
      });
      return;
    }
    const m = /^\/rpc\/([^/]+)\/([^/]+)$/.exec(url);
    if (req.method !== 'POST' || m === null) {
      reply(404, {
        error: {
          code: ErrorCodes.NOT_FOUND,
          message: `no route ${req.method} ${url}; call POST /rpc/<service>/<method> with a JSON body, or GET /rpc`,
        },
      });
      return;
    }
    const call = (body: Buffer) =>
      invoke(provider, req, res, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), body, reply);
    if ('body' in req) {
      call(req.body);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > provider.maxFrameBytes) {
        tooLarge = true;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) {
        reply(413, {
          error: {
            code: ErrorCodes.RPC_FRAME_TOO_LARGE,
            message: `the body is ${size} bytes, over the limit of ${provider.maxFrameBytes}`,
          },
        });
        return;
      }
      call(Buffer.concat(chunks));
    });
  };
}

/** Parses a call's body and runs it, answering through `reply`. */
function invoke(
  provider: HttpJsonProvider,
  req: AnyRequest,
  res: http.ServerResponse | FrontResponse,
  service: string,
  method: string,
  body: Buffer,
  reply: (status: number, body: unknown) => void,
): void {
  let args: unknown;
  try {
    const text = body.toString('utf8');
    args = text.length === 0 ? undefined : JSON.parse(text);
  } catch (err) {
    reply(400, {
      error: {
        code: ErrorCodes.RPC_BAD_ARGUMENTS,
        message: `the body is not JSON: ${(err as Error).message}`,
      },
    });
    return;
  }
  if (provider.draining()) {
    reply(503, {
      error: {
        code: ErrorCodes.RPC_SHUTTING_DOWN,
        message: 'the provider is shutting down; retry elsewhere',
      },
    });
    return;
  }
  const version = req.headers['peak-version'];
  const id = typeof version === 'string' ? `${service}:${version}` : service;
  const verifier = provider.verifier;
  const presented =
    verifier === undefined
      ? Promise.resolve(undefined)
      : presentedOverHttp(verifier, req.headers.authorization);
  // The caller is gone when its connection closes before the answer was written.
  const gone = new AbortController();
  if ('onClientGone' in req) req.onClientGone(() => gone.abort());
  else {
    const nodeRes = res as http.ServerResponse;
    nodeRes.once('close', () => {
      if (!nodeRes.writableFinished) gone.abort();
    });
  }
  presented
    .then((p) =>
      provider.services.invoke(
        id,
        method,
        req.headers,
        args,
        req.socket.remoteAddress,
        p,
        gone.signal,
      ),
    )
    .then(
      (result) => reply(200, { result: result ?? null }),
      (err) => {
        const wire = toWireError(err);
        reply(httpStatus(wire.code), { error: wire });
      },
    );
}

/** The HTTP status for an RPC error code on the HTTP/JSON access path (the shared table). */
export function httpStatus(code: string): number {
  return httpStatusOf(code);
}
