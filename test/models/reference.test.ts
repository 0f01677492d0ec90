// The three architectures against PyTorch (test/fixtures/reference): base outputs, then with
// the PEFT adapter: logits, BCE loss, per-label-softmax loss and the gradient of every adapter tensor.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { Graph, grad, tensor } from "../../src/engine/index.js";
import { readAdapter } from "../../src/io/peft.js";
import { buildClassifier, loadCheckpoint } from "../../src/models/registry.js";
import { readWeights } from "../../src/models/weights.js";
import {
  type Arch,
  assertClose,
  assertGradClose,
  batchFeeds,
  expected,
  fixtureInputs,
  fixtureLabels,
  REFERENCE,
  realTokens,
  runGraph,
} from "./helpers.js";

const ARCHS: Arch[] = ["bert", "llama", "modernbert"];
const ATOL = 1e-4;

for (const arch of ARCHS) {
  describe(`${arch} vs PyTorch`, () => {
    const dir = path.join(REFERENCE, arch);

    it("base model: last_hidden_state (real tokens), pooled, logits", async () => {
      const ckpt = await loadCheckpoint(dir);
      const inputs = fixtureInputs(arch);
      const want = await expected(arch, "expected.safetensors");
      const batches: [string, typeof inputs][] = [["", inputs]];
      if (inputs.left_padded) batches.push(["left_padded.", { ...inputs, ...inputs.left_padded }]);
      for (const [pre, batch] of batches) {
        const g = new Graph();
        const m = buildClassifier(g, ckpt, { head: { kind: "multilabel", numLabels: 4 } });
        assert.deepEqual(m.warnings, []);
        g.output("last_hidden_state", m.lastHiddenState);
        g.output("pooled", m.pooled);
        g.output("logits", m.logits);
        const out = await runGraph(g, batchFeeds(batch), m.initial, m.params);
        const H = ckpt.config.hidden_size;
        const lhs = out.get("last_hidden_state");
        assert.deepEqual(lhs?.dims, [3, 16, H]);
        assertClose(
          `${pre}last_hidden_state`,
          lhs?.data ?? [],
          want.get(`${pre}last_hidden_state`)?.data ?? [],
          ATOL,
          realTokens(batch.attention_mask, H),
        );
        assertClose(
          `${pre}pooled`,
          out.get("pooled")?.data ?? [],
          want.get(`${pre}pooled`)?.data ?? [],
          ATOL,
        );
        assertClose(
          `${pre}logits`,
          out.get("logits")?.data ?? [],
          want.get(`${pre}logits`)?.data ?? [],
          ATOL,
        );
      }
    });

    for (const kind of ["multilabel", "per-label-softmax"] as const) {
      it(`LoRA adapter, ${kind} head: logits, loss and every gradient`, async () => {
        const ckpt = await loadCheckpoint(dir);
        const adapter = await readAdapter(path.join(dir, "lora"));
        const want = await expected(arch, "lora/expected.safetensors");
        const ce2 = kind === "per-label-softmax";
        const headWeights = ce2
          ? await readWeights(path.join(dir, "lora", "ce2_head.safetensors"))
          : undefined;
        const g = new Graph();
        const m = buildClassifier(g, ckpt, {
          head: { kind, numLabels: 4 },
          adapter,
          headWeights,
          training: true,
        });
        const loss = m.loss();
        g.output("loss", loss);
        g.output("logits", m.logits);
        g.output("pooled", m.pooled);
        const grads = grad(loss, m.params);
        for (const [p, gr] of grads) {
          assert.ok(gr, `${p.name} gets no gradient`);
          g.output(`grad:${p.name}`, gr);
        }
        const labels = fixtureLabels(arch);
        const feeds = {
          ...batchFeeds(fixtureInputs(arch)),
          labels: tensor("float32", labels.flat(), [3, 4]),
        };
        const out = await runGraph(g, feeds, m.initial, m.params);

        const suffix = ce2 ? "_ce2" : "";
        assertClose("loss", out.get("loss")?.data ?? [], want.get(`loss${suffix}`)?.data ?? [], ATOL);
        assertClose("logits", out.get("logits")?.data ?? [], want.get(`logits${suffix}`)?.data ?? [], ATOL);
        assertClose("pooled", out.get("pooled")?.data ?? [], want.get("pooled")?.data ?? [], ATOL);

        // Every expected gradient has a parameter, and every parameter an expected gradient.
        const gradPrefix = ce2 ? "grad_ce2." : "grad.";
        const wantKeys = [...want.keys()].filter((k) => k.startsWith(gradPrefix));
        const fixtureName = (param: string) => param.replace(/^base_model\.model\.(heads\.\d+\.)/, "$1"); // ce2 heads are stored unprefixed
        const have = m.params.map((p) => gradPrefix + fixtureName(p.name)).sort();
        assert.deepEqual(have, [...wantKeys].sort());
        for (const p of m.params) {
          const key = gradPrefix + fixtureName(p.name);
          assertGradClose(key, out.get(`grad:${p.name}`)?.data ?? [], want.get(key)?.data ?? []);
        }
      });
    }
  });
}
