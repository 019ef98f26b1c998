/** The provider's options, with their defaults written once. */
import type { Logger } from '../core/logger.js';
import type { Registry } from '../registry/registry.js';
import type { ProviderIdentityOptions } from './caller-identity.js';
import { DEFAULT_MAX_FRAME_BYTES } from './frame-codec.js';
import type { RpcFilter } from './rpc-filter.js';
import type { Transport } from './transport.js';

/** Options of {@link RpcServer}; defaults in {@link SERVER_DEFAULTS}. */
export interface RpcServerOptions {
  /** Bind address. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port?: number;
  /** Address consumers should dial (default: `host`, or 127.0.0.1 for 0.0.0.0). */
  advertiseHost?: string;
  /** Serve HTTP/JSON on this port too (0 picks one); absent: no HTTP. */
  httpPort?: number;
  /**
   * Read the HTTP/JSON port's common requests with core's HTTP front (a whole head, a body
   * of at most 256 KiB, keep-alive: parsed off the socket, answered in one write), handing
   * every other connection to node:http. Default true; false: node:http serves it all.
   */
  httpFront?: boolean;
  /** Largest frame read or written, bytes (and the largest HTTP/JSON body). */
  maxFrameBytes?: number;
  /** Most calls running at once in this process; more are refused, not queued. */
  maxInFlight?: number;
  /** Pause reading a connection while this many bytes wait to be written to it. */
  maxWriteBufferBytes?: number;
  /** Close a connection that sent nothing (not even a ping) for this long, ms. */
  idleTimeoutMs?: number;
  /**
   * Most bytes held, over all connections, in frames not yet complete. A connection whose
   * partial frame would push the total past it is closed (PEAK_RPC_OVERLOADED), so no
   * number of half-sent frames moves memory past this bound (plus each socket's read
   * chunk). Default 64 MiB.
   */
  maxPartialBytes?: number;
  /** Close a connection whose frame has been incomplete this long (a slow sender), ms. */
  frameTimeoutMs?: number;
  /** Graceful stop: the longest wait for in-flight calls, ms. */
  drainTimeoutMs?: number;
  /** Graceful stop: how long connections must be quiet before closing, ms. */
  quietMs?: number;
  /** Where to register; absent: not registered. */
  registry?: Registry;
  /** Registered group (default: each definition's group). */
  group?: string;
  /** Registered weight. */
  weight?: number;
  /** Registered route tags, e.g. `['canary']`. */
  tags?: string[];
  /** Registered metadata. */
  metadata?: Record<string, string>;
  /** This process's instance id (default: host-pid-random). */
  instanceId?: string;
  /** Provider-side filters, in order. */
  filters?: RpcFilter[];
  /** How connections are accepted (TCP, TLS). Default {@link tcpTransport}. */
  transport?: Transport;
  /**
   * Verify callers' signed identities (see caller-identity.ts): filters and guard rules then
   * see the verified app only. Absent: callers are who their `peak-caller` header says.
   */
  identity?: ProviderIdentityOptions;
  /** Where the provider logs; default silent. */
  logger?: Logger;
}

/** Defaults of {@link RpcServerOptions}, written once. */
export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxInFlight: 10_000,
  maxWriteBufferBytes: 16 * 1024 * 1024,
  idleTimeoutMs: 60_000,
  maxPartialBytes: 64 * 1024 * 1024,
  frameTimeoutMs: 10_000,
  drainTimeoutMs: 10_000,
  quietMs: 200,
  weight: 100,
} as const;

/** {@link RpcServerOptions} with every default filled in. */
export type ResolvedServerOptions = RpcServerOptions & {
  -readonly [K in keyof typeof SERVER_DEFAULTS]: (typeof SERVER_DEFAULTS)[K] extends string
    ? string
    : number;
};

/** Fills in {@link SERVER_DEFAULTS}. */
export function resolveServerOptions(options: RpcServerOptions): ResolvedServerOptions {
  return { ...SERVER_DEFAULTS, ...options };
}
