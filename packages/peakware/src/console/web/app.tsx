/**
 * The console's shell: asks for the session (the login form when there is none), then the
 * menu and the page the path names. A 401 from any call brings the login back.
 */
import { useEffect, useState } from 'preact/hooks';
import type { SessionView } from '../console-views.js';
import { api, errorText, setCsrfToken, whenLoggedOut } from './api.js';
import { PAGES } from './pages.js';
import { href, navigate, useRoute } from './router.js';
import { SessionContext } from './session.js';
import { Badge, Button, Field } from './ui.js';

function Login(props: { onLogin: (s: SessionView) => void }) {
  const [token, setToken] = useState('');
  const [name, setName] = useState('admin');
  const [readOnly, setReadOnly] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      props.onLogin(await api.console.login({ token, name, readOnly }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} data-testid="login-form">
        <h1>Peakware console</h1>
        <p class="muted">
          Log in with an operator token: the admin token (file <code>admin-token</code> in the
          server's data folder, shown once by <code>peak server</code>), or one made with{' '}
          <code>peak token create &lt;name&gt; --role operator|viewer</code>. A viewer's session may
          only look.
        </p>
        <Field label="Token">
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </Field>
        <Field label="Your name (for the audit)">
          <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <label class="check">
          <input
            type="checkbox"
            name="readOnly"
            checked={readOnly}
            onChange={(e) => setReadOnly(e.currentTarget.checked)}
          />
          Read-only session
        </label>
        <Button kind="primary" submit disabled={busy || token === ''}>
          Log in
        </Button>
        {error === undefined ? null : (
          <p class="error" role="alert">
            {errorText(error)}
          </p>
        )}
      </form>
    </main>
  );
}

/** The console. */
export function App() {
  const [session, setSession] = useState<SessionView | undefined | null>(undefined);
  const route = useRoute();
  useEffect(() => {
    whenLoggedOut(() => {
      setCsrfToken(undefined);
      setSession(null);
    });
    api.console
      .session()
      .then((s) => {
        setCsrfToken(s.csrfToken);
        setSession(s);
      })
      .catch(() => setSession(null));
  }, []);

  if (session === undefined) return <main class="loading">Loading…</main>;
  if (session === null) {
    return (
      <Login
        onLogin={(s) => {
          setCsrfToken(s.csrfToken);
          setSession(s);
        }}
      />
    );
  }
  const page = PAGES.find((p) => p.id === route.page) ?? PAGES[0]!;
  const Page = page.component;
  const logout = async () => {
    await api.console.logout().catch(() => undefined);
    setCsrfToken(undefined);
    setSession(null);
  };
  return (
    <SessionContext.Provider value={session}>
      <div class="shell">
        <aside>
          <div class="brand">Peakware</div>
          <nav>
            {PAGES.map((p) => (
              <a
                key={p.id}
                href={href(p.id)}
                class={p.id === page.id ? 'active' : ''}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(p.id);
                }}
              >
                {p.title}
              </a>
            ))}
          </nav>
          <div class="who" data-testid="who">
            {session.who}{' '}
            {session.role === 'viewer' ? (
              <Badge tone="warn">read-only</Badge>
            ) : session.role === 'operator' ? (
              <Badge>operator</Badge>
            ) : null}
            <Button onClick={logout}>Log out</Button>
          </div>
        </aside>
        <main class="page" data-page={page.id}>
          <h1>{page.title}</h1>
          <Page key={page.id} />
        </main>
      </div>
    </SessionContext.Provider>
  );
}
