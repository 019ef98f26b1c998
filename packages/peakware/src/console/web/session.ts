/** The logged-in session, shared by the shell and the pages (who acts, and may they change). */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { SessionView } from '../console-views.js';

/** The session context; set by the shell once logged in. */
export const SessionContext = createContext<SessionView | undefined>(undefined);

/** The session (pages render only when there is one). */
export function useSession(): SessionView {
  const s = useContext(SessionContext);
  if (s === undefined) throw new Error('no console session');
  return s;
}

/**
 * Whether the session may change things: an operator's or an admin's (every change the
 * console offers, config, guard rules, alerts, dead letters, offsets and instance status,
 * is an operator's); a viewer's, or a read-only session, may only look.
 */
export function useCanChange(): boolean {
  return useSession().role !== 'viewer';
}

/** The author the config center records for a change made in the console. */
export function useAuthor(): string {
  return useSession().who;
}
