import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  isLoraTarget,
  isModuleToSave,
  isSavedParam,
  loraConfig,
  loraKey,
  loraRank,
  loraScaling,
  matchesTargetModules,
  parseAdapterKey,
  parseLoraConfig,
  readAdapter,
  savedParamKey,
  writeAdapter,
} from "../../src/io/peft.js";
import { openSafetensors, readSafetensors } from "../../src/io/safetensors.js";
import { fixture } from "../fixture.js";

const REF = fixture("reference");
let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "toxlora-peft-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// What the fixture README promises for each adapter.
const FIXTURES = {
  bert: {
    prefix: "bert.",
    loraModules: 2 * 6 + 1, // q, k, v, attention.output.dense, intermediate.dense, output.dense per layer + pooler.dense
    saved: ["classifier.weight", "classifier.bias"],
    backbone: (name: string) => `bert.${name}`,
  },
  llama: {
    prefix: "model.",
    loraModules: 2 * 7,
    saved: ["score.weight"],
    backbone: (name: string) => (name.startsWith("lm_head") ? null : name),
  },
  modernbert: {
    prefix: "model.",
    loraModules: 4 * 4, // attn.Wqkv, attn.Wo, mlp.Wi, mlp.Wo
    saved: ["head.dense.weight", "head.norm.weight", "classifier.weight", "classifier.bias"],
    backbone: (name: string) => `model.${name}`,
  },
} as const;

describe("reference adapters", () => {
  for (const [arch, fx] of Object.entries(FIXTURES)) {
    test(`${arch}: config, key counts and shapes`, async () => {
      const a = await readAdapter(path.join(REF, arch, "lora"));
      assert.equal(a.config.peft_type, "LORA");
      assert.equal(a.config.task_type, "SEQ_CLS");
      assert.equal(a.config.r, 4);
      assert.equal(a.config.lora_alpha, 8);
      assert.equal(a.config.lora_dropout, 0);
      assert.equal(a.config.use_rslora, false);
      assert.equal(a.config.bias, "none");
      assert.equal(a.config.base_model_name_or_path, null);
      assert.equal(a.config.megatron_core, "megatron.core", "unknown PEFT fields are kept");
      assert.equal(a.lora.size, fx.loraModules);
      assert.equal(a.tensors.size, 2 * fx.loraModules + fx.saved.length);
      assert.deepEqual([...a.saved.keys()], fx.saved);
      for (const [mod, { A, B }] of a.lora) {
        assert.ok(mod.startsWith(fx.prefix), mod);
        assert.equal(A.shape[0], 4);
        assert.equal(B.shape[1], 4);
        assert.equal(A.data.length, A.shape[0] * A.shape[1]);
        assert.ok(
          B.data.some((v) => v !== 0),
          "fixture B factors are nonzero",
        );
        assert.equal(loraScaling(a.config, mod), 2);
      }
      for (const name of a.saved.keys()) assert.ok(isSavedParam(name, a.config.modules_to_save), name);
      assert.equal(isSavedParam(`${fx.prefix}layers.0.x.weight`, a.config.modules_to_save), false);
    });

    test(`${arch}: isLoraTarget picks exactly the modules PEFT adapted`, async () => {
      const a = await readAdapter(path.join(REF, arch, "lora"));
      // Every 2-D weight of the SeqCls model: backbone (renamed to PEFT paths) + head.
      const modules: string[] = [];
      for (const file of ["model.safetensors", "head.safetensors"]) {
        const st = await openSafetensors(path.join(REF, arch, file));
        for (const k of st.keys()) {
          if (!k.endsWith(".weight") || st.info(k).shape.length !== 2) continue;
          const name = file === "head.safetensors" ? k : fx.backbone(k);
          if (name) modules.push(name.slice(0, -".weight".length));
        }
        await st.close();
      }
      const chosen = modules.filter((m) => isLoraTarget(m, a.config)).sort();
      assert.deepEqual(chosen, [...a.lora.keys()].sort());
      if (arch === "bert")
        assert.ok(chosen.includes("bert.pooler.dense"), "suffix matching reaches the pooler");
      if (arch === "modernbert")
        assert.ok(chosen.includes("model.layers.0.mlp.Wo") && chosen.includes("model.layers.0.attn.Wo"));
    });
  }

  test("shapes follow the modules: llama GQA k/v, modernbert fused Wqkv and GeGLU Wi", async () => {
    const l = await readAdapter(path.join(REF, "llama", "lora"));
    assert.deepEqual(l.lora.get("model.layers.1.self_attn.k_proj")?.B.shape, [16, 4]);
    assert.deepEqual(l.lora.get("model.layers.1.mlp.down_proj")?.A.shape, [4, 64]);
    const m = await readAdapter(path.join(REF, "modernbert", "lora"));
    assert.deepEqual(m.lora.get("model.layers.0.attn.Wqkv")?.B.shape, [96, 4]);
    assert.deepEqual(m.lora.get("model.layers.3.mlp.Wi")?.B.shape, [128, 4]);
    assert.deepEqual(m.saved.get("head.norm.weight")?.shape, [32]);
  });
});

describe("keys", () => {
  test("loraKey / savedParamKey / parseAdapterKey", () => {
    assert.equal(loraKey("bert.pooler.dense", "A"), "base_model.model.bert.pooler.dense.lora_A.weight");
    assert.equal(
      loraKey("model.layers.0.mlp.Wi", "B"),
      "base_model.model.model.layers.0.mlp.Wi.lora_B.weight",
    );
    assert.equal(savedParamKey("score.weight"), "base_model.model.score.weight");
    assert.deepEqual(parseAdapterKey("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), {
      modulePath: "model.layers.0.self_attn.q_proj",
      kind: "lora_A",
      param: "weight",
    });
    assert.deepEqual(parseAdapterKey("base_model.model.head.dense.weight"), {
      modulePath: "head.dense",
      kind: "module",
      param: "weight",
    });
    assert.deepEqual(parseAdapterKey(loraKey("x", "B")), {
      modulePath: "x",
      kind: "lora_B",
      param: "weight",
    });
    assert.throws(
      () => parseAdapterKey("model.layers.0.q_proj.lora_A.weight"),
      /does not start with "base_model\.model\."/,
    );
    assert.throws(() => parseAdapterKey("base_model.model.emb.lora_embedding_A"), /not supported/);
    assert.throws(() => parseAdapterKey("base_model.model.q.lora_magnitude_vector"), /not supported/);
    assert.throws(() => parseAdapterKey("base_model.model.q.lora_B.bias"), /lora_bias/);
  });
});

describe("PEFT matching rules", () => {
  test("target_modules list: exact name or '.'-suffix; string: full regex match", () => {
    assert.equal(matchesTargetModules("bert.pooler.dense", ["dense"]), true);
    assert.equal(matchesTargetModules("bert.pooler.xdense", ["dense"]), false);
    assert.equal(matchesTargetModules("classifier", ["classifier"]), true);
    assert.equal(matchesTargetModules("model.layers.0.self_attn.q_proj", ["self_attn.q_proj"]), true);
    assert.equal(
      matchesTargetModules("model.layers.0.self_attn.q_proj", "q_proj"),
      false,
      "fullmatch, not search",
    );
    assert.equal(matchesTargetModules("model.layers.0.self_attn.q_proj", ".*\\.(q|v)_proj"), true);
    assert.equal(matchesTargetModules("model.layers.0.self_attn.k_proj", ".*\\.(q|v)_proj"), false);
    assert.equal(
      matchesTargetModules("model.layers.3.self_attn.q_proj", ".*layers\\.(?P<n>\\d+)\\.self_attn\\.q_proj"),
      true,
    );
    assert.equal(matchesTargetModules("anything", null), false);
    assert.equal(matchesTargetModules("anything", []), false);
    assert.throws(
      () => matchesTargetModules("model.layers.0.mlp.up_proj", "all-linear"),
      /expand it to the names/,
    );
  });

  test("exclude_modules, modules_to_save exclusion and layers_to_transform", () => {
    const base = { target_modules: ["q_proj", "dense"] };
    assert.equal(isLoraTarget("model.layers.0.self_attn.q_proj", base), true);
    assert.equal(
      isLoraTarget("model.layers.0.self_attn.q_proj", { ...base, exclude_modules: ["q_proj"] }),
      false,
    );
    assert.equal(
      isLoraTarget("model.layers.0.self_attn.q_proj", { ...base, exclude_modules: ".*layers\\.0\\..*" }),
      false,
    );
    assert.equal(
      isLoraTarget("model.layers.1.self_attn.q_proj", { ...base, exclude_modules: ".*layers\\.0\\..*" }),
      true,
    );
    // A module inside a modules_to_save module never gets LoRA.
    assert.equal(isLoraTarget("head.dense", { ...base, modules_to_save: ["head"] }), false);
    assert.equal(isLoraTarget("bert.pooler.dense", { ...base, modules_to_save: ["head"] }), true);
    // PEFT wraps modules whose name ends with an entry (plain endswith), their params are saved.
    assert.equal(isModuleToSave("head", ["head"]), true);
    assert.equal(isModuleToSave("head.dense", ["head"]), false);
    assert.equal(isSavedParam("head.dense.weight", ["head"]), true);
    assert.equal(isSavedParam("classifier.bias", ["classifier", "score"]), true);
    // layers_to_transform with and without layers_pattern, list and int forms.
    const lt = { target_modules: ["q_proj"], layers_to_transform: [1, 2] };
    assert.equal(isLoraTarget("model.layers.1.self_attn.q_proj", lt), true);
    assert.equal(isLoraTarget("model.layers.0.self_attn.q_proj", lt), false);
    assert.equal(isLoraTarget("model.layers.2.self_attn.q_proj", { ...lt, layers_pattern: "layers" }), true);
    assert.equal(
      isLoraTarget("model.layers.2.self_attn.q_proj", { ...lt, layers_pattern: ["blocks"] }),
      false,
    );
    assert.equal(
      isLoraTarget("model.layers.0.self_attn.q_proj", { target_modules: ["q_proj"], layers_to_transform: 0 }),
      true,
    );
    // A regex target ignores layers_to_transform, as in PEFT.
    assert.equal(
      isLoraTarget("model.layers.0.self_attn.q_proj", {
        target_modules: ".*q_proj",
        layers_to_transform: [5],
      }),
      true,
    );
  });

  test("rank_pattern / alpha_pattern and rsLoRA scaling", () => {
    const cfg = loraConfig({
      r: 8,
      lora_alpha: 16,
      rank_pattern: { q_proj: 4, "layers\\.1\\.mlp\\..*": 2 },
      alpha_pattern: { "self_attn.q_proj": 4 },
    });
    assert.equal(loraRank(cfg, "model.layers.0.self_attn.q_proj"), 4);
    assert.equal(loraRank(cfg, "model.layers.0.self_attn.k_proj"), 8);
    assert.equal(loraRank(cfg, "model.layers.1.mlp.up_proj"), 2);
    assert.equal(loraRank(cfg, "model.layers.0.self_attn.xq_proj"), 8, "pattern matches after a '.' only");
    assert.equal(loraScaling(cfg, "model.layers.0.self_attn.q_proj"), 1);
    assert.equal(loraScaling(cfg, "model.layers.0.self_attn.k_proj"), 2);
    assert.equal(loraScaling(loraConfig({ r: 16, lora_alpha: 32, use_rslora: true }), "x"), 8);
  });
});

describe("write + read round trip", () => {
  test("a fixture adapter rewritten by writeAdapter reads back identical", async () => {
    const src = await readAdapter(path.join(REF, "modernbert", "lora"));
    const out = path.join(dir, "rt");
    await writeAdapter(out, src.config, src.tensors);
    const back = await readAdapter(out);
    assert.deepEqual(back.config, src.config);
    assert.deepEqual([...back.tensors.keys()], [...src.tensors.keys()]);
    for (const [k, t] of src.tensors) assert.deepEqual(back.tensors.get(k), t, k);
    // Same bytes per tensor as the PEFT-written file.
    const a = await readSafetensors(path.join(REF, "modernbert", "lora", "adapter_model.safetensors"));
    const b = await readSafetensors(path.join(out, "adapter_model.safetensors"));
    assert.deepEqual(b, a);
    const st = await openSafetensors(path.join(out, "adapter_model.safetensors"));
    assert.deepEqual(st.metadata, { format: "pt" });
    await st.close();
    const text = await readFile(path.join(out, "adapter_config.json"), "utf8");
    const keys = Object.keys(JSON.parse(text));
    assert.deepEqual(keys, [...keys].sort(), "keys sorted like PEFT's save_pretrained");
    assert.ok(text.endsWith("\n"));
  });

  test("a new adapter from a partial config gets PEFT's defaults", async () => {
    const out = path.join(dir, "new");
    const mod = "bert.encoder.layer.0.attention.self.query";
    await writeAdapter(
      out,
      {
        r: 2,
        lora_alpha: 4,
        lora_dropout: 0.05,
        target_modules: ["query"],
        modules_to_save: ["classifier"],
        base_model_name_or_path: "tohoku-nlp/bert-base-japanese-v3",
      },
      {
        [loraKey(mod, "A")]: { data: Float32Array.from({ length: 6 }, (_, i) => i), shape: [2, 3] },
        [loraKey(mod, "B")]: { data: new Float32Array(8), shape: [4, 2] },
        [savedParamKey("classifier.weight")]: { data: Float32Array.of(1, 2, 3, 4, 5, 6), shape: [2, 3] },
      },
    );
    const cfg = JSON.parse(await readFile(path.join(out, "adapter_config.json"), "utf8"));
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.task_type, "SEQ_CLS");
    assert.equal(cfg.bias, "none");
    assert.equal(cfg.fan_in_fan_out, false);
    assert.equal(cfg.use_rslora, false);
    assert.equal(cfg.init_lora_weights, true);
    assert.deepEqual(cfg.rank_pattern, {});
    assert.equal(cfg.base_model_name_or_path, "tohoku-nlp/bert-base-japanese-v3");
    const back = await readAdapter(out);
    assert.deepEqual(back.lora.get(mod)?.A.shape, [2, 3]);
    assert.deepEqual([...(back.saved.get("classifier.weight")?.data ?? [])], [1, 2, 3, 4, 5, 6]);
  });
});

describe("errors", () => {
  test("bad configs and tensors are named clearly", async () => {
    assert.throws(
      () => parseLoraConfig({ peft_type: "PREFIX_TUNING" }, "a.json"),
      /a\.json: field "peft_type" is "PREFIX_TUNING"; toxlora reads LoRA adapters/,
    );
    assert.throws(
      () => parseLoraConfig({ peft_type: "LORA", use_dora: true }, "a.json"),
      /field "use_dora" is true: DoRA adapters are not supported/,
    );
    assert.throws(() => parseLoraConfig({ peft_type: "LORA", r: 0 }, "a.json"), /a\.json: field "r"/);
    assert.throws(() => parseLoraConfig({ peft_type: "LORA", bias: "some" }, "a.json"), /field "bias"/);

    const mod = "model.layers.0.self_attn.q_proj";
    await assert.rejects(
      writeAdapter(
        path.join(dir, "e1"),
        { r: 2 },
        { [loraKey(mod, "A")]: { data: new Float32Array(6), shape: [2, 3] } },
      ),
      /"base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight" is missing/,
    );
    await assert.rejects(
      writeAdapter(
        path.join(dir, "e2"),
        { r: 2 },
        {
          [loraKey(mod, "A")]: { data: new Float32Array(9), shape: [3, 3] },
          [loraKey(mod, "B")]: { data: new Float32Array(6), shape: [3, 2] },
        },
      ),
      /lora_A\.weight" has shape \[3, 3\], expected \[2, in\] \(r = 2\)/,
    );
    await assert.rejects(
      writeAdapter(
        path.join(dir, "e3"),
        { r: 2 },
        { "classifier.weight": { data: new Float32Array(1), shape: [1] } },
      ),
      /does not start with "base_model\.model\."/,
    );

    const binOnly = path.join(dir, "bin");
    await mkdir(binOnly, { recursive: true });
    await writeFile(path.join(binOnly, "adapter_config.json"), JSON.stringify({ peft_type: "LORA" }));
    await writeFile(path.join(binOnly, "adapter_model.bin"), "x");
    await assert.rejects(readAdapter(binOnly), /no adapter_model\.safetensors\. It has adapter_model\.bin/);
    await assert.rejects(readAdapter(path.join(dir)), /no adapter_config\.json/);
  });
});
