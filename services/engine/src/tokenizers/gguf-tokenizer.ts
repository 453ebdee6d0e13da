/**
 * The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`), read from the header alone:
 *
 * - `gpt2` (byte-level BPE: GPT-2, SmolLM, Llama 3, Qwen2 …): tokens, merges and token types become a
 *   Hugging Face tokenizer.json — BPE model, the pre-tokenizer that `tokenizer.ggml.pre` names (a table
 *   below of llama.cpp's regular expressions, as Split pre-tokenizers; any other name is refused;
 *   absent means llama.cpp's `default`), ByteLevel decoder, and the
 *   control, user-defined and unknown tokens as added tokens (llama.cpp matches them in text when it
 *   parses special tokens) — run by the engine's HfTokenizer (@huggingface/tokenizers).
 * - `llama` (SentencePiece BPE with scores, Llama 1/2 and Mistral vocabularies): tokens with `▁` read as
 *   spaces and their scores become the llama2.c tokenizer, which encodes as SentencePiece does (a dummy
 *   prefix space, merges by best score, byte fallback to `<0xXX>`). It needs <unk>, BOS, EOS at 0, 1, 2
 *   and the 256 byte tokens at 3..258, as every Llama vocabulary has them.
 */
import { EngineError } from '../errors.js';
import { CONFIG_BOUNDS } from '../models/families/config-fields.js';
import { GgufFile, type GgufValue } from '../formats/gguf.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { Llama2cTokenizer } from './llama2c-tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

// llama.cpp's regular expressions (src/llama-vocab.cpp, llm_tokenizer_bpe), applied one after another,
// each splitting the pieces the previous one left (matches and the text between them both kept).
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface PreTokenization {
  /** llama.cpp's expressions for this pre-tokenizer, in order. */
  readonly regexes: readonly string[];
  /** llama.cpp looks a whole pre-token up in the vocabulary before merging (Llama 3). */
  readonly ignoreMerges?: boolean;
  /** add_bos when the file does not say (tokenizer.ggml.add_bos_token). */
  readonly addBos?: boolean;
}

const DEFAULT: PreTokenization = { regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'] };
const GPT2_STYLE: PreTokenization = { regexes: [GPT2] };
const DIGITS_THEN_GPT2: PreTokenization = { regexes: ['\\p{N}', GPT2] };
const LLAMA3_STYLE: PreTokenization = { regexes: [LLAMA3], ignoreMerges: true, addBos: true };
const QWEN2_STYLE: PreTokenization = { regexes: [QWEN2] };

/**
 * `tokenizer.ggml.pre` → llama.cpp's pre-tokenization for it (the names llama.cpp maps to each type).
 * Each is checked against llama.cpp on SmolLM2's vocabulary by bench/gguf-reference.bench.ts.
 */
const PRE_TOKENIZERS: Readonly<Record<string, PreTokenization>> = {
  default: DEFAULT,
  'gpt-2': GPT2_STYLE,
  'phi-2': GPT2_STYLE,
  mpt: GPT2_STYLE,
  olmo: GPT2_STYLE,
  smollm: DIGITS_THEN_GPT2,
  starcoder: DIGITS_THEN_GPT2,
  refact: DIGITS_THEN_GPT2,
  'command-r': DIGITS_THEN_GPT2,
  codeshell: DIGITS_THEN_GPT2,
  exaone: DIGITS_THEN_GPT2,
  'minerva-7b': DIGITS_THEN_GPT2,
  llama3: LLAMA3_STYLE,
  'llama-v3': LLAMA3_STYLE,
  'llama-bpe': LLAMA3_STYLE,
  falcon3: LLAMA3_STYLE,
  pixtral: LLAMA3_STYLE,
  dbrx: { regexes: [LLAMA3] },
  'smaug-bpe': { regexes: [LLAMA3] },
  qwen2: QWEN2_STYLE,
  'deepseek-r1-qwen': QWEN2_STYLE,
  stablelm2: QWEN2_STYLE,
  megrez: QWEN2_STYLE,
};

/** The Hugging Face pre-tokenizer doing what llama.cpp does: its expressions as isolating splits, then the byte-level mapping. */
function hfPreTokenizer(pre: PreTokenization): Record<string, unknown> {
  const splits = pre.regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }));
  return { type: 'Sequence', pretokenizers: [...splits, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
}

/**
 * The `tokenizer.ggml.pre` name for a tokenizer.json pre-tokenizer: one this module writes (the table's
 * expressions as splits), or SmolLM2's own (digits split one by one, then GPT-2's byte-level regex);
 * 'gpt-2' for a byte-level one alone, null when it is none of these.
 */
export function ggufPreTokenizerName(preTokenizer: unknown): string | null {
  const json = JSON.stringify(preTokenizer ?? null);
  for (const [name, pre] of Object.entries(PRE_TOKENIZERS)) if (JSON.stringify(hfPreTokenizer(pre)) === json) return name;
  const parts = ((preTokenizer as { pretokenizers?: { type?: string; individual_digits?: boolean; use_regex?: boolean }[] } | null)?.pretokenizers ?? [preTokenizer]) as { type?: string; individual_digits?: boolean; use_regex?: boolean }[];
  const kinds = parts.map((p) => p?.type);
  if (kinds.join() === 'Digits,ByteLevel' && parts[0].individual_digits && parts[1].use_regex !== false) return 'smollm';
  if (kinds.join() === 'ByteLevel' && parts[0].use_regex !== false) return 'gpt-2';
  return null;
}

/** Loads the tokenizer in a GGUF file's metadata. */
export function readGgufTokenizer(path: string): Tokenizer {
  const file = GgufFile.open(path);
  try {
    return ggufTokenizer(file);
  } finally {
    file.close();
  }
}

export function ggufTokenizer(file: GgufFile): Tokenizer {
  const source = file.path;
  const model = file.get('tokenizer.ggml.model');
  if (model === undefined) throw new EngineError('BAD_INPUT', `${source} holds no tokenizer (no tokenizer.ggml.model in its metadata); pass one`);
  const tokens = stringArray(file, 'tokenizer.ggml.tokens');
  if (tokens.length === 0 || tokens.length > CONFIG_BOUNDS.vocab_size) {
    throw new EngineError('CORRUPT_FILE', `${source}: tokenizer.ggml.tokens holds ${tokens.length} tokens; expected 1 to ${CONFIG_BOUNDS.vocab_size}`);
  }
  if (model === 'gpt2') return byteLevelBpe(file, tokens);
  if (model === 'llama') return sentencePiece(file, tokens);
  const shown = typeof model === 'string' && model.length <= 40 ? JSON.stringify(model) : 'that';
  throw new EngineError('UNSUPPORTED_MODEL', `${source}: GGUF tokenizer model ${shown} is not supported; supported: gpt2 (byte-level BPE), llama (SentencePiece)`);
}

function stringArray(file: GgufFile, key: string): string[] {
  const value = file.get(key);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new EngineError('CORRUPT_FILE', `${file.path}: GGUF metadata ${key} must be an array of strings`);
  }
  return value as string[];
}

function numberArray(file: GgufFile, key: string, length: number): ArrayLike<number> | null {
  const value: GgufValue | undefined = file.get(key);
  if (value === undefined) return null;
  const numeric = ArrayBuffer.isView(value) && !(value instanceof BigInt64Array || value instanceof BigUint64Array);
  if (!numeric || (value as ArrayLike<number>).length !== length) {
    throw new EngineError('CORRUPT_FILE', `${file.path}: GGUF metadata ${key} must be an array of ${length} numbers, one per token`);
  }
  return value as ArrayLike<number>;
}

function tokenId(file: GgufFile, key: string, vocabSize: number): number | null {
  const value = file.get(key);
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize) {
    throw new EngineError('CORRUPT_FILE', `${file.path}: GGUF metadata ${key} must be a token id from 0 to ${vocabSize - 1}, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

function byteLevelBpe(file: GgufFile, tokens: string[]): Tokenizer {
  const { tokenizerJson, config } = byteLevelBpeFiles(file, tokens);
  return new HfTokenizer(tokenizerJson, config, `the tokenizer in ${file.path}`);
}

/** tokenizer.json and tokenizer_config.json of a gpt2 vocabulary, as transformers would write them. */
function byteLevelBpeFiles(file: GgufFile, tokens: string[]): { tokenizerJson: Record<string, unknown>; config: Record<string, unknown> } {
  const source = file.path;
  const pre = file.get('tokenizer.ggml.pre') ?? 'default';
  const preTokenization = typeof pre === 'string' && Object.hasOwn(PRE_TOKENIZERS, pre) ? PRE_TOKENIZERS[pre] : undefined;
  if (!preTokenization) {
    const shown = typeof pre === 'string' && pre.length <= 40 ? JSON.stringify(pre) : 'that';
    throw new EngineError('UNSUPPORTED_MODEL', `${source}: GGUF pre-tokenizer ${shown} (tokenizer.ggml.pre) is not supported; supported: ${Object.keys(PRE_TOKENIZERS).join(', ')}`);
  }
  const merges = stringArray(file, 'tokenizer.ggml.merges');
  const types = numberArray(file, 'tokenizer.ggml.token_type', tokens.length);
  const vocab = Object.fromEntries(tokens.map((token, id) => [token, id] as const));
  if (Object.keys(vocab).length !== tokens.length) throw new EngineError('CORRUPT_FILE', `${source}: tokenizer.ggml.tokens holds the same token twice`);
  const addedTokens: Record<string, unknown>[] = [];
  for (let id = 0; types && id < types.length; id++) {
    const type = types[id];
    if (type === TOKEN_TYPE.control || type === TOKEN_TYPE.unknown || type === TOKEN_TYPE.userDefined) {
      addedTokens.push({ id, content: tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: type !== TOKEN_TYPE.userDefined });
    }
  }
  const tokenizerJson = {
    version: '1.0',
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: hfPreTokenizer(preTokenization),
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: preTokenization.ignoreMerges ?? false, vocab, merges },
  };
  const bos = tokenId(file, 'tokenizer.ggml.bos_token_id', tokens.length);
  const eos = tokenId(file, 'tokenizer.ggml.eos_token_id', tokens.length);
  const addBos = file.get('tokenizer.ggml.add_bos_token');
  const config = {
    ...(bos !== null ? { bos_token: tokens[bos] } : {}),
    ...(eos !== null ? { eos_token: tokens[eos] } : {}),
    // as llama.cpp: the file's add_bos_token, else the pre-tokenizer's default (Llama 3 adds BOS)
    add_bos_token: typeof addBos === 'boolean' ? addBos : (preTokenization.addBos ?? false),
    add_eos_token: file.get('tokenizer.ggml.add_eos_token') === true,
  };
  return { tokenizerJson, config };
}

const BYTE_TOKEN_OFFSET = 3;

function sentencePiece(file: GgufFile, tokens: string[]): Tokenizer {
  const { pieces, scores, maxTokenLength } = sentencePiecePieces(file, tokens);
  return new Llama2cTokenizer(pieces, scores, maxTokenLength, `the tokenizer in ${file.path}`);
}

/** A llama vocabulary as the llama2.c tokenizer holds it: UTF-8 bytes as binary strings, ▁ as space. */
function sentencePiecePieces(file: GgufFile, tokens: string[]): { pieces: string[]; scores: Float32Array; maxTokenLength: number } {
  const source = file.path;
  const scores = numberArray(file, 'tokenizer.ggml.scores', tokens.length);
  if (!scores) throw new EngineError('CORRUPT_FILE', `${source}: a llama (SentencePiece) vocabulary needs tokenizer.ggml.scores`);
  const ids = [tokenId(file, 'tokenizer.ggml.bos_token_id', tokens.length) ?? 1, tokenId(file, 'tokenizer.ggml.eos_token_id', tokens.length) ?? 2];
  const byteTokensInPlace = tokens.length >= BYTE_TOKEN_OFFSET + 256 && Array.from({ length: 256 }, (_, b) => tokens[BYTE_TOKEN_OFFSET + b] === `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`).every(Boolean);
  if (ids[0] !== 1 || ids[1] !== 2 || !byteTokensInPlace) {
    throw new EngineError('UNSUPPORTED_MODEL', `${source}: the engine reads llama (SentencePiece) vocabularies with BOS 1, EOS 2 and the byte tokens <0x00>..<0xFF> at ids 3..258`);
  }
  if (file.get('tokenizer.ggml.add_space_prefix') === false) {
    throw new EngineError('UNSUPPORTED_MODEL', `${source}: a llama (SentencePiece) vocabulary without the dummy prefix space (tokenizer.ggml.add_space_prefix false) is not supported`);
  }
  // The llama2.c tokenizer holds each piece as its UTF-8 bytes, one char per byte, with spaces for ▁.
  let maxTokenLength = 1;
  const pieces = tokens.map((token) => {
    const bytes = Buffer.from(token.replaceAll('\u2581', ' '), 'utf8');
    maxTokenLength = Math.max(maxTokenLength, bytes.length);
    return bytes.toString('latin1');
  });
  return { pieces, scores: Float32Array.from(scores), maxTokenLength };
}

/**
 * The tokenizer of a GGUF file as files for a Hugging Face-layout export: `tokenizer.json` and
 * `tokenizer_config.json` for a gpt2 vocabulary, a llama2.c `tokenizer.bin` for a llama one (both load
 * with loadTokenizer and encode as the GGUF's own tokenizer does).
 */
export function ggufTokenizerFiles(path: string): Record<string, Uint8Array> {
  const file = GgufFile.open(path);
  try {
    ggufTokenizer(file); // refuses what it cannot read, with the same errors
    const tokens = stringArray(file, 'tokenizer.ggml.tokens');
    if (file.get('tokenizer.ggml.model') === 'gpt2') {
      const { tokenizerJson, config } = byteLevelBpeFiles(file, tokens);
      const json = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
      return { 'tokenizer.json': json(tokenizerJson), 'tokenizer_config.json': json(config) };
    }
    const { pieces, scores, maxTokenLength } = sentencePiecePieces(file, tokens);
    const parts: Buffer[] = [int32(maxTokenLength)];
    pieces.forEach((piece, id) => {
      const bytes = Buffer.from(piece, 'latin1');
      const header = Buffer.alloc(8);
      header.writeFloatLE(scores[id], 0);
      header.writeInt32LE(bytes.length, 4);
      parts.push(header, bytes);
    });
    return { 'tokenizer.bin': Buffer.concat(parts) };
  } finally {
    file.close();
  }
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  return b;
}
