/**
 * `streamline <group> <action> [options]`: the command line over the SDK. Exit status 0 on success,
 * 1 on any error or a plan that did not succeed (one line on stderr), 2 on a usage mistake. With --json,
 * an error is also the one JSON document on stdout: {"error": {"code", "message"}}.
 */
import { parseArgs } from 'node:util';
import { StreamlineClient } from './client.js';
import { COMMANDS, type Command } from './cli/commands.js';
import { connectionSettings, UsageError } from './cli/settings.js';
import { StreamlineError } from './errors.js';

const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: readonly string[], io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { leading, group, action, rest } = splitCommand(argv);
  const command: Command | undefined = COMMANDS[`${group} ${action}`];
  if (!group || group === 'help') {
    io.stdout.write(usage());
    return 0;
  }
  const groupCommands = Object.entries(COMMANDS).filter(([name]) => name.startsWith(`${group} `));
  if (!command && groupCommands.length && (action === undefined || action === '--help' || action === '-h')) {
    // `streamline plans` or `streamline plans --help`: that group's commands.
    const text = `usage:\n${groupCommands.map(([, c]) => `  streamline ${c.usage.replace(/\n/g, '\n  ')}`).join('\n')}\n`;
    if (action !== undefined) {
      io.stdout.write(text);
      return 0;
    }
    io.stderr.write(`streamline: ${group} needs one of: ${groupCommands.map(([name]) => name.split(' ')[1]).join(', ')}\n${text}`);
    return 2;
  }
  let client: StreamlineClient | null = null;
  try {
    if (!command) throw new UsageError(`unknown command ${JSON.stringify([group, action].filter((word) => word !== undefined).join(' '))}`);
    const { values, positionals } = parseArgs({ args: [...leading, ...rest], options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    if (values.help) {
      io.stdout.write(`usage: streamline ${command.usage}\n`);
      return 0;
    }
    const settings = connectionSettings({ url: values.url as string | undefined, token: values.token as string | undefined });
    client = new StreamlineClient(settings);
    return await command.run({ client, json: Boolean(values.json), values: values as Record<string, string | boolean | string[] | undefined>, positionals, ...io });
  } catch (error) {
    io.stderr.write(`streamline: ${describe(error)}\n`);
    const usageMistake = error instanceof UsageError || isParseArgsError(error);
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

function describe(error: unknown): string {
  if (error instanceof StreamlineError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
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
    '',
  ].join('\n');
}
