/**
 * URL allow-lists: which outside HTTP endpoints a server-side caller may call, as URL
 * prefixes an operator lists. The txn coordinator's HTTP branches use it
 * (`txn.httpBranches`, `PEAK_TXN_HTTP_BRANCHES`): any app with a `txn` grant submits branch
 * URLs and the coordinator calls them from inside the network, so an unlisted URL would let
 * a transaction reach anything the control plane can (server-side request forgery).
 *
 * A URL is allowed when its scheme, host and port equal a prefix's and its path starts with
 * the prefix's path at a segment boundary: `http://pay.internal:8080/txn/` allows
 * `http://pay.internal:8080/txn/debit`, not `http://pay.internal:8080/txn-admin` nor
 * `http://pay.internal:8080.evil.example/txn/`.
 */

/** A parsed `http(s)` URL without credentials, or the reason it is not one. */
export function parseHttpUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `'${text}' is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `'${text}' is not an http:// or https:// URL`;
  if (url.username !== '' || url.password !== '')
    return `'${text}' carries credentials; an HTTP branch is authenticated by the coordinator's identity, not by the URL`;
  return url;
}

/** The allowed prefixes, checked and normalised; throws an Error naming a bad entry. */
export function urlPrefixes(list: readonly string[]): URL[] {
  return list.map((entry) => {
    const url = parseHttpUrl(entry.trim());
    if (typeof url === 'string') throw new Error(url);
    if (url.search !== '' || url.hash !== '')
      throw new Error(
        `'${entry}' has a query or fragment; a prefix is scheme, host, port and path`,
      );
    return url;
  });
}

/** True when `url` lies under one of `prefixes` (see the header). */
export function urlAllowed(url: URL, prefixes: readonly URL[]): boolean {
  return prefixes.some((p) => {
    if (p.origin !== url.origin) return false;
    const base = p.pathname;
    if (base === '/' || url.pathname === base) return true;
    return url.pathname.startsWith(base.endsWith('/') ? base : `${base}/`);
  });
}
