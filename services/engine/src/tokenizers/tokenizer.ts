/**
 * The engine's tokenizers: llama2.c `.bin` vocabularies (encoded exactly as llama2.c's run.c does),
 * Hugging Face `tokenizer.json` files (through @huggingface/tokenizers) and the vocabulary in a GGUF
 * file's metadata (gguf-tokenizer.ts), behind one interface.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EngineError } from '../errors.js';
import { MAX_TOKENIZER_BYTES, readWholeFile } from '../formats/file-reads.js';
import { GgufFile } from '../formats/gguf.js';
import { readGgufTokenizer } from './gguf-tokenizer.js';
import { readHfTokenizer } from './hf-tokenizer.js';
import { Llama2cTokenizer } from './llama2c-tokenizer.js';

export interface Tokenizer {
  readonly kind: 'llama2c' | 'huggingface';
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** bos defaults to true (prepends bosId when there is one); eos defaults to false. */
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
  /** Text of a whole id sequence (BOS/EOS dropped). For llama2c: as run.c prints it: the leading space of the first piece after BOS is dropped, <0xHH> pieces become bytes, bytes decoded as UTF-8 together. */
  decode(ids: readonly number[]): string;
  /** Text of one token following `prev`, exactly as llama2.c's run.c `decode(prev, token)` + safe_printf would print it (for streaming generation). */
  decodeNext(prev: number, id: number): string;
}

/**
 * Loads a llama2.c tokenizer `.bin`, a `tokenizer.json`, a directory holding `tokenizer.json`, or a GGUF
 * model file (recognised by its magic), whose metadata carries its vocabulary.
 * With a tokenizer.json, a `tokenizer_config.json` beside it (if any) supplies bos/eos/add_bos_token.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch {
    throw new EngineError('NOT_FOUND', `tokenizer not found: ${path}`);
  }

  if (isDirectory) {
    const jsonPath = join(path, 'tokenizer.json');
    const hasJson = await stat(jsonPath).then((s) => s.isFile(), () => false);
    if (!hasJson) throw new EngineError('BAD_INPUT', `${path} is a directory without a tokenizer.json; expected a tokenizer directory, a tokenizer.json or a llama2.c .bin tokenizer`);
    return readHfTokenizer(jsonPath, join(path, 'tokenizer_config.json'));
  }

  if (GgufFile.isGguf(path)) return readGgufTokenizer(path);
  if (path.endsWith('.bin')) return Llama2cTokenizer.fromBytes(readWholeFile(path, 'tokenizer', MAX_TOKENIZER_BYTES), path);
  if (path.endsWith('.json')) {
    // only an HF-layout tokenizer.json has a tokenizer_config.json beside it that belongs to it
    const configPath = basename(path) === 'tokenizer.json' ? join(dirname(path), 'tokenizer_config.json') : undefined;
    return readHfTokenizer(path, configPath);
  }
  throw new EngineError('BAD_INPUT', `${path} is neither a llama2.c tokenizer (.bin), a tokenizer.json (nor a directory holding one), nor a GGUF file`);
}
