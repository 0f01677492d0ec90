// The loadModel / saveAdapter library API: reference outputs, merged vs unmerged LoRA, adapter
// round trips (PEFT files written by toxlora load back with identical logits), errors.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { adamw, Graph, grad, TrainSession, tensor } from "../../src/engine/index.js";
import { loraConfig, readAdapter } from "../../src/io/peft.js";
import { type ForwardInput, loadModel, saveAdapter } from "../../src/models/model.js";
import { buildClassifier, loadCheckpoint } from "../../src/models/registry.js";
import { readWeights } from "../../src/models/weights.js";
import {
  type Arch,
  assertClose,
  batchFeeds,
  expected,
  fixtureInputs,
  maxAbsDiff,
  REFERENCE,
  realTokens,
  runGraph,
} from "./helpers.js";

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "toxlora-model-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function forwardInput(arch: Arch) {
  const x = fixtureInputs(arch);
  return { inputIds: x.input_ids, attentionMask: x.attention_mask, tokenTypeIds: x.token_type_ids };
}

describe("loadModel", () => {
  for (const arch of ["bert", "llama", "modernbert"] as Arch[]) {
    it(`${arch}: checkpoint + head.safetensors reproduce the reference outputs`, async () => {
      const m = await loadModel(path.join(REFERENCE, arch), { threads: 1 });
      try {
        assert.deepEqual(m.head, { kind: "multilabel", numLabels: 4 });
        assert.deepEqual(m.labels, ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]);
        assert.deepEqual(m.warnings, []);
        const input = forwardInput(arch);
        const out = await m.forward(input);
        const want = await expected(arch, "expected.safetensors");
        assert.deepEqual(out.logits.dims, [3, 4]);
        assert.deepEqual(out.pooled.dims, [3, 32]);
        assert.deepEqual(out.lastHiddenState.dims, [3, 16, 32]);
        assertClose("logits", out.logits.data, want.get("logits")?.data ?? [], 1e-4);
        assertClose("pooled", out.pooled.data, want.get("pooled")?.data ?? [], 1e-4);
        assertClose(
          "last_hidden_state",
          out.lastHiddenState.data,
          want.get("last_hidden_state")?.data ?? [],
          1e-4,
          realTokens(input.attentionMask, 32),
        );
        // probs are the sigmoid of the logits
        out.logits.data.forEach((z, i) => {
          assert.ok(Math.abs(out.probs.data[i] - 1 / (1 + Math.exp(-z))) < 1e-6);
        });
      } finally {
        await m.close();
      }
    });

    it(`${arch}: adapter merged into the weights equals the unmerged LoRA branches and PyTorch`, async () => {
      const dir = path.join(REFERENCE, arch);
      const adapter = path.join(dir, "lora");
      const merged = await loadModel(dir, { adapter, threads: 1 });
      const unmerged = await loadModel(dir, { adapter, merged: false, threads: 1 });
      try {
        const a = await merged.forward(forwardInput(arch));
        const b = await unmerged.forward(forwardInput(arch));
        const want = await expected(arch, "lora/expected.safetensors");
        assertClose("unmerged logits vs PyTorch", b.logits.data, want.get("logits")?.data ?? [], 1e-4);
        assertClose("merged logits vs PyTorch", a.logits.data, want.get("logits")?.data ?? [], 1e-4);
        assertClose("merged vs unmerged logits", a.logits.data, b.logits.data, 1e-5);
        assertClose("merged vs unmerged pooled", a.pooled.data, b.pooled.data, 1e-5);
      } finally {
        await merged.close();
        await unmerged.close();
      }
    });
  }

  it("rejects ragged rows, a mask of another shape and sequences past the positions", async () => {
    const m = await loadModel(path.join(REFERENCE, "bert"), { threads: 1 });
    try {
      await assert.rejects(
        m.forward({ inputIds: [[1, 2], [3]], attentionMask: [[1, 1], [1]] }),
        /length 1, expected 2/,
      );
      await assert.rejects(
        m.forward({ inputIds: [[1, 2]], attentionMask: [[1, 1, 1]] }),
        /attentionMask\[0\]/,
      );
      const long = Array.from({ length: 65 }, () => 5);
      await assert.rejects(
        m.forward({ inputIds: [long], attentionMask: [long.map(() => 1)] }),
        /exceeds what the model's positions cover \(64\)/,
      );
    } finally {
      await m.close();
    }
  });

  it("rejects ids outside the vocabulary (a negative one would wrap around) and a missing mask", async () => {
    const m = await loadModel(path.join(REFERENCE, "bert"), { threads: 1 });
    try {
      const vocab = m.config.vocab_size;
      const mask = [[1, 1]];
      await assert.rejects(
        m.forward({ inputIds: [[1, -1]], attentionMask: mask }),
        new RegExp(`inputIds\\[0\\] contains -1, outside 0\\.\\.${vocab - 1} \\(vocab_size is ${vocab}\\)`),
      );
      await assert.rejects(
        m.forward({ inputIds: [[1, vocab]], attentionMask: mask }),
        /contains \d+, outside/,
      );
      await assert.rejects(
        m.forward({ inputIds: [[1, 2]], attentionMask: [[1, 2]] }),
        /attentionMask\[0\] contains 2, outside 0\.\.1/,
      );
      await assert.rejects(
        m.forward({ inputIds: [[1, 2]], attentionMask: mask, tokenTypeIds: [[0, 2]] }),
        /tokenTypeIds\[0\] contains 2, outside 0\.\.1 \(type_vocab_size is 2\)/,
      );
      await assert.rejects(
        m.forward({ inputIds: [[1, 2]] } as unknown as ForwardInput),
        /attentionMask must have 1 rows \(as inputIds\), got nothing/,
      );
      // The largest valid id still runs.
      const out = await m.forward({ inputIds: [[1, vocab - 1]], attentionMask: mask });
      assert.deepEqual(out.logits.dims, [1, 4]);
    } finally {
      await m.close();
    }
  });

  it("names the unsupported model_type", async () => {
    const dir = path.join(tmp, "gpt2");
    await cp(path.join(REFERENCE, "bert"), dir, { recursive: true });
    const cfg = JSON.parse(await readFile(path.join(dir, "config.json"), "utf8"));
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ ...cfg, model_type: "gpt2" }));
    await assert.rejects(loadModel(dir), /model_type "gpt2" is not supported/);
  });
});

describe("saveAdapter round trip", () => {
  it("the fixture adapter saved again loads with identical logits and the same PEFT config", async () => {
    const dir = path.join(REFERENCE, "llama");
    const ckpt = await loadCheckpoint(dir);
    const adapter = await readAdapter(path.join(dir, "lora"));
    const g = new Graph();
    const m = buildClassifier(g, ckpt, { head: { kind: "multilabel", numLabels: 4 }, adapter });
    const out = path.join(tmp, "llama-adapter");
    await saveAdapter(out, m, m.initial, { baseModelNameOrPath: "tiny-llama" });
    const again = await readAdapter(out);
    assert.deepEqual([...again.tensors.keys()].sort(), [...adapter.tensors.keys()].sort());
    for (const [k, t] of adapter.tensors) assert.deepEqual(again.tensors.get(k)?.data, t.data, k);
    assert.deepEqual(again.config.target_modules, adapter.config.target_modules);
    assert.deepEqual(again.config.modules_to_save, ["score"]);
    assert.equal(again.config.base_model_name_or_path, "tiny-llama");
    assert.equal(again.config.task_type, "SEQ_CLS");

    const a = await loadModel(dir, { adapter: path.join(dir, "lora"), merged: false, threads: 1 });
    const b = await loadModel(dir, { adapter: out, merged: false, threads: 1 });
    try {
      const x = forwardInput("llama");
      assert.deepEqual((await b.forward(x)).logits.data, (await a.forward(x)).logits.data);
    } finally {
      await a.close();
      await b.close();
    }
  });

  for (const [arch, targets, head] of [
    ["bert", ["dense", "key", "query", "value"], "multilabel"],
    ["modernbert", ["Wi", "Wo", "Wqkv"], "per-label-softmax"],
  ] as const) {
    it(`${arch}: trained all-linear LoRA + ${head} head saves as PEFT and reloads with the trained logits`, async () => {
      const dir = path.join(REFERENCE, arch);
      const ckpt = await loadCheckpoint(dir);
      const g = new Graph();
      const headWeights =
        head === "per-label-softmax"
          ? await readWeights(path.join(dir, "lora", "ce2_head.safetensors"))
          : undefined;
      const m = buildClassifier(g, ckpt, {
        head: { kind: head, numLabels: 4 },
        lora: loraConfig({ r: 2, lora_alpha: 4, target_modules: "all-linear" }),
        headWeights,
        training: true,
      });
      const loss = m.loss();
      g.output("loss", loss);
      const session = await TrainSession.create(g, adamw(g, grad(loss, m.params)), m.initial, { threads: 1 });
      const x = fixtureInputs(arch);
      const feeds = {
        input_ids: tensor("int64", x.input_ids.flat(), [3, 16]),
        attention_mask: tensor("int64", x.attention_mask.flat(), [3, 16]),
        labels: tensor("float32", [1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1], [3, 4]),
        ...(arch === "bert" ? { token_type_ids: tensor("int64", new Array(48).fill(0), [3, 16]) } : {}),
      };
      await session.run(feeds, 1e-2);
      await session.run(feeds, 1e-2);
      const trained = session.params();
      await session.release();

      const out = path.join(tmp, `${arch}-trained`);
      await saveAdapter(out, m, trained);
      const saved = await readAdapter(out);
      assert.deepEqual(saved.config.target_modules, targets);
      assert.deepEqual(saved.config.modules_to_save, arch === "bert" ? ["classifier"] : ["head", "heads"]);
      // Expected logits: the training graph's forward with the trained values (no dropout here).
      const g2 = new Graph();
      const ref = buildClassifier(g2, ckpt, {
        head: { kind: head, numLabels: 4 },
        lora: loraConfig({ r: 2, lora_alpha: 4, target_modules: "all-linear" }),
        headWeights,
      });
      g2.output("logits", ref.logits);
      const want = (await runGraph(g2, batchFeeds(x), trained, ref.params)).get("logits");

      for (const merged of [true, false]) {
        const lm = await loadModel(dir, { adapter: out, merged, threads: 1 });
        try {
          assert.deepEqual(lm.head, { kind: head, numLabels: 4 });
          const got = await lm.forward(forwardInput(arch));
          assert.deepEqual(got.logits.dims, want?.dims);
          const d = maxAbsDiff(got.logits.data, want?.data ?? []);
          assert.ok(d <= (merged ? 1e-5 : 0), `merged=${merged}: logits differ by ${d}`);
        } finally {
          await lm.close();
        }
      }
    });
  }
});
