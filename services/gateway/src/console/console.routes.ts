/**
 * The web console (web/, built by Vite into web/dist) served at `/`: its files as they are, and
 * index.html for any other GET that asks for HTML, so that the app's own routes (/models/…, /plans/…)
 * load on a reload or a pasted link. Everything else — API paths, JSON or `*\/*` clients — falls through
 * to the gateway's JSON 404. Routes registered before this one (/graphql, /healthz, /readyz, /metrics,
 * /files) take precedence.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type RequestHandler, type Response } from 'express';

/** The build beside the gateway: web/dist from both services/gateway/src/console and …/dist/console. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../../web/dist/', import.meta.url));

/** Nothing but the console's own files, scripts and styles; connections to the same host (ws: for subscriptions). */
export const CONSOLE_CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

function consoleHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
}

/** Whether the request lists text/html in Accept (a browser navigating), not merely `*\/*` (curl, fetch). */
function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept);
}

/** The console's routes, or null when `dir` holds no build (the gateway then serves the API alone). */
export function consoleRoutes(dir: string = DEFAULT_CONSOLE_DIR): RequestHandler | null {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return null;
  const files = express.static(dir, {
    index: false,
    redirect: false,
    fallthrough: true,
    setHeaders: (res, path) => {
      consoleHeaders(res);
      // Vite names assets by their content hash: cacheable for good; index.html must be revalidated.
      res.setHeader('Cache-Control', path.includes(`${join(dir, 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    files(req, res, () => {
      if (!wantsHtml(req.headers.accept)) return next();
      consoleHeaders(res);
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(indexFile, (error) => error && next(error));
    });
  };
}
