// The library API other tools use to run a model: `loadModel(dir, { adapter })` then
// `await m.forward({ inputIds, attentionMask })`. It loads a Hugging Face checkpoint folder, an
// optional PEFT adapter (LoRA merged into the weights by default) and the classification head,
// and runs the forward graph with onnxruntime. `saveAdapter` writes what training produced in
// PEFT's format.
//
// @example
// import { loadModel } from "toxlora";
// const m = await loadModel("/models/modernbert-ja-130m", { adapter: "runs/r1/adapter" });
// const { logits, pooled } = await m.forward({ inputIds: [[1, 523, 88, 2]], attentionMask: [[1, 1, 1, 1]] });
// console.log(logits.dims, Array.from(logits.data));
// await m.close();

import { Graph, Session, type SessionOptions, tensor } from "../engine/index.js";
import type { HfModelConfig } from "../io/hf-config.js";
import { type LoraAdapter, type LoraAdapterConfig, readAdapter, writeAdapter } from "../io/peft.js";
import { checkpointQuantOptions, type QuantLoadOptions } from "../quant/weights.js";
import type { HeadSpec } from "./heads.js";
import { checkSameBase, recordedBase } from "./identity.js";
import { maxSequenceLength } from "./limits.js";
import {
  buildClassifier,
  type ClassifierGraph,
  detectHead,
  loadCheckpoint,
  sessionOptionsFor,
} from "./registry.js";
import { WeightMap } from "./weights.js";

export interface LoadModelOptions extends QuantLoadOptions {
  /** A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) trained on this model. */
  adapter?: string;
  /** "cpu" (default) or "cuda" (needs onnxruntime-node's CUDA binaries). */
  device?: "cpu" | "cuda";
  /** Fold the LoRA weights into the base weights (default true; false runs the LoRA branches). */
  merged?: boolean;
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
}

/** A tensor returned by forward: row-major data and its dimensions. */
export interface OutputTensor {
  data: Float32Array;
  dims: number[];
}

export interface ForwardInput {
  /** Token ids, one row per sequence, all rows of the same length (padded). */
  inputIds: number[][];
  /** 1 for tokens, 0 for padding; same shape as inputIds. */
  attentionMask: number[][];
  /** Segment ids (BERT family); zeros when omitted. */
  tokenTypeIds?: number[][];
}

export interface ForwardOutput {
  /** [batch, seq, hidden] */
  lastHiddenState: OutputTensor;
  /** [batch, hidden]: the pooled vector the classifier reads. */
  pooled: OutputTensor;
  /** [batch, labels] (multilabel head) or [batch, labels, 2] (per-label-softmax head). */
  logits: OutputTensor;
  /** [batch, labels]: probability of each label (sigmoid, or the softmax's class 1). */
  probs: OutputTensor;
}

export interface Model {
  readonly config: HfModelConfig;
  /** Label names, in logit order (config.json's id2label, else LABEL_0, LABEL_1…). */
  readonly labels: string[];
  readonly head: HeadSpec;
  /** Notes such as "classifier.weight: not in the checkpoint; initialised afresh". */
  readonly warnings: string[];
  forward(input: ForwardInput): Promise<ForwardOutput>;
  /** Releases the onnxruntime session. */
  close(): Promise<void>;
}

/**
 * Checks one [batch, seq] input: as many rows as inputIds, each `seq` long, integers below
 * `range.limit` and not negative. Out-of-range ids must not reach the graph: Gather reads a negative
 * id as counting from the end of the table (a silently wrong embedding) and a large one fails deep
 * in onnxruntime.
 */
function checkRows(
  name: string,
  rows: unknown,
  batch: number,
  seq: number,
  range?: { limit: number; why: string },
): void {
  if (!Array.isArray(rows) || rows.length !== batch) {
    const got = Array.isArray(rows) ? `${rows.length} rows` : rows === undefined ? "nothing" : typeof rows;
    throw new Error(`forward: ${name} must have ${batch} rows (as inputIds), got ${got}`);
  }
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== seq) {
      throw new Error(
        `forward: ${name}[${i}] has length ${r?.length}, expected ${seq} (pad every row to one length)`,
      );
    }
    for (const v of r) {
      if (!Number.isInteger(v)) throw new Error(`forward: ${name}[${i}] contains ${v}, not an integer`);
      if (range && (v < 0 || v >= range.limit)) {
        throw new Error(`forward: ${name}[${i}] contains ${v}, outside 0..${range.limit - 1} (${range.why})`);
      }
    }
  });
}

function int64Rows(rows: number[][]) {
  return tensor("int64", rows.flat(), [rows.length, rows[0].length]);
}

/**
 * Loads a model folder (config.json + safetensors, and a head.safetensors beside them when the
 * checkpoint has no classification head) and, optionally, a PEFT adapter whose LoRA weights and
 * head replace the checkpoint's. The head kind (multilabel or per-label-softmax) and the number
 * of labels are read from the head tensors.
 */
export async function loadModel(modelDir: string, opts: LoadModelOptions = {}): Promise<Model> {
  const ckpt = await loadCheckpoint(modelDir, checkpointQuantOptions(opts));
  const adapter: LoraAdapter | undefined = opts.adapter ? await readAdapter(opts.adapter) : undefined;
  if (adapter && opts.adapter) await checkSameBase(opts.adapter, recordedBase(adapter.config), modelDir);
  const cfg = ckpt.config;
  const found =
    (adapter && detectHead(new WeightMap(adapter.saved, opts.adapter ?? ""))) ?? detectHead(ckpt.weights);
  const numLabels = found?.numLabels ?? (cfg.labels.length || 2);
  const head: HeadSpec = { kind: found?.kind ?? "multilabel", numLabels };
  const labels =
    cfg.labels.length === numLabels ? cfg.labels : Array.from({ length: numLabels }, (_, j) => `LABEL_${j}`);

  const merged = opts.merged ?? true;
  const g = new Graph();
  const m = buildClassifier(g, ckpt, { head, adapter, merged, mergeInPlace: merged, training: false });
  const warnings = found ? m.warnings : [`${modelDir}: no classification head found; using a random one`];
  g.output("last_hidden_state", m.lastHiddenState);
  g.output("pooled", m.pooled);
  g.output("logits", m.logits);
  g.output("probs", m.probs);
  const sessionOpts: SessionOptions = { ...sessionOptionsFor(g), device: opts.device ?? "cpu" };
  if (opts.threads) sessionOpts.threads = opts.threads;
  const session = await Session.fromGraph(g, sessionOpts);
  // Unmerged: the LoRA factors and the head are graph inputs, fed on every run.
  const paramFeeds = Object.fromEntries(
    m.params.map((p) => [p.name, tensor("float32", m.initial.get(p.name) ?? [], p.shape as number[])]),
  );
  const wantsTypes = session.inputNames.includes("token_type_ids");
  const maxSeq = maxSequenceLength(cfg);

  return {
    config: cfg,
    labels,
    head,
    warnings,
    async forward(input: ForwardInput): Promise<ForwardOutput> {
      const batch = input.inputIds?.length ?? 0;
      if (batch === 0) throw new Error("forward: inputIds is empty");
      const seq = input.inputIds[0]?.length ?? 0;
      if (seq === 0) throw new Error("forward: inputIds rows are empty");
      if (seq > maxSeq) {
        throw new Error(
          `forward: sequence length ${seq} exceeds what the model's positions cover (${maxSeq})`,
        );
      }
      const vocab = cfg.vocab_size;
      checkRows("inputIds", input.inputIds, batch, seq, { limit: vocab, why: `vocab_size is ${vocab}` });
      checkRows("attentionMask", input.attentionMask, batch, seq, {
        limit: 2,
        why: "1 = token, 0 = padding",
      });
      if (input.tokenTypeIds !== undefined) {
        // Only the BERT family reads segment ids; the others ignore them.
        const types =
          cfg.family === "bert"
            ? { limit: cfg.type_vocab_size, why: `type_vocab_size is ${cfg.type_vocab_size}` }
            : undefined;
        checkRows("tokenTypeIds", input.tokenTypeIds, batch, seq, types);
      }
      const feeds: Record<string, ReturnType<typeof tensor>> = {
        ...paramFeeds,
        input_ids: int64Rows(input.inputIds),
        attention_mask: int64Rows(input.attentionMask),
      };
      if (wantsTypes) {
        feeds.token_type_ids = int64Rows(input.tokenTypeIds ?? input.inputIds.map((r) => r.map(() => 0)));
      }
      const out = await session.run(feeds);
      const pick = (name: string): OutputTensor => ({
        data: out[name].data as Float32Array,
        dims: [...out[name].dims] as number[],
      });
      return {
        lastHiddenState: pick("last_hidden_state"),
        pooled: pick("pooled"),
        logits: pick("logits"),
        probs: pick("probs"),
      };
    },
    close: () => session.release(),
  };
}

export interface SaveAdapterOptions {
  /** Written as base_model_name_or_path (the model id or folder the adapter was trained on). */
  baseModelNameOrPath?: string;
}

/**
 * Writes the trainable parameters of a classifier (LoRA factors + head) as a PEFT adapter folder:
 * adapter_config.json (with "all-linear" resolved to module names, and modules_to_save naming the
 * head) and adapter_model.safetensors. Parameter names already are PEFT keys.
 *
 * @param values current parameter values by name (e.g. TrainSession.params()); defaults to the initial ones
 */
export async function saveAdapter(
  dir: string,
  classifier: ClassifierGraph,
  values: ReadonlyMap<string, Float32Array> = classifier.initial,
  opts: SaveAdapterOptions = {},
): Promise<void> {
  const tensors = new Map(
    classifier.params.map((p) => {
      const data = values.get(p.name);
      if (!data) throw new Error(`saveAdapter: no value for parameter ${p.name}`);
      return [p.name, { data, shape: p.shape as number[] }];
    }),
  );
  const config: Partial<LoraAdapterConfig> = {
    ...classifier.adapterConfig(),
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
  };
  await writeAdapter(dir, config, tensors);
}
