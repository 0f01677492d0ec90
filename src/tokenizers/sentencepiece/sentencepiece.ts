// A SentencePiece processor written from the behaviour of the reference library (0.1.9x):
// normalizer (identity or a precompiled charsmap, dummy prefix, extra-whitespace removal,
// whitespace escaping to U+2581), the Unigram model (Viterbi over the pieces, with the C++ code's
// double / float32 arithmetic so equal-score ties break the same way), BPE, CHAR and WORD models,
// byte fallback for unknown characters (<0xNN> pieces) and decoding.

import type { TokenSurface } from "../offsets.js";
import { CodePointTrie, decodeUtf8Strict, toCodePoints, utf8Length, wellFormed } from "../trie.js";
import { PrecompiledCharsmap } from "./charsmap.js";
import {
  PieceType,
  parseSentencePieceModel,
  type SpmModel,
  SpmModelType,
  type SpmNormalizerSpec,
} from "./model.js";

const SPACE_SYMBOL = "\u2581";
const UNK_PENALTY = 10;
const FLT_MIN = 1.1754943508222875e-38;
const f32 = Math.fround;

/** Normalizer of one `NormalizerSpec` (SentencePiece's `normalizer::Normalizer`). */
export class SpmNormalizer {
  private readonly charsmap?: PrecompiledCharsmap;
  private readonly encoder = new TextEncoder();

  constructor(
    readonly spec: SpmNormalizerSpec,
    private readonly treatWhitespaceAsSuffix = false,
    /** user-defined symbols are copied verbatim, never normalized */
    private readonly userDefined?: CodePointTrie,
    file = "<model>",
  ) {
    if (spec.precompiledCharsmap.length > 0)
      this.charsmap = new PrecompiledCharsmap(spec.precompiledCharsmap, file);
  }

  /** Splits the text into normalized chunks, one per consumed source character or rule. */
  private chunks(text: string): string[] {
    const out: string[] = [];
    if (this.charsmap === undefined && this.userDefined === undefined) {
      for (const ch of text) out.push(ch); // identity: each character stands for itself
      return out;
    }
    const cps = toCodePoints(text);
    // UTF-8 byte offsets of each code point, so rules (byte keys) and characters stay aligned.
    const starts = new Int32Array(cps.length + 1);
    let total = 0;
    for (let i = 0; i < cps.length; i++) {
      starts[i] = total;
      total += utf8Length(cps[i]);
    }
    starts[cps.length] = total;
    const utf8 = this.encoder.encode(wellFormed(text));
    let i = 0;
    while (i < cps.length) {
      if (this.userDefined) {
        const m = this.userDefined.longestPrefix(cps, i);
        if (m) {
          out.push(String.fromCodePoint(...cps.subarray(i, m.end)));
          i = m.end;
          continue;
        }
      }
      const rule = this.charsmap?.match(utf8, starts[i], total);
      if (rule) {
        out.push(rule[1]);
        // a rule's key is made of whole characters: advance to the character that follows it
        const endByte = starts[i] + rule[0];
        while (i < cps.length && starts[i] < endByte) i++;
        continue;
      }
      out.push(String.fromCodePoint(cps[i]));
      i++;
    }
    return out;
  }

  /** The normalized text, as SentencePiece's `Normalizer::Normalize`. */
  normalize(text: string): string {
    const spec = this.spec;
    if (text.length === 0) return "";
    const chunks = this.chunks(text);
    let k = 0;
    // leading whitespace is dropped
    if (spec.removeExtraWhitespaces) while (k < chunks.length && chunks[k] === " ") k++;
    if (k === chunks.length) return "";
    const space = spec.escapeWhitespaces ? SPACE_SYMBOL : " ";
    const parts: string[] = [];
    if (!this.treatWhitespaceAsSuffix && spec.addDummyPrefix) parts.push(space);
    let isPrevSpace = spec.removeExtraWhitespaces;
    for (; k < chunks.length; k++) {
      let sp = chunks[k];
      if (isPrevSpace) {
        let s = 0;
        while (s < sp.length && sp.charCodeAt(s) === 0x20) s++;
        sp = sp.slice(s);
      }
      if (sp.length > 0) {
        parts.push(spec.escapeWhitespaces ? sp.replaceAll(" ", SPACE_SYMBOL) : sp);
        isPrevSpace = sp.endsWith(" ");
      }
      if (!spec.removeExtraWhitespaces) isPrevSpace = false;
    }
    let normalized = parts.join("");
    if (spec.removeExtraWhitespaces) {
      while (normalized.endsWith(space)) normalized = normalized.slice(0, normalized.length - space.length);
    }
    if (this.treatWhitespaceAsSuffix && spec.addDummyPrefix) normalized += space;
    return normalized;
  }
}

/** One output piece of the model: its surface in the normalized text and its id. */
export interface SpmPieceOut {
  piece: string;
  id: number;
}

/** A loaded SentencePiece model that encodes text to ids and decodes ids back. */
export class SentencePieceProcessor {
  readonly model: SpmModel;
  readonly normalizer: SpmNormalizer;
  private readonly denormalizer?: SpmNormalizer;
  /** NORMAL, USER_DEFINED and UNUSED pieces: what the segmentation can produce */
  private readonly trie: CodePointTrie;
  /** every piece (reserved ones included), for pieceToId */
  private readonly pieceIds = new Map<string, number>();
  private readonly scores: Float32Array;
  private readonly types: Uint8Array;
  /** UTF-8 length of each piece (user-defined symbols are scored by length) */
  private readonly byteLengths: Int32Array;
  private readonly byteIds = new Int32Array(256).fill(-1);
  readonly unkId: number;
  private readonly minScore: number;
  private readonly maxScore: number;

  constructor(model: SpmModel, file = "<model>") {
    this.model = model;
    const { pieces, trainerSpec } = model;
    const n = pieces.length;
    this.scores = new Float32Array(n);
    this.types = new Uint8Array(n);
    this.byteLengths = new Int32Array(n);
    const segmentable: Array<[string, number]> = [];
    const userDefined: Array<[string, number]> = [];
    let unkId = -1;
    let minScore = Number.POSITIVE_INFINITY;
    let maxScore = FLT_MIN; // the C++ code starts from FLT_MIN (not -FLT_MAX); kept for identical scores
    for (let i = 0; i < n; i++) {
      const p = pieces[i];
      this.scores[i] = p.score;
      this.types[i] = p.type;
      this.byteLengths[i] = Buffer.byteLength(p.piece, "utf8");
      if (this.pieceIds.has(p.piece))
        throw new Error(`${file}: piece ${JSON.stringify(p.piece)} is defined twice`);
      this.pieceIds.set(p.piece, i);
      if (p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED || p.type === PieceType.UNUSED) {
        segmentable.push([p.piece, i]);
      }
      if (p.type === PieceType.USER_DEFINED) userDefined.push([p.piece, i]);
      if (p.type === PieceType.UNKNOWN) {
        if (unkId >= 0) throw new Error(`${file}: more than one UNKNOWN piece`);
        unkId = i;
      }
      if (p.type === PieceType.NORMAL) {
        minScore = Math.min(minScore, p.score);
        maxScore = Math.max(maxScore, p.score);
      }
      if (p.type === PieceType.BYTE) {
        const m = /^<0x([0-9A-F]{2})>$/.exec(p.piece);
        if (!m)
          throw new Error(`${file}: byte piece #${i} ${JSON.stringify(p.piece)} is not of the form <0xNN>`);
        this.byteIds[Number.parseInt(m[1], 16)] = i;
      }
    }
    if (unkId < 0) throw new Error(`${file}: the model defines no UNKNOWN piece`);
    if (trainerSpec.byteFallback && this.byteIds.includes(-1)) {
      throw new Error(`${file}: byte_fallback is on but the 256 <0xNN> pieces are not all present`);
    }
    this.unkId = unkId;
    this.minScore = minScore === Number.POSITIVE_INFINITY ? 0 : minScore;
    this.maxScore = maxScore;
    this.trie = new CodePointTrie(segmentable);
    const userTrie = userDefined.length > 0 ? new CodePointTrie(userDefined) : undefined;
    this.normalizer = new SpmNormalizer(
      model.normalizerSpec,
      trainerSpec.treatWhitespaceAsSuffix,
      userTrie,
      file,
    );
    if (model.denormalizerSpec && model.denormalizerSpec.precompiledCharsmap.length > 0) {
      this.denormalizer = new SpmNormalizer(model.denormalizerSpec, false, undefined, file);
    }
  }

  /** Reads a `.model` file's bytes. */
  static fromBytes(bytes: Uint8Array, file = "<model>"): SentencePieceProcessor {
    return new SentencePieceProcessor(parseSentencePieceModel(bytes, file), file);
  }

  get vocabSize(): number {
    return this.model.pieces.length;
  }

  idToPiece(id: number): string | undefined {
    return this.model.pieces[id]?.piece;
  }

  /** The id of a piece, or undefined (SentencePiece itself would answer unk). */
  pieceToId(piece: string): number | undefined {
    return this.pieceIds.get(piece);
  }

  isControl(id: number): boolean {
    return this.types[id] === PieceType.CONTROL;
  }

  isByte(id: number): boolean {
    return this.types[id] === PieceType.BYTE;
  }

  /** The normalized text a piece stands for (see tokenizer-offsets.ts). */
  surface(id: number): TokenSurface {
    if (this.isControl(id)) return "special";
    if (id === this.unkId) return "unknown";
    const piece = this.idToPiece(id);
    if (piece === undefined) return "unknown";
    if (this.isByte(id)) return Uint8Array.of(Number.parseInt(piece.slice(3, 5), 16));
    return Buffer.from(piece, "utf8");
  }

  /** Pieces and ids of a text, as `SentencePieceProcessor::Encode` (no BOS/EOS). */
  encodePieces(text: string): SpmPieceOut[] {
    const normalized = this.normalizer.normalize(wellFormed(text));
    if (normalized.length === 0) return [];
    const cps = toCodePoints(normalized);
    let segments: SpmPieceOut[];
    switch (this.model.trainerSpec.modelType) {
      case SpmModelType.UNIGRAM:
        segments = this.encodeUnigram(cps);
        break;
      case SpmModelType.BPE:
        segments = this.encodeBpe(cps);
        break;
      case SpmModelType.CHAR:
        segments = this.encodeChar(cps);
        break;
      case SpmModelType.WORD:
        segments = this.encodeWord(normalized);
        break;
      default:
        throw new Error(`unsupported SentencePiece model_type ${this.model.trainerSpec.modelType}`);
    }
    // Unknown pieces: decomposed into UTF-8 byte pieces with byte fallback, else runs are merged into one.
    const out: SpmPieceOut[] = [];
    let prevUnk = false;
    for (const s of segments) {
      const isUnk = s.id === this.unkId;
      if (isUnk && this.model.trainerSpec.byteFallback) {
        for (const b of Buffer.from(s.piece, "utf8")) {
          out.push({ piece: this.model.pieces[this.byteIds[b]].piece, id: this.byteIds[b] });
        }
      } else if (isUnk && prevUnk) {
        out[out.length - 1].piece += s.piece;
      } else {
        out.push({ ...s });
      }
      prevUnk = isUnk;
    }
    return out;
  }

  /** Ids of a text (no BOS/EOS). */
  encode(text: string): number[] {
    return this.encodePieces(text).map((p) => p.id);
  }

  /**
   * Viterbi segmentation (SentencePiece's "optimized" encoder): for every end position keep the best
   * path; candidates are visited by start position then length, and only a strictly better score
   * replaces the kept one. Path scores are stored as float32 like the C++ code, so ties resolve alike.
   */
  private encodeUnigram(cps: Uint32Array): SpmPieceOut[] {
    const n = cps.length;
    const bestScore = new Float64Array(n + 1);
    const bestStart = new Int32Array(n + 1).fill(-1);
    const bestId = new Int32Array(n + 1).fill(-1);
    const unkScore = f32(this.minScore - UNK_PENALTY);
    const trie = this.trie;
    for (let start = 0; start < n; start++) {
      const base = bestScore[start];
      let node = trie.root;
      let hasSingle = false;
      let bytes = 0;
      for (let end = start; end < n; end++) {
        node = trie.child(node, cps[end]);
        if (node < 0) break;
        bytes += utf8Length(cps[end]);
        const id = trie.value(node);
        if (id < 0) continue;
        const type = this.types[id];
        if (type === PieceType.UNUSED) continue;
        // In the C++ code the piece score is a double (the ?: with the user-defined bonus, which is
        // double, makes it one), so the candidate is summed in double and compared with the stored
        // float32 best; reproducing that exactly decides equal-score ties ("・・" + "・" vs "・" + "・・").
        const score = type === PieceType.USER_DEFINED ? f32(bytes * this.maxScore) - 0.1 : this.scores[id];
        const cand = score + base;
        const target = end + 1;
        if (bestStart[target] === -1 || cand > bestScore[target]) {
          bestScore[target] = f32(cand);
          bestStart[target] = start;
          bestId[target] = id;
        }
        if (end === start) hasSingle = true;
      }
      if (!hasSingle) {
        const cand = f32(unkScore + base);
        const target = start + 1;
        if (bestStart[target] === -1 || cand > bestScore[target]) {
          bestScore[target] = cand;
          bestStart[target] = start;
          bestId[target] = this.unkId;
        }
      }
    }
    const out: SpmPieceOut[] = [];
    for (let end = n; end > 0; end = bestStart[end]) {
      out.push({ piece: String.fromCodePoint(...cps.subarray(bestStart[end], end)), id: bestId[end] });
    }
    return out.reverse();
  }

  /** BPE: repeatedly merge the adjacent pair whose merged piece has the best score (leftmost on ties). */
  private encodeBpe(cps: Uint32Array): SpmPieceOut[] {
    interface Sym {
      text: string;
      prev: number;
      next: number;
      freeze: boolean;
    }
    const syms: Sym[] = [];
    const userTrie = this.userDefinedTrie();
    for (let i = 0; i < cps.length; ) {
      const m = userTrie?.longestPrefix(cps, i);
      const end = m ? m.end : i + 1;
      syms.push({
        text: String.fromCodePoint(...cps.subarray(i, end)),
        prev: syms.length - 1,
        next: end < cps.length ? syms.length + 1 : -1,
        freeze: m !== undefined,
      });
      i = end;
    }
    interface Pair {
      left: number;
      right: number;
      score: number;
      size: number;
    }
    // max-heap on score, then smaller left index
    const heap = new Heap<Pair>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
    const revMerge = new Map<string, [string, string]>();
    const addPair = (left: number, right: number): void => {
      if (left < 0 || right < 0 || syms[left].freeze || syms[right].freeze) return;
      const text = syms[left].text + syms[right].text;
      const id = this.pieceIds.get(text);
      const type = id === undefined ? 0 : this.types[id];
      if (
        id === undefined ||
        !(type === PieceType.NORMAL || type === PieceType.USER_DEFINED || type === PieceType.UNUSED)
      )
        return;
      heap.push({ left, right, score: this.scores[id], size: text.length });
      if (type === PieceType.UNUSED) revMerge.set(text, [syms[left].text, syms[right].text]);
    };
    for (let i = 1; i < syms.length; i++) addPair(i - 1, i);
    for (let top = heap.pop(); top !== undefined; top = heap.pop()) {
      const l = syms[top.left];
      const r = syms[top.right];
      if (l.text === "" || r.text === "" || l.text.length + r.text.length !== top.size) continue;
      l.text += r.text;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = top.left;
      r.text = "";
      addPair(l.prev, top.left);
      addPair(top.left, l.next);
    }
    const out: SpmPieceOut[] = [];
    const resegment = (w: string): void => {
      const id = this.pieceIds.get(w);
      if (id !== undefined && this.types[id] === PieceType.UNUSED) {
        const parts = revMerge.get(w);
        if (parts) {
          resegment(parts[0]);
          resegment(parts[1]);
          return;
        }
      }
      out.push({ piece: w, id: this.segmentId(w) });
    };
    if (syms.length > 0) for (let i = 0; i !== -1; i = syms[i].next) resegment(syms[i].text);
    return out;
  }

  private encodeChar(cps: Uint32Array): SpmPieceOut[] {
    const out: SpmPieceOut[] = [];
    const userTrie = this.userDefinedTrie();
    for (let i = 0; i < cps.length; ) {
      const m = userTrie?.longestPrefix(cps, i);
      const end = m ? m.end : i + 1;
      const w = String.fromCodePoint(...cps.subarray(i, end));
      out.push({ piece: w, id: this.segmentId(w) });
      i = end;
    }
    return out;
  }

  /** WORD model: split before each U+2581 (the normalized text always starts a word). */
  private encodeWord(normalized: string): SpmPieceOut[] {
    const words: string[] = [];
    if (this.model.trainerSpec.treatWhitespaceAsSuffix) {
      let cur = "";
      for (const ch of normalized) {
        cur += ch;
        if (ch === SPACE_SYMBOL) {
          words.push(cur);
          cur = "";
        }
      }
      if (cur !== "") words.push(cur);
    } else {
      for (const ch of normalized) {
        if (words.length === 0 || ch === SPACE_SYMBOL) words.push(ch);
        else words[words.length - 1] += ch;
      }
    }
    return words.map((w) => ({ piece: w, id: this.segmentId(w) }));
  }

  /** Id of a segment produced by a model: the piece's id, or unk (reserved pieces are looked up too). */
  private segmentId(w: string): number {
    return this.pieceIds.get(w) ?? this.unkId;
  }

  private userDefinedCache?: CodePointTrie | null;
  private userDefinedTrie(): CodePointTrie | undefined {
    if (this.userDefinedCache === undefined) {
      const entries: Array<[string, number]> = [];
      this.model.pieces.forEach((p, i) => {
        if (p.type === PieceType.USER_DEFINED) entries.push([p.piece, i]);
      });
      this.userDefinedCache = entries.length > 0 ? new CodePointTrie(entries) : null;
    }
    return this.userDefinedCache ?? undefined;
  }

  /** Text of ids, as `SentencePieceProcessor::Decode`: control pieces vanish, byte pieces are re-assembled. */
  decode(ids: readonly number[]): string {
    const spec = this.model.normalizerSpec;
    const unkSurface = this.model.trainerSpec.unkSurface;
    let text = "";
    let bytes: number[] = [];
    let isBosWs = true;
    let bosWsSeen = false;
    const flush = (): void => {
      if (bytes.length > 0) text += decodeUtf8Strict(bytes);
      bytes = [];
    };
    for (const id of ids) {
      const piece = this.idToPiece(id);
      if (piece === undefined)
        throw new RangeError(`token id ${id} is out of range (vocabulary size ${this.vocabSize})`);
      if (this.isByte(id)) {
        bytes.push(Number.parseInt(piece.slice(3, 5), 16));
        continue;
      }
      flush();
      if (bosWsSeen || text.length > 0) isBosWs = false;
      bosWsSeen = false;
      let surface: string;
      if (this.isControl(id)) surface = "";
      else if (id === this.unkId) surface = unkSurface;
      else {
        let p = piece;
        if (isBosWs && (spec.addDummyPrefix || spec.removeExtraWhitespaces) && p.startsWith(SPACE_SYMBOL)) {
          p = p.slice(SPACE_SYMBOL.length);
          // with extra-whitespace removal every leading space goes, so keep looking
          bosWsSeen = !spec.removeExtraWhitespaces;
        }
        surface = p.replaceAll(SPACE_SYMBOL, " ");
      }
      text += surface;
    }
    flush();
    return this.denormalizer ? this.denormalizer.normalize(text) : text;
  }
}

/** A small binary heap; `before(a, b)` is true when a must come out first. */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as T;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }

  get size(): number {
    return this.items.length;
  }
}

export { Heap };
