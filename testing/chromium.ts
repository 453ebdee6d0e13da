/**
 * Debian's Chromium for the browser tests, through playwright-core (which downloads no browser of its
 * own). The same policy as the shared data: absent, the tests that need it skip with one line — except
 * under CI=true, where .ci/run installs it, so its absence fails them.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = [process.env.STREAMLINE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((path): path is string => !!path);

/** The browser's executable, or null when none is installed. */
export const CHROMIUM = CANDIDATES.find((path) => existsSync(path)) ?? null;
const inCi = process.env.CI === 'true';
if (!CHROMIUM && !inCi) console.warn('tests: no Chromium (apt-get install chromium, or STREAMLINE_CHROMIUM=<path>); the browser tests are skipped');

/** Whether the browser tests run: Chromium is there, or this is CI (where its absence is a failure). */
export const runWithChromium = CHROMIUM !== null || inCi;

/** Flags for a container: new headless mode, no sandbox (root), no GPU, no calls home. */
export const CHROMIUM_FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

export async function launchChromium(): Promise<Browser> {
  if (!CHROMIUM) throw new Error(`no Chromium at ${CANDIDATES.join(' or ')}: install Debian's package (apt-get install chromium) or set STREAMLINE_CHROMIUM`);
  // headless: false, so that Playwright adds no --headless of its own: the flags above choose the mode
  return chromium.launch({ executablePath: CHROMIUM, headless: false, args: CHROMIUM_FLAGS, timeout: 60_000 });
}
