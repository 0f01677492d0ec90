// Gradient checkpointing must save memory in onnxruntime, not only in the graph: the arena's bytes
// in use at the peak of a training step, read from onnxruntime's own profile, may grow with the
// number of layers by little more than each layer's input. Measured on random Llamas of 2 and 6
// layers; the same growth without checkpointing is the yardstick (a bug that keeps every layer's
// recomputed values until the end of the backward pass, as the one fixed in autodiff.ts's
// finishRegion did, grows like it).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import {
  DROPOUT_KEY,
  dropoutKey,
  Graph,
  grad,
  type OrtTensor,
  readMemoryProfile,
  Session,
  tensor,
} from "../../src/engine/index.js";
import { loraConfig } from "../../src/io/peft.js";
import { buildClassifier, loadCheckpoint } from "../../src/models/registry.js";
import { writeSyntheticCheckpoint } from "../../src/models/synthetic.js";

const work = mkdtempSync(path.join(tmpdir(), "toxlora-ckpt-mem-"));
after(() => rmSync(work, { recursive: true, force: true }));

const [BATCH, SEQ, HIDDEN] = [2, 128, 128];

/**
 * Peak arena bytes in use over one training step (loss + every LoRA/head gradient), above those in
 * use when it started (the weights and their pre-packed copies, which grow with layers anyway).
 */
async function stepPeak(
  layers: number,
  gradientCheckpointing: boolean | "selective",
  scheme?: "nf4",
): Promise<number> {
  const dir = path.join(work, `llama-${layers}`);
  await writeSyntheticCheckpoint(dir, {
    family: "llama",
    hidden: HIDDEN,
    layers,
    heads: 4,
    intermediate: 4 * HIDDEN,
    vocab: 256,
    config: { pad_token_id: 0 },
  });
  const ckpt = await loadCheckpoint(dir, scheme ? { quantize: { scheme }, quantCacheDir: null } : {});
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: 2 },
    lora: loraConfig({ r: 8, lora_alpha: 16, lora_dropout: 0.1, target_modules: "all-linear" }),
    training: true,
    gradientCheckpointing,
  });
  const loss = m.loss();
  g.output("loss", loss);
  for (const [p, gr] of grad(loss, m.params)) if (gr) g.output(`grad:${p.name}`, gr);
  const prefix = path.join(work, `profile-${layers}-${gradientCheckpointing}-${scheme ?? "f32"}`);
  const s = await Session.fromGraph(g, { threads: 1, profilePrefix: prefix });
  const ids = Array.from({ length: BATCH * SEQ }, (_, i) => 1 + ((i * 7) % 250));
  const feeds: Record<string, OrtTensor> = {
    input_ids: tensor("int64", ids, [BATCH, SEQ]),
    attention_mask: tensor("int64", new Array(BATCH * SEQ).fill(1), [BATCH, SEQ]),
    labels: tensor("float32", [1, 0, 0, 1], [BATCH, 2]),
    [DROPOUT_KEY]: tensor("int64", BigInt64Array.of(dropoutKey(1, 1, 0)), []),
    ...Object.fromEntries(
      m.params.map((p) => [
        p.name,
        tensor("float32", m.initial.get(p.name) as Float32Array, p.shape as number[]),
      ]),
    ),
  };
  await s.run(feeds);
  await s.release();
  const file = readdirSync(work).find((f) => f.startsWith(path.basename(prefix)));
  assert.ok(file, "onnxruntime wrote its profile");
  const [run] = readMemoryProfile(path.join(work, file));
  return run.peakInUse - run.startInUse;
}

describe("gradient checkpointing in onnxruntime's memory", () => {
  it("peak bytes in use grow per layer by a small fraction of what a plain graph keeps", async (t) => {
    const perLayer = async (ckpt: boolean | "selective", scheme?: "nf4") =>
      ((await stepPeak(6, ckpt, scheme)) - (await stepPeak(2, ckpt, scheme))) / 4;
    const plain = await perLayer(false);
    const layerInput = BATCH * SEQ * HIDDEN * 4;
    assert.ok(plain > 8 * layerInput, `the yardstick keeps a layer's values (${plain} B per layer)`);
    for (const scheme of [undefined, "nf4"] as const) {
      const ckpt = await perLayer(true, scheme);
      t.diagnostic(`${scheme ?? "float32"}: ${ckpt} B per layer with checkpointing, ${plain} without`);
      assert.ok(
        ckpt < 0.25 * plain,
        `${scheme ?? "float32"}: ${ckpt} B per layer with checkpointing vs ${plain} without (layer input ${layerInput} B)`,
      );
    }
    // Selective keeps the frozen-weight products, q, k, v, o (a layer input each) and gate, up (4
    // each), and the dropout masks (bool: 7 of them, 2.5 layer inputs): ~15.5 layer inputs.
    const selective = await perLayer("selective", "nf4");
    t.diagnostic(`nf4 selective: ${selective} B per layer`);
    assert.ok(
      selective > 14 * layerInput && selective < 20 * layerInput && selective < 0.6 * plain,
      `selective: ${selective} B per layer (layer input ${layerInput} B, plain ${plain} B)`,
    );
  });
});
