/**
 * Where models and data live, as URIs. Only `file://` with an absolute path is readable today; `s3://`
 * and `hf://` are part of the API already, so they are recognised and refused with a message saying that
 * their storage is not configured, rather than as unknown schemes.
 */
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { badInput } from './errors.js';

export const ACCEPTED_SCHEMES = ['file://', 's3://', 'hf://'] as const;
const NOT_CONFIGURED = new Set(['s3:', 'hf:']);

/** The local path behind a `file://` URI; anything else is BAD_USER_INPUT naming `field`. */
export function localPathOf(field: string, uri: string, schemes: readonly string[] = ACCEPTED_SCHEMES): string {
  const accepted = `accepted schemes: ${schemes.join(', ')}`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const hint = isAbsolute(uri) ? `; write it as ${JSON.stringify(`file://${uri}`)}` : '; file:// sources must be absolute paths';
    throw badInput(field, `${JSON.stringify(uri)} is not a URI (${accepted})${hint}`);
  }
  if (!schemes.includes(`${scheme}://`)) throw badInput(field, `unknown scheme ${JSON.stringify(`${scheme}:`)} in ${JSON.stringify(uri)}; ${accepted}`);
  if (NOT_CONFIGURED.has(`${scheme}:`)) {
    throw badInput(field, `${JSON.stringify(uri)}: ${scheme}:// is accepted, but storage for it is not configured on this gateway yet; use a file:// absolute path`);
  }
  if (!uri.toLowerCase().startsWith('file://')) throw badInput(field, `${JSON.stringify(uri)}: write file URIs as file:///absolute/path`);
  const rest = uri.slice('file://'.length);
  if (!rest.startsWith('/')) {
    throw badInput(field, `${JSON.stringify(uri)} is relative (or names a host); file:// sources must be absolute paths, e.g. file:///data/models/llama`);
  }
  try {
    return fileURLToPath(uri);
  } catch (error) {
    throw badInput(field, `${JSON.stringify(uri)} is not a valid file URI: ${(error as Error).message}`);
  }
}
