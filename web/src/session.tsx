/**
 * Who is signed in: an API token kept in sessionStorage (gone when the tab closes; never a cookie, so
 * no request carries it unasked), the typed client made with it, and the tenant and role it stands for.
 */
import { createContext, useContext } from 'react';
import { sameOriginClient, ViewerDocument, type StreamlineClient, type ViewerQuery } from '@streamline/sdk/browser';

const TOKEN_KEY = 'streamline.apiToken';

export interface Session {
  readonly token: string;
  readonly client: StreamlineClient;
  readonly viewer: ViewerQuery['viewer'];
}

/** Checks the token by asking who it is; stores it only when the gateway accepts it. */
export async function signIn(token: string): Promise<Session> {
  const client = sameOriginClient(token, window.location.origin);
  const { viewer } = await client.query(ViewerDocument, {});
  window.sessionStorage.setItem(TOKEN_KEY, token);
  return { token, client, viewer };
}

export function storedToken(): string | null {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken(): void {
  window.sessionStorage.removeItem(TOKEN_KEY);
}

/** Admins of the default tenant manage every tenant and token. */
export function isOperator(viewer: Session['viewer']): boolean {
  return viewer.role === 'ADMIN' && viewer.tenant.id === 'default';
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}
