/**
 * The console's pages by path (`/console/<page>?<query>`), with the History API: a link or
 * a form changes the path, the app renders the page the path names, and the back button
 * works. The query holds a page's state worth linking to (a trace id, an item).
 */
import { useEffect, useState } from 'preact/hooks';

/** Where the console is mounted. */
export const BASE = '/console';

/** The current page name and query. */
export interface Route {
  page: string;
  query: URLSearchParams;
}

function current(): Route {
  const rest = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '';
  const page = rest.replace(/^\/+|\/+$/g, '') || 'overview';
  return { page, query: new URLSearchParams(location.search) };
}

const listeners = new Set<() => void>();
addEventListener('popstate', () => {
  for (const l of listeners) l();
});

/** Goes to a page (and query), adding a history entry. */
export function navigate(page: string, query: Record<string, string | undefined> = {}): void {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, v);
  const search = params.toString();
  history.pushState(null, '', `${BASE}/${page}${search === '' ? '' : `?${search}`}`);
  for (const l of listeners) l();
}

/** The route, re-rendering on every change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const l = () => setRoute(current());
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}

/** A page's href, for links. */
export function href(page: string, query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, v);
  const search = params.toString();
  return `${BASE}/${page}${search === '' ? '' : `?${search}`}`;
}
