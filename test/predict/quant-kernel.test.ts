// loadClassifier's quantKernel: "qgemm" runs an int8/int4 base on onnxruntime's int8 GEMM (the
// graph itself is checked in test/quant/export-kernels.test.ts); here the run-level plumbing: the
// probabilities stay close to the default kernel's, identity() names the kernel (so resuming a
// file scored with the other kernel is refused), an nf4 or float32 base is refused; eval.json
// records the scheme and kernel its numbers come from; and `--quant-kernel` on `eval`, `predict`,
// `serve` and `tweets score`.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { type LoadClassifierOptions, loadClassifier } from "../../src/predict/classifier.js";
import { evaluateRun } from "../../src/predict/evaluate.js";
import { trainTinyRun } from "../report/trained-run.js";
import { DEMO_DATA, demoTexts } from "../train/helpers.js";

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

test("quantKernel matmulnbits on an nf4 or float32 base, or an unknown kernel, is refused, not ignored", async () => {
  await assert.rejects(
    loadClassifier(run, { quantize: "nf4", quantCache: false, quantKernel: "matmulnbits" }),
    /--quant-kernel matmulnbits \(quantKernel\) runs an int8 or int4 base; this run loads nf4/,
  );
  await assert.rejects(
    loadClassifier(run, { quantize: "none", quantKernel: "matmulnbits" }),
    /--quant-kernel matmulnbits \(quantKernel\) runs an int8 or int4 base; this run loads float32/,
  );
  await assert.rejects(
    loadClassifier(run, { quantize: "int8", quantCache: false, quantKernel: "fast" as "qgemm" }),
    /--quant-kernel: unknown kernel "fast" \(expected matmulnbits or qgemm\)/,
  );
});

test("evaluateRun records in eval.json the scheme and kernel its numbers come from", async () => {
  const evaluated = async (name: string, opts: LoadClassifierOptions) => {
    const outDir = join(dir, "evals", name);
    const r = await evaluateRun(run, DEMO_DATA, { ...opts, outDir, bootstrap: 0 });
    const saved = JSON.parse(readFileSync(join(outDir, "eval.json"), "utf8")) as { quantization: unknown };
    assert.deepEqual(saved.quantization, r.quantization);
    return r;
  };
  const int8 = { quantize: "int8", quantBlockSize: 16, quantCache: false } as const;
  const exact = await evaluated("int8", int8);
  assert.deepEqual(exact.quantization, {
    scheme: "int8",
    blockSize: 16,
    doubleQuant: false,
    kernel: "matmulnbits",
  });
  const fast = await evaluated("int8-qgemm", { ...int8, quantKernel: "qgemm" });
  assert.deepEqual(fast.quantization, { scheme: "int8", blockSize: 16, doubleQuant: false, kernel: "qgemm" });
  // The kernel reaches the scores (8-bit activations move the probabilities a little).
  const predictions = (r: { outDir: string }) => readFileSync(join(r.outDir, "predictions.jsonl"), "utf8");
  assert.notEqual(predictions(fast), predictions(exact));
  const nf4 = await evaluated("nf4", { quantize: "nf4", doubleQuant: true, quantCache: false });
  assert.deepEqual(nf4.quantization, {
    scheme: "nf4",
    blockSize: 64,
    doubleQuant: true,
    kernel: "matmulbnb4",
  });
  const fp32 = await evaluated("fp32", {}); // the tiny run was trained on a float32 base
  assert.deepEqual(fp32.quantization, { scheme: "none", blockSize: null, doubleQuant: false, kernel: null });
});

test("eval --quant-kernel qgemm evaluates on the qgemm kernel; with nf4 it stops with one line", () => {
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        resolve("src/cli/main.ts"),
        "eval",
        "--run",
        run,
        "--data",
        DEMO_DATA,
        "--bootstrap",
        "0",
        ...args,
      ],
      { encoding: "utf8", timeout: 120_000, env: cliEnv() },
    );
  const out = join(dir, "eval-cli");
  const ok = cli("--out", out, ...QGEMM_INT8);
  assert.equal(ok.status, 0, ok.stderr);
  const saved = JSON.parse(readFileSync(join(out, "eval.json"), "utf8")) as { quantization: unknown };
  assert.deepEqual(saved.quantization, {
    scheme: "int8",
    blockSize: 16,
    doubleQuant: false,
    kernel: "qgemm",
  });
  const bad = cli("--out", join(dir, "eval-bad"), "--quantize", "nf4", "--quant-kernel", "qgemm");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, NF4_QGEMM);
  assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
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

const QGEMM_INT8 = ["--quantize", "int8", "--quant-block-size", "16", "--quant-kernel", "qgemm"];
const NF4_QGEMM = /--quant-kernel qgemm \(quantKernel\) runs an int8 or int4 base; this run loads nf4/;

/** The in-process probabilities of the int8 base on the qgemm kernel. */
async function qgemmProbs(texts: string[]) {
  const clf = await loadClassifier(run, {
    quantize: "int8",
    quantBlockSize: 16,
    quantCache: false,
    quantKernel: "qgemm",
  });
  try {
    return await clf.probs(texts);
  } finally {
    await clf.close();
  }
}

function maxDiff(a: number[][], b: number[][]): number {
  let d = 0;
  a.forEach((row, i) => {
    row.forEach((p, j) => {
      d = Math.max(d, Math.abs(p - (b[i]?.[j] ?? Number.NaN)));
    });
  });
  return Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
}

function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TOXLORA_CACHE: join(dir, "cache") };
  delete env.NODE_TEST_CONTEXT; // the child is not a test process
  return env;
}

test("tweets score --quant-kernel qgemm scores with the qgemm kernel; with nf4 or --queue it stops with one line", async () => {
  const texts = demoTexts().slice(0, 6);
  const input = join(dir, "tweets.jsonl");
  writeFileSync(input, `${texts.map((text, i) => JSON.stringify({ id: String(i + 1), text })).join("\n")}\n`);
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        resolve("src/cli/main.ts"),
        "tweets",
        "score",
        "--run",
        run,
        "--input",
        input,
        ...args,
      ],
      { encoding: "utf8", timeout: 120_000, env: cliEnv() },
    );
  const out = join(dir, "tweets-scored.jsonl");
  const ok = cli("--out", out, "--no-chart", ...QGEMM_INT8);
  assert.equal(ok.status, 0, ok.stderr);
  const rows = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { id: string; probs: Record<string, number> });
  const labels = Object.keys(rows[0]?.probs ?? {});
  const scored = rows.map((r) => labels.map((l) => r.probs[l] as number));
  const ref = await qgemmProbs(texts);
  assert.ok(maxDiff(scored, ref) < 1e-5, `vs qgemm in-process: ${maxDiff(scored, ref)}`);
  // The kernel is part of what the rows were made from (a resume with the other kernel is refused).
  const state = JSON.parse(readFileSync(`${out}.state.json`, "utf8")) as {
    identity: { classifier: { quantize: { scheme: string; kernel?: string } } };
  };
  assert.deepEqual(
    [state.identity.classifier.quantize.scheme, state.identity.classifier.quantize.kernel],
    ["int8", "qgemm"],
  );

  const bad = cli("--out", join(dir, "bad-tweets.jsonl"), "--quantize", "nf4", "--quant-kernel", "qgemm");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, NF4_QGEMM);
  const queued = cli("--out", join(dir, "q.jsonl"), "--queue", "redis://127.0.0.1:1", ...QGEMM_INT8);
  assert.notEqual(queued.status, 0);
  assert.match(
    queued.stderr,
    /--quant-kernel applies to scoring on this machine; with --queue the workers load the run/,
  );
});

test("serve --quant-kernel qgemm answers with the qgemm kernel's probabilities; with nf4 it stops with one line", async () => {
  const texts = demoTexts().slice(0, 6);
  const ref = await qgemmProbs(texts);
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      resolve("src/cli/main.ts"),
      "serve",
      "--run",
      run,
      "--port",
      "0",
      "--quiet",
      ...QGEMM_INT8,
    ],
    { env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const closed = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  try {
    const url = await new Promise<string>((done, fail) => {
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString("utf8");
        const line = stdout.split("\n").find((l) => l.startsWith("http"));
        if (line) done(line.trim());
      });
      child.on("close", () => fail(new Error(`serve exited before listening: ${stderr}`)));
    });
    const res = await fetch(`${url}/v1/classify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { labels?: string[]; results: { probs: Record<string, number> }[] };
    const labels = Object.keys(body.results[0]?.probs ?? {});
    const served = body.results.map((r) => labels.map((l) => r.probs[l] as number));
    assert.ok(maxDiff(served, ref) < 1e-5, `vs qgemm in-process: ${maxDiff(served, ref)}`);
  } finally {
    child.kill("SIGTERM");
    await closed;
  }
  assert.match(stderr, /base int8 \(block 16\) on the qgemm kernel/);

  const bad = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      resolve("src/cli/main.ts"),
      "serve",
      "--run",
      run,
      "--port",
      "0",
      "--quantize",
      "nf4",
      "--quant-kernel",
      "qgemm",
    ],
    { encoding: "utf8", timeout: 120_000, env: cliEnv() },
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, NF4_QGEMM);
});
