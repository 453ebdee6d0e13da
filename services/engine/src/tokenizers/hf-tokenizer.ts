/**
 * Hugging Face `tokenizer.json` tokenizers, run by @huggingface/tokenizers (tokenizers.js). The library
 * encodes without its post-processor's special tokens; BOS and EOS are added here, so they are never
 * added twice. bos/eos come from tokenizer_config.json when there is one, else from tokenizer.json.
 */
import { Tokenizer as TokenizersJs } from '@huggingface/tokenizers';
import { EngineError } from '../errors.js';
import { MAX_TOKENIZER_BYTES, readWholeFile } from '../formats/file-reads.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * The part of tokenizers.js's Tokenizer used here. (Its bundled .d.ts files import each other without
 * file extensions, which NodeNext resolution cannot follow, so TypeScript would otherwise see `any`.)
 */
interface TokenizersJsTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: (number | undefined)[]; tokens: string[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

type JsonObject = Record<string, unknown>;

/** Token names tried, in order, when neither tokenizer_config.json nor the post-processor names BOS/EOS. */
const USUAL_BOS_TOKENS = ['<s>', '<|begin_of_text|>', '<bos>', '<|startoftext|>'];
const USUAL_EOS_TOKENS = ['</s>', '<|end_of_text|>', '<eos>', '<|endoftext|>'];

export class HfTokenizer implements Tokenizer {
  readonly kind = 'huggingface' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /**
   * encode()'s default for `bos`: tokenizer_config.json's add_bos_token if it says, else whether
   * tokenizer.json's post-processor puts BOS first, else true. (Models trained without BOS, e.g. GPT-2
   * style byte-level tokenizers, thereby get none unless a caller asks for it.)
   */
  readonly addBosByDefault: boolean;
  /** encode()'s default for `eos`: tokenizer_config.json's add_eos_token, else false. */
  readonly addEosByDefault: boolean;
  /** Where the tokenizer came from, for error messages. */
  readonly source: string;
  private readonly library: TokenizersJsTokenizer;
  /** tokenizer_config.json's clean_up_tokenization_spaces; off unless it asks (decoding should give the model's text). */
  private readonly cleanUpSpaces: boolean;

  /**
   * `tokenizerJson` is the parsed tokenizer.json, `config` the parsed tokenizer_config.json ({} if
   * none); `source` names them in errors.
   */
  constructor(tokenizerJson: unknown, config: unknown, source: string) {
    this.source = source;
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new EngineError('CORRUPT_FILE', `${source} is not a tokenizer.json: expected an object with a "model" section`);
    }
    if (!isObject(config)) throw new EngineError('CORRUPT_FILE', `the tokenizer_config.json of ${source} is not a JSON object`);

    // tokenizers.js requires these keys to be present (null is fine), as in every file transformers writes.
    const completeJson = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizerJson };
    const libraryConfig = withPlainTokenStrings(config);
    try {
      this.library = new TokenizersJs(completeJson, libraryConfig) as TokenizersJsTokenizer;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // tokenizers.js says "Unknown <part> type: X" for components it does not implement (e.g. WordLevel)
      const code = /^Unknown /.test(message) ? 'UNSUPPORTED_MODEL' : 'CORRUPT_FILE';
      throw new EngineError(code, `${source} could not be loaded by @huggingface/tokenizers: ${message}`);
    }

    let maxId = -1;
    for (const id of this.library.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const template = templateSpecialTokens(completeJson.post_processor);
    this.bosId = this.firstKnownId([tokenString(config.bos_token), template.first, ...USUAL_BOS_TOKENS]);
    this.eosId = this.firstKnownId([tokenString(config.eos_token), template.last, ...USUAL_EOS_TOKENS]);

    if (typeof config.add_bos_token === 'boolean') {
      this.addBosByDefault = config.add_bos_token;
    } else if (completeJson.post_processor !== null && this.bosId !== null) {
      this.addBosByDefault = this.library.encode('a', { add_special_tokens: true }).ids[0] === this.bosId;
    } else {
      this.addBosByDefault = true;
    }
    this.addEosByDefault = config.add_eos_token === true;
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
  }

  encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
    const { bos = this.addBosByDefault, eos = this.addEosByDefault } = options;
    const encoded = this.library.encode(text, { add_special_tokens: false });
    const ids: number[] = [];
    if (bos && this.bosId !== null) ids.push(this.bosId);
    for (let i = 0; i < encoded.ids.length; i++) {
      const id = encoded.ids[i];
      // only a model without an unk token can meet a piece it has no id for
      if (id === undefined) throw new EngineError('BAD_INPUT', `${this.source} has no id for the piece ${JSON.stringify(encoded.tokens[i])}`);
      ids.push(id);
    }
    if (eos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[]): string {
    const kept: number[] = [];
    for (const id of ids) {
      this.checkId(id);
      if (id !== this.bosId && id !== this.eosId) kept.push(id);
    }
    if (kept.length === 0) return ''; // tokenizers.js refuses an empty list
    return this.library.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  /**
   * The text `id` adds after `prev`: decode([prev, id]) minus decode([prev]), so that decoders which
   * treat the first token specially (SentencePiece's leading-space strip) see `id` in context. A
   * character split across tokens decodes as U+FFFD on each side; callers that need exact text should
   * decode the whole sequence.
   */
  decodeNext(prev: number, id: number): string {
    this.checkId(id);
    if (id === this.bosId || id === this.eosId) return '';
    const before = this.decode([prev]);
    const both = this.decode([prev, id]);
    return both.startsWith(before) ? both.slice(before.length) : this.decode([id]);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new EngineError('BAD_INPUT', `token id ${id} is outside the vocabulary of ${this.source} (0..${this.vocabSize - 1})`);
    }
  }

  private firstKnownId(tokens: (string | undefined)[]): number | null {
    for (const token of tokens) {
      if (token === undefined) continue;
      const id = this.library.token_to_id(token);
      if (id !== undefined) return id;
    }
    return null;
  }
}

/** Reads and parses `tokenizer.json` and, if given and present, `tokenizer_config.json`. */
export async function readHfTokenizer(tokenizerJsonPath: string, configPath?: string): Promise<HfTokenizer> {
  const tokenizerJson = await readJson(tokenizerJsonPath);
  let config: unknown = {};
  if (configPath !== undefined) {
    try {
      config = await readJson(configPath);
    } catch (error) {
      if (!(error instanceof EngineError && error.code === 'NOT_FOUND')) throw error;
    }
  }
  return new HfTokenizer(tokenizerJson, config, tokenizerJsonPath);
}

async function readJson(path: string): Promise<unknown> {
  const text = readWholeFile(path, 'file', MAX_TOKENIZER_BYTES).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new EngineError('CORRUPT_FILE', `${path} is not valid JSON`); // the parser's message quotes the file
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** tokenizer_config.json writes a special token as a string or as an AddedToken object {content, ...}. */
function tokenString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

/** The config with its special tokens as plain strings, the form tokenizers.js expects. */
function withPlainTokenStrings(config: JsonObject): JsonObject {
  const plain: JsonObject = { ...config };
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    if (key in plain) plain[key] = tokenString(plain[key]);
  }
  if (Array.isArray(plain.additional_special_tokens)) {
    plain.additional_special_tokens = plain.additional_special_tokens.map(tokenString).filter((t) => t !== undefined);
  }
  return plain;
}

/** The special tokens a TemplateProcessing post-processor puts before and after a single sequence. */
function templateSpecialTokens(postProcessor: unknown): { first?: string; last?: string } {
  if (!isObject(postProcessor)) return {};
  if (postProcessor.type === 'Sequence' && Array.isArray(postProcessor.processors)) {
    for (const inner of postProcessor.processors) {
      const found = templateSpecialTokens(inner);
      if (found.first !== undefined || found.last !== undefined) return found;
    }
    return {};
  }
  if (postProcessor.type !== 'TemplateProcessing' || !Array.isArray(postProcessor.single)) return {};
  const items = postProcessor.single.filter(isObject);
  const special = (item: JsonObject | undefined) =>
    item !== undefined && isObject(item.SpecialToken) && typeof item.SpecialToken.id === 'string' ? item.SpecialToken.id : undefined;
  return { first: special(items[0]), last: items.length > 1 ? special(items[items.length - 1]) : undefined };
}
