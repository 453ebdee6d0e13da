/**
 * The documentation against the code. Every relative link in the READMEs and docs/ leads to a file
 * that exists. docs/configuration.md names every setting the processes read: each STREAMLINE_* name in the sources
 * of the gateway, the engine, the SDK/CLI and the test fixtures, and every other variable they read as
 * `env.NAME`. A setting added without a line in the reference fails here, naming it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['services/engine/src', 'services/engine/bin', 'services/gateway/src', 'services/gateway/bin', 'sdk/src', 'sdk/bin', 'testing', 'services/engine/bench', 'services/gateway/bench', 'test/soak'];
/**
 * Read from the environment, but not settings: the platform's own, and what the gateway bench hands its
 * subscriber child process (services/gateway/bench/subscriber-fleet.ts).
 */
const NOT_SETTINGS = new Set(['HOME', 'PATH', 'TMPDIR', 'PWD', 'WS_URL', 'TOKEN', 'PLAN_ID', 'SUBSCRIBERS']);

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (entry === 'node_modules' || entry === 'generated' || entry === 'dist') continue;
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (/\.(ts|mts|js|mjs)$/.test(entry) && !/\.test\.ts$/.test(entry)) files.push(path);
  }
  return files;
}

function settingsRead(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of SOURCES.flatMap((dir) => sourceFiles(join(ROOT, dir)))) {
    const text = readFileSync(file, 'utf8');
    const names = [
      ...text.matchAll(/\bSTREAMLINE_[A-Z0-9_]*[A-Z0-9]\b/g),
      ...text.matchAll(/\benv\.([A-Z][A-Z0-9_]+)\b/g),
      // settings read through a helper: positiveInteger(env, 'NAME', …), env('NAME', …)
      ...text.matchAll(/\benv(?:, |\()'([A-Z][A-Z0-9_]+)'/g),
    ].map((match) => match[1] ?? match[0]);
    for (const name of names) if (!NOT_SETTINGS.has(name) && !found.has(name)) found.set(name, file.slice(ROOT.length + 1));
  }
  return found;
}

describe('docs/configuration.md', () => {
  it('names every setting the code reads', () => {
    const reference = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
    const read = settingsRead();
    expect(read.size).toBeGreaterThan(60);
    const missing = [...read].filter(([name]) => !reference.includes(`\`${name}\``) && !reference.includes(`\`${name} `)).map(([name, file]) => `${name} (read in ${file})`);
    expect(missing).toEqual([]);
  });
});

describe('links in the documentation', () => {
  const documents = ['README.md', 'SECURITY.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'sdk/README.md', 'infra/README.md', 'services/gateway/README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

  it.each(documents)('%s links only to files that exist', (document) => {
    const text = readFileSync(join(ROOT, document), 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken = [...text.matchAll(/\]\(([^)\s]+)\)/g)]
      .map((match) => match[1].split('#')[0])
      .filter((target) => target !== '' && !/^[a-z]+:/.test(target))
      .filter((target) => !existsSync(join(ROOT, dirname(document), target)));
    expect(broken).toEqual([]);
  });
});

describe('licensing', () => {
  it('every package of the workspace says it is MIT, as LICENSE does', () => {
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license?: string; workspaces: string[] };
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
    const unlicensed = ['.', ...root.workspaces]
      .map((workspace) => ({ workspace, license: (JSON.parse(readFileSync(join(ROOT, workspace, 'package.json'), 'utf8')) as { license?: string }).license }))
      .filter(({ license }) => license !== 'MIT');
    expect(unlicensed).toEqual([]);
  });
});
