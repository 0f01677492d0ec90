// A reader for Hugging Face `tokenizer.json` files, written from the behaviour of the Rust
// `tokenizers` library: added tokens, normalizers, pre-tokenizers, the Unigram / BPE / WordPiece /
// WordLevel models (with byte fallback), post-processors (special tokens) and decoders.
// Only ids are produced (no offsets). Each component is a small function built from its JSON.

import { Heap } from "./sentencepiece.js";
import { PrecompiledCharsmap } from "./sentencepiece-charsmap.js";
import { CodePointTrie, toCodePoints, wellFormed } from "./tokenizer-trie.js";

type Json = Record<string, unknown>;

/** A tokenizer.json `added_tokens` entry. */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

/** A piece of text between pre-tokenization steps; `atStart` = it begins at offset 0 of the input. */
interface Split {
  text: string;
  atStart: boolean;
}

type Normalizer = (s: string) => string;
type PreTokenizer = (splits: Split[]) => Split[];
type Decoder = (tokens: string[]) => string[];

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

interface Model {
  tokenize(word: string): number[];
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  readonly size: number;
  /** the unknown token's id, when the model has one */
  readonly unkId?: number;
}

class JsonError extends Error {}

function fail(where: string, message: string): never {
  throw new JsonError(`${where}: ${message}`);
}

function field<T>(obj: Json, key: string, where: string, check: (v: unknown) => boolean, what: string): T {
  const v = obj[key];
  if (!check(v)) fail(`${where}.${key}`, `expected ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v as T;
}
const isStr = (v: unknown): boolean => typeof v === "string";
const isNum = (v: unknown): boolean => typeof v === "number";
const isObj = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);
const optBool = (obj: Json, key: string, dflt: boolean): boolean =>
  typeof obj[key] === "boolean" ? (obj[key] as boolean) : dflt;
const optStr = (obj: Json, key: string): string | undefined =>
  typeof obj[key] === "string" ? (obj[key] as string) : undefined;

// ---------------------------------------------------------------------------------------------
// Regular expressions: tokenizer.json patterns are Oniguruma (Ruby syntax) regexes.

/**
 * Translates an Oniguruma pattern to a JavaScript RegExp (global, unicode). `^`/`$` are line
 * anchors in Ruby syntax, hence the `m` flag; `(?i:...)` groups (unsupported by older V8)
 * become explicit case classes; `\A` and `\z` become look-arounds.
 */
export function onigRegExp(pattern: string, where: string): RegExp {
  let src = "";
  let i = 0;
  let flags = "gmu";
  if (pattern.startsWith("(?i)")) {
    flags += "i";
    i = 4;
  }
  const caseFold = (body: string): string =>
    body.replace(/\\.|\[(?:\\.|[^\]\\])*\]|[A-Za-z]/g, (m) =>
      m.length === 1 ? `[${m.toLowerCase()}${m.toUpperCase()}]` : m,
    );
  while (i < pattern.length) {
    if (pattern.startsWith("(?i:", i)) {
      // find the matching parenthesis
      let depth = 0;
      let j = i;
      for (; j < pattern.length; j++) {
        const c = pattern[j];
        if (c === "\\") {
          j++;
          continue;
        }
        if (c === "(") depth++;
        else if (c === ")" && --depth === 0) break;
      }
      src += `(?:${caseFold(pattern.slice(i + 4, j))})`;
      i = j + 1;
      continue;
    }
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) {
      const n = pattern[i + 1];
      if (n === "A") src += "(?<![\\s\\S])";
      else if (n === "z") src += "(?![\\s\\S])";
      else if (n === "Z") src += "(?=\\n?(?![\\s\\S]))";
      else if (n === "h") src += "[0-9a-fA-F]";
      else src += c + n;
      i += 2;
      continue;
    }
    src += c;
    i++;
  }
  try {
    return new RegExp(src, flags);
  } catch {
    try {
      return new RegExp(src, flags.replace("u", ""));
    } catch (err) {
      fail(where, `unsupported regular expression ${JSON.stringify(pattern)} (${(err as Error).message})`);
    }
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** A tokenizer.json `pattern` ({String} or {Regex}) as a global RegExp. */
function patternRegExp(p: unknown, where: string): RegExp {
  if (!isObj(p)) fail(where, "expected {String: ...} or {Regex: ...}");
  const o = p as Json;
  if (typeof o.String === "string") return new RegExp(escapeRegExp(o.String), "gu");
  if (typeof o.Regex === "string") return onigRegExp(o.Regex, where);
  fail(where, "expected {String: ...} or {Regex: ...}");
}

/** Segments of `s`: matched (true) and unmatched (false) spans, covering it all (HF `find_matches`). */
function findMatches(s: string, re: RegExp): Array<[number, number, boolean]> {
  if (s.length === 0) return [[0, 0, false]];
  const out: Array<[number, number, boolean]> = [];
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const start = m.index;
    const end = start + m[0].length;
    if (prev !== start) out.push([prev, start, false]);
    out.push([start, end, true]);
    prev = end;
    // an empty match: step over one character so the search moves on
    if (end === start) re.lastIndex = end + ((s.codePointAt(end) ?? 0) > 0xffff ? 2 : 1);
  }
  if (prev !== s.length) out.push([prev, s.length, false]);
  return out;
}

/** Spans of single characters satisfying `pred` (HF's `Fn(char) -> bool` pattern). */
function findCharMatches(s: string, pred: (ch: string) => boolean): Array<[number, number, boolean]> {
  if (s.length === 0) return [[0, 0, false]];
  const out: Array<[number, number, boolean]> = [];
  let last = 0;
  let i = 0;
  for (const ch of s) {
    if (pred(ch)) {
      if (last < i) out.push([last, i, false]);
      out.push([i, i + ch.length, true]);
      last = i + ch.length;
    }
    i += ch.length;
  }
  if (i > last) out.push([last, i, false]);
  return out;
}

type Behavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

/** Applies a split behaviour to the spans, returning the kept [start, end) pieces. */
function splitBy(spans: Array<[number, number, boolean]>, behavior: Behavior): Array<[number, number]> {
  switch (behavior) {
    case "Isolated":
      return spans.map(([a, b]) => [a, b]);
    case "Removed":
      return spans.filter((s) => !s[2]).map(([a, b]) => [a, b]);
    case "Contiguous": {
      const acc: Array<[number, number]> = [];
      let prevMatch = false;
      for (const [a, b, m] of spans) {
        if (m === prevMatch && acc.length > 0) acc[acc.length - 1][1] = b;
        else acc.push([a, b]);
        prevMatch = m;
      }
      return acc;
    }
    case "MergedWithPrevious": {
      const acc: Array<[number, number]> = [];
      let prevMatch = false;
      for (const [a, b, m] of spans) {
        if (m && !prevMatch && acc.length > 0) acc[acc.length - 1][1] = b;
        else acc.push([a, b]);
        prevMatch = m;
      }
      return acc;
    }
    case "MergedWithNext": {
      const acc: Array<[number, number]> = [];
      let prevMatch = false;
      for (let k = spans.length - 1; k >= 0; k--) {
        const [a, b, m] = spans[k];
        if (m && !prevMatch && acc.length > 0) acc[acc.length - 1][0] = a;
        else acc.push([a, b]);
        prevMatch = m;
      }
      return acc.reverse();
    }
  }
}

/** Splits every split with `spans`/`behavior`, dropping empty pieces. */
function splitAll(
  splits: Split[],
  spansOf: (s: string) => Array<[number, number, boolean]>,
  behavior: Behavior,
  invert = false,
): Split[] {
  const out: Split[] = [];
  for (const sp of splits) {
    let spans = spansOf(sp.text);
    if (invert) spans = spans.map(([a, b, m]) => [a, b, !m]);
    for (const [a, b] of splitBy(spans, behavior)) {
      if (b > a) out.push({ text: sp.text.slice(a, b), atStart: sp.atStart && a === 0 });
    }
  }
  return out;
}

// Character classes (Rust's char methods, via Unicode properties).
const RE_WHITESPACE = /^\p{White_Space}$/u;
const RE_PUNCT = /^\p{P}$/u;
const RE_ASCII_PUNCT = /^[!-/:-@[-`{-~]$/;
const RE_NUMERIC = /^\p{N}$/u;
const RE_OTHER = /^\p{C}$/u;
const RE_MARK = /\p{M}/gu;
const isWhitespace = (ch: string): boolean => RE_WHITESPACE.test(ch);
const isPunctuation = (ch: string): boolean => RE_ASCII_PUNCT.test(ch) || RE_PUNCT.test(ch);

// ---------------------------------------------------------------------------------------------
// Normalizers

function buildNormalizer(j: unknown, where: string): Normalizer | undefined {
  if (j === null || j === undefined) return undefined;
  if (!isObj(j)) fail(where, "expected an object");
  const o = j as Json;
  const type = field<string>(o, "type", where, isStr, "a string");
  switch (type) {
    case "Sequence": {
      const list = field<unknown[]>(o, "normalizers", where, Array.isArray, "an array").map((n, k) =>
        buildNormalizer(n, `${where}.normalizers[${k}]`),
      );
      return (s) => list.reduce((acc, n) => (n ? n(acc) : acc), s);
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return (s) => s.normalize(type);
    case "Lowercase":
      return (s) => s.toLowerCase();
    case "Strip": {
      const left = optBool(o, "strip_left", true);
      const right = optBool(o, "strip_right", true);
      return (s) => {
        let r = s;
        if (left) r = r.replace(/^\p{White_Space}+/u, "");
        if (right) r = r.replace(/\p{White_Space}+$/u, "");
        return r;
      };
    }
    case "StripAccents":
      return (s) => s.replace(RE_MARK, "");
    case "Replace": {
      const re = patternRegExp(o.pattern, `${where}.pattern`);
      const content = field<string>(o, "content", where, isStr, "a string");
      return (s) => (s.length === 0 ? s : s.replace(re, () => content));
    }
    case "Prepend": {
      const prepend = field<string>(o, "prepend", where, isStr, "a string");
      return (s) => (s.length > 0 ? prepend + s : s);
    }
    case "BertNormalizer": {
      const cleanText = optBool(o, "clean_text", true);
      const chinese = optBool(o, "handle_chinese_chars", true);
      const lowercase = optBool(o, "lowercase", true);
      const stripAccents = typeof o.strip_accents === "boolean" ? o.strip_accents : lowercase;
      return (s) => bertNormalize(s, cleanText, chinese, stripAccents, lowercase);
    }
    case "Precompiled": {
      const b64 = o.precompiled_charsmap;
      if (b64 === null || b64 === undefined || b64 === "") return undefined;
      if (typeof b64 !== "string") fail(`${where}.precompiled_charsmap`, "expected a base64 string");
      const map = new PrecompiledCharsmap(Buffer.from(b64, "base64"), `${where}.precompiled_charsmap`);
      return (s) => precompiledNormalize(map, s);
    }
    case "ByteLevel":
      return (s) => byteLevelEncode(s);
    default:
      fail(where, `unsupported normalizer type ${JSON.stringify(type)}`);
  }
}

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function bertNormalize(s: string, clean: boolean, chinese: boolean, strip: boolean, lower: boolean): string {
  let r = s;
  if (clean) {
    let out = "";
    for (const ch of r) {
      if (ch === "\t" || ch === "\n" || ch === "\r") out += " ";
      else if (ch === "\0" || ch === "\ufffd" || RE_OTHER.test(ch)) continue;
      else out += isWhitespace(ch) ? " " : ch;
    }
    r = out;
  }
  if (chinese) {
    let out = "";
    for (const ch of r) out += isChineseChar(ch.codePointAt(0) as number) ? ` ${ch} ` : ch;
    r = out;
  }
  if (strip) r = r.normalize("NFD").replace(RE_MARK, "");
  if (lower) r = r.toLowerCase();
  return r;
}

const graphemes = new Intl.Segmenter("und", { granularity: "grapheme" });
const utf8 = new TextEncoder();

/**
 * HF's `Precompiled` normalizer: per grapheme cluster (shorter than 6 bytes) the first rule that
 * is a prefix of it replaces the whole cluster; otherwise each character is looked up alone.
 */
function precompiledNormalize(map: PrecompiledCharsmap, s: string): string {
  let out = "";
  const first = (text: string): string | undefined => {
    const bytes = utf8.encode(text);
    let end = bytes.indexOf(0); // the Rust trie walk stops at a NUL byte
    if (end < 0) end = bytes.length;
    return map.shortest(bytes, 0, end);
  };
  for (const { segment } of graphemes.segment(s)) {
    if (Buffer.byteLength(segment, "utf8") < 6) {
      const r = first(segment);
      if (r !== undefined) {
        out += r;
        continue;
      }
    }
    for (const ch of segment) out += first(ch) ?? ch;
  }
  return out;
}

// GPT-2 byte-to-unicode table: printable bytes map to themselves, the others to U+0100 and up.
const BYTE_TO_CHAR: string[] = [];
const CHAR_TO_BYTE = new Map<string, number>();
{
  const direct = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCodePoint(direct(b) ? b : 256 + n++);
    BYTE_TO_CHAR[b] = ch;
    CHAR_TO_BYTE.set(ch, b);
  }
}

function byteLevelEncode(s: string): string {
  let out = "";
  for (const b of utf8.encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers

const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
// Rust regex \w: alphabetic, marks, decimal numbers, connector punctuation, join controls
const WHITESPACE_PATTERN =
  /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\s]+/gu;

function prependScheme(o: Json): "always" | "first" | "never" {
  const scheme = optStr(o, "prepend_scheme");
  if (scheme === "always" || scheme === "first" || scheme === "never") return scheme;
  // older files: add_prefix_space
  return optBool(o, "add_prefix_space", true) ? "always" : "never";
}

function buildPreTokenizer(j: unknown, where: string): PreTokenizer | undefined {
  if (j === null || j === undefined) return undefined;
  if (!isObj(j)) fail(where, "expected an object");
  const o = j as Json;
  const type = field<string>(o, "type", where, isStr, "a string");
  switch (type) {
    case "Sequence": {
      const list = field<unknown[]>(o, "pretokenizers", where, Array.isArray, "an array").map((p, k) =>
        buildPreTokenizer(p, `${where}.pretokenizers[${k}]`),
      );
      return (splits) => list.reduce((acc, p) => (p ? p(acc) : acc), splits);
    }
    case "Whitespace":
      return (splits) => splitAll(splits, (s) => findMatches(s, WHITESPACE_PATTERN), "Removed", true);
    case "WhitespaceSplit":
      return (splits) => splitAll(splits, (s) => findCharMatches(s, isWhitespace), "Removed");
    case "BertPreTokenizer":
      return (splits) =>
        splitAll(
          splitAll(splits, (s) => findCharMatches(s, isWhitespace), "Removed"),
          (s) => findCharMatches(s, isPunctuation),
          "Isolated",
        );
    case "Punctuation": {
      const behavior = (optStr(o, "behavior") ?? "Isolated") as Behavior;
      return (splits) => splitAll(splits, (s) => findCharMatches(s, isPunctuation), behavior);
    }
    case "Digits": {
      const individual = optBool(o, "individual_digits", false);
      return (splits) =>
        splitAll(
          splits,
          (s) => findCharMatches(s, (c) => RE_NUMERIC.test(c)),
          individual ? "Isolated" : "Contiguous",
        );
    }
    case "CharDelimiterSplit": {
      const delimiter = field<string>(o, "delimiter", where, isStr, "a character");
      return (splits) => splitAll(splits, (s) => findCharMatches(s, (c) => c === delimiter), "Removed");
    }
    case "Split": {
      const re = patternRegExp(o.pattern, `${where}.pattern`);
      const behavior = field<Behavior>(o, "behavior", where, isStr, "a split behavior");
      const invert = optBool(o, "invert", false);
      return (splits) => splitAll(splits, (s) => findMatches(s, re), behavior, invert);
    }
    case "Metaspace": {
      const replacement = field<string>(o, "replacement", where, isStr, "a character");
      const scheme = prependScheme(o);
      const split = optBool(o, "split", true);
      return (splits) => {
        const out: Split[] = [];
        for (const sp of splits) {
          let t = sp.text.replaceAll(" ", replacement);
          if (!t.startsWith(replacement) && (scheme === "always" || (scheme === "first" && sp.atStart))) {
            t = replacement + t;
          }
          const piece = { text: t, atStart: sp.atStart };
          if (split)
            out.push(
              ...splitAll([piece], (s) => findCharMatches(s, (c) => c === replacement), "MergedWithNext"),
            );
          else if (t.length > 0) out.push(piece);
        }
        return out;
      };
    }
    case "ByteLevel": {
      const addPrefixSpace = optBool(o, "add_prefix_space", true);
      const useRegex = optBool(o, "use_regex", true);
      return (splits) => {
        const spaced = splits.map((sp) => ({
          text: addPrefixSpace && !sp.text.startsWith(" ") ? ` ${sp.text}` : sp.text,
          atStart: sp.atStart,
        }));
        const pieces = useRegex ? splitAll(spaced, (s) => findMatches(s, GPT2_PATTERN), "Isolated") : spaced;
        return pieces.map((sp) => ({ text: byteLevelEncode(sp.text), atStart: sp.atStart }));
      };
    }
    default:
      fail(where, `unsupported pre_tokenizer type ${JSON.stringify(type)}`);
  }
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
class UnigramModel implements Model {
  private readonly vocab = new Vocab();
  private readonly scores: Float64Array;
  private readonly trie: CodePointTrie;
  private readonly minScore: number;
  readonly unkId?: number;
  private readonly byteFallback: boolean;

  constructor(o: Json, where: string) {
    const list = field<unknown[]>(o, "vocab", where, Array.isArray, "an array of [piece, score]");
    this.scores = new Float64Array(list.length);
    let minScore = Number.POSITIVE_INFINITY;
    list.forEach((e, id) => {
      if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "number") {
        fail(`${where}.vocab[${id}]`, "expected [piece, score]");
      }
      this.vocab.byToken.set(e[0], id);
      this.vocab.byId[id] = e[0];
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

  get size(): number {
    return this.vocab.byId.length;
  }
  idToToken(id: number): string | undefined {
    return this.vocab.byId[id];
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.byToken.get(token);
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
class BpeModel implements Model {
  private readonly vocab: Vocab;
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
    this.vocab = readVocabObject(o.vocab, `${where}.vocab`);
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

  get size(): number {
    return this.vocab.byToken.size;
  }
  idToToken(id: number): string | undefined {
    return this.vocab.byId[id];
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.byToken.get(token);
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
class WordPieceModel implements Model {
  private readonly vocab: Vocab;
  private readonly trie: CodePointTrie;
  private readonly prefixNode: number;
  readonly unkId: number;
  private readonly maxChars: number;

  constructor(o: Json, where: string) {
    this.vocab = readVocabObject(o.vocab, `${where}.vocab`);
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

  get size(): number {
    return this.vocab.byToken.size;
  }
  idToToken(id: number): string | undefined {
    return this.vocab.byId[id];
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.byToken.get(token);
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
class WordLevelModel implements Model {
  private readonly vocab: Vocab;
  readonly unkId?: number;
  constructor(o: Json, where: string) {
    this.vocab = readVocabObject(o.vocab, `${where}.vocab`);
    const unk = optStr(o, "unk_token");
    if (unk !== undefined) this.unkId = this.vocab.byToken.get(unk);
  }
  get size(): number {
    return this.vocab.byToken.size;
  }
  idToToken(id: number): string | undefined {
    return this.vocab.byId[id];
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.byToken.get(token);
  }
  tokenize(word: string): number[] {
    const id = this.vocab.byToken.get(word) ?? this.unkId;
    if (id === undefined)
      throw new Error(`WordLevel: ${JSON.stringify(word)} is unknown and there is no unk_token`);
    return [id];
  }
}

function buildModel(j: unknown, where: string): Model {
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

function buildPostProcessor(
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

// ---------------------------------------------------------------------------------------------
// Decoders

function buildDecoder(j: unknown, where: string): Decoder | undefined {
  if (j === null || j === undefined) return undefined;
  if (!isObj(j)) fail(where, "expected an object");
  const o = j as Json;
  const type = field<string>(o, "type", where, isStr, "a string");
  switch (type) {
    case "Sequence": {
      const list = field<unknown[]>(o, "decoders", where, Array.isArray, "an array").map((d, k) =>
        buildDecoder(d, `${where}.decoders[${k}]`),
      );
      return (tokens) => list.reduce((acc, d) => (d ? d(acc) : acc), tokens);
    }
    case "ByteFallback":
      return byteFallbackDecode;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Replace": {
      const re = patternRegExp(o.pattern, `${where}.pattern`);
      const content = field<string>(o, "content", where, isStr, "a string");
      return (tokens) => tokens.map((t) => t.replace(re, () => content));
    }
    case "Strip": {
      const content = field<string>(o, "content", where, isStr, "a character");
      const start = typeof o.start === "number" ? o.start : 0;
      const stop = typeof o.stop === "number" ? o.stop : 0;
      return (tokens) =>
        tokens.map((t) => {
          const chars = [...t];
          let a = 0;
          while (a < start && a < chars.length && chars[a] === content) a++;
          let b = chars.length;
          for (let k = 0; k < stop && b > a && chars[b - 1] === content; k++) b--;
          return chars.slice(a, b).join("");
        });
    }
    case "Metaspace": {
      const replacement = field<string>(o, "replacement", where, isStr, "a character");
      const scheme = prependScheme(o);
      return (tokens) =>
        tokens.map((t, i) => t.replaceAll(replacement, i === 0 && scheme !== "never" ? "" : " "));
    }
    case "WordPiece": {
      const prefix = optStr(o, "prefix") ?? "##";
      const cleanup = optBool(o, "cleanup", true);
      return (tokens) =>
        tokens.map((t, i) => {
          let r = t;
          if (i !== 0) r = r.startsWith(prefix) ? r.slice(prefix.length) : ` ${r}`;
          return cleanup ? cleanupSpaces(r) : r;
        });
    }
    case "BPEDecoder": {
      const suffix = optStr(o, "suffix") ?? "</w>";
      return (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i === tokens.length - 1 ? "" : " "));
    }
    case "ByteLevel":
      return (tokens) => {
        const bytes: number[] = [];
        for (const t of tokens) {
          const own: number[] = [];
          let ok = true;
          for (const ch of t) {
            const b = CHAR_TO_BYTE.get(ch);
            if (b === undefined) {
              ok = false;
              break;
            }
            own.push(b);
          }
          bytes.push(...(ok ? own : utf8.encode(t)));
        }
        return [new TextDecoder().decode(Uint8Array.from(bytes))];
      };
    default:
      fail(where, `unsupported decoder type ${JSON.stringify(type)}`);
  }
}

function cleanupSpaces(s: string): string {
  return s
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" do not", " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/** `<0xNN>` tokens are gathered into bytes; valid UTF-8 becomes text, otherwise one U+FFFD per byte. */
function byteFallbackDecode(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length === 0) return;
    try {
      out.push(new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes)));
    } catch {
      for (let k = 0; k < bytes.length; k++) out.push("\ufffd");
    }
    bytes = [];
  };
  for (const t of tokens) {
    const m = t.length === 6 ? /^<0x([0-9A-Fa-f]{2})>$/.exec(t) : null;
    if (m) bytes.push(Number.parseInt(m[1], 16));
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

// ---------------------------------------------------------------------------------------------
// The tokenizer

/** A tokenizer built from a tokenizer.json document. */
export class TokenizerJson {
  private readonly model: Model;
  private readonly normalizer?: Normalizer;
  private readonly preTokenizer?: PreTokenizer;
  private readonly decoder?: Decoder;
  /** special tokens around one sequence, from `post_processor` */
  readonly template?: SingleTemplate;
  readonly addedTokens: AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly rawTrie?: CodePointTrie;
  private readonly normalizedTrie?: CodePointTrie;
  private readonly matchTokens: AddedToken[] = [];

  constructor(json: unknown, file = "tokenizer.json") {
    if (!isObj(json)) fail(file, "expected a JSON object");
    const o = json as Json;
    this.model = buildModel(o.model, `${file}: model`);
    this.normalizer = buildNormalizer(o.normalizer, `${file}: normalizer`);
    this.preTokenizer = buildPreTokenizer(o.pre_tokenizer, `${file}: pre_tokenizer`);
    this.decoder = buildDecoder(o.decoder, `${file}: decoder`);
    const added = o.added_tokens ?? [];
    if (!Array.isArray(added)) fail(`${file}: added_tokens`, "expected an array");
    this.addedTokens = added.map((t, k): AddedToken => {
      const w = `${file}: added_tokens[${k}]`;
      if (!isObj(t)) fail(w, "expected an object");
      const a = t as Json;
      return {
        id: field<number>(a, "id", w, isNum, "an id"),
        content: field<string>(a, "content", w, isStr, "a string"),
        special: optBool(a, "special", false),
        singleWord: optBool(a, "single_word", false),
        lstrip: optBool(a, "lstrip", false),
        rstrip: optBool(a, "rstrip", false),
        normalized: optBool(a, "normalized", !optBool(a, "special", false)),
      };
    });
    const raw: Array<[string, number]> = [];
    const norm: Array<[string, number]> = [];
    for (const t of this.addedTokens) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
      const k = this.matchTokens.push(t) - 1;
      if (t.normalized) norm.push([this.normalizer ? this.normalizer(t.content) : t.content, k]);
      else raw.push([t.content, k]);
    }
    // the last definition of a content wins (later entries come first in the trie)
    if (raw.length > 0) this.rawTrie = new CodePointTrie(raw.reverse());
    if (norm.length > 0) this.normalizedTrie = new CodePointTrie(norm.reverse());
    this.template = buildPostProcessor(o.post_processor, `${file}: post_processor`, (t) => this.tokenToId(t));
  }

  /** Vocabulary size counting added tokens that are not in the model. */
  get vocabSize(): number {
    let extra = 0;
    for (const t of this.addedByContent.keys()) if (this.model.tokenToId(t) === undefined) extra++;
    return this.model.size + extra;
  }

  get unkId(): number | undefined {
    return this.model.unkId;
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special ?? false;
  }

  /**
   * Cuts `text` at added tokens (leftmost-longest), honouring single_word / lstrip / rstrip.
   * Returns the pieces: plain text, or an added token id.
   */
  private splitAdded(text: string, trie: CodePointTrie | undefined): Array<string | number> {
    if (!trie || text.length === 0) return [text];
    const cps = toCodePoints(text);
    // code point index → UTF-16 offset
    const off = new Int32Array(cps.length + 1);
    for (let i = 0; i < cps.length; i++) off[i + 1] = off[i] + (cps[i] > 0xffff ? 2 : 1);
    const s = wellFormed(text);
    const out: Array<string | number> = [];
    let emitted = 0; // code point index up to which text has been emitted
    let i = 0;
    while (i < cps.length) {
      const m = trie.longestPrefix(cps, i);
      if (!m) {
        i++;
        continue;
      }
      const tok = this.matchTokens[m.value];
      let start = i;
      let stop = m.end;
      i = m.end;
      if (tok.singleWord) {
        const before = start > 0 ? String.fromCodePoint(cps[start - 1]) : "";
        const after = stop < cps.length ? String.fromCodePoint(cps[stop]) : "";
        if (
          (before && /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}]/u.test(before)) ||
          (after && /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}]/u.test(after))
        ) {
          continue;
        }
      }
      if (tok.lstrip) {
        while (start > emitted && isWhitespace(String.fromCodePoint(cps[start - 1]))) start--;
      }
      if (tok.rstrip) {
        while (stop < cps.length && isWhitespace(String.fromCodePoint(cps[stop]))) stop++;
        i = stop;
      }
      if (emitted < start) out.push(s.slice(off[emitted], off[start]));
      out.push(tok.id);
      emitted = stop;
    }
    if (emitted < cps.length) out.push(s.slice(off[emitted]));
    return out;
  }

  /** Token ids of `text` without special tokens added around it. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let first = true;
    for (const part of this.splitAdded(text, this.rawTrie)) {
      if (typeof part === "number") {
        ids.push(part);
        first = false;
        continue;
      }
      const atStart = first;
      first = false;
      const normalized = this.normalizer ? this.normalizer(part) : part;
      if (normalized.length === 0) continue;
      for (const sub of this.splitAdded(normalized, this.normalizedTrie)) {
        if (typeof sub === "number") {
          ids.push(sub);
          continue;
        }
        let splits: Split[] = [{ text: sub, atStart }];
        if (this.preTokenizer) splits = this.preTokenizer(splits);
        for (const sp of splits) for (const id of this.model.tokenize(sp.text)) ids.push(id);
      }
    }
    return ids;
  }

  /** Text of ids through the decoder (tokens joined by spaces when there is none). */
  decode(ids: readonly number[], skipSpecialTokens = false): string {
    const tokens: string[] = [];
    for (const id of ids) {
      const t = this.idToToken(id);
      if (t === undefined) throw new RangeError(`token id ${id} is not in the vocabulary`);
      if (skipSpecialTokens && this.isSpecial(id)) continue;
      tokens.push(t);
    }
    return this.decoder ? this.decoder(tokens).join("") : tokens.join(" ");
  }
}

/** Parses a tokenizer.json text; errors name the file and the JSON path. */
export function parseTokenizerJson(text: string, file = "tokenizer.json"): TokenizerJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
  return new TokenizerJson(json, file);
}
