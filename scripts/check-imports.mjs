#!/usr/bin/env node
// Import-direction check, run by `npm run lint` after biome. Dependency-free on purpose.
//
// Every relative import in packages/peakware/src/**/*.ts (static, `export ... from`,
// side-effect and dynamic `import('...')`) is resolved to a file and mapped to a unit (a
// folder of the layer table below). It fails, listing file and line, on
//   (a) any cycle between units (type-only imports count: a cycle of types is still a
//       cycle of knowledge), and
//   (b) a wrong-way import:
//       - a unit imports a unit of a higher layer;
//       - a unit imports another unit of its own layer at runtime (type-only is allowed:
//         it is erased by tsc, so loading one SDK entry never loads the other) unless the
//         edge is declared in SAME_LAYER_EDGES with its reason;
//       - an SDK folder imports any `server/` folder or the host (`src/server/`);
//       - a `<subsystem>/server/` imports anything but its own SDK folder, what that SDK
//         folder may import, and the host primitives in HOST_PRIMITIVES;
//       - the host (`src/server/`) imports subsystem code other than from modules.ts, or
//         anything of a subsystem other than its `server/index.ts`;
//       - `admin/` (the `peakware/admin` client) imports a `server/` folder or the host at
//         runtime: it reads the server halves' view types (`import type`) but must never
//         load fastify, pg or a route module into a client process;
//       - `console/web/` (the console's browser app, bundled by esbuild, `.ts` and `.tsx`)
//         imports a `server/` folder or the host at runtime: it calls the admin sections and
//         reads view types, and nothing imports it.
// Test files (*.test.ts) may import anything inside src; their imports must still resolve.
// Known violations being fixed elsewhere sit in ALLOW, each with its reason.
//
// `node scripts/check-imports.mjs [srcRoot]`; the module exports checkImports(srcRoot).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Layers, lowest first: a unit may import only lower layers (and, type-only, its own). */
export const LAYERS = {
  core: 0,
  guard: 1,
  telemetry: 1,
  rpc: 2,
  registry: 2,
  config: 2,
  mq: 2,
  data: 2,
  cache: 2,
  txn: 3,
  gateway: 3,
  stress: 3,
  ops: 3,
  drill: 3,
  scale: 3,
  security: 3,
  console: 3,
  // the package's root entry (src/index.ts): an SDK entry above every SDK folder
  '.': 4,
  // the host's primitives (HOST_PRIMITIVES): a node of their own, under every
  // `<subsystem>/server/`, so host -> modules.ts -> subsystem server -> primitive is no cycle
  'server/primitives': 5,
  // every `<subsystem>/server/` sits here
  'sub/server': 6,
  server: 7,
  admin: 8,
  cli: 9,
  // the console's browser app: a client of admin, bundled for the browser, loaded by no Node process
  'console/web': 10,
};

/** Host files a subsystem's `server/` may import (paths relative to src). */
export const HOST_PRIMITIVES = [
  'server/http-api.ts',
  'server/access.ts',
  'server/app-scopes.ts',
  'server/http-request-metrics.ts',
  'server/route-schema.ts',
  'server/pg-listener.ts',
  'server/advisory-leader.ts',
  'server/peak-module.ts',
  'server/migrator.ts',
  'server/database.ts',
  'server/control-plane-rpc.ts',
];

/**
 * Host files the primitives themselves build on: in the primitives' node (so the host's
 * graph has no cycle) but not for subsystems to import.
 */
export const PRIMITIVE_SUPPORT = [
  'server/auth-failure-limiter.ts',
  'server/authenticator.ts',
  'server/app-credentials.ts',
  'server/admin-token.ts',
  'server/data-folder.ts',
  'server/embedded-postgres.ts',
  'server/openapi.ts',
  'server/server-settings.ts',
];

/** Runtime imports between SDK folders of one layer, each with why it is one-way. */
export const SAME_LAYER_EDGES = [
  {
    from: 'rpc',
    to: 'registry',
    reason:
      'rpc finds providers through the Registry seam and names services with its serviceKey/DEFAULT_GROUP; registry never imports rpc',
  },
  {
    from: 'config',
    to: 'rpc',
    reason:
      "config-schema validates an `rpc-routes` item with rpc's own ConditionRules parser, so a bad rule is refused at publish; rpc never imports config",
  },
  {
    from: 'mq',
    to: 'rpc',
    reason:
      "mq's binary data path (producers and consumers to the broker) rides on rpc's multiplexed connection and framing; rpc never imports mq",
  },
];

/**
 * Imports that break a rule today, each with its reason and who removes it. `from` is a
 * file or folder prefix (relative to src), `to` the imported file. An entry that matches
 * nothing is reported so it can be deleted.
 */
export const ALLOW = [
  {
    from: 'config/server/config-store.ts',
    to: 'registry/server/registry-store.ts',
    reason:
      'an lb-weights config item is applied to peak.registry_instances in the same transaction and announced on REGISTRY_CHANNEL; to go when governance writes through a registry-server function',
  },
  {
    from: 'telemetry/rpc-tracing.ts',
    to: 'rpc/rpc-filter.ts',
    reason:
      "type-only: telemetry's RPC tracing filter implements rpc's RpcFilter interface; erased at runtime, so peakware/telemetry never loads rpc. To go when the filter moves beside rpc",
  },
];

const SUBSYSTEM_SERVER = /^([^/]+)\/server(\/|$)/;

/** The unit (folder node of the graph) a src-relative path belongs to. */
export function unitOf(rel) {
  if (HOST_PRIMITIVES.includes(rel) || PRIMITIVE_SUPPORT.includes(rel)) return 'server/primitives';
  if (rel.startsWith('console/web/')) return 'console/web';
  const sub = SUBSYSTEM_SERVER.exec(rel);
  if (sub && sub[1] !== 'server') return `${sub[1]}/server`;
  const slash = rel.indexOf('/');
  return slash === -1 ? '.' : rel.slice(0, slash);
}

function layerOf(unit) {
  if (unit.endsWith('/server')) return LAYERS['sub/server'];
  return LAYERS[unit];
}

function isSdk(unit) {
  return !unit.endsWith('/server') && layerOf(unit) < LAYERS['server/primitives'];
}

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if ((name.endsWith('.ts') && !name.endsWith('.d.ts')) || name.endsWith('.tsx'))
      out.push(full);
  }
  return out;
}

// Comments that start a line (TSDoc blocks, `//` lines) are blanked, keeping line numbers;
// a `/*` inside a string (a glob) is left alone.
function stripComments(source) {
  return source
    .replace(/^[ \t]*\/\*[\s\S]*?\*\//gm, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/^[ \t]*\/\/.*$/gm, (m) => ' '.repeat(m.length));
}

const STATIC_FROM =
  /(?:^|[;\n])[ \t]*(import|export)\b(\s+type\b)?([^;'"]*?)\bfrom\s*['"](\.{1,2}\/[^'"]*)['"]/g;
const SIDE_EFFECT = /(?:^|[;\n])[ \t]*import\s*['"](\.{1,2}\/[^'"]*)['"]/g;
const DYNAMIC = /\bimport\(\s*['"`](\.{1,2}\/[^'"`]*)['"`]\s*\)/g;

/** Every relative import in a source text: specifier, line, and whether it is type-only. */
export function parseImports(source) {
  const text = stripComments(source);
  const lineAt = (index) => text.slice(0, index).split('\n').length;
  const found = [];
  for (const m of text.matchAll(STATIC_FROM)) {
    const clause = m[3].trim();
    let typeOnly = Boolean(m[2]);
    if (!typeOnly && clause.startsWith('{') && clause.endsWith('}')) {
      // `import { type A, type B } from` is erased too
      const names = clause
        .slice(1, -1)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      typeOnly = names.length > 0 && names.every((n) => n.startsWith('type '));
    }
    const at = m.index + m[0].search(/\S/);
    found.push({ specifier: m[4], line: lineAt(at), typeOnly });
  }
  for (const m of text.matchAll(SIDE_EFFECT)) {
    found.push({ specifier: m[1], line: lineAt(m.index + m[0].search(/\S/)), typeOnly: false });
  }
  for (const m of text.matchAll(DYNAMIC)) {
    found.push({ specifier: m[1], line: lineAt(m.index), typeOnly: false });
  }
  return found.sort((a, b) => a.line - b.line);
}

function resolve(fromFile, specifier) {
  const base = path.resolve(path.dirname(fromFile), specifier);
  const candidates = [
    base.replace(/\.(m?)js$/, '.$1ts'),
    base.replace(/\.js$/, '.tsx'),
    base,
    `${base}.ts`,
    path.join(base, 'index.ts'),
  ];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function allowEntry(fromRel, toRel) {
  return ALLOW.find(
    (a) =>
      (fromRel === a.from || (a.from.endsWith('/') && fromRel.startsWith(a.from))) &&
      toRel === a.to,
  );
}

// Why an import from one unit to another is wrong, or undefined when it is fine.
function violation(from, fromRel, to, toRel, typeOnly) {
  if (from === to) return undefined;
  if (from === 'cli') return undefined;
  const fromLayer = layerOf(from);
  const toLayer = layerOf(to);
  if (from === 'server/primitives') {
    return to === 'core' ? undefined : 'a host primitive may import only core and other primitives';
  }
  if (from === 'server') {
    if (to === 'core' || to === 'server/primitives') return undefined;
    if (fromRel === 'server/modules.ts' && /^[^/]+\/server\/index\.ts$/.test(toRel))
      return undefined;
    return fromRel === 'server/modules.ts'
      ? `the host takes a subsystem only through its server/index.ts (got ${toRel})`
      : 'the host imports subsystem code only in server/modules.ts (through <subsystem>/server/index.ts)';
  }
  if (from.endsWith('/server')) {
    const own = from.slice(0, -'/server'.length);
    if (to === own || to === 'core') return undefined;
    if (to === 'server/primitives' && HOST_PRIMITIVES.includes(toRel)) return undefined;
    if (to.startsWith('server')) {
      return `a subsystem's server/ may use only the host primitives (${HOST_PRIMITIVES.join(', ')})`;
    }
    if (to.endsWith('/server'))
      return "a subsystem's server/ may not import another subsystem's server/";
    // what its own SDK folder may import, it may import too
    const why = violation(own, `${own}/`, to, toRel, typeOnly);
    return why ? `as its SDK folder ${own}/: ${why}` : undefined;
  }
  if (from === 'admin' && !typeOnly && (to.startsWith('server') || to.endsWith('/server')))
    return "peakware/admin is a client: it may import a server half's types (`import type`), never load it";
  if (from === 'console/web' && !typeOnly && (to.startsWith('server') || to.endsWith('/server')))
    return "the console's browser app may import a server half's types (`import type`), never load it";
  if (isSdk(from) && (to.startsWith('server') || to.endsWith('/server')))
    return 'an SDK folder may not import a server/ folder or the host (src/server/)';
  if (toLayer > fromLayer)
    return `${from} (layer ${fromLayer}) may not import ${to} (layer ${toLayer})`;
  if (
    toLayer === fromLayer &&
    !typeOnly &&
    !SAME_LAYER_EDGES.some((e) => e.from === from && e.to === to)
  )
    return `${from} and ${to} share a layer: only \`import type\` or a declared SAME_LAYER_EDGES entry`;
  return undefined;
}

// Cycles between units: Tarjan's strongly connected components, then one path per component.
function findCycles(edges) {
  const graph = new Map();
  for (const e of edges) {
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    if (!graph.has(e.to)) graph.set(e.to, new Set());
    graph.get(e.from).add(e.to);
  }
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of [...graph.get(v)].sort()) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) components.push(c.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return components.map((members) => {
    // shortest way back to the start, inside the component
    const inside = new Set(members);
    const start = members[0];
    const prev = new Map([[start, undefined]]);
    const queue = [start];
    let last;
    while (queue.length > 0 && last === undefined) {
      const v = queue.shift();
      for (const w of [...graph.get(v)].sort()) {
        if (!inside.has(w)) continue;
        if (w === start) {
          last = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const cycle = [];
    for (let v = last; v !== undefined; v = prev.get(v)) cycle.unshift(v);
    cycle.push(start);
    return cycle;
  });
}

/**
 * Checks the tree under srcRoot. Returns { problems, warnings, files, imports }: problems
 * are human-readable lines (empty when the tree passes).
 */
export function checkImports(srcRoot) {
  const root = path.resolve(srcRoot);
  const files = walk(root, []);
  const problems = [];
  const warnings = [];
  const edges = [];
  const usedAllow = new Set();
  let imports = 0;
  for (const file of files) {
    const fromRel = path.relative(root, file).split(path.sep).join('/');
    const from = unitOf(fromRel);
    const isTest = fromRel.endsWith('.test.ts');
    if (layerOf(from) === undefined) {
      problems.push(
        `${fromRel}: folder '${from}' has no layer: add it to LAYERS in scripts/check-imports.mjs`,
      );
      continue;
    }
    for (const imp of parseImports(readFileSync(file, 'utf8'))) {
      imports++;
      const where = `${fromRel}:${imp.line}`;
      const target = resolve(file, imp.specifier);
      if (!target) {
        problems.push(`${where}: '${imp.specifier}' does not resolve to a .ts file`);
        continue;
      }
      const toRel = path.relative(root, target).split(path.sep).join('/');
      if (toRel.startsWith('..')) {
        if (!isTest) problems.push(`${where}: '${imp.specifier}' leaves src/`);
        continue;
      }
      if (isTest) continue;
      const to = unitOf(toRel);
      if (layerOf(to) === undefined) continue; // reported once for its own files
      if (from !== to) edges.push({ from, to, where, toRel });
      const why = violation(from, fromRel, to, toRel, imp.typeOnly);
      if (!why) continue;
      const allowed = allowEntry(fromRel, toRel);
      if (allowed) {
        usedAllow.add(allowed);
        continue;
      }
      problems.push(
        `${where}: wrong-way import of ${toRel}${imp.typeOnly ? ' (type-only)' : ''}: ${why}`,
      );
    }
  }
  for (const cycle of findCycles(edges)) {
    const steps = [];
    for (let i = 0; i + 1 < cycle.length; i++) {
      const e = edges.find((x) => x.from === cycle[i] && x.to === cycle[i + 1]);
      steps.push(`    ${cycle[i]} -> ${cycle[i + 1]}  (${e.where} imports ${e.toRel})`);
    }
    problems.push(`folder cycle: ${cycle.join(' -> ')}\n${steps.join('\n')}`);
  }
  for (const a of ALLOW) {
    if (!usedAllow.has(a))
      warnings.push(`ALLOW entry ${a.from} -> ${a.to} matches nothing: delete it`);
  }
  return { problems, warnings, files: files.length, imports };
}

const invokedDirectly =
  process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const srcRoot = process.argv[2] ?? path.join(repo, 'packages', 'peakware', 'src');
  const { problems, warnings, files, imports } = checkImports(srcRoot);
  for (const w of warnings) console.warn(`check-imports: warning: ${w}`);
  if (problems.length > 0) {
    console.error(
      `check-imports: ${problems.length} problem(s) in ${path.relative(repo, srcRoot) || srcRoot}:`,
    );
    for (const p of problems) console.error(`  ${p}`);
    console.error('check-imports: layers and rules are at the top of scripts/check-imports.mjs');
    process.exit(1);
  }
  console.log(
    `check-imports: ${files} files, ${imports} relative imports, no cycles, none wrong-way`,
  );
}
