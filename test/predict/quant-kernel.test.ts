// loadClassifier's quantKernel: "qgemm" runs an int8/int4 base on onnxruntime's int8 GEMM (the
// graph itself is checked in test/quant/export-kernels.test.ts); here the run-level plumbing: the
// probabilities stay close to the default kernel's, identity() names the kernel (so resuming a
// file scored with the other kernel is refused), an nf4 or float32 base is refused; and
// `predict --quant-kernel`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { type LoadClassifierOptions, loadClassifier } from "../../src/predict/classifier.js";
import { trainTinyRun } from "../report/trained-run.js";
import { demoTexts } from "../train/helpers.js";

let dir: string;
let run: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-quant-kernel-"));
  run = await trainTinyRun(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function scored(opts: LoadClassifierOptions) {
  const clf = await loadClassifier(run, opts);
  try {
    return { probs: await clf.probs(demoTexts().slice(0, 24)), identity: (await clf.identity?.()) ?? {} };
  } finally {
    await clf.close();
  }
}

for (const quantize of ["int8", "int4"] as const) {
  test(`${quantize} base: quantKernel qgemm scores close to the default kernel and says so in identity()`, async () => {
    const base = { quantize, quantBlockSize: 16, quantCache: false } as const;
    const exact = await scored(base);
    const fast = await scored({ ...base, quantKernel: "qgemm" });
    let d = 0;
    exact.probs.forEach((row, i) => {
      row.forEach((p, j) => {
        d = Math.max(d, Math.abs(p - fast.probs[i][j]));
      });
    });
    // 8-bit activations (and the per-channel requantization) move probabilities a little; a
    // wrong weight layout would move them by far more.
    assert.ok(d > 0 && d < 0.05, `max |Δ probability| ${d}`);
    assert.equal((exact.identity.quantize as { kernel?: string }).kernel, undefined);
    assert.equal((fast.identity.quantize as { kernel?: string }).kernel, "qgemm");
  });
}

test("quantKernel qgemm on an nf4 or float32 base is refused", async () => {
  await assert.rejects(
    loadClassifier(run, { quantize: "nf4", quantCache: false, quantKernel: "qgemm" }),
    /--quant-kernel qgemm \(quantKernel\) runs an int8 or int4 base; this run loads nf4/,
  );
  await assert.rejects(
    loadClassifier(run, { quantize: "none", quantKernel: "qgemm" }),
    /this run loads float32/,
  );
});

test("predict --quant-kernel qgemm scores a file; with nf4 it stops with one line", () => {
  const input = join(dir, "in.txt");
  writeFileSync(input, `${demoTexts().slice(0, 5).join("\n")}\n`);
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", resolve("src/cli/main.ts"), "predict", "--run", run, "--input", input, ...args],
      { encoding: "utf8", timeout: 120_000, env: { ...process.env, TOXLORA_CACHE: join(dir, "cache") } },
    );
  const out = join(dir, "out.jsonl");
  const ok = cli(
    "--out",
    out,
    "--quantize",
    "int8",
    "--quant-block-size",
    "16",
    "--quant-kernel",
    "qgemm",
    "--quiet",
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(readFileSync(out, "utf8").trim().split("\n").length, 5);
  const bad = cli("--out", join(dir, "bad.jsonl"), "--quantize", "nf4", "--quant-kernel", "qgemm");
  assert.notEqual(bad.status, 0);
  assert.match(
    bad.stderr,
    /--quant-kernel qgemm \(quantKernel\) runs an int8 or int4 base; this run loads nf4/,
  );
});
