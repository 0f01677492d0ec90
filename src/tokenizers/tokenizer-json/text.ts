// The text stages of a tokenizer.json pipeline, written from the behaviour of the Rust `tokenizers`
// library: Oniguruma patterns translated to JavaScript, normalizers, pre-tokenizers (splitting with
// the library's delimiter behaviours) and decoders. Each stage is a small function built from its JSON.
import { PrecompiledCharsmap } from "../sentencepiece/charsmap.js";

export type Json = Record<string, unknown>;

/** A piece of text between pre-tokenization steps; `atStart` = it begins at offset 0 of the input. */
export interface Split {
  text: string;
  atStart: boolean;
}

export type Normalizer = (s: string) => string;
export type PreTokenizer = (splits: Split[]) => Split[];
export type Decoder = (tokens: string[]) => string[];

export class JsonError extends Error {}

export function fail(where: string, message: string): never {
  throw new JsonError(`${where}: ${message}`);
}

export function field<T>(
  obj: Json,
  key: string,
  where: string,
  check: (v: unknown) => boolean,
  what: string,
): T {
  const v = obj[key];
  if (!check(v)) fail(`${where}.${key}`, `expected ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v as T;
}
export const isStr = (v: unknown): boolean => typeof v === "string";
export const isNum = (v: unknown): boolean => typeof v === "number";
export const isObj = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);
export const optBool = (obj: Json, key: string, dflt: boolean): boolean =>
  typeof obj[key] === "boolean" ? (obj[key] as boolean) : dflt;
export const optStr = (obj: Json, key: string): string | undefined =>
  typeof obj[key] === "string" ? (obj[key] as string) : undefined;

// ---------------------------------------------------------------------------------------------
// Regular expressions: tokenizer.json patterns are Oniguruma (Ruby syntax) regexes.

// Oniguruma classes with Unicode meaning (checked against the tokenizers library): JavaScript's
// \s also matches U+FEFF and misses U+0085, its \w and \d are ASCII only, and its "." stops at
// U+2028 / \r where Oniguruma stops only at \n.
const WORD = "\\p{L}\\p{M}\\p{N}\\p{Pc}";
const OUTSIDE_CLASS: Record<string, string> = {
  s: "\\p{White_Space}",
  S: "\\P{White_Space}",
  d: "\\p{Nd}",
  D: "\\P{Nd}",
  w: `[${WORD}]`,
  W: `[^${WORD}]`,
  h: "[0-9a-fA-F]",
  H: "[^0-9a-fA-F]",
  b: `(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`,
  B: `(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`,
  A: "^",
  z: "$",
  Z: "(?=\\n?$)",
};
const INSIDE_CLASS: Record<string, string> = {
  s: "\\p{White_Space}",
  S: "\\P{White_Space}",
  d: "\\p{Nd}",
  D: "\\P{Nd}",
  w: WORD,
  h: "0-9a-fA-F",
};

/** Expands `(?i:...)` groups (not supported by older V8) into explicit [xX] letters. */
function expandCaseInsensitiveGroups(pattern: string): string {
  let out = "";
  let i = 0;
  while (i < pattern.length) {
    if (!pattern.startsWith("(?i:", i)) {
      const step = pattern[i] === "\\" ? 2 : 1;
      out += pattern.slice(i, i + step);
      i += step;
      continue;
    }
    let depth = 0;
    let j = i;
    for (; j < pattern.length; j++) {
      if (pattern[j] === "\\") j++;
      else if (pattern[j] === "(") depth++;
      else if (pattern[j] === ")" && --depth === 0) break;
    }
    const body = pattern
      .slice(i + 4, j)
      .replace(/\\.|\[(?:\\.|[^\]\\])*\]|[A-Za-z]/g, (m) =>
        m.length === 1 ? `[${m.toLowerCase()}${m.toUpperCase()}]` : m,
      );
    out += `(?:${body})`;
    i = j + 1;
  }
  return out;
}

/**
 * Translates an Oniguruma (Ruby syntax) pattern, as found in tokenizer.json, to a global unicode
 * JavaScript RegExp (no "m" flag): `^`/`$` are line anchors (after / before "\n" only), `\A` `\z` string anchors,
 * `\s` `\w` `\d` `\b` `\h` and "." keep their Oniguruma meaning.
 */
export function onigRegExp(pattern: string, where: string): RegExp {
  let flags = "gu";
  let rest = pattern;
  if (rest.startsWith("(?i)")) {
    flags += "i";
    rest = rest.slice(4);
  }
  rest = expandCaseInsensitiveGroups(rest);
  let src = "";
  let inClass = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === "\\" && i + 1 < rest.length) {
      const n = rest[++i];
      if (n === "x" && rest[i + 1] === "{")
        src += "\\u"; // \x{263A} → \u{263A}
      else src += (inClass ? INSIDE_CLASS[n] : OUTSIDE_CLASS[n]) ?? c + n;
    } else if (inClass) {
      if (c === "]") inClass = false;
      src += c;
    } else if (c === "[") {
      inClass = true;
      src += c;
      // a "]" or "^]" right after "[" is a literal
      if (rest[i + 1] === "^") src += rest[++i];
      if (rest[i + 1] === "]") src += `\\${rest[++i]}`;
    } else if (c === ".") src += "[^\\n]";
    else if (c === "^") src += "(?:^|(?<=\\n))";
    else if (c === "$") src += "(?:$|(?=\\n))";
    else src += c;
  }
  try {
    return new RegExp(src, flags);
  } catch (err) {
    fail(where, `unsupported regular expression ${JSON.stringify(pattern)} (${(err as Error).message})`);
  }
}

// ("-" needs no escape outside a class, and escaping it is an error in a unicode RegExp)
function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** A tokenizer.json `pattern` ({String} or {Regex}) as a global RegExp. */
function patternRegExp(p: unknown, where: string): RegExp {
  if (!isObj(p)) fail(where, "expected {String: ...} or {Regex: ...}");
  const o = p as Json;
  if (typeof o.String === "string") return new RegExp(escapeRegExp(o.String), "gu");
  if (typeof o.Regex === "string") return onigRegExp(o.Regex, where);
  fail(where, "expected {String: ...} or {Regex: ...}");
}

/**
 * The matches of a global regex in `s`, as [start, end) pairs. V8 may report an empty match between
 * the two halves of a surrogate pair; such positions are not character boundaries (Oniguruma works
 * on whole characters) and are skipped.
 */
function regexMatches(s: string, re: RegExp): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const start = m.index;
    const end = start + m[0].length;
    const midPair =
      start > 0 && isLowSurrogate(s.charCodeAt(start)) && isHighSurrogate(s.charCodeAt(start - 1));
    if (!(end === start && midPair)) out.push([start, end]);
    // an empty match: step over one character so the search moves on
    if (end === start) re.lastIndex = end + ((s.codePointAt(end) ?? 0) > 0xffff ? 2 : 1);
  }
  return out;
}
const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/** `s` with every match of `re` replaced by `content` (a literal). */
function replaceAllMatches(s: string, re: RegExp, content: string): string {
  let out = "";
  let prev = 0;
  for (const [a, b] of regexMatches(s, re)) {
    out += s.slice(prev, a) + content;
    prev = b;
  }
  return out + s.slice(prev);
}

/** Segments of `s`: matched (true) and unmatched (false) spans, covering it all (HF `find_matches`). */
function findMatches(s: string, re: RegExp): Array<[number, number, boolean]> {
  if (s.length === 0) return [[0, 0, false]];
  const out: Array<[number, number, boolean]> = [];
  let prev = 0;
  for (const [start, end] of regexMatches(s, re)) {
    if (prev !== start) out.push([prev, start, false]);
    out.push([start, end, true]);
    prev = end;
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
export const isWhitespace = (ch: string): boolean => RE_WHITESPACE.test(ch);
const isPunctuation = (ch: string): boolean => RE_ASCII_PUNCT.test(ch) || RE_PUNCT.test(ch);

// ---------------------------------------------------------------------------------------------
// Normalizers

export function buildNormalizer(j: unknown, where: string): Normalizer | undefined {
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
      return (s) => (s.length === 0 ? s : replaceAllMatches(s, re, content));
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
export const utf8 = new TextEncoder();

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
export const CHAR_TO_BYTE = new Map<string, number>();
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

const GPT2_PATTERN = onigRegExp(
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  "GPT-2 pattern",
);
// Rust regex \w: alphabetic, marks, decimal numbers, connector punctuation, join controls
const WHITESPACE_PATTERN =
  /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+/gu;

function prependScheme(o: Json): "always" | "first" | "never" {
  const scheme = optStr(o, "prepend_scheme");
  if (scheme === "always" || scheme === "first" || scheme === "never") return scheme;
  // older files: add_prefix_space
  return optBool(o, "add_prefix_space", true) ? "always" : "never";
}

export function buildPreTokenizer(j: unknown, where: string): PreTokenizer | undefined {
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
// Decoders

export function buildDecoder(j: unknown, where: string): Decoder | undefined {
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
      return (tokens) => tokens.map((t) => replaceAllMatches(t, re, content));
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
        return [new TextDecoder("utf-8", { ignoreBOM: true }).decode(Uint8Array.from(bytes))];
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
      out.push(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bytes)));
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
