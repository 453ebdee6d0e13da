/**
 * The llama2.c tokenizer `.bin` (karpathy/llama2.c `tokenizer.py` export, read by `run.c`):
 * int32 max_token_length, then per token float32 score, int32 byte length, the bytes. Ids 0, 1, 2 are
 * <unk>, BOS, EOS; 3..258 are the byte pieces <0x00>..<0xFF>; the rest are merges scored by -rank.
 *
 * Encoding gives the same ids as run.c's `encode()`; its O(n²) merge loop is replaced by a priority
 * queue that makes the same choice at every step (see mergePieces). Decoding follows run.c's
 * `decode(prev, token)` and `safe_printf`.
 *
 * Pieces are held as binary strings (one char per byte, codes 0..255) rather than as decoded text, so
 * that joining two pieces is joining their bytes and a piece that is not valid UTF-8 on its own still
 * round-trips, just as run.c's char* pieces do.
 */
import { EngineError } from '../errors.js';
import type { Tokenizer } from './tokenizer.js';

const BOS_ID = 1;
const EOS_ID = 2;
/** Byte b falls back to id b + 3 (run.c hard-codes this offset). */
const BYTE_PIECE_OFFSET = 3;
const MIN_VOCAB_SIZE = BYTE_PIECE_OFFSET + 256;
/** run.c starts its search at `float best_score = -1e10` and needs a strictly greater score to merge. */
const NO_MERGE_SCORE = Math.fround(-1e10);

export class Llama2cTokenizer implements Tokenizer {
  readonly kind = 'llama2c' as const;
  readonly bosId = BOS_ID;
  readonly eosId = EOS_ID;
  readonly vocabSize: number;
  /** Where the vocabulary came from, for error messages. */
  readonly source: string;
  /** Each token's bytes as a binary string (one char per byte). */
  readonly pieces: readonly string[];
  /** Each token's merge score (float32, as stored). */
  readonly scores: Float32Array;
  readonly maxTokenLength: number;
  /**
   * Piece bytes -> id, standing in for run.c's bsearch over the sorted vocab. When a piece occurs more
   * than once, run.c gets whichever copy its bsearch lands on; we take the lowest id (what a stable sort
   * and a leftmost search give). Neither shipped vocabulary (tok512.bin, the 32000-token tokenizer.bin)
   * has a duplicate, so the rule never changes their ids.
   */
  private readonly idOfPiece: Map<string, number>;
  /** The " " piece run.c prepends as SentencePiece's dummy prefix (undefined if the vocab lacks it). */
  private readonly dummyPrefixId: number | undefined;

  constructor(pieces: readonly string[], scores: Float32Array, maxTokenLength: number, source: string) {
    if (pieces.length !== scores.length) throw new Error('pieces and scores differ in length');
    this.pieces = pieces;
    this.scores = scores;
    this.maxTokenLength = maxTokenLength;
    this.vocabSize = pieces.length;
    this.source = source;
    this.idOfPiece = new Map();
    for (let id = 0; id < pieces.length; id++) {
      if (!this.idOfPiece.has(pieces[id])) this.idOfPiece.set(pieces[id], id);
    }
    this.dummyPrefixId = this.idOfPiece.get(' ');
  }

  /** Parses a tokenizer `.bin`; `source` (the file path) names the file in errors. */
  static fromBytes(bytes: Uint8Array, source: string): Llama2cTokenizer {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const corrupt = (what: string) => new EngineError('CORRUPT_FILE', `${source} is not a valid llama2.c tokenizer: ${what}`);
    if (bytes.byteLength < 4) throw corrupt(`the file is ${bytes.byteLength} bytes, too short for the int32 max_token_length header`);
    const maxTokenLength = view.getInt32(0, true);
    if (maxTokenLength <= 0) throw corrupt(`max_token_length is ${maxTokenLength}, expected a positive number`);

    const pieces: string[] = [];
    const scores: number[] = [];
    let offset = 4;
    while (offset < bytes.byteLength) {
      const id = pieces.length;
      const remaining = bytes.byteLength - offset;
      if (remaining < 8) throw corrupt(`token ${id} needs 8 bytes for its score and length but only ${remaining} remain`);
      const score = view.getFloat32(offset, true);
      const length = view.getInt32(offset + 4, true);
      offset += 8;
      if (length < 0) throw corrupt(`token ${id} has a negative length ${length}`);
      if (length > bytes.byteLength - offset) {
        throw corrupt(`token ${id} claims ${length} bytes but only ${bytes.byteLength - offset} remain`);
      }
      // run.c's merge buffer holds two pieces of at most max_token_length bytes each.
      if (length > maxTokenLength) throw corrupt(`token ${id} is ${length} bytes, longer than max_token_length ${maxTokenLength}`);
      pieces.push(binaryString(bytes, offset, length));
      scores.push(score);
      offset += length;
    }
    if (pieces.length < MIN_VOCAB_SIZE) {
      throw corrupt(`it holds ${pieces.length} tokens; a llama2.c vocabulary has at least ${MIN_VOCAB_SIZE} (<unk>, BOS, EOS and 256 byte pieces)`);
    }
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxTokenLength, source);
  }

  /** run.c `encode()`: BOS, dummy prefix, one piece per code point (else its bytes), then BPE merges. */
  encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
    const { bos = true, eos = false } = options;
    const ids: number[] = [];
    if (bos) ids.push(BOS_ID);
    // SentencePiece's add_dummy_prefix; run.c would push -1 if " " were missing, we leave it out.
    if (text.length > 0 && this.dummyPrefixId !== undefined) ids.push(this.dummyPrefixId);

    // run.c walks the UTF-8 bytes and looks up each code point's bytes (at most 4) as one piece.
    // JavaScript strings are UTF-16: a lone surrogate is written as U+FFFD, as TextEncoder would.
    // (run.c stops at a NUL byte, a C-string artefact; here U+0000 is a code point like any other.)
    for (const char of text) {
      let codePoint = char.codePointAt(0)!;
      if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0xfffd;
      const bytes = utf8BinaryString(codePoint);
      const id = this.idOfPiece.get(bytes);
      if (id !== undefined) {
        ids.push(id);
      } else {
        // byte fallback: the first 3 vocab entries are <unk>, <s>, </s>
        for (let i = 0; i < bytes.length; i++) ids.push(bytes.charCodeAt(i) + BYTE_PIECE_OFFSET);
      }
    }

    const merged = mergePieces(ids, this.pieces, this.scores, this.idOfPiece);
    if (eos) merged.push(EOS_ID);
    return merged;
  }

  /** Whole-sequence text: BOS/EOS dropped, the rest as run.c's decode() gives them, bytes decoded together. */
  decode(ids: readonly number[]): string {
    let bytes = '';
    for (let i = 0; i < ids.length; i++) {
      this.checkId(ids[i]);
      if (ids[i] === BOS_ID || ids[i] === EOS_ID) continue;
      bytes += this.runcDecode(i > 0 ? ids[i - 1] : -1, ids[i]);
    }
    return utf8FromBinaryString(bytes);
  }

  /**
   * What run.c prints for `token` after `prev`: `safe_printf(decode(prev, token))`. BOS and EOS print
   * nothing (run.c stops generating at BOS; EOS's piece "\n</s>\n" is a marker, not text). Note that
   * safe_printf drops every single-byte piece that is not printable ASCII or whitespace, which includes
   * the byte pieces <0x80>..<0xFF>: characters that were byte-fallback encoded never print.
   */
  decodeNext(prev: number, id: number): string {
    this.checkId(id);
    if (id === BOS_ID || id === EOS_ID) return '';
    const piece = this.runcDecode(prev, id);
    if (piece.length === 0) return '';
    if (piece.length === 1 && !(isPrintableAscii(piece.charCodeAt(0)) || isCSpace(piece.charCodeAt(0)))) return '';
    return utf8FromBinaryString(piece);
  }

  /** run.c `decode(prev, token)`, as bytes. */
  private runcDecode(prev: number, id: number): string {
    let piece = this.pieces[id];
    // following BOS, SentencePiece's decoder strips the dummy prefix's leading space
    if (prev === BOS_ID && piece.startsWith(' ')) piece = piece.slice(1);
    // raw byte pieces look like "<0x0A>"; run.c parses them with sscanf("<0x%02hhX>")
    const byteMatch = /^<0x([0-9A-Fa-f]{1,2})/.exec(piece);
    if (byteMatch) piece = String.fromCharCode(parseInt(byteMatch[1], 16));
    return piece;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new EngineError('BAD_INPUT', `token id ${id} is outside the vocabulary of ${this.source} (0..${this.vocabSize - 1})`);
    }
  }
}

/**
 * run.c's merge loop: while some adjacent pair's joined bytes are a vocab piece, replace the pair whose
 * piece has the highest score (the leftmost one on ties, since run.c needs a strictly greater score to
 * move on) by that piece. run.c rescans the whole sequence per merge, O(n²); here the pieces form a
 * linked list and candidate pairs sit in a max-heap keyed by (score, position of the pair's left piece).
 * A merged piece keeps its left piece's position, so list order stays position order and "leftmost"
 * is "smallest position". Candidates whose pieces changed since they were queued are skipped on pop;
 * every current pair was queued when it formed, so each pop that survives is exactly run.c's choice.
 */
export function mergePieces(
  initialIds: readonly number[],
  pieces: readonly string[],
  scores: Float32Array,
  idOfPiece: ReadonlyMap<string, number>,
): number[] {
  const count = initialIds.length;
  const ids = Int32Array.from(initialIds);
  const prev = new Int32Array(count);
  const next = new Int32Array(count);
  // bumped whenever a node's piece changes or it is merged away, invalidating queued pairs that use it
  const version = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }

  const queue = new MergeQueue();
  const queuePair = (left: number) => {
    const right = next[left];
    if (right < 0) return;
    const mergedId = idOfPiece.get(pieces[ids[left]] + pieces[ids[right]]);
    if (mergedId === undefined) return;
    const score = scores[mergedId];
    if (!(score > NO_MERGE_SCORE)) return;
    queue.push({ score, left, right, leftVersion: version[left], rightVersion: version[right], mergedId });
  };
  for (let i = 0; i + 1 < count; i++) queuePair(i);

  while (queue.size > 0) {
    const pair = queue.pop();
    if (version[pair.left] !== pair.leftVersion || version[pair.right] !== pair.rightVersion) continue;
    // the left node becomes the merged piece; the right node leaves the list
    ids[pair.left] = pair.mergedId;
    version[pair.left]++;
    version[pair.right]++;
    const after = next[pair.right];
    next[pair.left] = after;
    if (after >= 0) prev[after] = pair.left;
    if (prev[pair.left] >= 0) queuePair(prev[pair.left]);
    queuePair(pair.left);
  }

  // node 0 is never merged away (it is always a left node), so the list starts there
  const result: number[] = [];
  for (let node = count > 0 ? 0 : -1; node >= 0; node = next[node]) result.push(ids[node]);
  return result;
}

interface MergeCandidate {
  score: number;
  /** Node index of the pair's left piece, which is also its original position. */
  left: number;
  right: number;
  leftVersion: number;
  rightVersion: number;
  mergedId: number;
}

/**
 * Binary max-heap of merge candidates: higher score first, then smaller (leftmost) position. Candidates
 * are stored field by field in typed arrays (a long text queues millions of them).
 */
class MergeQueue {
  size = 0;
  private score = new Float64Array(1024);
  private left = new Int32Array(1024);
  private right = new Int32Array(1024);
  private leftVersion = new Int32Array(1024);
  private rightVersion = new Int32Array(1024);
  private mergedId = new Int32Array(1024);

  push(c: MergeCandidate): void {
    if (this.size === this.score.length) this.grow();
    // sift up: move parents down until c's place is found
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(c.score, c.left, parent)) break;
      this.move(parent, i);
      i = parent;
    }
    this.put(i, c);
  }

  pop(): MergeCandidate {
    const top = this.get(0);
    const last = this.get(--this.size);
    // sift down: move children up until last's place is found
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && this.before(this.score[child + 1], this.left[child + 1], child)) child++;
      if (this.before(last.score, last.left, child)) break;
      this.move(child, i);
      i = child;
    }
    if (this.size > 0) this.put(i, last);
    return top;
  }

  /** Whether a candidate (score, left) comes before the one in slot j. */
  private before(score: number, left: number, j: number): boolean {
    return score > this.score[j] || (score === this.score[j] && left < this.left[j]);
  }

  private get(i: number): MergeCandidate {
    return {
      score: this.score[i],
      left: this.left[i],
      right: this.right[i],
      leftVersion: this.leftVersion[i],
      rightVersion: this.rightVersion[i],
      mergedId: this.mergedId[i],
    };
  }

  private put(i: number, c: MergeCandidate): void {
    this.score[i] = c.score;
    this.left[i] = c.left;
    this.right[i] = c.right;
    this.leftVersion[i] = c.leftVersion;
    this.rightVersion[i] = c.rightVersion;
    this.mergedId[i] = c.mergedId;
  }

  private move(from: number, to: number): void {
    this.score[to] = this.score[from];
    this.left[to] = this.left[from];
    this.right[to] = this.right[from];
    this.leftVersion[to] = this.leftVersion[from];
    this.rightVersion[to] = this.rightVersion[from];
    this.mergedId[to] = this.mergedId[from];
  }

  private grow(): void {
    const capacity = this.score.length * 2;
    const score = new Float64Array(capacity);
    score.set(this.score);
    this.score = score;
    this.left = grownInt32(this.left, capacity);
    this.right = grownInt32(this.right, capacity);
    this.leftVersion = grownInt32(this.leftVersion, capacity);
    this.rightVersion = grownInt32(this.rightVersion, capacity);
    this.mergedId = grownInt32(this.mergedId, capacity);
  }
}

function grownInt32(values: Int32Array, capacity: number): Int32Array<ArrayBuffer> {
  const grown = new Int32Array(capacity);
  grown.set(values);
  return grown;
}

function binaryString(bytes: Uint8Array, start: number, length: number): string {
  let s = '';
  for (let i = start; i < start + length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** The UTF-8 bytes of one code point, as a binary string. */
function utf8BinaryString(codePoint: number): string {
  if (codePoint < 0x80) return String.fromCharCode(codePoint);
  if (codePoint < 0x800) return String.fromCharCode(0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f));
  if (codePoint < 0x10000) {
    return String.fromCharCode(0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f));
  }
  return String.fromCharCode(
    0xf0 | (codePoint >> 18),
    0x80 | ((codePoint >> 12) & 0x3f),
    0x80 | ((codePoint >> 6) & 0x3f),
    0x80 | (codePoint & 0x3f),
  );
}

/** Decodes bytes held as a binary string; invalid sequences become U+FFFD. */
function utf8FromBinaryString(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** C's isprint() in the "C" locale run.c runs under. */
function isPrintableAscii(byte: number): boolean {
  return byte >= 0x20 && byte <= 0x7e;
}

/** C's isspace(): space, \t, \n, \v, \f, \r. */
function isCSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}
