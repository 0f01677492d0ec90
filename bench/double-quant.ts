// `npm run bench:double-quant` (not in CI; ~2 GB of RAM): NF4 with and without bitsandbytes'
// double quantization (--double-quant), side by side on a BERT-base-shaped random checkpoint
// (12 layers, hidden 768; src/models/synthetic.ts: matrices U(±0.02·√3)).
//
// Per variant: bytes of the absmax/scales and of the cache file, load (quantize) time (median of 3
// alternating rounds, cache removed), RMS error
// of the dequantized weights against float32, and the largest |Δ probability| of a 7-label
// classifier (random head) against float32 on the same batch (8 × 64 random token ids).
// Results: one JSON line and bench/results/double-quant.json.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Graph, Session, tensor } from "../src/engine/index.js";
import { openCheckpoint } from "../src/io/safetensors.js";
import { buildClassifier, type LoadedCheckpoint, loadCheckpoint } from "../src/models/registry.js";
import { dequantizeWeight, type QuantizeOptions, quantizedBytes } from "../src/quant/weights.js";
import { writeBertBaseModel } from "./bert-base.js";

const round = (x: number, d = 4) => Number(x.toPrecision(d));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function probs(
  ckpt: LoadedCheckpoint,
  ids: number[],
  batch: number,
  len: number,
): Promise<Float32Array> {
  const g = new Graph();
  const m = buildClassifier(g, ckpt, { head: { kind: "multilabel", numLabels: 7 }, lora: null, seed: 3 });
  g.output("probs", m.probs);
  const session = await Session.fromGraph(g);
  try {
    const feeds = {
      input_ids: tensor("int64", ids, [batch, len]),
      attention_mask: tensor("int64", new Array(batch * len).fill(1), [batch, len]),
      token_type_ids: tensor("int64", new Array(batch * len).fill(0), [batch, len]),
    };
    const head = m.params.map((p) => [
      p.name,
      tensor("float32", m.initial.get(p.name) ?? [], p.shape as number[]),
    ]);
    const out = await session.run({ ...feeds, ...Object.fromEntries(head) });
    return out.probs.data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-dq-"));
  try {
    const model = join(dir, "bert-base");
    await writeBertBaseModel(model);
    const [batch, len] = [8, 64];
    let s = 7;
    const ids = Array.from({ length: batch * len }, () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return 5 + (s % 31_000);
    });
    const fp32 = await loadCheckpoint(model);
    const src = await openCheckpoint(model);
    const keys = src.keys();
    await src.close();
    const pFp32 = await probs(fp32, ids, batch, len);
    const variants: [string, QuantizeOptions][] = [
      ["nf4", { scheme: "nf4" }],
      ["nf4_double_quant", { scheme: "nf4", doubleQuant: true }],
    ];
    const out: Record<string, Record<string, number>> = {};
    const probsOf: Record<string, Float32Array> = {};
    // Quantizing (cache removed) timed in alternating rounds, so the machine's load hits both alike.
    const loadTimes = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    const ckpts = new Map<string, LoadedCheckpoint>();
    for (let r = 0; r < 3; r++) {
      for (const [name, quantize] of variants) {
        const cacheDir = join(dir, `cache-${name}`);
        if (r === 0) await loadCheckpoint(model, { quantize, quantCacheDir: cacheDir }); // hashes the files
        rmSync(join(cacheDir, "quantized"), { recursive: true, force: true });
        const t0 = performance.now();
        ckpts.set(name, await loadCheckpoint(model, { quantize, quantCacheDir: cacheDir }));
        loadTimes.get(name)?.push((performance.now() - t0) / 1000);
      }
    }
    for (const [name] of variants) {
      const cacheDir = join(dir, `cache-${name}`);
      const ckpt = ckpts.get(name) as LoadedCheckpoint;
      const loadS = median(loadTimes.get(name) ?? []);
      const quantize = variants.find(([v]) => v === name)?.[1] as QuantizeOptions;
      const t1 = performance.now();
      await loadCheckpoint(model, { quantize, quantCacheDir: cacheDir }); // from the cache
      const cachedS = (performance.now() - t1) / 1000;
      const [cacheFile] = readdirSync(join(cacheDir, "quantized"));
      let scaleBytes = 0;
      let codeBytes = 0;
      let sq = 0;
      let n = 0;
      const w = ckpt.weights;
      for (const key of keys) {
        const q = w.getQuantized?.(key);
        if (!q) continue;
        codeBytes += q.codes.byteLength;
        scaleBytes += quantizedBytes(q) - q.codes.byteLength;
        const ref = fp32.weights.get(key)?.data as Float32Array;
        const deq = dequantizeWeight(q);
        for (let i = 0; i < deq.length; i++) sq += (deq[i] - ref[i]) ** 2;
        n += deq.length;
      }
      probsOf[name] = await probs(ckpt, ids, batch, len);
      out[name] = {
        quantized_weights: n,
        code_bytes: codeBytes,
        scale_bytes: scaleBytes,
        scale_bits_per_weight: round((scaleBytes * 8) / n),
        cache_file_bytes: statSync(join(cacheDir, "quantized", cacheFile)).size,
        load_s: round(loadS, 3),
        cached_load_s: round(cachedS, 3),
        weight_rms_error: round(Math.sqrt(sq / n)),
        max_prob_shift_vs_fp32: round(maxAbsDiff(probsOf[name], pFp32)),
      };
    }
    const result = {
      bench: "double-quant",
      model: "bert-base-shaped synthetic (12 layers, hidden 768), batch 8 × 64",
      ...out,
      cache_size_ratio_double_quant: round(out.nf4_double_quant.cache_file_bytes / out.nf4.cache_file_bytes),
      max_prob_shift_double_quant_vs_nf4: round(maxAbsDiff(probsOf.nf4_double_quant, probsOf.nf4)),
      load_time_ratio_double_quant: round(out.nf4_double_quant.load_s / out.nf4.load_s, 3),
    };
    const line = JSON.stringify(result);
    process.stdout.write(`${line}\n`);
    const here = dirname(fileURLToPath(import.meta.url));
    writeFileSync(join(here, "results", "double-quant.json"), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
