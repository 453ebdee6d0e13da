/**
 * Where models and data live, as URIs: `file:///absolute/path`, `s3://bucket/key` and
 * `hf://org/name[@revision]`. This file only parses them (every refusal BAD_USER_INPUT naming the field);
 * whether the gateway can reach an s3:// or hf:// source is for sources/source.service.ts to say.
 */
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { badInput } from '../errors.js';
import { EngineError, parseHfUri, parseStorageUri } from '../engine.js';

export const ACCEPTED_SCHEMES = ['file://', 's3://', 'hf://'] as const;

export type SourceLocation = { readonly kind: 'file'; readonly path: string } | { readonly kind: 's3' | 'hf'; readonly uri: string };

/** Parses `uri`, accepting only `schemes`; anything else is BAD_USER_INPUT naming `field`. */
export function parseSourceUri(field: string, uri: string, schemes: readonly string[] = ACCEPTED_SCHEMES): SourceLocation {
  const accepted = `accepted schemes: ${schemes.join(', ')}`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const hint = isAbsolute(uri) ? `; write it as ${JSON.stringify(`file://${uri}`)}` : '; file:// sources must be absolute paths';
    throw badInput(field, `${JSON.stringify(uri)} is not a URI (${accepted})${hint}`);
  }
  if (!schemes.includes(`${scheme}://`)) throw badInput(field, `unknown scheme ${JSON.stringify(`${scheme}:`)} in ${JSON.stringify(uri)}; ${accepted}`);
  if (scheme === 's3') {
    if (!uri.startsWith('s3://')) throw badInput(field, `${JSON.stringify(uri)}: write S3 URIs as s3://bucket/path`);
    const location = parsedBy(field, () => parseStorageUri(uri));
    if (location.kind === 's3' && location.prefix === '') throw badInput(field, `${uri} names a whole bucket; expected s3://bucket/path`);
    return { kind: 's3', uri };
  }
  if (scheme === 'hf') {
    parsedBy(field, () => parseHfUri(uri));
    return { kind: 'hf', uri };
  }
  if (!uri.toLowerCase().startsWith('file://')) throw badInput(field, `${JSON.stringify(uri)}: write file URIs as file:///absolute/path`);
  const rest = uri.slice('file://'.length);
  if (!rest.startsWith('/')) {
    throw badInput(field, `${JSON.stringify(uri)} is relative (or names a host); file:// sources must be absolute paths, e.g. file:///data/models/llama`);
  }
  try {
    return { kind: 'file', path: fileURLToPath(uri) };
  } catch (error) {
    throw badInput(field, `${JSON.stringify(uri)} is not a valid file URI: ${(error as Error).message}`);
  }
}

/** What a worker is handed for a stored source: a local path for file://, else the URI (the worker fetches it). */
export function workerPathOf(field: string, uri: string): string {
  const location = parseSourceUri(field, uri);
  return location.kind === 'file' ? location.path : location.uri;
}

/** The engine's parse of `uri`; its refusal becomes BAD_USER_INPUT naming `field`. */
function parsedBy<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof EngineError) throw badInput(field, error.message);
    throw error;
  }
}
