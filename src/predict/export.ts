// `toxlora export`: a run as a standalone ONNX classifier that onnxruntime or transformers.js can
// run without toxlora. LoRA is merged into the weights; inputs are input_ids and attention_mask
// (int64 [batch, seq]); the output `logits` [batch, labels] gives P(label) = sigmoid(logit), with the
// run's calibration (if any) already applied. Beside
// the model: config.json (id2label, problem_type multi_label_classification, thresholds) and the
// tokenizer files.
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { BASELINE_MODEL_DIR } from "../baseline/classifier.js";
import { isBaselineModel } from "../baseline/config.js";
import {
  add,
  constant,
  EXTERNAL_DATA_BYTES,
  ExternalWeights,
  type Graph,
  initializerBytes,
  mul,
  reshape,
  slice,
  squeeze,
  sub,
  type Tensor,
  toOnnx,
} from "../engine/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { fitMaxLength, specialTokenCount } from "../models/limits.js";
import { loadCheckpoint } from "../models/registry.js";
import { blockSizeOf, parseQuantScheme, type QuantizeOptions, type QuantScheme } from "../quant/weights.js";
import { type Calibration, readCalibration } from "../run/calibration.js";
import { RUN_FILES } from "../run/types.js";
import { loadTokenizer } from "../tokenizers/tokenizer.js";
import { VERSION } from "../version.js";
import { buildRunGraph, readRunConfig, readThresholds, runModelDir } from "./classifier.js";
import { type TritonOptions, tritonConfig, tritonModelPath } from "./triton.js";

/** MatMulNBits accuracy_level of exported models (with kernel "matmulnbits"). */
const DEFAULT_ACCURACY_LEVEL = 4;

/** Kernels a quantized export can use; qgemm measures fastest (bench/results/quantize*.json). */
export const EXPORT_QUANT_KERNELS = ["qgemm", "matmulnbits"] as const;
export type ExportQuantKernel = (typeof EXPORT_QUANT_KERNELS)[number];

const TOKENIZER_FILES =
  /^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json|vocab\.txt|.*\.model)$/;

export interface ExportOptions {
  /**
   * Store the backbone's linear weights quantized (after merging LoRA into float32, as PEFT
   * merges): int8 or int4, run by `quantKernel`. Default none.
   */
  quantize?: QuantScheme;
  /**
   * "qgemm" (default): int8 weights per output channel (int4: MatMulNBits' blocks in the file,
   * requantized to int8 at session creation) and activations quantized per tensor, as standard
   * DynamicQuantizeLinear + MatMulInteger, which onnxruntime fuses into its int8 GEMM.
   * "matmulnbits": com.microsoft MatMulNBits (blockwise weights, `accuracyLevel`).
   */
  quantKernel?: ExportQuantKernel;
  /** Values per quantization block (default 32; int8 with qgemm is per channel and takes none). */
  quantBlockSize?: number;
  /** MatMulNBits accuracy_level: 0 keeps float32 activations, 4 (default) quantizes them to int8 per block. */
  accuracyLevel?: 0 | 4;
  /** Also write Triton's config.pbtxt (the output must sit in a Triton model repository). */
  triton?: TritonOptions;
}

export interface ExportResult {
  model: string;
  files: string[];
  /** Things the user should know, e.g. that the run's maxLength was lowered to the model's limit. */
  notices: string[];
}

/** Writes `<outFile>` (ONNX) and its config + tokenizer files into the same folder. */
export async function exportOnnx(
  runDir: string,
  outFile: string,
  opts: ExportOptions = {},
): Promise<ExportResult> {
  const scheme = opts.quantize ? parseQuantScheme(opts.quantize) : "none";
  if (scheme === "nf4") {
    throw new Error(
      "export --quantize nf4 is not supported: exported models use onnxruntime's standard quantized kernels; choose int4 or int8",
    );
  }
  const quantizeMerged = exportQuantization(scheme, opts);
  const run = await readRunConfig(runDir);
  if (isBaselineModel(run.model))
    throw new Error(
      `${runDir}: a tfidf-lr run has no transformer to export; its model is the folder ${join(runDir, BASELINE_MODEL_DIR)} (vocabulary + idf + weights, see the README)`,
    );
  const modelDir = await runModelDir(run);
  const out = resolve(outFile);
  const dir = dirname(out);
  const triton = opts.triton ? tritonModelPath(out) : undefined; // checks the layout before any work
  // config.json goes beside the model: into the run or the base model folder it would replace theirs.
  const written = [out, `${out}.data`, join(dir, "config.json")];
  refuseOutputOverInput(written, await filesIn(runDir, join(runDir, RUN_FILES.adapter), modelDir));
  const ckpt = await loadCheckpoint(modelDir);
  const tokenizer = await loadTokenizer(modelDir);
  const fitted = fitMaxLength(
    run.maxLength,
    ckpt.config,
    specialTokenCount(tokenizer),
    "the run's maxLength",
  );
  const { g, m } = await buildRunGraph(runDir, run, ckpt, { tokenTypeInput: false, quantizeMerged });
  // One logit per label with sigmoid(logit) = P(label): for the per-label softmax head that is
  // the difference of its two class logits.
  const logits =
    run.head === "multilabel"
      ? m.logits
      : (() => {
          const pos = squeeze(slice(m.logits, [1], [2], [2]), [2]);
          const neg = squeeze(slice(m.logits, [0], [1], [2]), [2]);
          return reshape(sub(pos, neg), ["batch", run.labels.length]);
        })();
  // A calibrated run's scaling is folded into the graph: logits' = scale · logits + bias.
  const calibration = await readCalibration(runDir, run.labels);
  g.output("logits", calibration ? calibratedLogits(g, logits, calibration) : logits);

  await mkdir(dir, { recursive: true });
  // Large weights go to `<model>.data` beside the model (a protobuf cannot exceed 2 GB).
  const external = initializerBytes(g) > EXTERNAL_DATA_BYTES ? new ExternalWeights(`${out}.data`) : undefined;
  let bytes: Uint8Array;
  try {
    bytes = toOnnx(g, {
      externalData: external,
      metadata: { toxlora_version: VERSION, labels: JSON.stringify(run.labels) },
      producerVersion: VERSION,
    });
  } finally {
    external?.close();
  }
  await writeFileAtomic(out, bytes);
  const files = [out, ...(external ? [external.path] : [])];

  const thresholds = await readThresholds(runDir, run.labels);
  const config = {
    ...ckpt.config.raw,
    id2label: Object.fromEntries(run.labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(run.labels.map((l, i) => [l, i])),
    num_labels: run.labels.length,
    problem_type: "multi_label_classification",
    toxlora: {
      version: VERSION,
      thresholds,
      head: run.head,
      maxLength: fitted.maxLength,
      onnx: basename(out),
      quantization: quantizeMerged ? quantizationRecord(quantizeMerged) : null,
      // Already applied inside the graph's `logits`; kept here so the numbers are on record.
      calibration: calibration
        ? { method: calibration.method, scale: calibration.scale, bias: calibration.bias, inGraph: true }
        : null,
    },
  };
  await writeJsonAtomic(join(dir, "config.json"), config);
  files.push(join(dir, "config.json"));
  for (const f of await readdir(modelDir)) {
    if (TOKENIZER_FILES.test(f) && resolve(modelDir, f) !== join(dir, f)) {
      await copyFile(join(modelDir, f), join(dir, f));
      files.push(join(dir, f));
    }
  }
  if (triton) {
    await writeFileAtomic(triton.configFile, tritonConfig(triton.name, run.labels, opts.triton));
    files.push(triton.configFile);
  }
  return { model: out, files, notices: fitted.notice ? [fitted.notice] : [] };
}

/** The merged weights' quantization of an export, its options checked. */
function exportQuantization(scheme: QuantScheme, opts: ExportOptions): QuantizeOptions | undefined {
  if (scheme === "none") return undefined;
  const kernel = opts.quantKernel ?? "qgemm";
  if (!(EXPORT_QUANT_KERNELS as readonly string[]).includes(kernel)) {
    throw new Error(
      `--quant-kernel: unknown kernel "${kernel}" (expected one of ${EXPORT_QUANT_KERNELS.join(", ")})`,
    );
  }
  if (kernel === "qgemm" && scheme === "int8" && opts.quantBlockSize !== undefined) {
    throw new Error(
      "--quant-block-size: an int8 export with --quant-kernel qgemm is quantized per output channel; block sizes apply to int4 or to --quant-kernel matmulnbits",
    );
  }
  const q: QuantizeOptions = {
    scheme,
    blockSize: opts.quantBlockSize,
    kernel,
    ...(kernel === "matmulnbits" ? { accuracyLevel: opts.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL } : {}),
  };
  blockSizeOf(q);
  return q;
}

/** config.json's record of an export's quantization: scheme, kernel and weight granularity. */
function quantizationRecord(q: QuantizeOptions) {
  const perChannel = q.kernel === "qgemm" && q.scheme === "int8";
  return {
    scheme: q.scheme,
    kernel: q.kernel,
    // int8 + qgemm: one scale per output channel; int4 + qgemm keeps blocks in the file.
    block_size: perChannel ? null : blockSizeOf(q),
    ...(q.accuracyLevel !== undefined ? { accuracy_level: q.accuracyLevel } : {}),
  };
}

/** scale · logits + bias per label (the calibration of src/run/calibration.ts on the logit). */
function calibratedLogits(g: Graph, logits: Tensor, cal: Calibration): Tensor {
  const L = cal.labels.length;
  return add(mul(logits, constant(g, cal.scale, [L])), constant(g, cal.bias, [L]));
}

/** The files directly inside each of `dirs` (missing folders give none). */
async function filesIn(...dirs: string[]): Promise<string[]> {
  const lists = await Promise.all(
    dirs.map((d) =>
      readdir(d).then(
        (names) => names.map((n) => join(d, n)),
        () => [] as string[],
      ),
    ),
  );
  return lists.flat();
}
