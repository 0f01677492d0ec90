// The models of a tokenizer.json (Unigram, BPE, WordPiece, WordLevel, each with the Rust `tokenizers`
// library's rules for unknown characters and byte fallback) and its post-processor, reduced to the
// special tokens put around one sequence.
import { Heap } from "../sentencepiece/sentencepiece.js";
import { CodePointTrie, toCodePoints } from "../trie.js";
import { fail, field, isObj, isStr, type Json, optBool, optStr, utf8 } from "./text.js";

/** The special tokens a post-processor puts around one sequence. */
export interface SingleTemplate {
  /** ids before the sequence, ids after it, and their token type ids */
  prefix: number[];
  suffix: number[];
  prefixTypes: number[];
  suffixTypes: number[];
  /** token type id of the sequence itself */
  sequenceType: number;
}

export interface Model {
  tokenize(word: string): number[];
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  readonly size: number;
  /** the unknown token's id, when the model has one */
  readonly unkId?: number;
}

// ---------------------------------------------------------------------------------------------
// Models

function byteTokenName(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/** Vocabulary as token → id plus id → token. */
class Vocab {
  readonly byToken = new Map<string, number>();
  readonly byId: string[] = [];
  set(token: string, id: number): void {
    this.byToken.set(token, id);
    this.byId[id] = token;
  }
}

/** What the four models share: a vocabulary and the lookups on it. */
abstract class VocabModel {
  constructor(protected readonly vocab: Vocab) {}
  abstract tokenize(word: string): number[];
  get size(): number {
    return this.vocab.byToken.size;
  }
  idToToken(id: number): string | undefined {
    return this.vocab.byId[id];
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.byToken.get(token);
  }
}

function readVocabObject(v: unknown, where: string): Vocab {
  if (!isObj(v)) fail(where, "expected an object mapping tokens to ids");
  const vocab = new Vocab();
  for (const [token, id] of Object.entries(v as Json)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0)
      fail(`${where}[${JSON.stringify(token)}]`, "expected an id");
    vocab.set(token, id);
  }
  return vocab;
}

/** HF Unigram: Viterbi over all vocabulary entries in float64, unknown runs fused, then byte fallback. */
class UnigramModel extends VocabModel implements Model {
  private readonly scores: Float64Array;
  private readonly trie: CodePointTrie;
  private readonly minScore: number;
  readonly unkId?: number;
  private readonly byteFallback: boolean;

  constructor(o: Json, where: string) {
    super(new Vocab());
    const list = field<unknown[]>(o, "vocab", where, Array.isArray, "an array of [piece, score]");
    this.scores = new Float64Array(list.length);
    let minScore = Number.POSITIVE_INFINITY;
    list.forEach((e, id) => {
      if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "number") {
        fail(`${where}.vocab[${id}]`, "expected [piece, score]");
      }
      this.vocab.set(e[0], id);
      this.scores[id] = e[1];
      minScore = Math.min(minScore, e[1]);
    });
    this.minScore = minScore;
    const unk = o.unk_id;
    if (typeof unk === "number") {
      if (unk < 0 || unk >= list.length) fail(`${where}.unk_id`, `${unk} is outside the vocabulary`);
      this.unkId = unk;
    }
    this.byteFallback = optBool(o, "byte_fallback", false);
    // a repeated piece maps to its last id, as the Rust HashMap insert does
    this.trie = new CodePointTrie(this.vocab.byToken.entries());
  }

  // A piece listed twice keeps both ids, as the Rust model's vocabulary Vec does.
  override get size(): number {
    return this.vocab.byId.length;
  }

  private segment(cps: Uint32Array): string[] {
    const n = cps.length;
    const bestScore = new Float64Array(n + 1);
    const bestStart = new Int32Array(n + 1).fill(-1);
    const bestId = new Int32Array(n + 1).fill(-1);
    const unkScore = this.minScore - 10;
    const trie = this.trie;
    for (let start = 0; start < n; start++) {
      const base = bestScore[start];
      let node = trie.root;
      let hasSingle = false;
      for (let end = start; end < n; end++) {
        node = trie.child(node, cps[end]);
        if (node < 0) break;
        const id = trie.value(node);
        if (id < 0) continue;
        const cand = this.scores[id] + base;
        if (bestStart[end + 1] === -1 || cand > bestScore[end + 1]) {
          bestScore[end + 1] = cand;
          bestStart[end + 1] = start;
          bestId[end + 1] = id;
        }
        if (end === start) hasSingle = true;
      }
      if (!hasSingle && this.unkId !== undefined) {
        const cand = unkScore + base;
        if (bestStart[start + 1] === -1 || cand > bestScore[start + 1]) {
          bestScore[start + 1] = cand;
          bestStart[start + 1] = start;
          bestId[start + 1] = this.unkId;
        }
      }
    }
    // backtrack; consecutive unknown pieces are fused into one string
    const out: string[] = [];
    let unkRun = "";
    for (let end = n; end > 0; ) {
      const start = bestStart[end];
      if (start < 0) throw new Error("Unigram: no segmentation (the model has no unk_id)");
      const text = String.fromCodePoint(...cps.subarray(start, end));
      if (bestId[end] === this.unkId) unkRun = text + unkRun;
      else {
        if (unkRun) out.push(unkRun);
        unkRun = "";
        out.push(text);
      }
      end = start;
    }
    if (unkRun) out.push(unkRun);
    return out.reverse();
  }

  tokenize(word: string): number[] {
    if (word.length === 0) return [];
    const ids: number[] = [];
    for (const piece of this.segment(toCodePoints(word))) {
      const id = this.vocab.byToken.get(piece);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      if (this.byteFallback) {
        const bytes = [...utf8.encode(piece)].map((b) => this.vocab.byToken.get(byteTokenName(b)));
        if (bytes.every((b) => b !== undefined)) {
          ids.push(...(bytes as number[]));
          continue;
        }
      }
      if (this.unkId === undefined)
        throw new Error(`Unigram: ${JSON.stringify(piece)} is unknown and the model has no unk_id`);
      ids.push(this.unkId);
    }
    return ids;
  }
}

/** HF BPE: characters (with byte fallback / unk), then merges by rank, leftmost first. */
class BpeModel extends VocabModel implements Model {
  /** (left id, right id) → [rank, merged id] */
  private readonly merges = new Map<number, [number, number]>();
  readonly unkId?: number;
  private readonly prefix?: string;
  private readonly suffix?: string;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, number[]>();

  constructor(o: Json, where: string) {
    super(readVocabObject(o.vocab, `${where}.vocab`));
    const unk = optStr(o, "unk_token");
    if (unk !== undefined) {
      this.unkId = this.vocab.byToken.get(unk);
      if (this.unkId === undefined)
        fail(`${where}.unk_token`, `${JSON.stringify(unk)} is not in the vocabulary`);
    }
    this.prefix = optStr(o, "continuing_subword_prefix") || undefined;
    this.suffix = optStr(o, "end_of_word_suffix") || undefined;
    this.fuseUnk = optBool(o, "fuse_unk", false);
    this.byteFallback = optBool(o, "byte_fallback", false);
    this.ignoreMerges = optBool(o, "ignore_merges", false);
    const merges = field<unknown[]>(o, "merges", where, Array.isArray, "an array");
    const prefixLen = this.prefix?.length ?? 0;
    merges.forEach((m, rank) => {
      let pair: [string, string];
      if (typeof m === "string") {
        const k = m.indexOf(" ", 1);
        if (k < 0) fail(`${where}.merges[${rank}]`, `expected "a b", got ${JSON.stringify(m)}`);
        pair = [m.slice(0, k), m.slice(k + 1)];
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
        pair = [m[0], m[1]];
      } else fail(`${where}.merges[${rank}]`, "expected a pair of tokens");
      const a = this.vocab.byToken.get(pair[0]);
      const b = this.vocab.byToken.get(pair[1]);
      const merged = this.vocab.byToken.get(pair[0] + pair[1].slice(prefixLen));
      if (a === undefined || b === undefined || merged === undefined) {
        fail(`${where}.merges[${rank}]`, `merge ${JSON.stringify(pair)} uses a token outside the vocabulary`);
      }
      this.merges.set(a * 0x400000 + b, [rank, merged]);
    });
  }

  tokenize(word: string): number[] {
    if (word.length === 0) return [];
    if (this.ignoreMerges) {
      const id = this.vocab.byToken.get(word);
      if (id !== undefined) return [id];
    }
    const cached = this.cache.get(word);
    if (cached) return cached;
    const ids = this.mergeWord(word);
    if (word.length < 256 && this.cache.size < 10000) this.cache.set(word, ids);
    return ids;
  }

  private mergeWord(word: string): number[] {
    const chars = [...word];
    const syms: number[] = [];
    let unk: number | undefined;
    let unkPending = false;
    chars.forEach((ch, k) => {
      let s = ch;
      if (k > 0 && this.prefix) s = this.prefix + s;
      if (k === chars.length - 1 && this.suffix) s += this.suffix;
      const id = this.vocab.byToken.get(s);
      if (id !== undefined) {
        if (unkPending) syms.push(unk as number);
        unkPending = false;
        syms.push(id);
        return;
      }
      if (this.byteFallback) {
        const bytes = [...utf8.encode(s)].map((b) => this.vocab.byToken.get(byteTokenName(b)));
        if (bytes.every((b) => b !== undefined)) {
          syms.push(...(bytes as number[]));
          return;
        }
      }
      if (this.unkId !== undefined) {
        if (unkPending && !this.fuseUnk) syms.push(unk as number);
        unk = this.unkId;
        unkPending = true;
      }
    });
    if (unkPending) syms.push(unk as number);
    return this.mergeAll(syms);
  }

  private mergeAll(ids: number[]): number[] {
    const n = ids.length;
    const c = Int32Array.from(ids);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // min-heap on (rank, position)
    const heap = new Heap<[number, number, number]>((x, y) => x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]));
    const pushPair = (pos: number): void => {
      const nx = next[pos];
      if (pos < 0 || nx < 0) return;
      const m = this.merges.get(c[pos] * 0x400000 + c[nx]);
      if (m) heap.push([m[0], pos, m[1]]);
    };
    for (let i = 0; i + 1 < n; i++) pushPair(i);
    for (let top = heap.pop(); top !== undefined; top = heap.pop()) {
      const [, pos, newId] = top;
      if (!alive[pos] || next[pos] < 0) continue;
      const right = next[pos];
      const m = this.merges.get(c[pos] * 0x400000 + c[right]);
      if (!m || m[1] !== newId) continue; // stale entry
      c[pos] = newId;
      alive[right] = 0;
      next[pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = pos;
      if (prev[pos] >= 0) pushPair(prev[pos]);
      pushPair(pos);
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (alive[i]) out.push(c[i]);
    return out;
  }
}

/** HF WordPiece: greedy longest match first, continuation pieces prefixed (`##`). */
class WordPieceModel extends VocabModel implements Model {
  private readonly trie: CodePointTrie;
  private readonly prefixNode: number;
  readonly unkId: number;
  private readonly maxChars: number;

  constructor(o: Json, where: string) {
    super(readVocabObject(o.vocab, `${where}.vocab`));
    const unk = optStr(o, "unk_token") ?? "[UNK]";
    const unkId = this.vocab.byToken.get(unk);
    if (unkId === undefined) fail(`${where}.unk_token`, `${JSON.stringify(unk)} is not in the vocabulary`);
    this.unkId = unkId;
    this.maxChars = typeof o.max_input_chars_per_word === "number" ? o.max_input_chars_per_word : 100;
    const prefix = optStr(o, "continuing_subword_prefix") ?? "##";
    this.trie = new CodePointTrie(this.vocab.byToken.entries());
    let node = this.trie.root;
    for (const cp of toCodePoints(prefix)) node = node >= 0 ? this.trie.child(node, cp) : -1;
    this.prefixNode = node;
  }

  tokenize(word: string): number[] {
    const cps = toCodePoints(word);
    if (cps.length === 0) return [];
    if (cps.length > this.maxChars) return [this.unkId];
    const ids: number[] = [];
    for (let start = 0; start < cps.length; ) {
      const from = start === 0 ? this.trie.root : this.prefixNode;
      const m = from >= 0 ? this.trie.longestPrefix(cps, start, from) : undefined;
      if (!m) return [this.unkId];
      ids.push(m.value);
      start = m.end;
    }
    return ids;
  }
}

/** HF WordLevel: the whole word or unk. */
class WordLevelModel extends VocabModel implements Model {
  readonly unkId?: number;
  constructor(o: Json, where: string) {
    super(readVocabObject(o.vocab, `${where}.vocab`));
    const unk = optStr(o, "unk_token");
    if (unk !== undefined) this.unkId = this.vocab.byToken.get(unk);
  }
  tokenize(word: string): number[] {
    const id = this.vocab.byToken.get(word) ?? this.unkId;
    if (id === undefined)
      throw new Error(`WordLevel: ${JSON.stringify(word)} is unknown and there is no unk_token`);
    return [id];
  }
}

export function buildModel(j: unknown, where: string): Model {
  if (!isObj(j)) fail(where, "expected an object");
  const o = j as Json;
  let type = optStr(o, "type");
  if (type === undefined) {
    // some older files omit the type
    if (Array.isArray(o.vocab)) type = "Unigram";
    else if (Array.isArray(o.merges)) type = "BPE";
    else if (o.continuing_subword_prefix !== undefined) type = "WordPiece";
    else type = "WordLevel";
  }
  switch (type) {
    case "Unigram":
      return new UnigramModel(o, where);
    case "BPE":
      return new BpeModel(o, where);
    case "WordPiece":
      return new WordPieceModel(o, where);
    case "WordLevel":
      return new WordLevelModel(o, where);
    default:
      fail(`${where}.type`, `unsupported model type ${JSON.stringify(type)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Post-processors (single sequence)

export function buildPostProcessor(
  j: unknown,
  where: string,
  tokenId: (t: string) => number | undefined,
): SingleTemplate | undefined {
  if (j === null || j === undefined) return undefined;
  if (!isObj(j)) fail(where, "expected an object");
  const o = j as Json;
  const type = field<string>(o, "type", where, isStr, "a string");
  const pairTok = (key: string): number => {
    const v = o[key];
    if (!Array.isArray(v) || typeof v[1] !== "number") fail(`${where}.${key}`, "expected [token, id]");
    return v[1] as number;
  };
  switch (type) {
    case "BertProcessing":
    case "RobertaProcessing":
      return {
        prefix: [pairTok("cls")],
        suffix: [pairTok("sep")],
        prefixTypes: [0],
        suffixTypes: [0],
        sequenceType: 0,
      };
    case "ByteLevel":
      return undefined;
    case "Sequence": {
      let result: SingleTemplate | undefined;
      field<unknown[]>(o, "processors", where, Array.isArray, "an array").forEach((p, k) => {
        const t = buildPostProcessor(p, `${where}.processors[${k}]`, tokenId);
        if (t) result = t;
      });
      return result;
    }
    case "TemplateProcessing": {
      const single = field<unknown[]>(o, "single", where, Array.isArray, "an array");
      const specials = isObj(o.special_tokens) ? (o.special_tokens as Json) : {};
      const t: SingleTemplate = { prefix: [], suffix: [], prefixTypes: [], suffixTypes: [], sequenceType: 0 };
      let seen = false;
      single.forEach((piece, k) => {
        const w = `${where}.single[${k}]`;
        if (!isObj(piece)) fail(w, "expected {Sequence} or {SpecialToken}");
        const p = piece as Json;
        if (isObj(p.Sequence)) {
          seen = true;
          t.sequenceType = ((p.Sequence as Json).type_id as number) ?? 0;
          return;
        }
        if (!isObj(p.SpecialToken)) fail(w, "expected {Sequence} or {SpecialToken}");
        const st = p.SpecialToken as Json;
        const name = field<string>(st, "id", w, isStr, "a token");
        const typeId = typeof st.type_id === "number" ? st.type_id : 0;
        const spec = specials[name] as Json | undefined;
        let ids: number[];
        if (spec && Array.isArray(spec.ids)) ids = spec.ids as number[];
        else {
          const id = tokenId(name);
          if (id === undefined) fail(w, `special token ${JSON.stringify(name)} is not defined`);
          ids = [id];
        }
        for (const id of ids) {
          (seen ? t.suffix : t.prefix).push(id);
          (seen ? t.suffixTypes : t.prefixTypes).push(typeId);
        }
      });
      return t;
    }
    default:
      fail(where, `unsupported post_processor type ${JSON.stringify(type)}`);
  }
}
