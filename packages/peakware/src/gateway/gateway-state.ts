/**
 * Everything a gateway decides from, held in its own memory: the route table, apps, keys
 * by id and subscriptions by app and API. Changes come one object at a time from the
 * control plane's feed and are applied one at a time: a route change re-compiles and
 * re-inserts that route only.
 */
import type { Logger } from '../core/logger.js';
import type {
  GatewayAppSpec,
  GatewayChange,
  GatewayKey,
  GatewayRouteSpec,
  GatewaySubscription,
} from './gateway-objects.js';
import { RouteTable } from './route-table.js';

/** How a route's per-route data is built and let go of. */
export interface RouteCompiler<R> {
  compile(spec: GatewayRouteSpec): R;
  release(data: R): void;
}

/** The gateway's local state. */
export class GatewayState<R> {
  readonly routes = new RouteTable<R>();
  readonly apps = new Map<string, GatewayAppSpec>();
  readonly keys = new Map<string, GatewayKey>();
  /** By `app\napi`. */
  readonly subscriptions = new Map<string, GatewaySubscription>();
  /** The feed position of the newest change applied. */
  rev = 0;
  /** Every object by `kind/id`, as JSON text (a snapshot skips the unchanged). */
  readonly #texts = new Map<string, string>();
  readonly #compiler: RouteCompiler<R>;
  readonly #logger: Logger;

  constructor(compiler: RouteCompiler<R>, logger: Logger) {
    this.#compiler = compiler;
    this.#logger = logger;
  }

  /** Applies changes in order; a change that cannot be applied is logged and skipped. */
  apply(changes: readonly GatewayChange[], rev: number): void {
    for (const c of changes) this.#applyOne(c);
    if (rev > this.rev) this.rev = rev;
  }

  /** Replaces the whole state with a snapshot, touching only what differs. */
  reset(objects: readonly GatewayChange[], rev: number): void {
    const seen = new Set<string>();
    for (const o of objects) {
      seen.add(`${o.kind}/${o.id}`);
      this.#applyOne(o);
    }
    for (const k of [...this.#texts.keys()]) {
      if (seen.has(k)) continue;
      const slash = k.indexOf('/');
      this.#applyOne({
        kind: k.slice(0, slash) as GatewayChange['kind'],
        id: k.slice(slash + 1),
        rev,
        value: null,
      });
    }
    this.rev = rev;
  }

  #applyOne(c: GatewayChange): void {
    const k = `${c.kind}/${c.id}`;
    const text = c.value === null ? undefined : JSON.stringify(c.value);
    if (this.#texts.get(k) === text) return;
    try {
      switch (c.kind) {
        case 'route':
          this.#applyRoute(c.id, c.value as GatewayRouteSpec | null);
          break;
        case 'app':
          if (c.value === null) this.apps.delete(c.id);
          else this.apps.set(c.id, c.value as GatewayAppSpec);
          break;
        case 'key':
          if (c.value === null) this.keys.delete(c.id);
          else this.keys.set(c.id, c.value as GatewayKey);
          break;
        case 'subscription': {
          const slash = c.id.indexOf('/');
          const id = `${c.id.slice(0, slash)}\n${c.id.slice(slash + 1)}`;
          if (c.value === null) this.subscriptions.delete(id);
          else this.subscriptions.set(id, c.value as GatewaySubscription);
          break;
        }
      }
      if (text === undefined) this.#texts.delete(k);
      else this.#texts.set(k, text);
    } catch (err) {
      this.#logger.error({ err, kind: c.kind, id: c.id }, 'gateway: change not applied');
    }
  }

  #applyRoute(name: string, spec: GatewayRouteSpec | null): void {
    const old = this.routes.get(name);
    if (spec === null) {
      this.routes.delete(name);
    } else {
      const data = this.#compiler.compile(spec);
      try {
        this.routes.put({ spec, data });
      } catch (err) {
        this.#compiler.release(data);
        throw err;
      }
    }
    if (old !== undefined) this.#compiler.release(old.data);
  }

  /**
   * The snapshot file's text: every object as held (its JSON text is kept, so nothing is
   * parsed or serialised again; 10 000 routes take a few ms, not a blocked event loop).
   */
  snapshotText(): string {
    const parts: string[] = [];
    for (const [k, text] of this.#texts) {
      const slash = k.indexOf('/');
      parts.push(
        `{"kind":${JSON.stringify(k.slice(0, slash))},"id":${JSON.stringify(k.slice(slash + 1))},"rev":${this.rev},"value":${text}}`,
      );
    }
    return `{"rev":${this.rev},"savedAt":"${new Date().toISOString()}","objects":[${parts.join(',')}]}`;
  }
}
