import { useState } from 'react';
import { ErrorMessage } from '../components/ErrorMessage.js';
import { signIn, type Session } from '../session.js';
import { useAction } from '../use-action.js';

export function SignIn({ onSignedIn, initialError }: { onSignedIn: (session: Session) => void; initialError?: Error | null }) {
  const [token, setToken] = useState('');
  const signingIn = useAction(initialError);
  return (
    <main className="sign-in">
      <h1>Streamline console</h1>
      <p>Sign in with an API token (from <code>createApiToken</code>, or the gateway's STREAMLINE_ADMIN_TOKEN). It is kept for this tab only.</p>
      <form onSubmit={signingIn.submit(async () => onSignedIn(await signIn(token.trim())))}>
        <label htmlFor="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" required value={token} onChange={(e) => setToken(e.target.value)} />
        <button type="submit" disabled={signingIn.busy || token.trim() === ''}>
          {signingIn.busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <ErrorMessage error={signingIn.error} />
    </main>
  );
}
