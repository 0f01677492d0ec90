// Character offsets of tokens in the raw text, for any tokenizer: the tokens' surfaces (their
// normalized text: `▁`, `##`, `</w>` removed, byte-fallback and byte-level pieces turned back into
// UTF-8 bytes) are aligned with the raw text normalized one grapheme cluster at a time. Normalizers
// (NFKC, SentencePiece charsmaps, lowercasing, accent stripping…) act within a grapheme cluster, so
// every normalized character knows the cluster it came from, and a token's span is the union of
// the clusters its characters came from. Whitespace is matched loosely (normalizers add, remove
// and escape it), unknown tokens take what lies between their neighbours.

/** What a token stands for: its normalized text as UTF-8 bytes (one byte for a byte piece). */
export type TokenSurface = Uint8Array | "unknown" | "special";

/** [start, end) in UTF-16 code units of the raw text (JavaScript string indices). */
export type Span = [number, number];

const graphemes = new Intl.Segmenter("und", { granularity: "grapheme" });
const WHITESPACE = /^[\p{White_Space}\u2581\u200b]$/u;

interface NormChar {
  /** The character, folded; "" for whitespace (which tokens never match but unknown tokens may cover). */
  ch: string;
  start: number;
  end: number;
}

/** The raw text normalized cluster by cluster (a raw whitespace cluster stays, as ""). */
function normalizedChars(text: string, normalize: (s: string) => string): NormChar[] {
  const out: NormChar[] = [];
  for (const { segment, index } of graphemes.segment(text)) {
    const at = { start: index, end: index + segment.length };
    if (WHITESPACE.test(segment)) {
      out.push({ ch: "", ...at });
      continue;
    }
    for (const ch of normalize(segment)) if (!WHITESPACE.test(ch)) out.push({ ch: fold(ch), ...at });
  }
  return out;
}

const fold = (ch: string): string => ch.toLowerCase();

/** One character of the tokens' text (or an unknown token), with the tokens that made it. */
type TokenChar = { ch: string; first: number; last: number } | { unknown: number };

/** Decodes the tokens' bytes to characters, remembering which tokens each character's bytes came from. */
function tokenChars(surfaces: readonly TokenSurface[]): TokenChar[] {
  const out: TokenChar[] = [];
  let pending: number[] = [];
  let owners: number[] = [];
  let need = 0;
  const emit = (ch: string, first: number, last: number): void => {
    if (!WHITESPACE.test(ch)) out.push({ ch: fold(ch), first, last });
  };
  const flushInvalid = (): void => {
    // a broken UTF-8 sequence (e.g. cut by truncation) stands for one character
    if (pending.length > 0) emit("\ufffd", owners[0], owners[owners.length - 1]);
    pending = [];
    owners = [];
    need = 0;
  };
  surfaces.forEach((s, t) => {
    if (s === "special") return;
    if (s === "unknown") {
      flushInvalid();
      out.push({ unknown: t });
      return;
    }
    for (const b of s) {
      if (need === 0) {
        const len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
        if (len === 0) {
          pending = [b];
          owners = [t];
          flushInvalid();
          continue;
        }
        pending = [b];
        owners = [t];
        need = len - 1;
      } else if ((b & 0xc0) === 0x80) {
        pending.push(b);
        owners.push(t);
        need--;
      } else {
        flushInvalid();
        pending = [b];
        owners = [t];
        need = (b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2) - 1;
      }
      if (need === 0) {
        emit(Buffer.from(pending).toString("utf8"), owners[0], owners[owners.length - 1]);
        pending = [];
        owners = [];
      }
    }
  });
  flushInvalid();
  return out;
}

/** How far ahead a character is looked for when the two texts disagree. */
const LOOKAHEAD = 16;

/**
 * Spans of the tokens in `text`: null for special tokens, an empty span (at the start of the next
 * character) for tokens that stand for whitespace only. Spans are in order; tokens that share a
 * character (bytes of one character, pieces of one NFKC expansion) get overlapping spans, which
 * {@link mergeSpans} joins.
 *
 * @param normalize the tokenizer's normalizer, applied to one grapheme cluster
 * @param truncated the tokens cover only the start of the text
 */
export function alignTokens(
  text: string,
  surfaces: readonly TokenSurface[],
  normalize: (s: string) => string,
  truncated = false,
): (Span | null)[] {
  const norm = normalizedChars(text, normalize);
  const chars = tokenChars(surfaces);
  const spans: (Span | null)[] = surfaces.map((s) => (s === "special" ? null : [-1, -1]));
  const cover = (t: number, from: number, to: number, whitespaceOnly = false): void => {
    // norm[from..to) belong to token t; whitespace at either end does not, unless it is all an
    // unknown token stands for (an ideographic space the model has no piece for)
    let a = from;
    let b = to;
    while (a < b && norm[a].ch === "") a++;
    while (b > a && norm[b - 1].ch === "") b--;
    if (a < b || !whitespaceOnly) [from, to] = [a, b];
    if (to <= from) return;
    const sp = spans[t] as Span;
    const s = norm[from].start;
    const e = norm[to - 1].end;
    if (sp[0] < 0) spans[t] = [s, e];
    else spans[t] = [Math.min(sp[0], s), Math.max(sp[1], e)];
  };
  let j = 0;
  let lastOwner = -1;
  // tokens passed over since the last match: characters skipped over are theirs
  let unmatched: number[] = [];
  const coverSkipped = (from: number, to: number, fallback: number): void => {
    if (unmatched.length > 0) for (const t of unmatched) cover(t, from, to);
    else cover(lastOwner >= 0 ? lastOwner : fallback, from, to);
    unmatched = [];
  };
  for (let k = 0; k < chars.length && j < norm.length; k++) {
    const c = chars[k];
    if ("unknown" in c) {
      // a run of unknown tokens spans up to where the next known character is found; each of them
      // takes one character and the last one the rest
      let run = k;
      while (run + 1 < chars.length && "unknown" in chars[run + 1]) run++;
      const next = chars[run + 1] as { ch: string } | undefined;
      const n = run - k + 1;
      let stop = Math.min(norm.length, j + n);
      if (next) {
        let f = stop;
        while (f < norm.length && norm[f].ch !== next.ch) f++;
        if (f < norm.length) stop = f;
      } else if (!truncated) stop = norm.length;
      for (let u = 0; u < n && j < stop; u++) {
        const t = (chars[k + u] as { unknown: number }).unknown;
        const to = u === n - 1 ? stop : j + 1;
        coverSkipped(j, j, t);
        cover(t, j, to, true);
        lastOwner = t;
        j = to;
      }
      k = run;
      continue;
    }
    let m = j;
    let looked = 0;
    while (m < norm.length && looked < LOOKAHEAD && norm[m].ch !== c.ch) {
      if (norm[m].ch !== "") looked++;
      m++;
    }
    if (m >= norm.length || looked >= LOOKAHEAD) {
      // not found nearby (a broken byte sequence, a character the model dropped): no span yet
      for (let t = c.first; t <= c.last; t++) if (!unmatched.includes(t)) unmatched.push(t);
      continue;
    }
    unmatched = unmatched.filter((t) => t < c.first);
    if (m > j) coverSkipped(j, m, c.first);
    unmatched = [];
    for (let t = c.first; t <= c.last; t++) cover(t, m, m + 1);
    lastOwner = c.last;
    j = m + 1;
  }
  // the whole text was tokenized: what is left belongs to the last tokens
  if (!truncated && j < norm.length && (lastOwner >= 0 || unmatched.length > 0)) {
    coverSkipped(j, norm.length, lastOwner);
  }
  // tokens without characters (whitespace-only pieces): empty span where the next token starts
  let next = truncated ? (spans.findLast((s) => s !== null && s[0] >= 0)?.[1] ?? 0) : text.length;
  for (let t = spans.length - 1; t >= 0; t--) {
    const sp = spans[t];
    if (sp === null) continue;
    if (sp[0] < 0) spans[t] = [next, next];
    else next = sp[0];
  }
  return spans;
}

/** A run of tokens that together stand for one stretch of the text. */
export interface TokenGroup {
  start: number;
  end: number;
  /** Indices of the tokens in the group (into the spans given). */
  tokens: number[];
}

/**
 * Groups tokens into non-overlapping stretches of text, in order: special tokens (null spans) are
 * dropped, tokens whose spans overlap are merged, and empty-span tokens join the group that follows
 * them (the last one joins the group before it).
 */
export function mergeSpans(spans: readonly (Span | null)[]): TokenGroup[] {
  const groups: TokenGroup[] = [];
  let waiting: number[] = [];
  spans.forEach((sp, t) => {
    if (sp === null) return;
    if (sp[0] === sp[1]) {
      waiting.push(t);
      return;
    }
    const last = groups[groups.length - 1];
    if (last && sp[0] < last.end) {
      last.end = Math.max(last.end, sp[1]);
      last.tokens.push(...waiting, t);
    } else groups.push({ start: sp[0], end: sp[1], tokens: [...waiting, t] });
    waiting = [];
  });
  if (waiting.length > 0) {
    if (groups.length > 0) groups[groups.length - 1].tokens.push(...waiting);
    else {
      const at = (spans[waiting[0]] as Span)[0];
      groups.push({ start: at, end: at, tokens: waiting });
    }
  }
  return groups;
}
