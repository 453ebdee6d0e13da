import { useState, type FormEvent } from 'react';
import { ErrorMessage } from '../components/ErrorMessage.js';
import { signIn, type Session } from '../session.js';

export function SignIn({ onSignedIn, initialError }: { onSignedIn: (session: Session) => void; initialError?: Error | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<Error | null>(initialError ?? null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(token.trim()));
    } catch (caught) {
      setError(caught as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="sign-in">
      <h1>Streamline console</h1>
      <p>Sign in with an API token (from <code>createApiToken</code>, or the gateway's STREAMLINE_ADMIN_TOKEN). It is kept for this tab only.</p>
      <form onSubmit={submit}>
        <label htmlFor="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" required value={token} onChange={(e) => setToken(e.target.value)} />
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <ErrorMessage error={error} />
    </main>
  );
}
