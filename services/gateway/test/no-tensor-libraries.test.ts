/**
 * The gateway never loads a tensor library (DESIGN.md: layers only look down). It imports only the
 * engine's light entry point, `@streamline/engine/spec`; ONNX Runtime and TensorFlow.js belong to the
 * engine workers and are not installed in the gateway image.
 *
 * - A static check: the import graph from the light entry point, and from the gateway's entry points
 *   (its bin and the model-inspection thread), reaches no `onnxruntime-*`, `@tensorflow/*` or `onnx-proto`.
 *   Cheap, and it names the chain of imports that does.
 * - A running gateway process (no local workers) that has registered a model (inspected in a worker
 *   thread), created plans (one a dry run) and cancelled one: (a) its /proc/PID/maps holds no ONNX
 *   Runtime or TensorFlow library; (b) a module hook preloaded with `node --import`
 *   (fixtures/resolve-log.mjs, in the main thread and in worker threads) logged every module resolved
 *   and loaded, and none is a tensor library, while the log does show the engine's light entry point
 *   and the inspection thread, so the hook saw what it had to.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processGraphql, useGatewayProcess } from './fixtures/gateway-process.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const TENSOR_LIBRARY = /onnxruntime|@tensorflow|onnx-proto/;
const GATEWAY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = resolve(GATEWAY_ROOT, '../..');
const require = createRequire(import.meta.url);

/** Module specifiers a source file imports at run time (`import type` and `export type` are erased). */
function runtimeImports(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specifiers: string[] = [];
  const statement = /(?:^|[\s;])(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const [, typeOnly, specifier] of code.matchAll(statement)) if (!typeOnly) specifiers.push(specifier);
  for (const [, specifier] of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(specifier);
  return specifiers;
}

/**
 * Walks relative imports and `@streamline/engine…` from `entries`; returns each path to a tensor
 * library as a chain `entry -> … -> package` (empty when there is none) and the files visited.
 */
function tensorLibraryChains(entries: string[]): { chains: string[]; visited: Set<string> } {
  const cameFrom = new Map<string, string | null>(entries.map((entry) => [entry, null]));
  const queue = [...entries];
  const chains: string[] = [];
  const chainTo = (file: string) => {
    const files: string[] = [];
    for (let at: string | null | undefined = file; at; at = cameFrom.get(at)) files.unshift(relative(REPO_ROOT, at));
    return files;
  };
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (!/\.[cm]?[jt]s$/.test(file)) continue;
    for (const specifier of runtimeImports(readFileSync(file, 'utf8'))) {
      if (TENSOR_LIBRARY.test(specifier)) {
        chains.push([...chainTo(file), specifier].join(' -> '));
        continue;
      }
      let target: string;
      if (specifier.startsWith('.')) {
        target = resolve(dirname(file), specifier);
        if (!existsSync(target) && target.endsWith('.js')) target = target.replace(/\.js$/, '.ts');
        expect(existsSync(target), `${relative(REPO_ROOT, file)} imports ${specifier}, which the walk cannot find`).toBe(true);
      } else if (specifier.startsWith('@streamline/engine')) {
        target = require.resolve(specifier);
      } else {
        continue; // node: built-ins and other packages (none of which brings a tensor library)
      }
      if (!cameFrom.has(target)) {
        cameFrom.set(target, file);
        queue.push(target);
      }
    }
  }
  return { chains, visited: new Set(cameFrom.keys()) };
}

describe('the import graph', () => {
  it('reaches no tensor library from the engine’s light entry point', () => {
    const spec = require.resolve('@streamline/engine/spec');
    expect(spec).toBe(join(REPO_ROOT, 'services/engine/src/spec.ts'));
    const { chains, visited } = tensorLibraryChains([spec]);
    expect(chains).toEqual([]);
    expect(visited.size).toBeGreaterThan(20); // the walk followed the entry's imports
  });

  it('reaches no tensor library from the gateway’s entry points, which import only the light entry', () => {
    const entries = ['bin/streamline-gateway.js', 'src/models/inspect-thread.js'].map((path) => join(GATEWAY_ROOT, path));
    const { chains, visited } = tensorLibraryChains(entries);
    expect(chains).toEqual([]);
    expect(visited).toContain(join(REPO_ROOT, 'services/engine/src/spec.ts'));
    expect(visited).toContain(join(GATEWAY_ROOT, 'src/models/inspect-thread.ts'));
    expect(visited).not.toContain(join(REPO_ROOT, 'services/engine/src/index.ts'));
  });

  it('finds a tensor library where there is one (the full entry point)', () => {
    const { chains } = tensorLibraryChains([require.resolve('@streamline/engine')]);
    expect(chains.some((chain) => chain.endsWith('@tensorflow/tfjs-core'))).toBe(true);
    expect(chains.some((chain) => chain.endsWith('onnxruntime-node'))).toBe(true);
  });
});

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id status } }';
const CREATE = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status } }';
const CANCEL = 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }';

const logDir = mkdtempSync(join(tmpdir(), 'streamline-no-tensor-libraries-'));
const moduleLog = join(logDir, 'modules.log');
afterAll(() => rmSync(logDir, { recursive: true, force: true }));

describe.runIf(runWithShared)('a gateway process with no local workers', () => {
  const gw = useGatewayProcess(() => ({
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(join(GATEWAY_ROOT, 'test/fixtures/resolve-log.mjs')).href}`.trim(),
    STREAMLINE_TEST_RESOLVE_LOG: moduleLog,
  }));

  async function ok(query: string, variables: Record<string, unknown>): Promise<any> {
    const { body } = await processGraphql(gw.current, query, variables);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  }

  beforeAll(async () => {
    // The paths that use the engine: inspection (in a worker thread), plan settings, bounds, cleanup.
    const { registerModel } = await ok(REGISTER, { input: { name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } });
    expect(registerModel.status).toBe('READY');
    const calibration = { source: TINYSTORIES_URI, samples: 4, seqLen: 32 };
    await ok(CREATE, { input: { modelId: registerModel.id, dryRun: true, layersToPrune: 1, calibration } });
    const { createPruningPlan } = await ok(CREATE, {
      input: { modelId: registerModel.id, targetSparsity: 0.2, replacement: 'LINEAR', calibration, evaluation: { perplexity: [{ source: TINYSTORIES_URI }] } },
    });
    await ok(CANCEL, { id: createPruningPlan.id });
  });

  it.runIf(process.platform === 'linux')('maps no ONNX Runtime or TensorFlow library (/proc/PID/maps)', () => {
    const maps = readFileSync(`/proc/${gw.current.child.pid}/maps`, 'utf8');
    expect(maps).toMatch(/better_sqlite3\.node/); // the reading works: the gateway's own native module is there
    const tensorMappings = maps.split('\n').filter((line) => /onnxruntime|tensorflow/i.test(line));
    expect(tensorMappings).toEqual([]);
  });

  it('resolves and loads no TensorFlow.js or ONNX Runtime module, in the main thread or the inspection thread', () => {
    const lines = readFileSync(moduleLog, 'utf8').split('\n').filter(Boolean);
    const specUrl = pathToFileURL(join(REPO_ROOT, 'services/engine/src/spec.ts')).href;
    expect(lines).toContain(`load main ${specUrl}`);
    // the inspection thread is seen too, and loads the engine through the light entry as well
    expect(lines.some((line) => /^load thread-\d+ .*\/gateway\/src\/models\/inspect-thread\.ts$/.test(line))).toBe(true);
    expect(lines.some((line) => line.startsWith('load thread-') && line.endsWith(specUrl))).toBe(true);
    expect(lines.filter((line) => TENSOR_LIBRARY.test(line))).toEqual([]);
    expect(lines.filter((line) => line.endsWith('/services/engine/src/index.ts'))).toEqual([]);
  });
});
