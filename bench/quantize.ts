// `npm run bench:quantize` (not in CI; uses the llm-jp-3 tokenizer in test/fixtures and ~15 GB of
// RAM for the float32 training run): a quantized frozen base against float32, side by side.
//
// 1. Prediction, BERT-base-shaped (12 layers, hidden 768), batch 32 of 64-token posts: the model
//    as `toxlora export` writes it (LoRA merged, then quantized; the default qgemm kernel and
//    MatMulNBits), run by plain onnxruntime-node: texts/s, file size, the largest
//    |Δ probability| against float32 on the same inputs, and onnxruntime's per-op profile.
// 2. Training: a whole `train()` run of an llm-jp-3-1.8b-shaped random checkpoint (batch 1 × 512,
//    r 16, all-linear, per-label-softmax, as bench:trainer-scale), one child process per scheme
//    so each peak RSS is its own: peak RSS and the median optimizer-step time.
// Results: one JSON line and bench/results/quantize.json.
//
// Environment: BENCH_LAYERS (default 24), BENCH_ROWS (default 8), BENCH_SEQ (default 512),
// BENCH_PREDICT_ROUNDS (default 9), BENCH_SKIP_TRAIN=1 (prediction only: writes
// bench/results/quantize-predict.json instead, `npm run bench:quantize-predict`; its peak RSS is
// in the JSON, predict_peak_rss_gb).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Graph, toOnnx } from "../src/engine/index.js";
import { loraConfig } from "../src/io/peft.js";
import { buildClassifier, loadCheckpoint } from "../src/models/registry.js";
import type { QuantizeOptions, QuantScheme } from "../src/quant/weights.js";
import { train } from "../src/train/trainer.js";
import { writeBertBaseModel } from "./bert-base.js";
import { llmJpScaleRun, stepSeconds, writeLlmJpScaleModel, writeLongPosts } from "./llmjp-scale.js";

const layers = Number(process.env.BENCH_LAYERS ?? 24);
const rows = Number(process.env.BENCH_ROWS ?? 8);
const seq = Number(process.env.BENCH_SEQ ?? 512);
const rounds = Number(process.env.BENCH_PREDICT_ROUNDS ?? 9);
const SCHEMES: QuantScheme[] = ["none", "int8", "int4", "nf4"];

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The exported classifier's ONNX bytes (LoRA-free merged graph, optionally quantized). */
async function exportedBytes(model: string, quant: QuantizeOptions): Promise<Uint8Array> {
  const ckpt = await loadCheckpoint(model);
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: 4 },
    merged: true,
    mergeInPlace: true,
    tokenTypeInput: false,
    quantizeMerged: quant.scheme === "none" ? undefined : quant,
  });
  g.output("probs", m.probs);
  return toOnnx(g);
}

/**
 * The graph `predict --quantize <scheme>` runs in toxlora (not exported): the base loaded
 * quantized (blocks of 32), a LoRA branch (r 16, all-linear) beside each quantized weight
 * ("none": the float32 base, the same LoRA merged, so the same random head).
 */
async function quantizedBaseBytes(
  model: string,
  scheme: QuantScheme,
  baseKernel: "matmulnbits" | "qgemm",
): Promise<Uint8Array> {
  const ckpt = await loadCheckpoint(
    model,
    scheme === "none" ? {} : { quantize: { scheme }, quantCacheDir: null },
  );
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: 4 },
    lora: loraConfig({ r: 16, lora_alpha: 32, target_modules: "all-linear" }),
    merged: true,
    tokenTypeInput: false,
    baseKernel,
  });
  g.output("probs", m.probs);
  return toOnnx(g);
}

/**
 * Texts/s, size and probabilities of each model, run by plain onnxruntime-node (no toxlora code in
 * the loop). The models take turns run by run, so a change in the machine's load hits them alike.
 */
async function sideBySide(
  files: Map<string, Uint8Array>,
  feeds: Record<string, ort.Tensor>,
  batch: number,
): Promise<Record<string, { textsPerS: number; bytes: number; probs: Float32Array }>> {
  const sessions = new Map<string, ort.InferenceSession>();
  const sizes = new Map<string, number>();
  for (const [name, bytes] of files) {
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
    await session.run(feeds); // warm-up
    sessions.set(name, session);
    sizes.set(name, bytes.byteLength);
  }
  files.clear(); // the sessions hold their own copies
  const times = new Map<string, number[]>([...sizes.keys()].map((name) => [name, []]));
  const probs = new Map<string, Float32Array>();
  for (let i = 0; i < rounds; i++) {
    for (const [name, session] of sessions) {
      const t0 = performance.now();
      const out = await session.run(feeds);
      times.get(name)?.push((performance.now() - t0) / 1000);
      probs.set(name, out.probs.data as Float32Array);
    }
  }
  for (const session of sessions.values()) await session.release();
  const results: Record<string, { textsPerS: number; bytes: number; probs: Float32Array }> = {};
  for (const [name, bytes] of sizes) {
    results[name] = {
      textsPerS: batch / median(times.get(name) as number[]),
      bytes,
      probs: probs.get(name) as Float32Array,
    };
  }
  return results;
}

/**
 * Where one batch's time goes: onnxruntime's own profiler (a separate session, 3 runs), kernel
 * time per op type as a share of all kernel time, largest first (ops under 1% summed as "other").
 */
async function opProfile(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  prefix: string,
): Promise<Record<string, number>> {
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: "all",
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  for (let i = 0; i < 3; i++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  const dir = dirname(prefix);
  const file = readdirSync(dir).find((f) => join(dir, f).startsWith(prefix) && f.endsWith(".json"));
  if (!file) throw new Error(`no onnxruntime profile beside ${prefix}`);
  const events = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
    cat: string;
    name: string;
    dur: number;
    args?: { op_name?: string };
  }[];
  const byOp = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || !e.args?.op_name) continue;
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur);
    total += e.dur;
  }
  const share: Record<string, number> = {};
  let other = 0;
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) {
    if (us / total >= 0.01) share[op] = round(us / total);
    else other += us;
  }
  if (other > 0) share.other = round(other / total);
  return share;
}

async function predictPart(dir: string) {
  const model = join(dir, "bert-base");
  await writeBertBaseModel(model);
  const batch = 32;
  const len = 64;
  let s = 7;
  const ids = BigInt64Array.from({ length: batch * len }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return BigInt(5 + (s % 31_000));
  });
  const feeds = {
    input_ids: new ort.Tensor("int64", ids, [batch, len]),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(batch * len).fill(1n), [batch, len]),
  };
  const exports: [string, QuantizeOptions][] = [
    ["fp32", { scheme: "none" }],
    // As `toxlora export --quantize int8|int4` writes them (kernel qgemm, int4 blocks of 32).
    ["int8", { scheme: "int8", kernel: "qgemm" }],
    ["int4", { scheme: "int4", kernel: "qgemm" }],
    // The same with `--quant-kernel matmulnbits` (accuracy_level 4).
    ["int8_matmulnbits", { scheme: "int8", kernel: "matmulnbits", accuracyLevel: 4 }],
    ["int4_matmulnbits", { scheme: "int4", kernel: "matmulnbits", accuracyLevel: 4 }],
  ];
  const files = new Map<string, Uint8Array>();
  for (const [name, quant] of exports) files.set(name, await exportedBytes(model, quant));
  const profile: Record<string, Record<string, number>> = {};
  for (const name of ["fp32", "int8", "int4"]) {
    profile[name] = await opProfile(files.get(name) as Uint8Array, feeds, join(dir, `profile-${name}`));
  }
  const results = await sideBySide(files, feeds, batch);
  // `predict --quantize` inside toxlora, against float32 in a second group (one group of nine
  // sessions would need > 6 GB): MatMulNBits with float32 activations (the default) and the base
  // requantized for the int8 GEMM (baseKernel "qgemm").
  const inToxlora: [string, QuantScheme, "matmulnbits" | "qgemm"][] = [
    ["base_fp32", "none", "matmulnbits"],
    ["base_int8", "int8", "matmulnbits"],
    ["base_int4", "int4", "matmulnbits"],
    ["base_int8_qgemm", "int8", "qgemm"],
    ["base_int4_qgemm", "int4", "qgemm"],
  ];
  for (const [name, scheme, kernel] of inToxlora) {
    files.set(name, await quantizedBaseBytes(model, scheme, kernel));
  }
  Object.assign(results, await sideBySide(files, feeds, batch));
  const shift = (name: string, ref = "fp32") => {
    let m = 0;
    const a = results[name].probs;
    const b = results[ref].probs;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return round(m, 5);
  };
  const speed = (name: string, ref = "fp32") => round(results[name].textsPerS / results[ref].textsPerS);
  const size = (name: string) => round(results[name].bytes / results.fp32.bytes);
  return {
    predict_texts_per_s_fp32: round(results.fp32.textsPerS, 1),
    predict_speedup_int8: speed("int8"),
    predict_speedup_int4: speed("int4"),
    predict_speedup_int8_matmulnbits: speed("int8_matmulnbits"),
    predict_speedup_int4_matmulnbits: speed("int4_matmulnbits"),
    export_size_ratio_int4: size("int4"),
    export_size_ratio_int8: size("int8"),
    export_size_ratio_int8_matmulnbits: size("int8_matmulnbits"),
    max_prob_shift_int8: shift("int8"),
    max_prob_shift_int4: shift("int4"),
    max_prob_shift_int8_matmulnbits: shift("int8_matmulnbits"),
    max_prob_shift_int4_matmulnbits: shift("int4_matmulnbits"),
    predict_quantize_speedup_int8: speed("base_int8", "base_fp32"),
    predict_quantize_speedup_int4: speed("base_int4", "base_fp32"),
    predict_quantize_speedup_int8_qgemm: speed("base_int8_qgemm", "base_fp32"),
    predict_quantize_speedup_int4_qgemm: speed("base_int4_qgemm", "base_fp32"),
    predict_quantize_max_prob_shift_int8: shift("base_int8", "base_fp32"),
    predict_quantize_max_prob_shift_int4: shift("base_int4", "base_fp32"),
    predict_quantize_max_prob_shift_int8_qgemm: shift("base_int8_qgemm", "base_fp32"),
    predict_quantize_max_prob_shift_int4_qgemm: shift("base_int4_qgemm", "base_fp32"),
    predict_rounds: rounds,
    predict_peak_rss_gb: round(process.resourceUsage().maxRSS / 1e6, 2),
    predict_threads: "onnxruntime default (intra-op = cores)",
    predict_profile_share: profile,
  };
}

/** One training run in this process (child mode): prints peak RSS and step times as JSON. */
async function trainChild(model: string, data: string, out: string, scheme: QuantScheme, ckpt?: string) {
  const r = await train(
    {
      ...llmJpScaleRun(model, data, out, seq),
      quantize: scheme,
      quantCache: false,
      ...(ckpt ? { gradientCheckpointing: ckpt as "full" } : {}),
    },
    { progress: "quiet" },
  );
  const steps = stepSeconds(r.runDir);
  console.log(
    JSON.stringify({
      peak_rss_gb: round(process.resourceUsage().maxRSS / 1e6, 2),
      step_seconds: steps.map((x: number) => round(x, 2)),
      train_seconds: round(r.trainSeconds, 1),
    }),
  );
}

async function trainPart(dir: string) {
  const model = join(dir, "llm-jp");
  await writeLlmJpScaleModel(model, layers);
  const data = join(dir, "data.jsonl");
  writeLongPosts(data, rows * 2);
  const out: Record<string, number | number[] | string> = {};
  // Each quantized run uses the default (selective checkpointing); nf4 once more with "full".
  const runs: [QuantScheme, string | undefined][] = [
    ...SCHEMES.map((s) => [s, undefined] as [QuantScheme, undefined]),
    ["nf4", "full"],
  ];
  for (const [scheme, ckpt] of runs) {
    const stdout = execFileSync(
      process.execPath,
      [
        "--import",
        "tsx",
        fileURLToPath(import.meta.url),
        "--child",
        model,
        data,
        join(dir, `run-${scheme}${ckpt ?? ""}`),
        scheme,
        ...(ckpt ? [ckpt] : []),
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 },
    );
    const r = JSON.parse(stdout.trim().split("\n").pop() as string);
    const name = `${scheme === "none" ? "fp32" : scheme}${ckpt ? `_${ckpt}` : ""}`;
    out[`train_peak_rss_gb_${name}`] = r.peak_rss_gb;
    out[`train_median_step_s_${name}`] = median(r.step_seconds);
    out[`train_step_seconds_${name}`] = r.step_seconds;
    process.stderr.write(`${name}: ${JSON.stringify(r)}\n`);
  }
  const ratio = (s: string) =>
    round((out[`train_median_step_s_${s}`] as number) / (out.train_median_step_s_fp32 as number));
  return {
    ...out,
    train_step_ratio_int8: ratio("int8"),
    train_step_ratio_int4: ratio("int4"),
    train_step_ratio_nf4: ratio("nf4"),
    train_step_ratio_nf4_full: ratio("nf4_full"),
    train_gradient_checkpointing:
      "int8/int4/nf4: selective (the default with --quantize); nf4_full: --gradient-checkpointing full; fp32: none",
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-quant-"));
  try {
    // In a child process, so its ~5.7 GB peak is given back before the training runs start.
    const predict = JSON.parse(
      (
        execFileSync(
          process.execPath,
          ["--import", "tsx", fileURLToPath(import.meta.url), "--predict-child", dir],
          { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 },
        )
          .trim()
          .split("\n")
          .pop() as string
      ).trim(),
    );
    process.stderr.write(`${JSON.stringify(predict)}\n`);
    const predictOnly = !!process.env.BENCH_SKIP_TRAIN;
    const trainRes = predictOnly ? {} : await trainPart(dir);
    const result = {
      bench: predictOnly ? "quantize-predict" : "quantize",
      predict_model:
        "BERT-base-shaped random (12 layers, hidden 768, FFN 3072), batch 32 × 64 tokens, plain onnxruntime-node",
      ...(predictOnly
        ? {}
        : {
            train_model: `llm-jp-3-1.8b-shaped random Llama (${layers} layers, hidden 2048, FFN 7168, vocab 99,584), batch 1 × ${seq}, r 16, all-linear, per-label-softmax`,
            train_rows: rows * 2,
          }),
      ...predict,
      ...trainRes,
      date: new Date().toISOString(),
    };
    console.log(JSON.stringify(result));
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    // The prediction half alone never overwrites the whole bench's file.
    writeFileSync(
      new URL(`./results/${predictOnly ? "quantize-predict" : "quantize"}.json`, import.meta.url),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv;
if (argv[2] === "--child") await trainChild(argv[3], argv[4], argv[5], argv[6] as QuantScheme, argv[7]);
else if (argv[2] === "--predict-child") console.log(JSON.stringify(await predictPart(argv[3])));
else await main();
