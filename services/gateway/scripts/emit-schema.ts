import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { printGatewaySchema } from '../src/schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../../../schema.graphql', import.meta.url));

export async function emitSchema(): Promise<void> {
  await writeFile(SCHEMA_FILE, await printGatewaySchema());
  console.error(`wrote ${SCHEMA_FILE}`);
}
