// The quantized base end to end from the CLI: train with --quantize nf4 (recorded in the run), the
// adapter then loads on a float32 base and on a quantized one, and `export --quantize int4|int8`
// writes a model plain onnxruntime-node runs, close to the float32 export.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import * as ort from "onnxruntime-node";
import { loadModel } from "../../src/models/model.js";
import { writeRandomCheckpoint } from "../../src/models/random-checkpoint.js";
import { loadClassifier } from "../../src/predict/classifier.js";
import { fixture } from "../fixture.js";

const DATA = fixture("data/inspection-ai/subset.csv");
const SPM = fixture("tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model");
const MAIN = resolve(process.cwd(), "src/cli/main.ts");

let dir: string;
let model: string;
let run: string;

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], {
    encoding: "utf8",
    timeout: 240_000,
    env: { ...process.env, TOXLORA_CACHE: join(dir, "cache") },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-quant-e2e-"));
  model = join(dir, "model");
  run = join(dir, "run");
  await writeRandomCheckpoint(model, {
    arch: "llama",
    vocabSize: 99_584,
    hidden: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 128,
    maxPositions: 128,
    bosTokenId: 1,
    eosTokenId: 2,
    seed: 3,
  });
  copyFileSync(SPM, join(model, "tokenizer.model"));
});

after(() => rmSync(dir, { recursive: true, force: true }));

const TEXTS = ["このアニメ最高！", "ふざけるな、二度と来るな", "今日は雨です"];

test("train --quantize nf4 --double-quant records the scheme and base; the adapter loads on float32 and quantized bases", async () => {
  const r = cli(
    "train",
    ...["--model", model, "--data", DATA, "--preset", "inspection-ai", "--epochs", "1", "--batch-size", "16"],
    ...[
      "--max-length",
      "32",
      "--lora-r",
      "4",
      "--out",
      run,
      "--quiet",
      "--quantize",
      "nf4",
      "--double-quant",
      "--bootstrap",
      "0",
    ],
  );
  assert.equal(r.status, 0, r.stderr);
  const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
  assert.equal(config.train.quantize, "nf4");
  assert.deepEqual(config.quantization, { scheme: "nf4", blockSize: 64, doubleQuant: true });
  assert.equal(config.base.name, model);
  assert.match(config.base.sha256, /^[0-9a-f]{64}$/);
  const adapterConfig = JSON.parse(readFileSync(join(run, "adapter", "adapter_config.json"), "utf8"));
  assert.equal(adapterConfig.peft_type, "LORA");
  assert.deepEqual(adapterConfig.toxlora, {
    base_model: config.base,
    quantization: { scheme: "nf4", block_size: 64, double_quant: true },
  });
  const notices: string[] = [];
  const f32 = await loadClassifier(run, { quantize: "none", onNotice: (n) => notices.push(n) });
  assert.deepEqual(notices, [
    "loading the base quantized as none, not as the run was trained: nf4 (block 64, double-quant)",
  ]);
  const p = cli(
    "predict",
    "--run",
    run,
    "--input",
    DATA,
    "--out",
    join(dir, "none.jsonl"),
    "--quantize",
    "none",
  );
  assert.equal(p.status, 0, p.stderr);
  assert.ok(
    p.stderr
      .split("\n")
      .includes(
        "note: loading the base quantized as none, not as the run was trained: nf4 (block 64, double-quant)",
      ),
    p.stderr,
  );
  // No --quantize: the run's own scheme, without a notice.
  const nf4 = await loadClassifier(run, { onNotice: (n) => notices.push(n) });
  assert.equal(notices.length, 1);
  assert.deepEqual((await nf4.identity?.())?.quantize, { scheme: "nf4", blockSize: 64, doubleQuant: true });
  try {
    const a = await f32.probs(TEXTS);
    const b = await nf4.probs(TEXTS);
    for (let i = 0; i < a.length; i++) {
      for (let j = 0; j < a[i].length; j++) {
        assert.ok(Number.isFinite(b[i][j]) && Math.abs(a[i][j] - b[i][j]) < 0.2, `${a[i][j]} vs ${b[i][j]}`);
      }
    }
  } finally {
    await f32.close();
    await nf4.close();
  }
});

test("a run on a base other than its own is refused, naming both, from the library and the CLI", async () => {
  const other = join(dir, "other-model");
  cpSync(model, other, { recursive: true });
  // Same shapes, one weight changed: only the recorded hash tells the checkpoints apart.
  const file = join(other, "model.safetensors");
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 0x01;
  writeFileSync(file, bytes);
  const moved = join(dir, "run-moved");
  cpSync(run, moved, { recursive: true });
  const cfgFile = join(moved, "config.json");
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, "utf8")), modelDir: other }));
  await assert.rejects(
    loadClassifier(moved, { quantize: "none" }),
    new RegExp(
      `adapter was trained on ${model} \\(weights sha256 [0-9a-f]{12}…\\), but the base loaded is ${other} \\(weights sha256 [0-9a-f]{12}…\\)`,
    ),
  );
  const r = cli(
    "predict",
    "--run",
    moved,
    "--input",
    DATA,
    "--out",
    join(dir, "moved.jsonl"),
    "--quantize",
    "int8",
  );
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trim().split("\n");
  assert.match(
    lines[lines.length - 1],
    /^toxlora: .*adapter was trained on .*, but the base loaded is .*other-model/,
  );
  // loadModel with the adapter: fine on its own base, refused on the other.
  const own = await loadModel(model, { adapter: join(run, "adapter") });
  await own.close();
  await assert.rejects(
    loadModel(other, { adapter: join(run, "adapter"), quantize: "nf4" }),
    /adapter was trained on .*, but the base loaded is .*other-model/,
  );
  // Training on from the adapter (--adapter) is refused the same way, before anything is written.
  const t = cli(
    "train",
    ...["--model", other, "--data", DATA, "--preset", "inspection-ai", "--adapter", join(run, "adapter")],
    ...["--out", join(dir, "run-other"), "--quiet"],
  );
  assert.notEqual(t.status, 0);
  const tl = t.stderr.trim().split("\n");
  assert.match(
    tl[tl.length - 1],
    /^toxlora: .*adapter was trained on .*, but the base loaded is .*other-model/,
  );
  assert.equal(existsSync(join(dir, "run-other")), false);
});

test("export --quantize int4|int8 runs in plain onnxruntime-node; nf4 and unknown schemes are refused", async () => {
  const probs: Record<string, Float32Array> = {};
  for (const scheme of ["none", "int8", "int4"]) {
    const out = join(dir, `export-${scheme}`, "model.onnx");
    const r = cli("export", "--run", run, "--out", out, "--quantize", scheme);
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(dir, `export-${scheme}`, "config.json"), "utf8"));
    assert.equal(config.toxlora.quantization?.scheme ?? "none", scheme);
    const session = await ort.InferenceSession.create(out);
    const ids = BigInt64Array.from([1n, 500n, 600n, 700n, 1n, 800n, 900n, 2n]);
    const res = await session.run({
      input_ids: new ort.Tensor("int64", ids, [2, 4]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(8).fill(1n), [2, 4]),
    });
    probs[scheme] = res.logits.data as Float32Array;
    await session.release();
  }
  for (const s of ["int8", "int4"]) {
    // Quantized for real (the logits move a little), yet close to float32.
    assert.ok(
      probs[s].some((v, i) => v !== probs.none[i]),
      `${s} export equals the float32 one`,
    );
    for (let i = 0; i < probs.none.length; i++) {
      assert.ok(
        Math.abs(probs[s][i] - probs.none[i]) < 0.5,
        `${s} logit ${i}: ${probs[s][i]} vs ${probs.none[i]}`,
      );
    }
  }
  const nf4 = cli("export", "--run", run, "--out", join(dir, "x.onnx"), "--quantize", "nf4");
  assert.notEqual(nf4.status, 0);
  assert.match(nf4.stderr, /--quantize.*nf4.*(choices|Allowed)/i);
  const bad = cli(
    "predict",
    "--run",
    run,
    "--input",
    DATA,
    "--out",
    join(dir, "p.jsonl"),
    "--quantize",
    "fp8",
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /fp8/);
});
