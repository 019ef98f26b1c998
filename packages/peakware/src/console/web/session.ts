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

/** Whether the session may change things. */
export function useCanChange(): boolean {
  return useSession().role === 'admin';
}

/** The author the config center records for a change made in the console. */
export function useAuthor(): string {
  return useSession().who;
}
