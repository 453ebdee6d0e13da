/**
 * `streamline <group> <action> [options]`: the command line over the SDK. Exit status 0 on success,
 * 1 on any error or a plan that did not succeed (one line on stderr), 2 on a usage mistake. With --json,
 * an error is also the one JSON document on stdout: {"error": {"code", "message"}}.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { StreamlineClient } from './client.js';
import { COMMANDS, type Command, type OptionSpec } from './cli/commands.js';
import { connectionSettings, type ConnectionSettings, UsageError } from './cli/settings.js';
import { closest, didYouMean } from './cli/suggest.js';
import { NetworkError, StreamlineError, UnauthenticatedError } from './errors.js';

const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

export async function main(argv: readonly string[], io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { leading, group, action, rest } = splitCommand(argv);
  if (!group && (leading.includes('--version') || leading.includes('-V'))) {
    io.stdout.write(`streamline ${version()}\n`);
    return 0;
  }
  if (!group || group === 'help') {
    io.stdout.write(usage());
    return 0;
  }
  // `GROUP ACTION …`, or a command of one word (`doctor`) whose options follow it.
  const [name, args] = COMMANDS[`${group} ${action}`] ? [`${group} ${action}`, rest] : [group, action === undefined ? rest : [action, ...rest]];
  const command: Command | undefined = COMMANDS[name];
  const groupCommands = Object.entries(COMMANDS).filter(([candidate]) => candidate.startsWith(`${group} `));
  if (!command && groupCommands.length && (action === undefined || action === '--help' || action === '-h')) {
    // `streamline plans` or `streamline plans --help`: that group's commands.
    const text = `usage:\n${groupCommands.map(([, c]) => `  streamline ${c.usage.replace(/\n/g, '\n  ')}`).join('\n')}\n`;
    if (action !== undefined) {
      io.stdout.write(text);
      return 0;
    }
    io.stderr.write(`streamline: ${group} needs one of: ${groupCommands.map(([candidate]) => candidate.split(' ')[1]).join(', ')}\n${text}`);
    return 2;
  }
  let client: StreamlineClient | null = null;
  let settings: ConnectionSettings | null = null;
  try {
    if (!command) throw new UsageError(unknownCommand(group, action));
    const options = { ...GLOBAL_OPTIONS, ...command.options };
    const { values, positionals } = parseCommandLine([...leading, ...args], options);
    if (values.help) {
      io.stdout.write(`usage: streamline ${command.usage}\n`);
      return 0;
    }
    if (values.version) {
      io.stdout.write(`streamline ${version()}\n`);
      return 0;
    }
    settings = connectionSettings({ url: values.url as string | undefined, token: values.token as string | undefined });
    client = new StreamlineClient(settings);
    return await command.run({ client, settings, json: Boolean(values.json), values: values as Record<string, string | boolean | string[] | undefined>, positionals, ...io });
  } catch (error) {
    io.stderr.write(`streamline: ${describe(error, settings)}\n`);
    const usageMistake = error instanceof UsageError;
    // A script that asked for JSON gets one document even now: the error, with the code it can branch on.
    if (argv.includes('--json')) io.stdout.write(`${JSON.stringify({ error: errorDocument(error, usageMistake) })}\n`);
    if (usageMistake) {
      io.stderr.write(command ? `usage: streamline ${command.usage}\n` : 'run `streamline --help` for the commands\n');
      return 2;
    }
    return 1;
  } finally {
    await client?.close();
  }
}

/** node:util's parseArgs, with its errors as usage mistakes in our words: an unknown option gets a "did you mean". */
function parseCommandLine(args: string[], options: OptionSpec & typeof GLOBAL_OPTIONS) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    if (!isParseArgsError(error)) throw error;
    const message = (error as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
    if (unknown !== undefined) {
      const known = Object.keys(options).map((option) => `--${option}`);
      throw new UsageError(`unknown option ${unknown}${didYouMean(unknown.split('=')[0], known)}`);
    }
    const missing = /^Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(message)?.[1];
    if (missing !== undefined) throw new UsageError(`${missing} needs a value`);
    throw new UsageError(message.replace(/'/g, ''));
  }
}

function unknownCommand(group: string, action: string | undefined): string {
  const words = [group, action].filter((word) => word !== undefined).join(' ');
  const names = Object.keys(COMMANDS);
  const groups = [...new Set(names.map((name) => name.split(' ')[0]))];
  // A known group with a mistyped action: the nearest command. A mistyped group: the nearest group, with the action when that makes a command.
  let meant: string | null = groups.includes(group) ? closest(words, names) : closest(group, groups);
  if (meant !== null && !groups.includes(group) && action !== undefined) meant = COMMANDS[`${meant} ${action}`] ? `${meant} ${action}` : (closest(`${meant} ${action}`, names) ?? meant);
  return `unknown command ${JSON.stringify(words)}${meant === null ? '' : `; did you mean ${meant}?`}`;
}

/**
 * `[global options] GROUP ACTION [options]`: --url, --token, --json and --help may also stand before the
 * command (`streamline --json plans list`); they are handed back with the command's own options.
 */
function splitCommand(argv: readonly string[]): { leading: string[]; group?: string; action?: string; rest: string[] } {
  const leading: string[] = [];
  let i = 0;
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    leading.push(argv[i]);
    if ((argv[i] === '--url' || argv[i] === '--token') && i + 1 < argv.length) leading.push(argv[++i]);
  }
  const [group, action, ...rest] = argv.slice(i);
  return { leading, group, action, rest };
}

function errorDocument(error: unknown, usageMistake: boolean): { code: string; message: string } {
  if (usageMistake) return { code: 'USAGE', message: error instanceof Error ? error.message : String(error) };
  if (error instanceof StreamlineError) return { code: error.code, message: error.message };
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/** One line, in the CLI's terms: which option or variable to change, rather than which HTTP header. */
function describe(error: unknown, settings: ConnectionSettings | null): string {
  if (error instanceof UnauthenticatedError && settings) {
    return settings.token
      ? `UNAUTHENTICATED: the gateway refused the API token from ${settings.tokenFrom} (${error.message.replace(/: send Authorization.*$/, '')}); check --token or STREAMLINE_TOKEN`
      : 'UNAUTHENTICATED: no API token; give one with --token TOKEN or STREAMLINE_TOKEN=TOKEN (a fresh `npm start` prints the admin token once)';
  }
  if (error instanceof NetworkError && settings && error.status === undefined) {
    return `NETWORK: ${error.message}; is the gateway running at ${settings.url} (from ${settings.urlFrom})? Set its address with --url or STREAMLINE_URL`;
  }
  if (error instanceof StreamlineError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** This package's version (package.json beside src/ and dist/). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function isParseArgsError(error: unknown): boolean {
  return typeof (error as { code?: unknown })?.code === 'string' && (error as { code: string }).code.startsWith('ERR_PARSE_ARGS');
}

function usage(): string {
  return [
    'usage: streamline <command> [options]',
    '',
    'commands:',
    ...Object.values(COMMANDS).map((c) => `  ${c.usage.replace(/\n/g, '\n  ')}`),
    '',
    'options for every command (before or after it):',
    '  --url URL      the gateway (env STREAMLINE_URL, config file, default http://localhost:4000/graphql)',
    '  --token TOKEN  API token (env STREAMLINE_TOKEN or the config file)',
    '  --json         print exactly one JSON document on stdout',
    '  --version, -V  print the version of streamline',
    '',
    'start with `streamline doctor` to check the gateway, the token, the workers and the storage.',
    '',
  ].join('\n');
}
