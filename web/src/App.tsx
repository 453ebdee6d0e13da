/** The console's frame: sign-in, then a header (navigation, tenant and role, sign out) over one page per route. */
import { useEffect, useState, type ReactNode } from 'react';
import { TenantsPage, TokensPage } from './pages/Admin.js';
import { ComparePage } from './pages/Compare.js';
import { ModelPage } from './pages/Model.js';
import { ModelsPage } from './pages/Models.js';
import { NewPlanPage } from './pages/NewPlan.js';
import { PlanPage } from './pages/Plan.js';
import { SignIn } from './pages/SignIn.js';
import { Link, matchPath, navigate, useLocation } from './router.js';
import { forgetToken, isOperator, SessionContext, signIn, storedToken, type Session } from './session.js';

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => storedToken() !== null);
  const [restoreError, setRestoreError] = useState<Error | null>(null);

  // A reload keeps the tab's sign-in: check the stored token again.
  useEffect(() => {
    const token = storedToken();
    if (!token) return;
    signIn(token)
      .then(setSession, (error: Error) => {
        forgetToken();
        setRestoreError(error);
      })
      .finally(() => setRestoring(false));
  }, []);

  if (restoring) return <p className="loading">Signing in…</p>;
  if (!session) {
    return <SignIn onSignedIn={setSession} initialError={restoreError} />;
  }
  const signOut = () => {
    forgetToken();
    void session.client.close();
    setSession(null);
    navigate('/', { replace: true });
  };
  return (
    <SessionContext.Provider value={session}>
      <Layout session={session} onSignOut={signOut} />
    </SessionContext.Provider>
  );
}

function Layout({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { path, query } = useLocation();
  const operator = isOperator(session.viewer);
  const nav: [string, string][] = [
    ['/models', 'Models'],
    ['/plans/new', 'New plan'],
    ['/compare', 'Compare'],
    ...(operator ? ([['/admin/tenants', 'Tenants'], ['/admin/tokens', 'Tokens']] as [string, string][]) : []),
  ];
  // A new page: move focus to its heading, so keyboard and screen-reader users start there.
  useEffect(() => {
    const heading = document.querySelector<HTMLElement>('main h1');
    if (!heading) return;
    heading.tabIndex = -1;
    heading.focus();
  }, [path]);
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/models" className="brand">
          Streamline
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav.map(([to, label]) => (
              <li key={to}>
                <Link to={to} aria-current={path === to || (to !== '/plans/new' && path.startsWith(`${to}/`) && !path.startsWith('/plans/new')) ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span data-testid="viewer">
            {session.viewer.tenant.name} · {session.viewer.role}
          </span>
          <button type="button" className="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">{route(path, query, operator)}</main>
    </>
  );
}

function route(path: string, query: URLSearchParams, operator: boolean): ReactNode {
  if (path === '/' || path === '/models') return <ModelsPage />;
  if (path === '/plans/new') return <NewPlanPage key={query.toString()} query={query} />;
  if (path === '/compare') return <ComparePage query={query} />;
  let params = matchPath('/models/:id', path);
  if (params) return <ModelPage key={params.id} id={params.id} />;
  params = matchPath('/plans/:id', path);
  if (params) return <PlanPage key={params.id} id={params.id} />;
  if (operator && path === '/admin/tenants') return <TenantsPage />;
  if (operator && path === '/admin/tokens') return <TokensPage />;
  return (
    <>
      <h1>Not found</h1>
      <p>
        Nothing is at {path}. <Link to="/models">Models</Link>
      </p>
    </>
  );
}
