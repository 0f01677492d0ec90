// `toxlora demo` runs the whole workflow offline from the CLI and says where everything is.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

test("toxlora demo --out DIR: analyze → balance → split → train → eval → predict → export → report → baseline → compare", () => {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-demo-"));
  try {
    const out = join(dir, "demo");
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", resolve("src/cli/main.ts"), "demo", "--out", out],
      {
        encoding: "utf8",
        timeout: 300_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /RANDOMLY INITIALISED/);
    for (const f of [
      "analysis/labels.csv",
      "data/balanced.jsonl",
      "data/train.jsonl",
      "data/test.jsonl",
      "model/config.json",
      "model/tokenizer.json",
      "run/adapter/adapter_model.safetensors",
      "run/eval.json",
      "eval/log.csv",
      "predictions.jsonl",
      "export/model.onnx",
      "export/config.json",
      "run/report.html",
      "baseline/model/weights.safetensors",
      "baseline/eval.json",
      "baseline/report.html",
      "compare.html",
    ]) {
      assert.ok(existsSync(join(out, f)), `missing ${f}`);
      assert.ok(r.stdout.includes(out), "prints where everything is");
    }
    const compare = readFileSync(join(out, "compare.html"), "utf8");
    assert.ok(compare.includes(">run<") && compare.includes(">baseline<"), "the comparison names both runs");
    // The summary names model/ (what `train --model` takes) and ends with the commands to try next.
    assert.match(r.stdout, new RegExp(`^ +model +${join(out, "model")}$`, "m"));
    assert.match(r.stdout, /Next, try:\n {2}toxlora serve --run /);
    assert.ok(
      r.stdout.includes(
        `toxlora train --model ${join(out, "model")} --data ${join(out, "data", "train.jsonl")}`,
      ),
    );
    const preds = readFileSync(join(out, "predictions.jsonl"), "utf8").trim().split("\n");
    assert.equal(preds.length, 5);
    const cfg = JSON.parse(readFileSync(join(out, "model/config.json"), "utf8"));
    assert.equal(cfg.toxlora_random_init, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
