#!/usr/bin/env node
// A small offline linter for infra/*.Dockerfile. No Docker engine (so no `docker build --check`) and
// no hadolint binary can be had where the tests run; this checks the rules these images promise,
// most of them hadolint's (DL codes in brackets), on the parsed instructions:
//
//   - multi-stage; every base image pinned by a tag or digest, never `latest` [DL3006, DL3007]
//   - the final stage runs as a numeric non-root USER (Kubernetes' runAsNonRoot can verify it only
//     for a numeric one), has a HEALTHCHECK, and CMD/ENTRYPOINT in exec form [DL3002, DL3025]
//   - no compilers or build tools in the final stage or the stages it is built on
//   - COPY, not ADD [DL3020]; absolute WORKDIR [DL3000]; no `cd` in RUN [DL3003]; no sudo [DL3004]
//   - apt-get: update and install in the same RUN, -y, --no-install-recommends, lists removed
//     [DL3009, DL3014, DL3015]; no `curl … | sh`
//   - npm: `npm ci`/`npm install` with --omit=dev, except in a build stage that the final image is not
//     built on, from which the final stages copy only build output (dist/ folders), never node_modules;
//     packages installed by name pinned to a version [DL3016]
//   - every COPY source (not --from a stage) exists in the repository and is not excluded by the
//     root .dockerignore
//
//   node infra/lint-dockerfiles.mjs [FILE…]      (default: infra/*.Dockerfile; exit 1 on any problem)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD_TOOLS = /(?<=^|[\s=])(g\+\+|gcc|make|build-essential|python3|clang|cmake)(?=$|[\s=:])/;

/** @typedef {{ line: number, keyword: string, args: string }} Instruction */
/** @typedef {{ name: string, from: string, fromStage: string | null, line: number, instructions: Instruction[] }} Stage */

/**
 * Instructions of a Dockerfile: `{ line, keyword, args }`, continuation lines joined, comments and
 * parser directives dropped.
 * @param {string} text
 * @returns {Instruction[]}
 */
export function parseDockerfile(text) {
  /** @type {Instruction[]} */
  const instructions = [];
  let pending = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && pending === null)) continue;
    const continues = /\\\s*$/.test(raw);
    const content = continues ? raw.replace(/\\\s*$/, '') : raw;
    if (pending === null) pending = { line: i + 1, text: content.trim() };
    else pending.text += ` ${content.trim()}`;
    if (!continues) {
      const match = /^(\S+)\s*(.*)$/.exec(pending.text);
      if (match) instructions.push({ line: pending.line, keyword: match[1].toUpperCase(), args: match[2].trim() });
      pending = null;
    }
  }
  if (pending !== null) {
    const match = /^(\S+)\s*(.*)$/.exec(pending.text);
    if (match) instructions.push({ line: pending.line, keyword: match[1].toUpperCase(), args: match[2].trim() });
  }
  return instructions;
}

/**
 * Stages of a parsed Dockerfile, plus the ARGs before the first FROM.
 * @param {Instruction[]} instructions
 * @returns {{ globalArgs: Map<string, string | undefined>, stages: Stage[] }}
 */
export function stagesOf(instructions) {
  /** @type {Map<string, string | undefined>} */
  const globalArgs = new Map();
  /** @type {Stage[]} */
  const stages = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      const from = substitute(match ? match[1] : instruction.args, globalArgs);
      const name = match?.[2] ?? String(stages.length);
      const fromStage = stages.find((stage) => stage.name === from)?.name ?? null;
      stages.push({ name, from, fromStage, line: instruction.line, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        const [key, value] = splitAssignment(instruction.args);
        globalArgs.set(key, value);
      }
    } else {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

/**
 * ENV settings of a stage (both `ENV K=V K2=V2` and `ENV K V`).
 * @param {Stage} stage
 * @returns {Map<string, string>}
 */
export function envOf(stage) {
  /** @type {Map<string, string>} */
  const env = new Map();
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    if (!args.includes('=')) {
      const [key, ...rest] = args.split(/\s+/);
      env.set(key, rest.join(' '));
      continue;
    }
    for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      env.set(match[1], match[2].replace(/^"|"$/g, ''));
    }
  }
  return env;
}

function splitAssignment(text) {
  const index = text.indexOf('=');
  return index === -1 ? [text.trim(), undefined] : [text.slice(0, index).trim(), text.slice(index + 1).trim()];
}

function substitute(text, args) {
  return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (whole, name) => args.get(name) ?? whole);
}

function isPinned(image) {
  if (image.includes('@sha256:')) return true;
  const lastSegment = image.split('/').pop();
  const tag = lastSegment.includes(':') ? lastSegment.split(':').pop() : null;
  return tag !== null && tag !== '' && tag !== 'latest' && !tag.includes('$');
}

function isExecForm(args) {
  try {
    const parsed = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string');
  } catch {
    return false;
  }
}

/** Shell commands of a RUN line, split on && ; || so that rules look at one command at a time. */
function commandsOf(run) {
  return run.split(/&&|\|\||;/).map((command) => command.trim()).filter(Boolean);
}

/** .dockerignore rules (Go filepath.Match with `**`, later rules win, `!` re-includes). */
export function dockerignoreRules(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
      const source = pattern
        .split('/')
        .map((part) => (part === '**' ? '(?:.*)' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return { negated, pattern, regex: new RegExp(`^${source}$`) };
    });
}

/** Whether `path` (relative to the context) is left out of the build context by these rules. */
export function isIgnored(path, rules) {
  const parts = path.split('/');
  let ignored = false;
  for (const rule of rules) {
    // A rule matches the path itself or any folder above it (excluding a folder excludes its files).
    for (let depth = 1; depth <= parts.length; depth++) {
      if (rule.regex.test(parts.slice(0, depth).join('/'))) {
        ignored = !rule.negated;
        break;
      }
    }
  }
  return ignored;
}

/**
 * Problems found in one Dockerfile, each `path:line: message`.
 * @param {string} file
 * @param {{ repoRoot?: string }} [options]
 * @returns {string[]}
 */
export function lintDockerfile(file, { repoRoot = REPO_ROOT } = {}) {
  const text = readFileSync(file, 'utf8');
  const where = relative(repoRoot, file);
  const problems = [];
  const report = (line, message) => problems.push(`${where}:${line}: ${message}`);
  const instructions = parseDockerfile(text);
  const { globalArgs, stages } = stagesOf(instructions);
  const ignorePath = join(repoRoot, '.dockerignore');
  const ignoreRules = existsSync(ignorePath) ? dockerignoreRules(readFileSync(ignorePath, 'utf8')) : [];

  if (stages.length < 2) report(1, `${stages.length} stage(s): build dependencies in one stage, the runtime in another`);
  for (const stage of stages) {
    if (stage.fromStage === null && !isPinned(stage.from)) {
      report(stage.line, `base image ${stage.from} is not pinned by a tag or digest (or is :latest)`);
    }
  }
  for (const [name, value] of globalArgs) {
    if (/IMAGE$/.test(name) && value !== undefined && !isPinned(value)) report(1, `ARG ${name}=${value} is not pinned`);
  }

  // The final stage and the stages it is built on (FROM): what the image holds.
  const final = stages[stages.length - 1];
  const chain = [];
  for (let stage = final; stage; stage = stage.fromStage === null ? undefined : stages.find((candidate) => candidate.name === stage.fromStage)) {
    chain.push(stage);
  }
  const inImage = new Set(chain.map((stage) => stage.name));
  /** Stages outside the image that install development dependencies (or are built on one that does). */
  const devStages = new Set();

  for (const stage of stages) {
    if (stage.fromStage !== null && devStages.has(stage.fromStage) && !inImage.has(stage.name)) devStages.add(stage.name);
    for (const { line, keyword, args } of stage.instructions) {
      if (keyword === 'ADD') report(line, 'ADD: use COPY (ADD fetches URLs and unpacks archives implicitly)');
      if (keyword === 'WORKDIR' && !args.startsWith('/')) report(line, `WORKDIR ${args} is not absolute`);
      if (keyword === 'COPY' && !/--from=/.test(args)) {
        const parts = args.split(/\s+/).filter((part) => !part.startsWith('--'));
        for (const source of parts.slice(0, -1)) {
          if (!existsSync(join(repoRoot, source))) report(line, `COPY source ${source} does not exist in the repository`);
          else if (isIgnored(source, ignoreRules)) report(line, `COPY source ${source} is excluded by .dockerignore`);
        }
      }
      if (keyword !== 'RUN') continue;
      if (/(curl|wget)[^|]*\|\s*(ba|da|z)?sh\b/.test(args)) report(line, 'RUN pipes a download into a shell');
      const commands = commandsOf(args);
      for (const command of commands) {
        if (/^cd\s/.test(command)) report(line, 'RUN uses cd: use WORKDIR');
        if (/^sudo\b/.test(command)) report(line, 'RUN uses sudo');
        if (/^apt-get\s+(.*\s)?install\b/.test(command)) {
          if (!/\s-y\b|--yes\b|--assume-yes\b/.test(command)) report(line, 'apt-get install without -y');
          if (!/--no-install-recommends\b/.test(command)) report(line, 'apt-get install without --no-install-recommends');
          if (!commands.some((other) => /^apt-get\s+update\b/.test(other))) {
            report(line, 'apt-get install without apt-get update in the same RUN (stale package lists)');
          }
          if (!/rm -rf \/var\/lib\/apt\/lists/.test(args)) report(line, 'apt-get install without removing /var/lib/apt/lists in the same RUN');
        }
        if (/^npm\s+(ci|install|i)\b/.test(command)) {
          const withDev = !/--omit=dev\b/.test(command);
          if (withDev && inImage.has(stage.name)) report(line, `${command.split(/\s+/).slice(0, 2).join(' ')} without --omit=dev`);
          else if (withDev) devStages.add(stage.name);
          const packages = command
            .split(/\s+/)
            .slice(2)
            .filter((word) => !word.startsWith('-') && !/^services\/|^sdk$/.test(word));
          // `-w services/engine`: the word after -w is a workspace, not a package.
          const words = command.split(/\s+/);
          const workspaces = new Set(words.filter((_, index) => words[index - 1] === '-w' || words[index - 1] === '--workspace'));
          for (const spec of packages.filter((word) => !workspaces.has(word))) {
            if (!/^(@[^/]+\/)?[^@]+@\d[^\s]*$/.test(spec)) report(line, `npm package ${spec} is not pinned to a version`);
          }
        }
      }
    }
  }

  if (final) {
    for (const stage of chain) {
      for (const { line, keyword, args } of stage.instructions) {
        const from = keyword === 'COPY' ? /--from=(\S+)/.exec(args)?.[1] : undefined;
        if (from === undefined || !devStages.has(from)) continue;
        const sources = args.split(/\s+/).filter((part) => !part.startsWith('--')).slice(0, -1);
        for (const source of sources) {
          if (!/(^|\/)dist\/?$/.test(source)) {
            report(line, `COPY --from=${from} ${source}: stage ${from} has development dependencies; copy only build output (a dist/ folder)`);
          }
        }
      }
    }
    for (const stage of chain) {
      for (const { line, keyword, args } of stage.instructions) {
        if (keyword === 'RUN' && /apt-get\s+(.*\s)?install\b/.test(args) && BUILD_TOOLS.test(args)) {
          report(line, `the runtime image (stage ${stage.name}) installs build tools: ${args.match(BUILD_TOOLS)[1]}`);
        }
      }
    }
    const finalOnly = (keyword) => chain.flatMap((stage) => stage.instructions).filter((instruction) => instruction.keyword === keyword);
    const users = final.instructions.filter((instruction) => instruction.keyword === 'USER');
    const user = users[users.length - 1];
    if (!user) report(final.line, `the final stage (${final.name}) has no USER: it would run as root`);
    else {
      const [uid] = user.args.split(':');
      if (!/^\d+$/.test(uid)) report(user.line, `USER ${user.args}: use a numeric UID so that runAsNonRoot can verify it`);
      else if (Number(uid) === 0) report(user.line, 'USER 0 is root');
    }
    const healthchecks = finalOnly('HEALTHCHECK');
    if (healthchecks.length === 0 || /^NONE$/i.test(healthchecks[healthchecks.length - 1].args)) {
      report(final.line, `the final stage (${final.name}) has no HEALTHCHECK`);
    } else {
      const healthcheck = healthchecks[healthchecks.length - 1];
      const command = healthcheck.args.replace(/^(--\S+\s+)*CMD\s+/, '');
      if (!isExecForm(command)) report(healthcheck.line, 'HEALTHCHECK CMD is not in exec (JSON array) form');
    }
    for (const keyword of ['CMD', 'ENTRYPOINT']) {
      const found = finalOnly(keyword);
      if (keyword === 'CMD' && found.length === 0) report(final.line, 'the final stage has no CMD');
      for (const { line, args } of found) if (!isExecForm(args)) report(line, `${keyword} is not in exec (JSON array) form: signals would go to a shell`);
    }
  }
  return problems;
}

export function defaultDockerfiles(repoRoot = REPO_ROOT) {
  return readdirSync(join(repoRoot, 'infra'))
    .filter((name) => name.endsWith('.Dockerfile'))
    .sort()
    .map((name) => join(repoRoot, 'infra', name));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.length > 2 ? process.argv.slice(2).map((file) => resolve(file)) : defaultDockerfiles();
  let count = 0;
  for (const file of files) {
    const problems = lintDockerfile(file);
    count += problems.length;
    for (const problem of problems) console.log(problem);
    if (problems.length === 0) console.log(`${relative(REPO_ROOT, file)}: ok`);
  }
  process.exit(count === 0 ? 0 : 1);
}
