// Profiling helper for bench:quantize's training half (issue #11): one train() run of the
// llm-jp-3-1.8b-shaped model with fewer layers, printing peak RSS and the RSS sampled over time.
// Usage: node --import tsx bench/quantize-profile.ts <layers> <scheme>; environment: PROFILE_ROWS,
// PROFILE_GC (0/1: gradient checkpointing), PROFILE_LOWMEM, PROFILE_TRACE (print the RSS samples), PROFILE_DIR.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { QuantScheme } from "../src/quant/weights.js";
import { train } from "../src/train/trainer.js";
import { llmJpScaleRun, stepSeconds, writeLlmJpScaleModel, writeLongPosts } from "./llmjp-scale.js";

const layers = Number(process.argv[2] ?? 4);
const scheme = (process.argv[3] ?? "nf4") as QuantScheme;
const base = process.env.PROFILE_DIR ?? "/tmp/toxlora-quant-profile";
const model = join(base, `llm-jp-${layers}`);
if (!existsSync(join(model, "config.json"))) {
  mkdirSync(model, { recursive: true });
  await writeLlmJpScaleModel(model, layers);
}
const data = join(base, "data.jsonl");
writeLongPosts(data, Number(process.env.PROFILE_ROWS ?? 8) * 2);
const out = join(base, `run-${process.pid}`);
let peak = 0;
const samples: number[] = [];
const t0 = performance.now();
const timer = setInterval(() => {
  const rss = process.memoryUsage().rss;
  peak = Math.max(peak, rss);
  samples.push(Math.round(rss / 1e7) / 100);
}, 250);
try {
  const r = await train(
    {
      ...llmJpScaleRun(model, data, out, 512),
      quantize: scheme,
      quantCache: false,
      ...(process.env.PROFILE_GC ? { gradientCheckpointing: process.env.PROFILE_GC === "1" } : {}),
    },
    {
      progress: (process.env.PROFILE_PROGRESS ?? "quiet") as "quiet",
      lowMemory: process.env.PROFILE_LOWMEM !== "0",
    },
  );
  const steps = stepSeconds(r.runDir).map((s) => Math.round(s * 100) / 100);
  clearInterval(timer);
  console.log(
    JSON.stringify({
      layers,
      scheme,
      maxrss_gb: process.resourceUsage().maxRSS / 1e6,
      sampled_peak_gb: peak / 1e9,
      steps,
      seconds: (performance.now() - t0) / 1000,
    }),
  );
  if (process.env.PROFILE_TRACE) console.log(samples.join(" "));
} finally {
  rmSync(out, { recursive: true, force: true });
}
