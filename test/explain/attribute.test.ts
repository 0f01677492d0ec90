// Integrated gradients on the reference tiny models (BERT, ModernBERT, Llama with their PEFT LoRA
// adapters): the graph's logits at α = 1 are PyTorch's, and with 64 Gauss–Legendre steps the
// attributions add up to F(x) − F(baseline) within 2 % for every label and every row (completeness).
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { Attributor, gaussLegendre, pathRows } from "../../src/explain/attribute.js";
import { readAdapter } from "../../src/io/peft.js";
import { detectHead, loadCheckpoint } from "../../src/models/registry.js";
import { readWeights, WeightMap } from "../../src/models/weights.js";
import { type Arch, expected, fixtureInputs, REFERENCE } from "../models/helpers.js";

async function attributor(arch: Arch, kind: "multilabel" | "per-label-softmax" = "multilabel") {
  const dir = path.join(REFERENCE, arch);
  const ckpt = await loadCheckpoint(dir);
  const adapter = await readAdapter(path.join(dir, "lora"));
  if (kind === "per-label-softmax") {
    // the alternative per-label-softmax head of the fixtures replaces the adapter's classifier
    const heads = await readWeights(path.join(dir, "lora", "ce2_head.safetensors"));
    for (let j = 0; j < 4; j++) {
      for (const p of ["weight", "bias"]) {
        const t = heads.get(`heads.${j}.${p}`);
        if (t) adapter.saved.set(`heads.${j}.${p}`, t);
      }
    }
  }
  const found = detectHead(new WeightMap(adapter.saved, dir));
  assert.ok(found);
  return Attributor.create(ckpt, {
    head: { kind, numLabels: found.numLabels },
    adapter,
    padTokenId: 0,
    baselineId: 0,
    threads: 1,
  });
}

test("Gauss–Legendre on [0, 1] integrates degree 2n−1 exactly", () => {
  for (const n of [1, 2, 5, 32, 64]) {
    const { nodes, weights } = gaussLegendre(n);
    for (const deg of [0, 1, 2 * n - 1]) {
      const v = nodes.reduce((s, x, k) => s + weights[k] * x ** deg, 0);
      assert.ok(Math.abs(v - 1 / (deg + 1)) < 1e-12, `n=${n} deg=${deg}: ${v}`);
    }
  }
  assert.throws(() => pathRows("ig", 0, "gauss-legendre"), /positive integer/);
});

for (const arch of ["bert", "modernbert", "llama"] as const) {
  test(`completeness ≤ 0.02 with 64 IG steps: ${arch}, every label, every row`, async () => {
    const att = await attributor(arch);
    const inputs = fixtureInputs(arch);
    const want = (await expected(arch, "lora/expected.safetensors")).get("logits");
    assert.ok(want);
    let worst = 0;
    try {
      for (let r = 0; r < inputs.input_ids.length; r++) {
        const n = inputs.attention_mask[r].reduce((a, b) => a + b, 0);
        const ids = inputs.input_ids[r].slice(0, n);
        const keep = ids.map((_, i) => i === 0 || i === n - 1);
        const a = await att.attribute(ids, { steps: 64, keep });
        for (let j = 0; j < att.numLabels; j++) {
          // the graph's F(x) is the PyTorch model's logit
          assert.ok(Math.abs(a.logits[j] - want.data[r * 4 + j]) < 1e-4, `row ${r} label ${j} logit`);
          const sum = a.attributions[j].reduce((s, v) => s + v, 0);
          const diff = a.logits[j] - a.baselineLogits[j];
          const err = Math.abs(sum - diff) / Math.max(1e-6, Math.abs(diff));
          assert.ok(err <= 0.02, `${arch} row ${r} label ${j}: Σ=${sum} vs ΔF=${diff} (error ${err})`);
          worst = Math.max(worst, err);
          // kept (special) positions have no attribution
          assert.equal(a.attributions[j][0], 0);
          assert.equal(a.attributions[j][n - 1], 0);
        }
      }
      console.log(`${arch}: worst completeness error ${worst.toExponential(2)}`);
      // a 1-step Riemann sum is far from the integral: the check above has teeth
      const ids = inputs.input_ids[0];
      const coarse = await att.attribute(ids, { steps: 1, rule: "riemann" });
      const errs = coarse.attributions.map((a, j) => {
        const d = coarse.logits[j] - coarse.baselineLogits[j];
        return Math.abs(a.reduce((s, v) => s + v, 0) - d) / Math.abs(d);
      });
      assert.ok(Math.max(...errs) > 0.02, `1 step: ${errs}`);
    } finally {
      await att.close();
    }
  });
}

test("completeness with the per-label-softmax head (margin z1 − z0), and steps split over runs", async () => {
  const att = await attributor("bert", "per-label-softmax");
  const ids = fixtureInputs("bert").input_ids[0];
  const keep = ids.map((_, i) => i === 0 || i === ids.length - 1);
  try {
    const one = await att.attribute(ids, { steps: 64, keep });
    const split = await att.attribute(ids, { steps: 64, keep, tokensPerRun: 5 * ids.length });
    for (let j = 0; j < 4; j++) {
      const sum = one.attributions[j].reduce((s, v) => s + v, 0);
      const diff = one.logits[j] - one.baselineLogits[j];
      assert.ok(Math.abs(sum - diff) <= 0.02 * Math.abs(diff), `label ${j}`);
      for (let i = 0; i < ids.length; i++) {
        assert.ok(Math.abs(one.attributions[j][i] - split.attributions[j][i]) < 1e-5);
      }
    }
    // grad × input: one row at α = 1, no completeness promise but the same logits
    const gxi = await att.attribute(ids, { method: "grad-x-input", keep });
    assert.deepEqual(gxi.logits, one.logits);
    assert.ok(gxi.attributions.every((a) => a.some((v) => v !== 0)));
  } finally {
    await att.close();
  }
});
