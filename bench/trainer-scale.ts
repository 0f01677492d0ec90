// `npm run bench:trainer-scale` (not in CI; uses the llm-jp-3 tokenizer in test/fixtures): the whole
// `train()` workflow — training steps, evaluations on a validation split, threshold tuning, test
// evaluation, adapter saving — on a random checkpoint in llm-jp-3-1.8b's shape, to check that a
// full run (not only one step) fits in memory. Large models train in low-memory mode: the
// training sessions are suspended while the evaluation session runs.
// Results: one JSON line and bench/results/trainer-scale.json (peak RSS, times).
//
// Environment: BENCH_LAYERS (default 24), BENCH_ROWS (default 16), BENCH_SEQ (default 512).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { train } from "../src/train/trainer.js";
import { llmJpScaleRun, writeLlmJpScaleModel, writeLongPosts } from "./llmjp-scale.js";

const layers = Number(process.env.BENCH_LAYERS ?? 24);
const rows = Number(process.env.BENCH_ROWS ?? 16);
const seq = Number(process.env.BENCH_SEQ ?? 512);

const peakGB = () => Math.round((process.resourceUsage().maxRSS / 1e6) * 100) / 100;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-scale-"));
  try {
    const model = join(dir, "model");
    await writeLlmJpScaleModel(model, layers);
    const data = join(dir, "data.jsonl");
    writeLongPosts(data, rows);
    const out = join(dir, "run");
    mkdirSync(out, { recursive: true });
    const t0 = performance.now();
    const r = await train(llmJpScaleRun(model, data, join(out, "r"), seq), { progress: "lines" });
    const result = {
      bench: "trainer-scale",
      model: `llm-jp-3-1.8b-shaped random Llama (${layers} layers, hidden 2048, FFN 7168, vocab 99,584)`,
      rows,
      seq,
      steps: r.steps,
      total_seconds: Math.round((performance.now() - t0) / 100) / 10,
      train_seconds: Math.round(r.trainSeconds * 10) / 10,
      peak_rss_gb: peakGB(),
      low_memory_mode: "auto (frozen weights > 1.5 GB)",
      date: new Date().toISOString(),
    };
    console.log(JSON.stringify(result));
    writeFileSync(
      new URL("./results/trainer-scale.json", import.meta.url),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
