/**
 * `streamline <group> <action> [options]`: the command line over the SDK. Exit status 0 on success,
 * 1 on any error or a plan that did not succeed (one line on stderr), 2 on a usage mistake.
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
  const [group, action, ...rest] = argv;
  const name = `${group} ${action}`;
  const command: Command | undefined = COMMANDS[name];
  if (!group || group === '--help' || group === '-h' || group === 'help') {
    io.stdout.write(usage());
    return 0;
  }
  let client: StreamlineClient | null = null;
  try {
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(argv.slice(0, 2).join(' '))}`);
    const { values, positionals } = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    if (values.help) {
      io.stdout.write(`usage: streamline ${command.usage}\n`);
      return 0;
    }
    const settings = connectionSettings({ url: values.url as string | undefined, token: values.token as string | undefined });
    client = new StreamlineClient(settings);
    return await command.run({ client, json: Boolean(values.json), values: values as Record<string, string | boolean | string[] | undefined>, positionals, ...io });
  } catch (error) {
    io.stderr.write(`streamline: ${describe(error)}\n`);
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.stderr.write(command ? `usage: streamline ${command.usage}\n` : 'run `streamline --help` for the commands\n');
      return 2;
    }
    return 1;
  } finally {
    await client?.close();
  }
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
    'options for every command:',
    '  --url URL      the gateway (env STREAMLINE_URL, config file, default http://localhost:4000/graphql)',
    '  --token TOKEN  API token (env STREAMLINE_TOKEN or the config file)',
    '  --json         print exactly one JSON document on stdout',
    '',
  ].join('\n');
}
