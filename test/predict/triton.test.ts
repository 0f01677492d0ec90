// `export --triton`: config.pbtxt beside the version folder, naming the exported model's real inputs
// and outputs (checked against the ONNX file itself) with dynamic batching.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import * as ort from "onnxruntime-node";
import { TRAINED_LABELS, trainTinyRun } from "../report/trained-run.js";

const MAIN = resolve(process.cwd(), "src/cli/main.ts");
let dir: string;
let run: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-triton-"));
  run = await trainTinyRun(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const exportCli = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", MAIN, "export", "--run", run, ...args], {
    encoding: "utf8",
  });

/** The `name: value` fields of a pbtxt block's entries (input/output), in order. */
function tensors(pbtxt: string, block: string): { name: string; type: string; dims: number[] }[] {
  const body = new RegExp(`^${block} \\[\\n([\\s\\S]*?)\\n\\]`, "m").exec(pbtxt)?.[1] ?? "";
  return [...body.matchAll(/name: "([^"]+)"\s+data_type: (\w+)\s+dims: \[ ([^\]]*) \]/g)].map((m) => ({
    name: m[1] as string,
    type: m[2] as string,
    dims: (m[3] as string).split(",").map((d) => Number(d.trim())),
  }));
}

test("export --triton writes config.pbtxt matching the exported model, with dynamic batching", async () => {
  const out = join(dir, "repo", "toxicity", "1", "model.onnx");
  const r = exportCli("--out", out, "--triton", "--max-batch", "16");
  assert.equal(r.status, 0, r.stderr);
  const configFile = join(dir, "repo", "toxicity", "config.pbtxt");
  assert.ok(existsSync(out) && existsSync(configFile));
  const pbtxt = readFileSync(configFile, "utf8");
  assert.match(pbtxt, /^name: "toxicity"$/m);
  assert.match(pbtxt, /^backend: "onnxruntime"$/m);
  assert.match(pbtxt, /^max_batch_size: 16$/m);
  assert.match(
    pbtxt,
    /dynamic_batching \{\n {2}preferred_batch_size: \[ 4, 8, 16 \]\n {2}max_queue_delay_microseconds: \d+\n\}/,
  );
  assert.match(pbtxt, /kind: KIND_CPU/);
  assert.match(pbtxt, new RegExp(`string_value: "${TRAINED_LABELS.join(",")}"`));

  const inputs = tensors(pbtxt, "input");
  const outputs = tensors(pbtxt, "output");
  assert.deepEqual(inputs, [
    { name: "input_ids", type: "TYPE_INT64", dims: [-1] },
    { name: "attention_mask", type: "TYPE_INT64", dims: [-1] },
  ]);
  assert.deepEqual(outputs, [{ name: "logits", type: "TYPE_FP32", dims: [TRAINED_LABELS.length] }]);

  // The names, and the output width, are the model's own.
  const session = await ort.InferenceSession.create(out);
  try {
    assert.deepEqual([...session.inputNames].sort(), inputs.map((t) => t.name).sort());
    assert.deepEqual(
      [...session.outputNames],
      outputs.map((t) => t.name),
    );
    const ids = new ort.Tensor("int64", BigInt64Array.from([2n, 5n, 3n, 2n, 7n, 3n]), [2, 3]);
    const mask = new ort.Tensor("int64", BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 1n]), [2, 3]);
    const res = await session.run({ input_ids: ids, attention_mask: mask });
    assert.deepEqual(res.logits.dims, [2, TRAINED_LABELS.length]);
  } finally {
    await session.release();
  }
});

test("export --triton refuses an --out outside Triton's repository layout", () => {
  const r = exportCli("--out", join(dir, "flat", "model.onnx"), "--triton");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--out must be <repository>\/<model name>\/<version>\/model\.onnx/);
  assert.ok(!existsSync(join(dir, "flat", "model.onnx")), "nothing written");
});
