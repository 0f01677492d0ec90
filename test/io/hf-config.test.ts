import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { parseHfConfig, readHfConfig, readJsonFile } from "../../src/io/hf-config.js";
import { fixture } from "../fixture.js";

const REF = fixture("reference");
let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "toxlora-cfg-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeConfig(name: string, json: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof json === "string" ? json : JSON.stringify(json, null, 2));
  return file;
}

describe("reference fixture configs", () => {
  test("bert", async () => {
    const c = await readHfConfig(path.join(REF, "bert"));
    assert.equal(c.family, "bert");
    if (c.family !== "bert") return;
    assert.equal(c.model_type, "bert");
    assert.deepEqual(c.architectures, ["BertModel"]);
    assert.equal(c.hidden_size, 32);
    assert.equal(c.num_attention_heads, 4);
    assert.equal(c.head_dim, 8);
    assert.equal(c.num_hidden_layers, 2);
    assert.equal(c.intermediate_size, 64);
    assert.equal(c.vocab_size, 96);
    assert.equal(c.max_position_embeddings, 64);
    assert.equal(c.type_vocab_size, 2);
    assert.equal(c.layer_norm_eps, 1e-12);
    assert.equal(c.hidden_act, "gelu");
    assert.equal(c.pad_token_id, 0);
    assert.equal(c.position_embedding_type, "absolute");
    assert.equal(c.roberta_positions, false);
    assert.equal(c.classifier_dropout, null);
    assert.deepEqual(c.labels, ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]);
    assert.equal(c.label2id?.LABEL_3, 3);
    assert.equal(c.problem_type, "multi_label_classification");
    assert.equal(c.torch_dtype, "float32");
    assert.equal(c.source, path.join(REF, "bert", "config.json"));
    assert.equal(c.raw.transformers_version, "4.48.0");
  });

  test("llama", async () => {
    const c = await readHfConfig(path.join(REF, "llama", "config.json"));
    assert.equal(c.family, "llama");
    if (c.family !== "llama") return;
    assert.equal(c.num_attention_heads, 4);
    assert.equal(c.num_key_value_heads, 2);
    assert.equal(c.head_dim, 8);
    assert.equal(c.rms_norm_eps, 1e-6);
    assert.equal(c.rope_theta, 10000);
    assert.equal(c.rope_scaling, null);
    assert.equal(c.hidden_act, "silu");
    assert.equal(c.attention_bias, false);
    assert.equal(c.mlp_bias, false);
    assert.equal(c.tie_word_embeddings, false);
    assert.equal(c.pad_token_id, 0);
    assert.equal(c.bos_token_id, 1);
    assert.equal(c.eos_token_id, 2);
    assert.equal(c.labels.length, 4);
  });

  test("modernbert", async () => {
    const c = await readHfConfig(path.join(REF, "modernbert"));
    assert.equal(c.family, "modernbert");
    if (c.family !== "modernbert") return;
    assert.equal(c.num_hidden_layers, 4);
    assert.deepEqual(c.layer_types, [
      "full_attention",
      "sliding_attention",
      "sliding_attention",
      "full_attention",
    ]);
    assert.equal(c.global_rope_theta, 160000);
    assert.equal(c.local_rope_theta, 10000);
    assert.equal(c.local_attention, 8);
    assert.equal(c.global_attn_every_n_layers, 3);
    assert.equal(c.classifier_pooling, "mean");
    assert.equal(c.norm_eps, 1e-5);
    assert.equal(c.norm_bias, false);
    assert.equal(c.classifier_bias, false);
    assert.equal(c.classifier_activation, "gelu");
    assert.equal(c.hidden_activation, "gelu");
    assert.equal(c.mlp_bias, false);
    assert.equal(c.attention_bias, false);
    assert.equal(c.tie_word_embeddings, true);
    assert.equal(c.cls_token_id, 1);
    assert.equal(c.sep_token_id, 2);
    assert.equal(c.head_dim, 8);
  });
});

describe("other config shapes", () => {
  test("llm-jp-3-1.8b-like Llama config: no pad token, full MHA, explicit head_dim", () => {
    const c = parseHfConfig({
      architectures: ["LlamaForCausalLM"],
      bos_token_id: 1,
      eos_token_id: 2,
      head_dim: 128,
      hidden_act: "silu",
      hidden_size: 2048,
      intermediate_size: 7168,
      max_position_embeddings: 4096,
      model_type: "llama",
      num_attention_heads: 16,
      num_hidden_layers: 24,
      num_key_value_heads: 16,
      rms_norm_eps: 1e-5,
      rope_scaling: null,
      rope_theta: 10000,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      vocab_size: 99584,
    });
    assert.equal(c.family, "llama");
    if (c.family !== "llama") return;
    assert.equal(c.pad_token_id, null);
    assert.equal(c.num_key_value_heads, 16);
    assert.equal(c.head_dim, 128);
    assert.equal(c.rms_norm_eps, 1e-5);
    assert.equal(c.torch_dtype, "bfloat16");
    assert.deepEqual(c.labels, []);
    assert.equal(c.id2label, null);
  });

  test("Llama RoPE forms: rope_parameters (new), rope_scaling with type or rope_type (old), eos list", () => {
    const mk = (extra: Record<string, unknown>) => {
      const c = parseHfConfig({ model_type: "llama", hidden_size: 64, num_attention_heads: 4, ...extra });
      assert.equal(c.family, "llama");
      return c.family === "llama" ? c : assert.fail();
    };
    const a = mk({ rope_parameters: { rope_type: "default", rope_theta: 500000 } });
    assert.equal(a.rope_theta, 500000);
    assert.equal(a.rope_scaling, null);
    assert.equal(a.num_key_value_heads, 4);
    assert.equal(a.head_dim, 16);
    const b = mk({
      rope_theta: 500000,
      rope_scaling: {
        rope_type: "llama3",
        factor: 8,
        low_freq_factor: 1,
        original_max_position_embeddings: 8192,
      },
      eos_token_id: [128001, 128009],
    });
    assert.deepEqual(b.rope_scaling, {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      original_max_position_embeddings: 8192,
    });
    assert.deepEqual(b.eos_token_id, [128001, 128009]);
    const c = mk({ rope_scaling: { type: "linear", factor: 2 } });
    assert.deepEqual(c.rope_scaling, { rope_type: "linear", factor: 2 });
    assert.equal(c.rope_theta, 10000);
    const d = mk({ rope_parameters: { rope_type: "yarn", rope_theta: 1e6, factor: 4 } });
    assert.equal(d.rope_theta, 1e6);
    assert.deepEqual(d.rope_scaling, { rope_type: "yarn", factor: 4 });
  });

  test("ModernBERT with layer_types and per-attention rope_parameters (newer transformers)", () => {
    const c = parseHfConfig({
      model_type: "modernbert",
      hidden_size: 48,
      num_attention_heads: 3,
      num_hidden_layers: 3,
      layer_types: ["sliding_attention", "full_attention", "sliding_attention"],
      rope_parameters: {
        full_attention: { rope_type: "default", rope_theta: 80000 },
        sliding_attention: { rope_type: "default", rope_theta: 5000 },
      },
    });
    assert.equal(c.family, "modernbert");
    if (c.family !== "modernbert") return;
    assert.deepEqual(c.layer_types, ["sliding_attention", "full_attention", "sliding_attention"]);
    assert.equal(c.global_rope_theta, 80000);
    assert.equal(c.local_rope_theta, 5000);
    assert.equal(c.classifier_pooling, "cls", "transformers' default");
    assert.equal(c.local_attention, 128);
    assert.equal(c.head_dim, 16);
  });

  test("RoBERTa-style and minimal BERT configs get transformers' defaults", () => {
    const r = parseHfConfig({ model_type: "xlm-roberta", vocab_size: 250002, type_vocab_size: 1 });
    assert.equal(r.family, "bert");
    if (r.family !== "bert") return;
    assert.equal(r.roberta_positions, true);
    assert.equal(r.pad_token_id, 1);
    assert.equal(r.type_vocab_size, 1);
    const b = parseHfConfig({ model_type: "bert" });
    if (b.family !== "bert") return assert.fail();
    assert.equal(b.hidden_size, 768);
    assert.equal(b.num_hidden_layers, 12);
    assert.equal(b.layer_norm_eps, 1e-12);
    assert.equal(b.pad_token_id, 0);
    assert.equal(b.roberta_positions, false);
  });
});

describe("errors", () => {
  test("unsupported model_type names it and the supported ones, with the line", async () => {
    const file = await writeConfig("gpt2.json", { architectures: ["GPT2LMHeadModel"], model_type: "gpt2" });
    await assert.rejects(readHfConfig(file), (e: Error) => {
      assert.match(e.message, /gpt2\.json:5: model_type "gpt2" is not supported/);
      assert.match(e.message, /bert, roberta, xlm-roberta, camembert, modernbert, llama/);
      return true;
    });
    assert.throws(
      () => parseHfConfig({ hidden_size: 3 }, "x.json"),
      /x\.json: field "model_type" is missing/,
    );
  });

  test("wrong field types name the file, line and field", async () => {
    const file = await writeConfig("bad.json", {
      model_type: "llama",
      hidden_size: "2048",
      num_attention_heads: 16,
      rms_norm_eps: -1,
    });
    await assert.rejects(readHfConfig(file), (e: Error) => {
      assert.match(e.message, /bad\.json:3: field "hidden_size": .*expected number/);
      assert.match(e.message, /bad\.json:5: field "rms_norm_eps"/);
      return true;
    });
    assert.throws(
      () => parseHfConfig({ model_type: "modernbert", classifier_pooling: "max" }, "m.json"),
      /m\.json: field "classifier_pooling"/,
    );
    assert.throws(
      () => parseHfConfig({ model_type: "bert", hidden_size: 30, num_attention_heads: 4 }, "b.json"),
      /b\.json: hidden_size 30 is not divisible by num_attention_heads 4/,
    );
    assert.throws(
      () => parseHfConfig({ model_type: "llama", num_attention_heads: 6, num_key_value_heads: 4 }, "l.json"),
      /num_attention_heads 6 is not a multiple of num_key_value_heads 4/,
    );
    assert.throws(
      () => parseHfConfig({ model_type: "bert", id2label: { "0": "a", "2": "b" } }, "i.json"),
      /i\.json: field "id2label": ids must be 0\.\.1, but "1" is missing/,
    );
    assert.throws(
      () =>
        parseHfConfig(
          { model_type: "modernbert", rope_parameters: { full_attention: { rope_type: "yarn", factor: 4 } } },
          "y.json",
        ),
      /y\.json: field "rope_parameters\.full_attention" asks for RoPE type "yarn"/,
    );
    assert.throws(
      () =>
        parseHfConfig(
          { model_type: "modernbert", num_hidden_layers: 2, layer_types: ["full_attention"] },
          "t.json",
        ),
      /"layer_types" has 1 entries but num_hidden_layers is 2/,
    );
  });

  test("invalid JSON reports line and column; a missing folder is named", async () => {
    const file = await writeConfig("syntax.json", '{\n  "model_type": "bert",\n  "hidden_size": 32,,\n}');
    await assert.rejects(readJsonFile(file), /syntax\.json:3:\d+: invalid JSON/);
    await assert.rejects(
      readHfConfig(path.join(dir, "nowhere")),
      /nowhere: no such model folder or config file/,
    );
  });
});
