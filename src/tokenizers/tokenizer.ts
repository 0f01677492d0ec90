// The tokenizer API of toxlora: `loadTokenizer(pathOrDir)` reads a model folder, a tokenizer.json or a
// SentencePiece .model and returns a `Tokenizer` that encodes single texts and padded batches with the
// special tokens each model expects ([CLS] x [SEP] for BERT, <s> x for Llama, ...).
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { alignTokens, type Span, type TokenSurface } from "./offsets.js";
import { parseSentencePieceModel } from "./sentencepiece/model.js";
import { SentencePieceProcessor } from "./sentencepiece/sentencepiece.js";
import { type SingleTemplate, TokenizerJson } from "./tokenizer-json/tokenizer-json.js";

export interface EncodeOptions {
  /** Add the model's special tokens (BOS, or CLS/SEP, ...). Default true. */
  addSpecialTokens?: boolean;
  /** Truncate to this many ids in total (special tokens are kept). */
  maxLength?: number;
}

export interface BatchOptions {
  /** Longest sequence (special tokens included); required for `padding: "max_length"`. */
  maxLength?: number;
  /** Pad to the longest row of the batch (default) or to `maxLength`. */
  padding?: "longest" | "max_length";
  /** Cut rows longer than `maxLength` (default true when maxLength is given); special tokens are kept. */
  truncation?: boolean;
  /** Side where padding goes (default: the tokenizer's `paddingSide`). */
  paddingSide?: "right" | "left";
  /** Default true. */
  addSpecialTokens?: boolean;
}

export interface BatchEncoding {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
}

/** Ids of a text with where each token lies in it (see {@link Tokenizer.encodeWithOffsets}). */
export interface OffsetEncoding {
  ids: number[];
  /**
   * Per id: [start, end) in UTF-16 code units of the raw text (`text.slice(start, end)`), null for
   * special tokens, an empty span for a token that stands for whitespace only (e.g. a lone `▁`).
   * Tokens that share a character (the byte pieces of one emoji, the pieces of one NFKC expansion)
   * get overlapping spans.
   */
  offsets: (Span | null)[];
  /** The text was cut at `maxLength`: the offsets cover only its start. */
  truncated: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS/EOS/CLS/SEP/PAD...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

/** A text tokenizer (see {@link loadTokenizer}). */
export interface Tokenizer {
  /** What was loaded: a SentencePiece model or a tokenizer.json. */
  readonly kind: "sentencepiece" | "tokenizer.json";
  /** Number of token ids (the embedding matrix may be larger). */
  readonly vocabSize: number;
  /** Id used for padding (EOS for Llama-style models that define no pad token). */
  readonly padId: number;
  readonly unkId?: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly clsId?: number;
  readonly sepId?: number;
  readonly maskId?: number;
  /** Default padding side ("right" unless tokenizer_config.json says otherwise). */
  readonly paddingSide: "right" | "left";
  /** tokenizer_config.json `model_max_length`, when it is a real limit. */
  readonly modelMaxLength?: number;
  /** Ids added before / after a text when special tokens are on. */
  readonly specialPrefix: readonly number[];
  readonly specialSuffix: readonly number[];
  encode(text: string, options?: EncodeOptions): number[];
  /** As `encode`, with the character span of each token in `text`. */
  encodeWithOffsets(text: string, options?: EncodeOptions): OffsetEncoding;
  encodeBatch(texts: readonly string[], options?: BatchOptions): BatchEncoding;
  decode(ids: readonly number[], options?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
}

/** What differs between the two back ends. */
interface Core {
  kind: Tokenizer["kind"];
  vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[], skipSpecial: boolean): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  isSpecial(id: number): boolean;
  /** The normalized text a token stands for. */
  surface(id: number): TokenSurface;
  /** The normalizer alone (no dummy prefix or whitespace games matter: whitespace is ignored). */
  normalize(text: string): string;
}

/** Special token settings resolved from tokenizer_config.json / special_tokens_map.json / the model. */
interface Specials {
  template: SingleTemplate;
  padId: number;
  unkId?: number;
  bosId?: number;
  eosId?: number;
  clsId?: number;
  sepId?: number;
  maskId?: number;
  paddingSide: "right" | "left";
  modelMaxLength?: number;
}

class TextTokenizer implements Tokenizer {
  readonly kind: Tokenizer["kind"];
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId?: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly clsId?: number;
  readonly sepId?: number;
  readonly maskId?: number;
  readonly paddingSide: "right" | "left";
  readonly modelMaxLength?: number;
  private readonly template: SingleTemplate;
  private readonly specialIds: Set<number>;

  constructor(
    private readonly core: Core,
    specials: Specials,
  ) {
    this.kind = core.kind;
    this.vocabSize = core.vocabSize;
    this.template = specials.template;
    this.padId = specials.padId;
    this.unkId = specials.unkId;
    this.bosId = specials.bosId;
    this.eosId = specials.eosId;
    this.clsId = specials.clsId;
    this.sepId = specials.sepId;
    this.maskId = specials.maskId;
    this.paddingSide = specials.paddingSide;
    this.modelMaxLength = specials.modelMaxLength;
    this.specialIds = new Set(
      [this.padId, this.bosId, this.eosId, this.clsId, this.sepId, this.maskId].filter(
        (x) => x !== undefined,
      ),
    );
  }

  get specialPrefix(): readonly number[] {
    return this.template.prefix;
  }
  get specialSuffix(): readonly number[] {
    return this.template.suffix;
  }

  /** ids and token types of one text, truncated to `maxLength` in total. */
  private encodeOne(text: string, add: boolean, maxLength?: number): { ids: number[]; types: number[] } {
    let ids = this.core.encode(text);
    const t = this.template;
    const extra = add ? t.prefix.length + t.suffix.length : 0;
    if (maxLength !== undefined) {
      if (!Number.isInteger(maxLength) || maxLength < extra + 1) {
        throw new RangeError(
          `maxLength must be an integer ≥ ${extra + 1} (the special tokens take ${extra}), got ${maxLength}`,
        );
      }
      if (ids.length > maxLength - extra) ids = ids.slice(0, maxLength - extra);
    }
    if (!add) return { ids, types: new Array(ids.length).fill(t.sequenceType) };
    return {
      ids: [...t.prefix, ...ids, ...t.suffix],
      types: [...t.prefixTypes, ...new Array(ids.length).fill(t.sequenceType), ...t.suffixTypes],
    };
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.encodeOne(text, options.addSpecialTokens ?? true, options.maxLength).ids;
  }

  encodeWithOffsets(text: string, options: EncodeOptions = {}): OffsetEncoding {
    const add = options.addSpecialTokens ?? true;
    const full = this.core.encode(text).length;
    const { ids } = this.encodeOne(text, add, options.maxLength);
    const before = add ? this.template.prefix.length : 0;
    const kept = ids.length - before - (add ? this.template.suffix.length : 0);
    const truncated = kept < full;
    const body = ids.slice(before, before + kept);
    const spans = alignTokens(
      text,
      body.map((id) => this.core.surface(id)),
      (s) => this.core.normalize(s),
      truncated,
    );
    const offsets = ids.map((_, i): Span | null =>
      i >= before && i < before + kept ? spans[i - before] : null,
    );
    return { ids, offsets, truncated };
  }

  encodeBatch(texts: readonly string[], options: BatchOptions = {}): BatchEncoding {
    const add = options.addSpecialTokens ?? true;
    const padding = options.padding ?? "longest";
    const side = options.paddingSide ?? this.paddingSide;
    const truncate = options.truncation ?? options.maxLength !== undefined;
    if (padding === "max_length" && options.maxLength === undefined) {
      throw new Error('padding "max_length" needs maxLength');
    }
    const rows = texts.map((t) => this.encodeOne(t, add, truncate ? options.maxLength : undefined));
    const width =
      padding === "max_length"
        ? Math.max(options.maxLength as number, ...rows.map((r) => r.ids.length))
        : Math.max(0, ...rows.map((r) => r.ids.length));
    const out: BatchEncoding = { inputIds: [], attentionMask: [], tokenTypeIds: [] };
    for (const r of rows) {
      const n = width - r.ids.length;
      const pad = (row: number[], v: number): number[] => {
        const fill = new Array<number>(n).fill(v);
        return side === "right" ? [...row, ...fill] : [...fill, ...row];
      };
      out.inputIds.push(pad(r.ids, this.padId));
      out.attentionMask.push(pad(new Array(r.ids.length).fill(1), 0));
      out.tokenTypeIds.push(pad(r.types, 0));
    }
    return out;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    // a tokenizer.json skips its own special added tokens (as tokenizers does); SentencePiece models
    // skip control pieces and the configured special tokens (as transformers' slow tokenizers do)
    const kept =
      skip && this.kind === "sentencepiece"
        ? ids.filter((id) => !this.specialIds.has(id) && !this.core.isSpecial(id))
        : ids;
    return this.core.decode(kept, skip);
  }

  idToToken(id: number): string | undefined {
    return this.core.idToToken(id);
  }

  tokenToId(token: string): number | undefined {
    return this.core.tokenToId(token);
  }
}

// ---------------------------------------------------------------------------------------------
// Back ends

function sentencePieceCore(sp: SentencePieceProcessor): Core {
  return {
    kind: "sentencepiece",
    vocabSize: sp.vocabSize,
    encode: (text) => sp.encode(text),
    decode: (ids) => sp.decode(ids),
    idToToken: (id) => sp.idToPiece(id),
    tokenToId: (token) => sp.pieceToId(token),
    isSpecial: (id) => sp.isControl(id) || id === sp.unkId,
    surface: (id) => sp.surface(id),
    normalize: (text) => sp.normalizer.normalize(text),
  };
}

function tokenizerJsonCore(tj: TokenizerJson): Core {
  return {
    kind: "tokenizer.json",
    vocabSize: tj.vocabSize,
    encode: (text) => tj.encode(text),
    decode: (ids, skip) => tj.decode(ids, skip),
    idToToken: (id) => tj.idToToken(id),
    tokenToId: (token) => tj.tokenToId(token),
    isSpecial: (id) => tj.isSpecial(id),
    surface: (id) => tj.surface(id),
    normalize: (text) => tj.normalize(text),
  };
}

// ---------------------------------------------------------------------------------------------
// Special tokens

type Json = Record<string, unknown>;

/** tokenizer_config.json and special_tokens_map.json merged (config first), with file names for errors. */
interface TokenizerConfig {
  values: Json;
  /** where each key came from */
  source: Record<string, string>;
}

const TOKEN_KEYS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

/** A special token entry: a string or an AddedToken object `{content: ...}`. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string")
    return (v as Json).content as string;
  return undefined;
}

/** The id of a configured special token; a token that is not in the vocabulary is an error. */
function configuredId(core: Core, cfg: TokenizerConfig, key: string): number | undefined {
  const content = tokenContent(cfg.values[key]);
  if (content === undefined) return undefined;
  const id = core.tokenToId(content);
  if (id === undefined) {
    throw new Error(
      `${cfg.source[key]}: ${key} ${JSON.stringify(content)} is not in the tokenizer's vocabulary`,
    );
  }
  return id;
}

const LLAMA_LIKE = /llama|gemma|mistral|qwen2tokenizer|code ?llama/i;

/** Looks up well-known token strings (used when no tokenizer_config.json names them). */
function guessId(core: Core, names: string[]): number | undefined {
  for (const n of names) {
    const id = core.tokenToId(n);
    if (id !== undefined) return id;
  }
  return undefined;
}

function resolveSpecials(
  core: Core,
  cfg: TokenizerConfig,
  fromModel: { template?: SingleTemplate; bosId?: number; eosId?: number; unkId?: number; padId?: number },
): Specials {
  const hasConfig = Object.keys(cfg.values).length > 0;
  const ids: Record<string, number | undefined> = {};
  for (const k of TOKEN_KEYS) ids[k] = configuredId(core, cfg, k);
  // what the configs do not name comes from the model itself
  if (core.kind === "sentencepiece") {
    // the trainer_spec is the authority (a pad_id of -1 means no pad token)
    ids.bos_token ??= fromModel.bosId;
    ids.eos_token ??= fromModel.eosId;
    ids.unk_token ??= fromModel.unkId;
    ids.pad_token ??= fromModel.padId;
  } else {
    // a tokenizer.json: the post-processor's tokens, else well-known names
    const t = fromModel.template;
    const pre = t?.prefix.length === 1 ? t.prefix[0] : undefined;
    const post = t?.suffix.length === 1 ? t.suffix[0] : undefined;
    ids.cls_token ??= guessId(core, ["[CLS]"]) ?? (post !== undefined ? pre : undefined);
    ids.sep_token ??= guessId(core, ["[SEP]"]) ?? (pre !== undefined ? post : undefined);
    ids.bos_token ??= guessId(core, ["<s>", "[BOS]"]) ?? (post === undefined ? pre : undefined);
    ids.eos_token ??= guessId(core, ["</s>", "[EOS]"]) ?? (pre === undefined ? post : undefined);
    ids.unk_token ??= fromModel.unkId ?? guessId(core, ["<unk>", "[UNK]"]);
    ids.pad_token ??= fromModel.padId ?? guessId(core, ["<pad>", "[PAD]"]);
    ids.mask_token ??= guessId(core, ["[MASK]", "<mask>"]);
  }
  const v = cfg.values;
  const cls = typeof v.tokenizer_class === "string" ? v.tokenizer_class : "";
  const hasBosEosFlags = typeof v.add_bos_token === "boolean" || typeof v.add_eos_token === "boolean";
  const bosEos = (addBos: boolean, addEos: boolean): SingleTemplate => {
    const prefix = addBos && ids.bos_token !== undefined ? [ids.bos_token] : [];
    const suffix = addEos && ids.eos_token !== undefined ? [ids.eos_token] : [];
    return {
      prefix,
      suffix,
      prefixTypes: prefix.map(() => 0),
      suffixTypes: suffix.map(() => 0),
      sequenceType: 0,
    };
  };
  const addBos = typeof v.add_bos_token === "boolean" ? v.add_bos_token : true;
  const addEos = typeof v.add_eos_token === "boolean" ? v.add_eos_token : false;
  let template: SingleTemplate;
  if (core.kind === "tokenizer.json") {
    // Llama-style fast tokenizers rebuild their post-processor from add_bos_token / add_eos_token.
    if (hasBosEosFlags && (cls === "" || LLAMA_LIKE.test(cls))) template = bosEos(addBos, addEos);
    else template = fromModel.template ?? bosEos(false, false);
  } else if (!hasConfig || hasBosEosFlags || LLAMA_LIKE.test(cls)) {
    template = bosEos(addBos, addEos);
  } else if (/t5/i.test(cls)) {
    template = bosEos(false, true);
  } else if (ids.cls_token !== undefined && ids.sep_token !== undefined) {
    const t = [ids.cls_token, ids.sep_token];
    template = { prefix: [t[0]], suffix: [t[1]], prefixTypes: [0], suffixTypes: [0], sequenceType: 0 };
  } else {
    template = bosEos(addBos, addEos);
  }
  // Llama models often define no pad token: pad with EOS, as transformers users (and the prototype) do.
  const padId = ids.pad_token ?? fromModel.padId ?? ids.eos_token ?? ids.unk_token ?? 0;
  const side = v.padding_side === "left" ? "left" : "right";
  const maxLen =
    typeof v.model_max_length === "number" && v.model_max_length < 1e9 ? v.model_max_length : undefined;
  return {
    template,
    padId,
    unkId: ids.unk_token ?? fromModel.unkId,
    bosId: ids.bos_token,
    eosId: ids.eos_token,
    clsId: ids.cls_token,
    sepId: ids.sep_token,
    maskId: ids.mask_token,
    paddingSide: side,
    modelMaxLength: maxLen,
  };
}

async function readJsonIfExists(file: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Error(`${file}: expected a JSON object`);
  return json as Json;
}

async function readConfigs(dir: string): Promise<TokenizerConfig> {
  const cfg: TokenizerConfig = { values: {}, source: {} };
  for (const name of ["tokenizer_config.json", "special_tokens_map.json"]) {
    const file = join(dir, name);
    const json = await readJsonIfExists(file);
    if (!json) continue;
    for (const [k, val] of Object.entries(json)) {
      if (k in cfg.values) continue; // tokenizer_config.json wins
      cfg.values[k] = val;
      cfg.source[k] = file;
    }
  }
  return cfg;
}

// ---------------------------------------------------------------------------------------------
// Loading

function spmTokenizer(bytes: Uint8Array, file: string, cfg: TokenizerConfig): Tokenizer {
  const sp = new SentencePieceProcessor(parseSentencePieceModel(bytes, file), file);
  const core = sentencePieceCore(sp);
  const ts = sp.model.trainerSpec;
  // trainer_spec ids of -1 (or past the vocabulary) mean "not defined"
  const defined = (id: number): number | undefined => (id >= 0 && id < sp.vocabSize ? id : undefined);
  return new TextTokenizer(
    core,
    resolveSpecials(core, cfg, {
      bosId: defined(ts.bosId),
      eosId: defined(ts.eosId),
      unkId: sp.unkId,
      padId: defined(ts.padId),
    }),
  );
}

function jsonTokenizer(json: unknown, file: string, cfg: TokenizerConfig): Tokenizer {
  const tj = new TokenizerJson(json, file);
  const core = tokenizerJsonCore(tj);
  const padding = (json as Json).padding as Json | null | undefined;
  const padId = padding && typeof padding.pad_id === "number" ? padding.pad_id : undefined;
  return new TextTokenizer(
    core,
    resolveSpecials(core, cfg, { template: tj.template, unkId: tj.unkId, padId }),
  );
}

function configFrom(values: Json, file: string): TokenizerConfig {
  const source: Record<string, string> = {};
  for (const k of Object.keys(values)) source[k] = file;
  return { values, source };
}

/** Builds a tokenizer from a SentencePiece model's bytes (plus tokenizer_config.json values, if any). */
export function tokenizerFromSentencePiece(
  bytes: Uint8Array,
  file = "<model>",
  config: Json = {},
): Tokenizer {
  return spmTokenizer(bytes, file, configFrom(config, "tokenizer_config"));
}

/** Builds a tokenizer from a parsed tokenizer.json document (plus tokenizer_config.json values, if any). */
export function tokenizerFromJson(json: unknown, file = "tokenizer.json", config: Json = {}): Tokenizer {
  return jsonTokenizer(json, file, configFrom(config, "tokenizer_config"));
}

/** SentencePiece file names in the order transformers' tokenizers look for them. */
const SPM_NAMES = ["tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "spm.model"];

/**
 * Loads a tokenizer from
 * - a model folder: `tokenizer.json`, else a SentencePiece `*.model`, with `tokenizer_config.json` and
 *   `special_tokens_map.json` when present (special tokens, padding side, add_bos/eos_token);
 * - a `tokenizer.json` (or any `.json` in that format) file;
 * - a SentencePiece `.model` file.
 * Config files beside a given file are used too.
 *
 * @example
 * const tok = await loadTokenizer("models/llm-jp-3-1.8b");
 * tok.encode("こんにちは");                        // [1, ...] (BOS first)
 * tok.encode("こんにちは", { addSpecialTokens: false });
 * const batch = tok.encodeBatch(["短い", "もう少し長い文"], { maxLength: 512 });
 */
export async function loadTokenizer(pathOrDir: string): Promise<Tokenizer> {
  let isDir: boolean;
  try {
    isDir = (await stat(pathOrDir)).isDirectory();
  } catch {
    throw new Error(`${pathOrDir}: no such tokenizer file or model folder`);
  }
  let file: string;
  let dir: string;
  if (isDir) {
    dir = pathOrDir;
    const names = await readdir(dir);
    if (names.includes("tokenizer.json")) file = join(dir, "tokenizer.json");
    else {
      const spm =
        SPM_NAMES.find((n) => names.includes(n)) ?? names.filter((n) => n.endsWith(".model")).sort()[0];
      if (!spm) {
        const hint = names.includes("vocab.txt")
          ? " (vocab.txt-only tokenizers are not read: save a tokenizer.json, e.g. with transformers' save_pretrained)"
          : "";
        throw new Error(`${dir}: no tokenizer.json or SentencePiece .model file in this folder${hint}`);
      }
      file = join(dir, spm);
    }
  } else {
    file = pathOrDir;
    dir = dirname(pathOrDir);
  }
  const cfg = await readConfigs(dir);
  const bytes = await readFile(file);
  const looksJson = file.endsWith(".json") || (!file.endsWith(".model") && bytes[0] === 0x7b);
  if (!looksJson) return spmTokenizer(bytes, file, cfg);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
  return jsonTokenizer(json, file, cfg);
}
