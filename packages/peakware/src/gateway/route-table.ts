/**
 * The gateway's router: routes by host, method and path pattern in segment tries (a radix
 * tree over path segments: static segments, then one `:param`, then a final `*rest`, tried
 * in that order with backtracking). A route is added or removed by walking its own path
 * only, so a change among 10 000 routes costs what one lookup costs: the table is never
 * rebuilt (APISIX rebuilds its whole radix tree on every change).
 */
import type { GatewayRouteSpec } from './gateway-objects.js';

/** A route as the table holds it: the spec plus what the lookup needs. */
export interface TableRoute<R> {
  spec: GatewayRouteSpec;
  /** Whatever the caller keeps per route (compiled checks, target handles). */
  data: R;
}

/** What a lookup found. */
export interface RouteMatch<R> {
  route: TableRoute<R>;
  /** Path parameters by name, as they appear in the path (still percent-encoded). */
  params: Record<string, string>;
}

interface Leaf<R> {
  route: TableRoute<R>;
  /** Parameter names in path order (the last may be the wildcard's). */
  names: string[];
}

class Node<R> {
  statics: Map<string, Node<R>> | undefined;
  param: Node<R> | undefined;
  /** Routes ending here, by method (`*` for any). */
  leaves: Map<string, Leaf<R>> | undefined;
  /** Routes whose last segment is `*rest` at this depth, by method. */
  rest: Map<string, Leaf<R>> | undefined;

  empty(): boolean {
    return (
      (this.statics === undefined || this.statics.size === 0) &&
      this.param === undefined &&
      (this.leaves === undefined || this.leaves.size === 0) &&
      (this.rest === undefined || this.rest.size === 0)
    );
  }
}

type Segment =
  | { kind: 'static'; text: string }
  | { kind: 'param'; name: string }
  | { kind: 'rest'; name: string };

/** Splits a route pattern; throws on a malformed one (a `*rest` not last, an empty name). */
export function parsePattern(path: string): Segment[] {
  if (!path.startsWith('/')) throw new Error(`route path '${path}' must start with /`);
  const parts = path === '/' ? [''] : path.slice(1).split('/');
  return parts.map((p, i) => {
    if (p.startsWith(':')) {
      if (!/^:[A-Za-z_][A-Za-z0-9_]*$/.test(p))
        throw new Error(`route path '${path}': bad parameter '${p}'`);
      return { kind: 'param', name: p.slice(1) };
    }
    if (p.startsWith('*')) {
      if (i !== parts.length - 1)
        throw new Error(`route path '${path}': '${p}' must be the last segment`);
      if (!/^\*[A-Za-z_][A-Za-z0-9_]*$/.test(p))
        throw new Error(`route path '${path}': bad wildcard '${p}'`);
      return { kind: 'rest', name: p.slice(1) };
    }
    return { kind: 'static', text: p };
  });
}

/** The pattern with parameter names erased: two routes with one shape and method conflict. */
export function patternShape(path: string): string {
  return parsePattern(path)
    .map((s) => (s.kind === 'static' ? s.text : s.kind === 'param' ? ':' : '*'))
    .join('/');
}

class Trie<R> {
  readonly root = new Node<R>();
  size = 0;

  add(route: TableRoute<R>): void {
    const segments = parsePattern(route.spec.path);
    const names: string[] = [];
    let node = this.root;
    for (const s of segments) {
      if (s.kind === 'static') {
        node.statics ??= new Map();
        let next = node.statics.get(s.text);
        if (next === undefined) {
          next = new Node();
          node.statics.set(s.text, next);
        }
        node = next;
      } else if (s.kind === 'param') {
        names.push(s.name);
        node.param ??= new Node();
        node = node.param;
      } else {
        names.push(s.name);
        node.rest ??= new Map();
        this.#put(node.rest, route, names);
        return;
      }
    }
    node.leaves ??= new Map();
    this.#put(node.leaves, route, names);
  }

  #put(map: Map<string, Leaf<R>>, route: TableRoute<R>, names: string[]): void {
    const held = map.get(route.spec.method);
    if (held !== undefined && held.route.spec.name !== route.spec.name) {
      throw new Error(
        `route '${route.spec.name}' (${route.spec.method} ${route.spec.path}) conflicts with route '${held.route.spec.name}' (${held.route.spec.method} ${held.route.spec.path})`,
      );
    }
    if (held === undefined) this.size++;
    map.set(route.spec.method, { route, names });
  }

  /** Removes the route named `name` at `path`/`method`; true when it was there. */
  remove(spec: GatewayRouteSpec): boolean {
    const segments = parsePattern(spec.path);
    const trail: { parent: Node<R>; key: string | null }[] = [];
    let node: Node<R> | undefined = this.root;
    for (const s of segments) {
      if (s.kind === 'rest') {
        const held = node.rest?.get(spec.method);
        if (held === undefined || held.route.spec.name !== spec.name) return false;
        node.rest!.delete(spec.method);
        this.size--;
        this.#prune(node, trail);
        return true;
      }
      const next: Node<R> | undefined =
        s.kind === 'static' ? node.statics?.get(s.text) : node.param;
      if (next === undefined) return false;
      trail.push({ parent: node, key: s.kind === 'static' ? s.text : null });
      node = next;
    }
    const held = node.leaves?.get(spec.method);
    if (held === undefined || held.route.spec.name !== spec.name) return false;
    node.leaves!.delete(spec.method);
    this.size--;
    this.#prune(node, trail);
    return true;
  }

  #prune(node: Node<R>, trail: { parent: Node<R>; key: string | null }[]): void {
    let child = node;
    for (let i = trail.length - 1; i >= 0 && child.empty(); i--) {
      const { parent, key } = trail[i]!;
      if (key === null) parent.param = undefined;
      else parent.statics!.delete(key);
      child = parent;
    }
  }

  /**
   * The route for `method` and the split path, or undefined; `allowed` collects methods that
   * exist for the path (duplicates possible: a list, cheaper than a set on every lookup).
   */
  find(
    method: string,
    parts: readonly string[],
    captured: string[],
    allowed: string[],
  ): Leaf<R> | undefined {
    return this.#walk(this.root, method, parts, 0, captured, allowed);
  }

  #walk(
    node: Node<R>,
    method: string,
    parts: readonly string[],
    i: number,
    captured: string[],
    allowed: string[],
  ): Leaf<R> | undefined {
    if (i === parts.length) {
      const leaves = node.leaves;
      if (leaves !== undefined && leaves.size > 0) {
        const hit = leaves.get(method) ?? leaves.get('*');
        if (hit !== undefined) return hit;
        for (const m of leaves.keys()) allowed.push(m);
      }
    } else {
      const part = parts[i]!;
      const next = node.statics?.get(part);
      if (next !== undefined) {
        const hit = this.#walk(next, method, parts, i + 1, captured, allowed);
        if (hit !== undefined) return hit;
      }
      if (node.param !== undefined && part !== '') {
        captured.push(part);
        const hit = this.#walk(node.param, method, parts, i + 1, captured, allowed);
        if (hit !== undefined) return hit;
        captured.pop();
      }
    }
    const rest = node.rest;
    if (rest !== undefined && rest.size > 0) {
      const hit = rest.get(method) ?? rest.get('*');
      if (hit !== undefined) {
        captured.push(parts.slice(i).join('/'));
        return hit;
      }
      for (const m of rest.keys()) allowed.push(m);
    }
    return undefined;
  }
}

/** Why a lookup found nothing: no path at all, or the path only under other methods. */
export interface RouteMiss {
  /** Methods that do have a route for this host and path (empty: no such path). */
  allowed: string[];
}

/** Routes by host, method and path; add, replace and remove one at a time. */
export class RouteTable<R> {
  readonly #exact = new Map<string, Trie<R>>();
  readonly #suffix = new Map<string, Trie<R>>();
  readonly #any = new Trie<R>();
  readonly #byName = new Map<string, TableRoute<R>>();

  /** How many routes the table holds. */
  get size(): number {
    return this.#byName.size;
  }

  /** The route named `name`. */
  get(name: string): TableRoute<R> | undefined {
    return this.#byName.get(name);
  }

  /** Every route, in no particular order. */
  routes(): IterableIterator<TableRoute<R>> {
    return this.#byName.values();
  }

  #trie(host: string | undefined, create: boolean): Trie<R> | undefined {
    if (host === undefined) return this.#any;
    const map = host.startsWith('*.') ? this.#suffix : this.#exact;
    const key = host.startsWith('*.') ? host.slice(1) : host;
    let trie = map.get(key);
    if (trie === undefined && create) {
      trie = new Trie();
      map.set(key, trie);
    }
    return trie;
  }

  /**
   * Adds `route`, replacing the route of the same name (wherever it was). Throws, changing
   * nothing, when another route already has the same host, method and path shape.
   */
  put(route: TableRoute<R>): void {
    const old = this.#byName.get(route.spec.name);
    if (old !== undefined) this.delete(route.spec.name);
    try {
      this.#trie(route.spec.host, true)!.add(route);
    } catch (err) {
      if (old !== undefined) this.put(old);
      throw err;
    }
    this.#byName.set(route.spec.name, route);
  }

  /** Removes the route named `name`; true when there was one. */
  delete(name: string): boolean {
    const old = this.#byName.get(name);
    if (old === undefined) return false;
    this.#byName.delete(name);
    const trie = this.#trie(old.spec.host, false);
    trie?.remove(old.spec);
    if (trie !== undefined && trie !== this.#any && trie.size === 0) {
      const host = old.spec.host!;
      if (host.startsWith('*.')) this.#suffix.delete(host.slice(1));
      else this.#exact.delete(host);
    }
    return true;
  }

  /**
   * The route for a request: the exact host's routes first, then `*.suffix` hosts (longest
   * suffix first), then routes for any host. `path` is the raw path (no query).
   */
  match(method: string, host: string, path: string): RouteMatch<R> | RouteMiss {
    const parts = path === '/' ? [''] : path.slice(1).split('/');
    const allowed: string[] = [];
    const captured: string[] = [];
    // The Host header is only read when some route names a host (most tables have none).
    const h = this.#exact.size > 0 || this.#suffix.size > 0 ? hostName(host) : '';
    let leaf: Leaf<R> | undefined;
    if (this.#exact.size > 0) leaf = this.#exact.get(h)?.find(method, parts, captured, allowed);
    if (leaf === undefined && this.#suffix.size > 0) {
      for (
        let dot = h.indexOf('.');
        dot >= 0 && leaf === undefined;
        dot = h.indexOf('.', dot + 1)
      ) {
        captured.length = 0;
        leaf = this.#suffix.get(h.slice(dot))?.find(method, parts, captured, allowed);
      }
    }
    if (leaf === undefined) {
      captured.length = 0;
      leaf = this.#any.find(method, parts, captured, allowed);
    }
    if (leaf === undefined) return { allowed: [...new Set(allowed)].sort() };
    const params: Record<string, string> = {};
    for (let i = 0; i < leaf.names.length; i++) params[leaf.names[i]!] = captured[i]!;
    return { route: leaf.route, params };
  }
}

/** The host name of a Host header, lowercased, without the port. */
function hostName(host: string): string {
  const colon = host.startsWith('[') ? host.indexOf(']:') + 1 : host.lastIndexOf(':');
  return (colon > 0 ? host.slice(0, colon) : host).toLowerCase();
}

/** True when a lookup result is a match. */
export function isMatch<R>(m: RouteMatch<R> | RouteMiss): m is RouteMatch<R> {
  return (m as RouteMatch<R>).route !== undefined;
}
