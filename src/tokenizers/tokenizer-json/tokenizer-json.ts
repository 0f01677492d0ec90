// A reader for Hugging Face `tokenizer.json` files, written from the behaviour of the Rust
// `tokenizers` library: added tokens are cut out first, the rest is normalized, pre-tokenized and
// tokenized by the model (see tokenizer-json-text.ts and tokenizer-json-models.ts). Ids are
// produced; offsets come from aligning each token's `surface` with the text (tokenizer-offsets.ts).

import type { TokenSurface } from "../offsets.js";
import { CodePointTrie, toCodePoints, wellFormed } from "../trie.js";
import { buildModel, buildPostProcessor, type Model, type SingleTemplate } from "./models.js";
import {
  buildDecoder,
  buildNormalizer,
  buildPreTokenizer,
  CHAR_TO_BYTE,
  type Decoder,
  fail,
  field,
  isNum,
  isObj,
  isStr,
  isWhitespace,
  type Json,
  type Normalizer,
  optBool,
  type PreTokenizer,
  type Split,
} from "./text.js";

export type { SingleTemplate } from "./models.js";
export { onigRegExp } from "./text.js";

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
  /** Marks the model's tokens carry around their text (WordPiece `##`, BPE `</w>`…), for `surface`. */
  private readonly markers: { prefix?: string; suffix?: string; byteLevel: boolean };

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
    const m = isObj(o.model) ? (o.model as Json) : {};
    const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
    this.markers = {
      prefix: str(m.continuing_subword_prefix) ?? (m.type === "WordPiece" ? "##" : undefined),
      suffix: str(m.end_of_word_suffix),
      byteLevel: /"type":"ByteLevel"/.test(JSON.stringify([o.pre_tokenizer, o.decoder])),
    };
  }

  /** `text` through the normalizer (identity without one). */
  normalize(text: string): string {
    return this.normalizer ? this.normalizer(text) : text;
  }

  /** The normalized text a token stands for (see tokenizer-offsets.ts). */
  surface(id: number): TokenSurface {
    if (id === this.model.unkId) return "unknown";
    const added = this.addedById.get(id);
    if (added) return added.special ? "special" : Buffer.from(added.content, "utf8");
    let t = this.model.idToToken(id);
    if (t === undefined) return "unknown";
    const byte = t.length === 6 ? /^<0x([0-9A-Fa-f]{2})>$/.exec(t) : null;
    if (byte) return Uint8Array.of(Number.parseInt(byte[1], 16));
    const { prefix, suffix, byteLevel } = this.markers;
    if (prefix && t.startsWith(prefix) && t.length > prefix.length) t = t.slice(prefix.length);
    if (suffix && t.endsWith(suffix)) t = t.slice(0, t.length - suffix.length);
    if (byteLevel) {
      const bytes = [...t].map((ch) => CHAR_TO_BYTE.get(ch));
      if (bytes.every((b) => b !== undefined)) return Uint8Array.from(bytes as number[]);
    }
    return Buffer.from(t, "utf8");
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
      const subs = this.splitAdded(normalized, this.normalizedTrie);
      for (const [k, sub] of subs.entries()) {
        if (typeof sub === "number") {
          ids.push(sub);
          continue;
        }
        // only text at offset 0 of the input counts as its start (Metaspace "first")
        let splits: Split[] = [{ text: sub, atStart: atStart && k === 0 }];
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
