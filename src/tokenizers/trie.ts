// A compact trie over Unicode code points, used for vocabulary prefix look-ups
// (Unigram lattices, WordPiece longest match, SentencePiece user-defined symbols).
// It is built with Maps, then flattened into typed arrays: for each node its children are
// a sorted run of (label, target) pairs found by binary search. 100k pieces take a few MB.

/**
 * Edges looked up so far by every trie (a plain counter, cheap to bump). Tests read it to check that
 * encoding does work proportional to the text length: a deterministic check instead of a timing.
 */
export const trieStats = { lookups: 0 };

export class CodePointTrie {
  /** children of node n are edges firstEdge[n] .. firstEdge[n + 1] - 1 */
  private readonly firstEdge: Int32Array;
  private readonly labels: Uint32Array;
  private readonly targets: Int32Array;
  /** value stored at a node, or -1 */
  private readonly values: Int32Array;

  /** Builds a trie mapping each key to its value (a later duplicate key does not override). */
  constructor(entries: Iterable<[string, number]>) {
    const children: Map<number, number>[] = [new Map()];
    const values: number[] = [-1];
    for (const [key, value] of entries) {
      let node = 0;
      for (const ch of key) {
        const cp = ch.codePointAt(0) as number;
        let next = children[node].get(cp);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          values.push(-1);
          children[node].set(cp, next);
        }
        node = next;
      }
      if (values[node] === -1) values[node] = value;
    }
    const n = children.length;
    this.firstEdge = new Int32Array(n + 1);
    let edges = 0;
    for (let i = 0; i < n; i++) {
      this.firstEdge[i] = edges;
      edges += children[i].size;
    }
    this.firstEdge[n] = edges;
    this.labels = new Uint32Array(edges);
    this.targets = new Int32Array(edges);
    for (let i = 0; i < n; i++) {
      const sorted = [...children[i].entries()].sort((a, b) => a[0] - b[0]);
      let e = this.firstEdge[i];
      for (const [label, target] of sorted) {
        this.labels[e] = label;
        this.targets[e] = target;
        e++;
      }
    }
    this.values = Int32Array.from(values);
  }

  /** The root node (pass to `child`). */
  get root(): number {
    return 0;
  }

  /** The child of `node` along code point `cp`, or -1. */
  child(node: number, cp: number): number {
    trieStats.lookups++;
    let lo = this.firstEdge[node];
    let hi = this.firstEdge[node + 1] - 1;
    const labels = this.labels;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const l = labels[mid];
      if (l === cp) return this.targets[mid];
      if (l < cp) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The value stored at `node`, or -1 if no key ends there. */
  value(node: number): number {
    return this.values[node];
  }

  /** Value of an exact key, or -1. */
  get(cps: ArrayLike<number>, start = 0, end = cps.length): number {
    let node = 0;
    for (let i = start; i < end && node >= 0; i++) node = this.child(node, cps[i]);
    return node >= 0 ? this.values[node] : -1;
  }

  /** Walks `cps` from `start`, following `from` (default: root); returns the end of the longest key found and its value. */
  longestPrefix(cps: ArrayLike<number>, start: number, from = 0): { end: number; value: number } | undefined {
    let node = from;
    let best: { end: number; value: number } | undefined;
    for (let i = start; i < cps.length; i++) {
      node = this.child(node, cps[i]);
      if (node < 0) break;
      const v = this.values[node];
      if (v >= 0) best = { end: i + 1, value: v };
    }
    return best;
  }
}

/** The code points of a string (lone surrogates become U+FFFD, as a UTF-8 encoder would do). */
export function toCodePoints(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xdc00 && c <= 0xdfff) c = 0xfffd;
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Number of UTF-8 bytes of a code point. */
export function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/** Replaces lone surrogates by U+FFFD so the text has a well-defined UTF-8 form. */
export function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/** Decodes UTF-8 bytes the way SentencePiece does: each byte of an invalid sequence becomes one U+FFFD. */
export function decodeUtf8Strict(bytes: ArrayLike<number>): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i];
    let need = 0;
    let cp = 0;
    let min = 0;
    if (b0 < 0x80) {
      out += String.fromCharCode(b0);
      i++;
      continue;
    }
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      cp = b0 & 0x1f;
      min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      cp = b0 & 0x0f;
      min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      cp = b0 & 0x07;
      min = 0x10000;
    }
    let ok = need > 0 && i + need < bytes.length;
    if (ok) {
      for (let k = 1; k <= need; k++) {
        const b = bytes[i + k];
        if ((b & 0xc0) !== 0x80) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (b & 0x3f);
      }
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (ok) {
      out += String.fromCodePoint(cp);
      i += need + 1;
    } else {
      out += "\ufffd";
      i++;
    }
  }
  return out;
}
