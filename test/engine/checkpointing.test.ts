// Gradient checkpointing (Graph.recompute, src/engine/autodiff.ts): a graph whose transformer
// layers are recomputed in the backward pass gives the same loss and LoRA/head gradients as the
// plain graph, on the BERT, ModernBERT and Llama reference fixtures, with LoRA and model dropout
// active (the recomputation must draw the same masks) and with a quantized base. The backward
// reads no forward intermediate of a layer, and a recomputation from the wrong input fails.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import {
  DROPOUT_KEY,
  dropoutKey,
  Graph,
  grad,
  keepCostly,
  type Tensor,
  tensor,
} from "../../src/engine/index.js";
import { readAdapter } from "../../src/io/peft.js";
import { buildClassifier, loadCheckpoint } from "../../src/models/registry.js";
import type { QuantizeOptions } from "../../src/quant/weights.js";
import {
  type Arch,
  batchFeeds,
  fixtureInputs,
  fixtureLabels,
  maxAbsDiff,
  REFERENCE,
  runGraph,
} from "../models/helpers.js";

const ARCHS: Arch[] = ["bert", "llama", "modernbert"];
const TOL = 1e-6;

interface Built {
  g: Graph;
  params: Tensor[];
  initial: Map<string, Float32Array>;
}

async function build(
  arch: Arch,
  gradientCheckpointing: boolean | "selective",
  quantize?: QuantizeOptions,
): Promise<Built> {
  const dir = path.join(REFERENCE, arch);
  const ckpt = await loadCheckpoint(dir, quantize ? { quantize, quantCacheDir: null } : {});
  const adapter = await readAdapter(path.join(dir, "lora"));
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: 4 },
    adapter,
    // LoRA dropout on (the fixture's adapter has none), so recomputed masks are checked too.
    lora: { ...adapter.config, lora_dropout: 0.2 },
    training: true,
    gradientCheckpointing,
  });
  const loss = m.loss();
  g.output("loss", loss);
  for (const [p, gr] of grad(loss, m.params)) {
    assert.ok(gr, `${p.name} gets no gradient`);
    g.output(`grad:${p.name}`, gr);
  }
  return { g, params: m.params, initial: m.initial };
}

async function outputs(arch: Arch, b: Built) {
  const labels = fixtureLabels(arch);
  const feeds = {
    ...batchFeeds(fixtureInputs(arch)),
    labels: tensor("float32", labels.flat(), [3, 4]),
    [DROPOUT_KEY]: tensor("int64", BigInt64Array.of(dropoutKey(7, 1, 0)), []),
  };
  return runGraph(b.g, feeds, b.initial, b.params);
}

/** The largest |Δ| over the loss and every gradient, relative to the gradient's own scale. */
async function largestDifference(arch: Arch, a: Built, b: Built): Promise<{ worst: number; what: string }> {
  const [oa, ob] = [await outputs(arch, a), await outputs(arch, b)];
  let worst = 0;
  let what = "";
  for (const [name, want] of ob) {
    const got = oa.get(name);
    assert.ok(got, `${name} missing`);
    const scale = Math.max(1, ...Array.from(want.data, Math.abs));
    const d = maxAbsDiff(got.data, want.data) / scale;
    if (d >= worst) [worst, what] = [d, name];
  }
  return { worst, what };
}

/** Forward tensors of a layer (inside a recomputed region) that a backward node reads. */
function keptLayerTensors(g: Graph, forwardNodes: number): Tensor[] {
  const inRegion = new Set(g.recomputed.flatMap((r) => g.nodes.slice(r.start, r.end)));
  const kept = new Set<Tensor>();
  for (const n of g.nodes.slice(forwardNodes)) {
    for (const t of n.inputs) if (t.producer && inRegion.has(t.producer)) kept.add(t);
  }
  // A layer's output is the next layer's input (read through After): that one stays, by design.
  const outputsOfRegions = new Set(g.recomputed.map((r) => g.nodes[r.end - 1].outputs[0]));
  return [...kept].filter((t) => !outputsOfRegions.has(t));
}

const keptLayerValues = (g: Graph, forwardNodes: number) => keptLayerTensors(g, forwardNodes).length;

for (const arch of ARCHS) {
  describe(`gradient checkpointing, ${arch}`, () => {
    it("loss and every LoRA/head gradient equal the plain graph's (dropout on)", async () => {
      const plain = await build(arch, false);
      const ckpt = await build(arch, true);
      assert.equal(plain.g.recomputed.length, 0);
      assert.ok(ckpt.g.recomputed.length >= 2, "every layer is a recomputed region");
      const { worst, what } = await largestDifference(arch, ckpt, plain);
      assert.ok(worst <= TOL, `${what}: relative difference ${worst.toExponential(2)} > ${TOL}`);
    });

    it("with an nf4 base too", async () => {
      const plain = await build(arch, false, { scheme: "nf4" });
      const ckpt = await build(arch, true, { scheme: "nf4" });
      const { worst, what } = await largestDifference(arch, ckpt, plain);
      assert.ok(worst <= TOL, `${what}: relative difference ${worst.toExponential(2)} > ${TOL}`);
    });

    it("the backward reads no intermediate value of a layer's forward pass", async () => {
      const plain = await build(arch, false);
      const ckpt = await build(arch, true);
      const forwardOf = (b: Built) => b.g.nodes.findIndex((n) => n.op === "After");
      assert.ok(forwardOf(ckpt) > 0, "recomputation reads layer inputs through After");
      assert.equal(keptLayerValues(ckpt.g, forwardOf(ckpt)), 0);
      // Without recomputation many layer values are kept (this check is not vacuous).
      const forwardPlain = plain.g.nodes.length - (ckpt.g.nodes.length - plain.g.nodes.length);
      assert.ok(forwardPlain > 0);
    });

    it("selective (frozen-weight products kept), nf4 and float32: the same gradients; only those products are read", async () => {
      for (const quantize of [undefined, { scheme: "nf4" } as const]) {
        const plain = await build(arch, false, quantize);
        const sel = await build(arch, "selective", quantize);
        const { worst, what } = await largestDifference(arch, sel, plain);
        assert.ok(worst <= TOL, `${what}: relative difference ${worst.toExponential(2)} > ${TOL}`);
        const first = sel.g.nodes.findIndex((n) => n.op === "After");
        const kept = keptLayerTensors(sel.g, first);
        assert.ok(kept.length > 0, "selective keeps the frozen-weight products");
        for (const t of kept) {
          assert.ok(t.producer && keepCostly(t.producer), `${t.name} (${t.producer?.op}) kept`);
        }
      }
    });

    it("a recomputation from the wrong input (the previous layer's) changes the gradients", async () => {
      const plain = await build(arch, false);
      const wrong = await build(arch, true);
      // Point the last layer's recomputation at the input of the layer before it: the bug of an
      // off-by-one region boundary. The comparison above must catch it.
      const regions = wrong.g.recomputed;
      const last = regions[regions.length - 1];
      const prevInput = wrong.g.nodes[regions[regions.length - 2].start].inputs.find(
        (t) => t.shape.length === 3,
      ) as Tensor;
      const lastInput = wrong.g.nodes[regions[regions.length - 2].end - 1].outputs[0];
      const gate = wrong.g.nodes.find(
        (n, i) => i >= last.end && n.op === "After" && n.inputs[0] === lastInput,
      );
      assert.ok(gate, "the last layer's recomputation reads its input through After");
      gate.inputs[0] = prevInput;
      const { worst } = await largestDifference(arch, wrong, plain);
      assert.ok(worst > 100 * TOL, `a wrong recomputation went unnoticed (difference ${worst})`);
    });
  });
}
