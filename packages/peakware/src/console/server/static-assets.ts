/**
 * The console's static files, served by `peak server` at `/console` from the package itself
 * (`dist/console-web/`, built by `npm run build`; no CDN, works offline). Files are read
 * once at start and kept in memory with a gzip copy and an ETag; hashed asset names are
 * cached for good, the page itself never. Any other path under `/console` is the page (the
 * app routes in the browser). Every answer carries a strict Content-Security-Policy: scripts
 * and styles from this origin only, no framing.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiApp } from '../../server/http-api.js';

/** Where the built console is, in the package (next to `dist/src`). */
export const CONSOLE_ASSETS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../console-web',
);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  /** Hashed file names never change: cache them for good. */
  immutable: boolean;
}

/** Reads every file under `dir` into memory (empty when the console was not built). */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  const walk = (sub: string) => {
    for (const name of readdirSync(path.join(dir, sub))) {
      const rel = sub === '' ? name : `${sub}/${name}`;
      const full = path.join(dir, rel);
      if (statSync(full).isDirectory()) {
        walk(rel);
        continue;
      }
      const body = readFileSync(full);
      const type = TYPES[path.extname(name)] ?? 'application/octet-stream';
      const zipped = /^(text|application\/json|image\/svg)/.test(type) ? gzipSync(body) : undefined;
      assets.set(rel, {
        body,
        gzip: zipped !== undefined && zipped.length < body.length ? zipped : undefined,
        type,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        immutable: /-[A-Z0-9]{8}\.(js|css)$/.test(name),
      });
    }
  };
  walk('');
  return assets;
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  void reply.headers(SECURITY_HEADERS);
  void reply.header('etag', asset.etag);
  void reply.header(
    'cache-control',
    asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  );
  void reply.header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  void reply.type(asset.type);
  const accepts = request.headers['accept-encoding'];
  if (asset.gzip !== undefined && typeof accepts === 'string' && accepts.includes('gzip')) {
    void reply.header('content-encoding', 'gzip');
    return reply.send(asset.gzip);
  }
  return reply.send(asset.body);
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Peakware console</title>
<p>The console's files are not built in this package (<code>dist/console-web</code> is missing).
Run <code>npm run build</code> in the Peakware workspace.</p>`;

/** Registers `GET /console` and `GET /console/*` over the files in `dir`. */
export function staticRoutes(app: ApiApp, dir: string = CONSOLE_ASSETS_DIR): void {
  const assets = loadAssets(dir);
  const page = assets.get('index.html');
  const answer = (request: FastifyRequest, reply: FastifyReply, file: string) => {
    const asset = assets.get(file) ?? (file.startsWith('assets/') ? undefined : page);
    if (asset !== undefined) return send(request, reply, asset);
    void reply.headers(SECURITY_HEADERS);
    if (page === undefined) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT);
    return reply.code(404).type('text/plain; charset=utf-8').send(`no console file ${file}`);
  };
  app.get(
    '/console',
    {
      config: { auth: 'public' },
      schema: { summary: 'The console (a page; the app routes in the browser)', tags: ['console'] },
    },
    (request, reply) => answer(request, reply, 'index.html'),
  );
  app.get(
    '/console/*',
    {
      config: { auth: 'public' },
      schema: {
        summary: "The console's files, and its pages by path (all answered by the page)",
        tags: ['console'],
      },
    },
    (request, reply) => {
      const file = (request.params as { '*': string })['*'];
      return answer(request, reply, file === '' ? 'index.html' : file);
    },
  );
}
