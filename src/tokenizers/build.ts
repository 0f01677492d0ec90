// Builds a small character-level tokenizer from texts, for demos and tests that cannot download a
// pretrained one. It is written as a standard Hugging Face tokenizer.json (WordPiece model whose pieces
// are single characters) plus tokenizer_config.json, so transformers / tokenizers / transformers.js
// can load it as well as toxlora.
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.js";
import { loadTokenizer, type Tokenizer, tokenizerFromJson } from "./tokenizer.js";

export interface CharTokenizerOptions {
  /** Folder to write tokenizer.json, tokenizer_config.json and special_tokens_map.json into (optional). */
  outDir?: string;
  /**
   * "bert" (default): [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, texts encoded as [CLS] text [SEP].
   * "llama": <pad>=0 <unk>=1 <s>=2 </s>=3, texts encoded as <s> text (</s> too with `addEos`).
   */
  style?: "bert" | "llama";
  /** llama style: also append </s> (default false). */
  addEos?: boolean;
  /** At most this many ids in total, special tokens included; the most frequent characters are kept. */
  maxVocabSize?: number;
  /** Characters seen fewer times than this map to the unknown token (default 1). */
  minFrequency?: number;
  /** Apply NFKC normalization first (default true: full-width Latin and half-width kana fold). */
  nfkc?: boolean;
  /** Lower-case the text (default false). */
  lowercase?: boolean;
  /** tokenizer_config.json `model_max_length` (default 512). */
  modelMaxLength?: number;
}

export interface CharTokenizerResult {
  tokenizer: Tokenizer;
  vocabSize: number;
  /** The tokenizer.json and tokenizer_config.json documents. */
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Files written (when `outDir` was given). */
  files: string[];
}

interface SpecialSet {
  pad: string;
  unk: string;
  tokens: string[];
  single: unknown[];
  pair: unknown[];
  config: Record<string, string>;
}

function specialsFor(style: "bert" | "llama", addEos: boolean): SpecialSet {
  const tok = (id: string, typeId = 0) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: "A" | "B", typeId: number) => ({ Sequence: { id, type_id: typeId } });
  if (style === "bert") {
    return {
      pad: "[PAD]",
      unk: "[UNK]",
      tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
      single: [tok("[CLS]"), seq("A", 0), tok("[SEP]")],
      pair: [tok("[CLS]"), seq("A", 0), tok("[SEP]"), seq("B", 1), tok("[SEP]", 1)],
      config: {
        pad_token: "[PAD]",
        unk_token: "[UNK]",
        cls_token: "[CLS]",
        sep_token: "[SEP]",
        mask_token: "[MASK]",
      },
    };
  }
  const eos = addEos ? [tok("</s>")] : [];
  const eos1 = addEos ? [tok("</s>", 1)] : [];
  return {
    pad: "<pad>",
    unk: "<unk>",
    tokens: ["<pad>", "<unk>", "<s>", "</s>"],
    single: [tok("<s>"), seq("A", 0), ...eos],
    pair: [tok("<s>"), seq("A", 0), ...eos, tok("<s>", 1), seq("B", 1), ...eos1],
    config: { pad_token: "<pad>", unk_token: "<unk>", bos_token: "<s>", eos_token: "</s>" },
  };
}

/**
 * Builds a character-level vocabulary from `texts` and returns the tokenizer (read back from the
 * written files when `outDir` is given, so what is returned is exactly what others will load).
 */
export async function buildCharTokenizer(
  texts: readonly string[],
  options: CharTokenizerOptions = {},
): Promise<CharTokenizerResult> {
  const style = options.style ?? "bert";
  const nfkc = options.nfkc ?? true;
  const lowercase = options.lowercase ?? false;
  const minFrequency = options.minFrequency ?? 1;
  const specials = specialsFor(style, options.addEos ?? false);
  const maxVocab = options.maxVocabSize ?? Number.POSITIVE_INFINITY;
  if (maxVocab < specials.tokens.length + 1) {
    throw new RangeError(
      `maxVocabSize must leave room for at least one character (≥ ${specials.tokens.length + 1})`,
    );
  }

  // Count characters after the same normalization the tokenizer applies; whitespace is dropped.
  const counts = new Map<string, number>();
  for (const text of texts) {
    let t = nfkc ? text.normalize("NFKC") : text;
    if (lowercase) t = t.toLowerCase();
    for (const ch of t) {
      if (/^\p{White_Space}$/u.test(ch)) continue;
      counts.set(ch, (counts.get(ch) ?? 0) + 1);
    }
  }
  const chars = [...counts.entries()]
    .filter(([ch, n]) => n >= minFrequency && !specials.tokens.includes(ch))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, maxVocab - specials.tokens.length)
    .map(([ch]) => ch);

  const vocab: Record<string, number> = {};
  let nextId = 0;
  for (const t of [...specials.tokens, ...chars]) vocab[t] = nextId++;

  const normalizers: unknown[] = [];
  if (nfkc) normalizers.push({ type: "NFKC" });
  if (lowercase) normalizers.push({ type: "Lowercase" });
  const specialTokens: Record<string, unknown> = {};
  for (const t of specials.tokens)
    if (t !== specials.pad && t !== specials.unk) specialTokens[t] = { id: t, ids: [vocab[t]], tokens: [t] };
  const tokenizerJson: Record<string, unknown> = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.tokens.map((t) => ({
      id: vocab[t],
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: normalizers.length > 0 ? { type: "Sequence", normalizers } : null,
    // whitespace separates nothing but is dropped; then every character is its own piece
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "WhitespaceSplit" },
        { type: "Split", pattern: { Regex: "." }, behavior: "Isolated", invert: false },
      ],
    },
    post_processor: {
      type: "TemplateProcessing",
      single: specials.single,
      pair: specials.pair,
      special_tokens: specialTokens,
    },
    decoder: { type: "Fuse" },
    model: {
      type: "WordPiece",
      unk_token: specials.unk,
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: "PreTrainedTokenizerFast",
    model_max_length: options.modelMaxLength ?? 512,
    padding_side: "right",
    clean_up_tokenization_spaces: false,
    ...specials.config,
    added_tokens_decoder: Object.fromEntries(
      specials.tokens.map((t) => [
        String(vocab[t]),
        { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };

  const files: string[] = [];
  let tokenizer: Tokenizer;
  if (options.outDir !== undefined) {
    const write = async (name: string, value: unknown): Promise<void> => {
      const file = join(options.outDir as string, name);
      await writeJsonAtomic(file, value);
      files.push(file);
    };
    await write("tokenizer.json", tokenizerJson);
    await write("tokenizer_config.json", tokenizerConfig);
    await write("special_tokens_map.json", specials.config);
    tokenizer = await loadTokenizer(options.outDir);
  } else {
    tokenizer = tokenizerFromJson(tokenizerJson, "tokenizer.json", tokenizerConfig);
  }
  return { tokenizer, vocabSize: nextId, tokenizerJson, tokenizerConfig, files };
}
