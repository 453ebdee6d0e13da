import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/errors.js';
import { HfTokenizer } from '../src/tokenizers/hf-tokenizer.js';
import { Llama2cTokenizer } from '../src/tokenizers/llama2c-tokenizer.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizers/tokenizer.js';
import { mulberry32 } from '../src/random.js';

const sharedDir = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const sharedPresent = existsSync(sharedDir);
const inCi = process.env.CI === 'true';
if (!sharedPresent && !inCi) console.warn(`tokenizers.test.ts: ${sharedDir} is absent, skipping the tests that read shared data`);
// under CI the shared data must be there: the tests run and fail rather than skip
const describeWithShared = describe.skipIf(!sharedPresent && !inCi);

const shared = (relative: string) => join(sharedDir, relative);
const readJson = (relative: string) => JSON.parse(readFileSync(shared(relative), 'utf8'));

/**
 * llama2.c run.c `encode()` transcribed line by line (O(n²) merge loop), the reference the
 * priority-queue encoder must match. Works on UTF-8 bytes; pieces are binary strings like the tokenizer's.
 */
function runcEncode(tokenizer: Llama2cTokenizer, text: string, bos: boolean, eos: boolean): number[] {
  const strLookup = pieceLookup(tokenizer);
  const bytes = new TextEncoder().encode(text);
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  if (bytes.length > 0) tokens.push(strLookup.get(' ')!);

  let strBuffer: number[] = [];
  for (let c = 0; c < bytes.length; c++) {
    if ((bytes[c] & 0xc0) !== 0x80) strBuffer = []; // not a continuation byte: a new code point starts
    strBuffer.push(bytes[c]);
    const nextByte = c + 1 < bytes.length ? bytes[c + 1] : 0;
    if ((nextByte & 0xc0) === 0x80 && strBuffer.length < 4) continue;
    const id = strLookup.get(String.fromCharCode(...strBuffer));
    if (id !== undefined) {
      tokens.push(id);
    } else {
      for (const byte of strBuffer) tokens.push(byte + 3);
    }
    strBuffer = [];
  }

  for (;;) {
    let bestScore = Math.fround(-1e10);
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = strLookup.get(tokenizer.pieces[tokens[i]] + tokenizer.pieces[tokens[i + 1]]);
      if (id !== undefined && tokenizer.scores[id] > bestScore) {
        bestScore = tokenizer.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens[bestIdx] = bestId;
    tokens.splice(bestIdx + 1, 1);
  }
  if (eos) tokens.push(2);
  return tokens;
}

/** str_lookup's bsearch over the sorted vocab, as a map; the lowest id on duplicates. */
const pieceLookups = new WeakMap<Llama2cTokenizer, Map<string, number>>();
function pieceLookup(tokenizer: Llama2cTokenizer): Map<string, number> {
  let lookup = pieceLookups.get(tokenizer);
  if (lookup === undefined) {
    lookup = new Map();
    for (let id = 0; id < tokenizer.pieces.length; id++) {
      if (!lookup.has(tokenizer.pieces[id])) lookup.set(tokenizer.pieces[id], id);
    }
    pieceLookups.set(tokenizer, lookup);
  }
  return lookup;
}

/** Deterministic random strings mixing ASCII, accents, CJK, emoji (ZWJ and skin tones), controls, lone surrogates. */
function randomUnicodeStrings(count: number, seed: number): string[] {
  const random = mulberry32(seed);
  const fragments = [
    'a', 'e', 't', 'h', 'the', ' ', ' ', '  ', '\n', '\t', '.', ',', '!', 'Once', ' upon', 'é', 'ü', 'ß', 'ñ',
    '中', '文', '日本語', 'Ж', 'λ', '🙂', '👍🏽', '🧑‍🚀', '🇫🇷', '\u0007', '\u0000', '\u00a0', '\ud800', '\udfff', '<0x41>',
  ];
  const strings: string[] = [];
  for (let s = 0; s < count; s++) {
    let text = '';
    const length = Math.floor(random() * 40);
    for (let i = 0; i < length; i++) {
      if (random() < 0.2) {
        // any code point outside the surrogate range
        let codePoint = Math.floor(random() * 0x30000);
        if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0x41;
        text += String.fromCodePoint(codePoint);
      } else {
        text += fragments[Math.floor(random() * fragments.length)];
      }
    }
    strings.push(text);
  }
  return strings;
}

/** Writes a llama2.c tokenizer .bin: int32 max_token_length, then per token float32 score, int32 length, bytes. */
function llama2cTokenizerBytes(pieces: string[], scores: number[]): Buffer {
  const encoded = pieces.map((piece) => Buffer.from(piece, 'utf8'));
  const maxTokenLength = Math.max(...encoded.map((b) => b.length));
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0].writeInt32LE(maxTokenLength);
  encoded.forEach((bytes, id) => {
    const header = Buffer.alloc(8);
    header.writeFloatLE(scores[id], 0);
    header.writeInt32LE(bytes.length, 4);
    parts.push(header, bytes);
  });
  return Buffer.concat(parts);
}

/** <unk>, BOS, EOS and the 256 byte pieces, as every llama2.c vocabulary starts. */
function basePieces(): string[] {
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  return pieces;
}

/** Runs `action` (sync or async) and checks that it throws an EngineError with this code and message. */
async function expectEngineError(action: () => unknown, code: string, messagePart: RegExp | string): Promise<EngineError> {
  let error: unknown;
  try {
    await action();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EngineError);
  expect((error as EngineError).code).toBe(code);
  expect((error as EngineError).message).toMatch(messagePart);
  return error as EngineError;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tokenizers-test-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describeWithShared('llama2.c tokenizer on the shared vocabularies', () => {
  let llama2: Llama2cTokenizer;
  let tok512: Llama2cTokenizer;
  beforeAll(async () => {
    expect(sharedPresent, `${sharedDir} must exist under CI=true`).toBe(true);
    llama2 = (await loadTokenizer(shared('models/llama2-tokenizer/tokenizer.bin'))) as Llama2cTokenizer;
    tok512 = (await loadTokenizer(shared('models/stories260K/tok512.bin'))) as Llama2cTokenizer;
  });

  it('loads both vocabularies', () => {
    expect(llama2.kind).toBe('llama2c');
    expect(llama2.vocabSize).toBe(32000);
    expect(tok512.vocabSize).toBe(512);
    expect([tok512.bosId, tok512.eosId]).toEqual([1, 2]);
  });

  it("reproduces llama2.c test.c's expected ids for the 32000-token tokenizer, and decodes them back", () => {
    const cases: { text: string; ids: number[] }[] = readJson('refs/llama2c_tokenizer_bin_expected_ids.json');
    expect(cases.length).toBeGreaterThan(0);
    for (const { text, ids } of cases) {
      expect(llama2.encode(text, { bos: true, eos: false })).toEqual(ids);
      expect(llama2.encode(text)).toEqual(ids);
      expect(llama2.decode(ids)).toBe(text);
    }
  });

  it('encodes the stories260K prompt as run.c does', () => {
    expect(tok512.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok512.encode('Once upon a time', { bos: false, eos: true })).toEqual([403, 407, 261, 378, 2]);
    expect(tok512.encode('')).toEqual([1]);
    expect(tok512.encode('', { bos: false })).toEqual([]);
  });

  it("decodes run.c's 200-step greedy generation, whole and token by token", () => {
    const ids: number[] = readJson('refs/stories260K_derived_fixtures.json').greedy_from_bos_ids_201;
    const references: { id: string; text: string }[] = readJson('refs/stories260K_real_references.json').references;
    const expected = references.find((r) => r.id === 'runc_greedy_200')!.text;
    expect(ids[0]).toBe(1);
    expect(ids).toHaveLength(201);
    expect(tok512.decode(ids)).toBe(expected);
    let streamed = '';
    for (let i = 1; i < ids.length; i++) streamed += tok512.decodeNext(ids[i - 1], ids[i]);
    expect(streamed).toBe(expected);
  });

  it('decodeNext prints what safe_printf prints', () => {
    const byteId = (b: number) => b + 3;
    expect(tok512.decodeNext(1, byteId(0x0a))).toBe('\n');
    expect(tok512.decodeNext(1, byteId(0x41))).toBe('A');
    expect(tok512.decodeNext(1, byteId(0x07))).toBe(''); // control byte
    expect(tok512.decodeNext(1, byteId(0xe4))).toBe(''); // a lone UTF-8 byte is not printable
    expect(tok512.decodeNext(1, 1)).toBe('');
    expect(tok512.decodeNext(1, 2)).toBe('');
    expect(tok512.decodeNext(1, 403)).toBe('Once'); // the leading space goes after BOS ...
    expect(tok512.decodeNext(403, 407)).toBe(' upon'); // ... and only there
    expect(() => tok512.decodeNext(1, 512)).toThrow(EngineError);
  });

  it('decodes byte-fallback pieces as UTF-8 together', () => {
    const text = 'Tom saw 🐉 and 中文!';
    const ids = tok512.encode(text);
    expect(ids.some((id) => id >= 3 + 0x80 && id < 3 + 0x100)).toBe(true);
    expect(tok512.decode(ids)).toBe(text);
  });

  it("gives the same ids as run.c's O(n²) merge loop on a TinyStories excerpt", () => {
    const text = readFileSync(shared('data/text/tinystories_val_excerpt.txt'), 'utf8').slice(0, 3000);
    for (const tokenizer of [tok512, llama2]) {
      expect(tokenizer.encode(text)).toEqual(runcEncode(tokenizer, text, true, false));
      expect(tokenizer.encode(text, { bos: false, eos: true })).toEqual(runcEncode(tokenizer, text, false, true));
    }
  });

  it("gives the same ids as run.c's O(n²) merge loop on random unicode and emoji strings", () => {
    for (const tokenizer of [tok512, llama2]) {
      for (const text of randomUnicodeStrings(300, tokenizer.vocabSize)) {
        expect(tokenizer.encode(text), JSON.stringify(text)).toEqual(runcEncode(tokenizer, text, true, false));
      }
    }
  });

  it('encodes the whole TinyStories excerpt as one stream and decodes it back', () => {
    const text = readFileSync(shared('data/text/tinystories_val_excerpt.txt'), 'utf8');
    expect(text.length).toBeGreaterThan(700_000);
    const ids = tok512.encode(text);
    expect(ids.length).toBeLessThan(text.length);
    expect(tok512.decode(ids)).toBe(text);
  });
});

describe('llama2.c tokenizer on a hand-made vocabulary', () => {
  // base pieces, then merges; 'ab' occurs twice to pin the duplicate rule
  const pieces = [...basePieces(), ' ', 'a', 'b', 'aa', 'ab', 'ab', ' b'];
  const scores = pieces.map(() => 0);
  const id = (piece: string) => pieces.indexOf(piece);
  const firstAb = id('ab');
  const secondAb = pieces.lastIndexOf('ab');
  scores[id(' ')] = -1;
  scores[id('aa')] = -2;
  scores[firstAb] = -4;
  scores[secondAb] = -3; // the better score, but the lower id wins the lookup
  scores[id(' b')] = -5;
  const tokenizer = Llama2cTokenizer.fromBytes(llama2cTokenizerBytes(pieces, scores), 'hand-made.bin');

  it('takes the lowest id when a piece occurs twice', () => {
    expect(tokenizer.encode('ab')).toEqual([1, id(' '), firstAb]);
    expect(tokenizer.encode('ab')).toEqual(runcEncode(tokenizer, 'ab', true, false));
  });

  it('merges the leftmost of equally scored pairs first', () => {
    expect(tokenizer.encode('aaa', { bos: false })).toEqual([id(' '), id('aa'), id('a')]);
    for (const text of ['aaa', 'aaaa', 'aab', 'baab', 'b aab ab', 'ab\u0000ab']) {
      expect(tokenizer.encode(text)).toEqual(runcEncode(tokenizer, text, true, false));
    }
  });

  it('falls back to bytes for pieces not in the vocabulary', () => {
    expect(tokenizer.encode('é', { bos: false })).toEqual([id(' '), 0xc3 + 3, 0xa9 + 3]);
    expect(tokenizer.decode([1, id(' '), 0xc3 + 3, 0xa9 + 3])).toBe('é');
  });
});

/** GPT-2's byte-to-unicode table used by ByteLevel tokenizers. */
function byteLevelAlphabet(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const alphabet: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    alphabet[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return alphabet;
}

/** A tiny byte-level BPE tokenizer.json whose post-processor adds <s>, like Llama-3's. */
function tinyByteLevelTokenizerJson() {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((char, byte) => (vocab[char] = byte));
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld'];
  for (const merge of merges) vocab[merge.replace(' ', '')] = Object.keys(vocab).length;
  const bos = Object.keys(vocab).length; // 265
  const eos = bos + 1;
  const special = (content: string, tokenId: number) => ({
    id: tokenId, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special('<s>', bos), special('</s>', eos)],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [bos], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

describe('Hugging Face tokenizer.json', () => {
  let dir: string;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    dir = tempDir();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyByteLevelTokenizerJson()));
    tokenizer = await loadTokenizer(join(dir, 'tokenizer.json'));
  });

  it('loads from the file and from its directory', async () => {
    expect(tokenizer.kind).toBe('huggingface');
    expect(tokenizer.vocabSize).toBe(267);
    expect([tokenizer.bosId, tokenizer.eosId]).toEqual([265, 266]);
    const fromDir = await loadTokenizer(dir);
    expect(fromDir.encode('hello world')).toEqual(tokenizer.encode('hello world'));
  });

  it('adds BOS once, and only when asked', () => {
    expect(tokenizer.encode('hello world')).toEqual([265, 259, 264]);
    expect(tokenizer.encode('hello world', { bos: true })).toEqual([265, 259, 264]);
    expect(tokenizer.encode('hello world', { bos: false })).toEqual([259, 264]);
    expect(tokenizer.encode('hello world', { bos: false, eos: true })).toEqual([259, 264, 266]);
    expect(tokenizer.encode('')).toEqual([265]);
  });

  it('round-trips text through encode and decode', () => {
    for (const text of ['hello world', 'hello  world\n\tagain', 'héllo 🌍 wörld, 中文 🧑‍🚀!', ' leading and trailing ', 'x .']) {
      const ids = tokenizer.encode(text, { eos: true });
      expect(tokenizer.decode(ids)).toBe(text);
    }
    expect(tokenizer.decode([])).toBe('');
    expect(tokenizer.decode([265])).toBe('');
  });

  it('streams ASCII text token by token', () => {
    const text = 'hello world, hello again';
    const ids = tokenizer.encode(text);
    let streamed = '';
    for (let i = 1; i < ids.length; i++) streamed += tokenizer.decodeNext(ids[i - 1], ids[i]);
    expect(streamed).toBe(text);
    expect(tokenizer.decodeNext(259, 266)).toBe('');
  });

  it("follows tokenizer_config.json's bos/eos/add_bos_token", async () => {
    const configured = join(dir, 'configured');
    mkdirSync(configured);
    writeFileSync(join(configured, 'tokenizer.json'), JSON.stringify(tinyByteLevelTokenizerJson()));
    writeFileSync(
      join(configured, 'tokenizer_config.json'),
      JSON.stringify({ bos_token: { __type: 'AddedToken', content: '</s>' }, eos_token: '<s>', add_bos_token: false }),
    );
    const swapped = await loadTokenizer(configured);
    expect([swapped.bosId, swapped.eosId]).toEqual([266, 265]);
    expect(swapped.encode('hello')).toEqual([259]);
    expect(swapped.encode('hello', { bos: true })).toEqual([266, 259]);
  });

  it('refuses ids outside the vocabulary', () => {
    expect(() => tokenizer.decode([267])).toThrow(EngineError);
    expect(() => tokenizer.decode([-1])).toThrow(/outside the vocabulary/);
  });
});

describe('loadTokenizer errors', () => {
  it('NOT_FOUND for a missing path, naming it', async () => {
    const missing = join(tempDir(), 'no-such-tokenizer.bin');
    await expectEngineError(() => loadTokenizer(missing), 'NOT_FOUND', missing);
  });

  it('CORRUPT_FILE for a truncated .bin, saying where', async () => {
    const pieces = [...basePieces(), ' ', 'ab', 'abc'];
    const bytes = llama2cTokenizerBytes(pieces, pieces.map(() => 0));
    const path = join(tempDir(), 'truncated.bin');
    writeFileSync(path, bytes.subarray(0, bytes.length - 2)); // cut inside the last piece's bytes
    const error = await expectEngineError(() => loadTokenizer(path), 'CORRUPT_FILE', /token 261 claims 3 bytes but only 1 remain/);
    expect(error.message).toContain(path);

    writeFileSync(path, bytes.subarray(0, 2));
    await expectEngineError(() => loadTokenizer(path), 'CORRUPT_FILE', /too short/);
    // <unk>, BOS, EOS take 13 + 13 + 14 bytes, each byte piece 14: cut after 100 whole tokens
    writeFileSync(path, bytes.subarray(0, 4 + 13 + 13 + 14 + 97 * 14));
    await expectEngineError(() => loadTokenizer(path), 'CORRUPT_FILE', /at least 259/);
  });

  it('CORRUPT_FILE for a garbled .bin', async () => {
    const path = join(tempDir(), 'garbage.bin');
    writeFileSync(path, JSON.stringify({ model: 'not a tokenizer' }));
    await expectEngineError(() => loadTokenizer(path), 'CORRUPT_FILE', path);
  });

  it('CORRUPT_FILE for garbage JSON', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": ');
    await expectEngineError(() => loadTokenizer(join(dir, 'tokenizer.json')), 'CORRUPT_FILE', /tokenizer\.json is not valid JSON/);
    await expectEngineError(() => loadTokenizer(dir), 'CORRUPT_FILE', /not valid JSON/);
    writeFileSync(join(dir, 'tokenizer.json'), '[1, 2, 3]');
    await expectEngineError(() => loadTokenizer(dir), 'CORRUPT_FILE', /"model" section/);
  });

  it('UNSUPPORTED_MODEL for a model type tokenizers.js lacks', async () => {
    await expectEngineError(() => new HfTokenizer({ model: { type: 'Mystery' } }, {}, 'mystery.json'), 'UNSUPPORTED_MODEL', /mystery\.json.*Mystery/);
  });

  it('BAD_INPUT for a path that is neither', async () => {
    const dir = tempDir();
    await expectEngineError(() => loadTokenizer(dir), 'BAD_INPUT', /without a tokenizer\.json/);
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    await expectEngineError(() => loadTokenizer(join(dir, 'notes.txt')), 'BAD_INPUT', /neither/);
  });
});
