/**
 * Reading one field of a request by its source (`path.id`, `query.page`, `header.x-user`,
 * `body`, `body.order.sku`, `app`), for RPC argument mappings, guard arguments and MQ keys.
 */

/** The parts of a request a field can come from. */
export interface RequestFields {
  params: Readonly<Record<string, string>>;
  query: URLSearchParams | undefined;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body (undefined when there is none). */
  body: unknown;
  /** The calling app, '' for a public route. */
  app: string;
}

/** A compiled source: where to look and the path inside it. */
export interface CompiledSource {
  where: 'path' | 'query' | 'header' | 'body' | 'app';
  name: string;
  /** For body fields: the property path. */
  path: string[];
}

/** Compiles `path.id` and friends (the control plane checked the syntax). */
export function compileSource(source: string): CompiledSource {
  if (source === 'body') return { where: 'body', name: '', path: [] };
  if (source === 'app') return { where: 'app', name: '', path: [] };
  const dot = source.indexOf('.');
  const where = source.slice(0, dot) as CompiledSource['where'];
  const name = source.slice(dot + 1);
  return { where, name, path: where === 'body' ? name.split('.') : [] };
}

/** The value of a field, or undefined. Path, query and header values are strings. */
export function readField(f: RequestFields, s: CompiledSource): unknown {
  switch (s.where) {
    case 'path':
      return f.params[s.name];
    case 'query':
      return f.query?.get(s.name) ?? undefined;
    case 'header': {
      const v = f.headers[s.name];
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'app':
      return f.app;
    case 'body': {
      let v: unknown = f.body;
      for (const key of s.path) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
        v = Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
      }
      return v;
    }
  }
}
