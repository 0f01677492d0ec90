// buildClassifier's contract beyond the numbers: which modules get LoRA, how adapter mismatches
// are reported, what a merged graph contains.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { Graph } from "../../src/engine/index.js";
import { type LoraAdapter, loraConfig, loraKey, readAdapter } from "../../src/io/peft.js";
import { buildClassifier, loadCheckpoint } from "../../src/models/registry.js";
import { REFERENCE } from "./helpers.js";

const BERT = path.join(REFERENCE, "bert");
const head = { kind: "multilabel" as const, numLabels: 4 };

describe("buildClassifier", () => {
  it("targets modules by PEFT's rules: suffixes (pooler too), regex, all-linear minus exclude_modules", async () => {
    const ckpt = await loadCheckpoint(BERT);
    const modules = (lora: ReturnType<typeof loraConfig>) =>
      buildClassifier(new Graph(), ckpt, { head, lora }).loraModules;
    const suffix = modules(loraConfig({ target_modules: ["dense"] }));
    assert.deepEqual(suffix, [
      "bert.encoder.layer.0.attention.output.dense",
      "bert.encoder.layer.0.intermediate.dense",
      "bert.encoder.layer.0.output.dense",
      "bert.encoder.layer.1.attention.output.dense",
      "bert.encoder.layer.1.intermediate.dense",
      "bert.encoder.layer.1.output.dense",
      "bert.pooler.dense",
    ]);
    const regex = modules(loraConfig({ target_modules: ".*layer\\.1\\.attention\\.self\\.(query|value)" }));
    assert.deepEqual(regex, [
      "bert.encoder.layer.1.attention.self.query",
      "bert.encoder.layer.1.attention.self.value",
    ]);
    const all = modules(loraConfig({ target_modules: "all-linear", exclude_modules: ["pooler.dense"] }));
    assert.equal(all.length, 12); // 6 linears × 2 layers, pooler excluded, classifier never
    assert.ok(!all.some((m) => m.includes("pooler") || m.includes("classifier")));
  });

  it("names LoRA factors and the head by their PEFT keys, with PEFT's initialisation", async () => {
    const ckpt = await loadCheckpoint(BERT);
    const m = buildClassifier(new Graph(), ckpt, {
      head,
      lora: loraConfig({ r: 2, target_modules: ["query"] }),
      seed: 3,
    });
    const names = m.params.map((p) => p.name);
    assert.deepEqual(names, [
      loraKey("bert.encoder.layer.0.attention.self.query", "A"),
      loraKey("bert.encoder.layer.0.attention.self.query", "B"),
      loraKey("bert.encoder.layer.1.attention.self.query", "A"),
      loraKey("bert.encoder.layer.1.attention.self.query", "B"),
      "base_model.model.classifier.weight",
      "base_model.model.classifier.bias",
    ]);
    const a = m.initial.get(names[0]) as Float32Array;
    const b = m.initial.get(names[1]) as Float32Array;
    assert.ok(a.every((v) => Math.abs(v) <= 1 / Math.sqrt(32)) && a.some((v) => v !== 0));
    assert.ok(b.every((v) => v === 0));
    assert.deepEqual(m.modulesToSave, ["classifier"]);
  });

  it("a merged graph has no trainable parameters and folds LoRA into the weights", async () => {
    const ckpt = await loadCheckpoint(BERT);
    const adapter = await readAdapter(path.join(BERT, "lora"));
    const g = new Graph();
    const m = buildClassifier(g, ckpt, { head, adapter, merged: true });
    assert.equal(m.params.length, 0);
    assert.equal(g.params.length, 0);
    assert.equal(m.loraModules.length, 13);
  });

  it("reports adapter tensors that match no module, and targeted modules the adapter lacks", async () => {
    const ckpt = await loadCheckpoint(BERT);
    const adapter = await readAdapter(path.join(BERT, "lora"));
    const extra: LoraAdapter = { ...adapter, lora: new Map(adapter.lora) };
    extra.lora.set("bert.encoder.layer.7.attention.self.query", adapter.lora.values().next().value as never);
    assert.throws(
      () => buildClassifier(new Graph(), ckpt, { head, adapter: extra }),
      /modules this model does not adapt: "base_model\.model\.bert\.encoder\.layer\.7\.attention\.self\.query\.lora_A\.weight"/,
    );
    const missing: LoraAdapter = { ...adapter, lora: new Map(adapter.lora) };
    missing.lora.delete("bert.pooler.dense");
    assert.throws(
      () => buildClassifier(new Graph(), ckpt, { head, adapter: missing }),
      /no LoRA weights for "bert\.pooler\.dense"/,
    );
  });

  it("refuses adapters that change the backbone beyond LoRA (bias all, saved backbone tensors)", async () => {
    const ckpt = await loadCheckpoint(BERT);
    const adapter = await readAdapter(path.join(BERT, "lora"));
    assert.throws(
      () =>
        buildClassifier(new Graph(), ckpt, {
          head,
          adapter: { ...adapter, config: { ...adapter.config, bias: "all" } },
        }),
      /LoRA bias "all" is not supported/,
    );
    const saved = new Map(adapter.saved);
    saved.set("bert.encoder.layer.0.attention.self.query.bias", { data: new Float32Array(32), shape: [32] });
    assert.throws(
      () => buildClassifier(new Graph(), ckpt, { head, adapter: { ...adapter, saved } }),
      /saves "base_model\.model\.bert\.encoder\.layer\.0\.attention\.self\.query\.bias", which is not part of a classification head/,
    );
  });

  it("initialises a head the checkpoint lacks, and says so", async () => {
    const ckpt = await loadCheckpoint(BERT);
    const m = buildClassifier(new Graph(), ckpt, { head: { kind: "per-label-softmax", numLabels: 2 } });
    assert.equal(m.warnings.length, 4);
    assert.match(m.warnings[0], /heads\.0\.weight: not in the checkpoint; initialised afresh/);
    const six = buildClassifier(new Graph(), ckpt, { head: { kind: "multilabel", numLabels: 6 } });
    assert.match(
      six.warnings[0],
      /classifier\.weight: the checkpoint's tensor has shape \[4,32\], not \[6,32\]/,
    );
  });
});
