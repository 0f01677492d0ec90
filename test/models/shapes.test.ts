// Nothing may depend on the fixtures' shapes: random checkpoints with hidden 48, 6 heads (3 KV
// heads for Llama), sequence 7 run forward (a padded row gives the same result as the row alone)
// and train a few LoRA steps.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { adamw, DROPOUT_KEY, dropoutKey, Graph, grad, TrainSession, tensor } from "../../src/engine/index.js";
import { loraConfig } from "../../src/io/peft.js";
import type { HeadKind } from "../../src/models/heads.js";
import { buildClassifier, type LoadedCheckpoint, loadCheckpoint } from "../../src/models/registry.js";
import { type SyntheticSpec, writeSyntheticCheckpoint } from "../../src/models/synthetic.js";
import { assertClose, type Batch, batchFeeds, runGraph } from "./helpers.js";

interface Case {
  name: string;
  spec: SyntheticSpec;
  pad: number;
  /** Also check left padding (models whose positions do not move with it). */
  left: boolean;
  /** The pooled token is the first one, a pad under left padding: compare hidden states only. */
  poolsFirstToken?: boolean;
  /** Also train (the forward-only cases check pooling/position variants). */
  train: boolean;
}

const CASES: Case[] = [
  {
    name: "bert",
    spec: { family: "bert", hidden: 48, layers: 2, heads: 6, intermediate: 80, vocab: 50, seed: 1 },
    pad: 0,
    left: false,
    train: true,
  },
  {
    name: "llama",
    spec: {
      family: "llama",
      hidden: 48,
      layers: 2,
      heads: 6,
      kvHeads: 3,
      intermediate: 80,
      vocab: 50,
      seed: 2,
    },
    pad: 0,
    left: true,
    train: true,
  },
  {
    name: "modernbert",
    spec: {
      family: "modernbert",
      hidden: 48,
      layers: 3,
      heads: 6,
      intermediate: 80,
      vocab: 50,
      seed: 3,
      // A window of |i-j| <= 2, so the local layers really cut the 7-token sequence.
      config: { local_attention: 4, global_attn_every_n_layers: 2, classifier_pooling: "cls" },
    },
    pad: 0,
    left: false,
    train: true,
  },
  {
    // RoBERTa positions count tokens from pad_token_id + 1, so left padding does not move them.
    name: "roberta",
    spec: {
      family: "bert",
      hidden: 48,
      layers: 1,
      heads: 6,
      intermediate: 80,
      vocab: 50,
      seed: 4,
      config: { model_type: "roberta", pad_token_id: 1 },
    },
    pad: 1,
    left: true,
    poolsFirstToken: true,
    train: false,
  },
  {
    // No pad_token_id: the last token is found from the attention mask.
    name: "llama without pad id",
    spec: {
      family: "llama",
      hidden: 40,
      layers: 1,
      heads: 4,
      kvHeads: 1,
      intermediate: 24,
      vocab: 50,
      seed: 5,
      config: { pad_token_id: null },
    },
    pad: 0,
    left: true,
    train: false,
  },
];
const LABELS = 3;
const SEQ = 7;
const LENGTHS = [7, 5, 3];

function padded(lengths: number[], pad: number, left = false): Batch {
  const ids = lengths.map((n, r) => Array.from({ length: n }, (_, t) => 2 + ((r * 7 + t * 3) % 48)));
  const fill = (row: number[], v: number) => {
    const rest = Array(SEQ - row.length).fill(v);
    return left ? [...rest, ...row] : [...row, ...rest];
  };
  return {
    input_ids: ids.map((r) => fill(r, pad)),
    attention_mask: ids.map((r) =>
      fill(
        r.map(() => 1),
        0,
      ),
    ),
  };
}

let root: string;
const ckpts = new Map<string, LoadedCheckpoint>();

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "toxlora-shapes-"));
  for (const c of CASES) {
    const dir = path.join(root, c.name.replaceAll(" ", "-"));
    await writeSyntheticCheckpoint(dir, c.spec);
    ckpts.set(c.name, await loadCheckpoint(dir));
  }
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function forward(ckpt: LoadedCheckpoint, batch: Batch) {
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: LABELS },
    lora: loraConfig({ r: 4, lora_alpha: 8, target_modules: "all-linear" }),
    seed: 5,
  });
  // Non-zero B so that the LoRA branches take part in the comparison.
  for (const [k, v] of m.initial) if (k.endsWith("lora_B.weight")) v.fill(0.01);
  g.output("logits", m.logits);
  g.output("pooled", m.pooled);
  g.output("last_hidden_state", m.lastHiddenState);
  return runGraph(g, batchFeeds(batch), m.initial, m.params);
}

for (const c of CASES) {
  const { spec } = c;
  const H = spec.hidden;
  describe(`${c.name}: hidden ${H}, ${spec.heads} heads${spec.kvHeads ? `, ${spec.kvHeads} KV heads` : ""}, seq 7`, () => {
    for (const left of c.left ? [false, true] : [false]) {
      it(`a ${left ? "left" : "right"}-padded batch row equals the row alone`, async () => {
        const ckpt = ckpts.get(c.name) as LoadedCheckpoint;
        const out = await forward(ckpt, padded(LENGTHS, c.pad, left));
        assert.deepEqual(out.get("last_hidden_state")?.dims, [3, SEQ, H]);
        assert.deepEqual(out.get("logits")?.dims, [3, LABELS]);
        for (let r = 0; r < LENGTHS.length; r++) {
          const n = LENGTHS[r];
          const ids = padded(LENGTHS, c.pad).input_ids[r].slice(0, n);
          const alone = await forward(ckpt, { input_ids: [ids], attention_mask: [ids.map(() => 1)] });
          const row = (name: string, width: number) =>
            (out.get(name)?.data ?? new Float32Array()).subarray(r * width, (r + 1) * width);
          if (!(left && c.poolsFirstToken)) {
            assertClose(`row ${r} logits`, row("logits", LABELS), alone.get("logits")?.data ?? [], 1e-4);
            assertClose(`row ${r} pooled`, row("pooled", H), alone.get("pooled")?.data ?? [], 1e-4);
          }
          // Hidden states of the real tokens (they sit at the end with left padding).
          const lhs = row("last_hidden_state", SEQ * H);
          const real = left ? lhs.subarray((SEQ - n) * H) : lhs.subarray(0, n * H);
          assertClose(`row ${r} hidden`, real, alone.get("last_hidden_state")?.data ?? [], 1e-4);
        }
      });
    }
    if (!c.train) return;

    for (const kind of ["multilabel", "per-label-softmax"] as HeadKind[]) {
      for (const dropout of [0, 0.1]) {
        it(`trains LoRA (all-linear, rsLoRA, dropout ${dropout}) with a ${kind} head`, async () => {
          const ckpt = ckpts.get(c.name) as LoadedCheckpoint;
          const g = new Graph();
          const m = buildClassifier(g, ckpt, {
            head: { kind, numLabels: LABELS, posWeight: [1, 2, 0.5] },
            lora: loraConfig({
              r: 4,
              lora_alpha: 8,
              lora_dropout: dropout,
              use_rslora: true,
              target_modules: "all-linear",
            }),
            training: true,
            seed: 7,
          });
          const loss = m.loss();
          g.output("loss", loss);
          g.output("logits", m.logits);
          const opt = adamw(g, grad(loss, m.params), { weightDecay: 0.01 });
          const session = await TrainSession.create(g, opt, m.initial, { threads: 1 });
          const feeds: Record<string, ReturnType<typeof tensor>> = {
            ...batchFeeds(padded(LENGTHS, c.pad)),
            labels: tensor("float32", [1, 0, 1, 0, 1, 0, 1, 1, 0], [3, LABELS]),
          };
          if (spec.family !== "bert") delete feeds.token_type_ids;
          const losses: number[] = [];
          // With dropout each step draws other masks: only check that a step runs and moves B.
          const steps = dropout > 0 ? 1 : 4;
          for (let step = 0; step < steps; step++) {
            const key = tensor("int64", BigInt64Array.of(dropoutKey(7, step)), []);
            const r = await session.run({ ...feeds, [DROPOUT_KEY]: key }, 3e-3);
            const dims = [...(r.outputs.logits.dims as number[])];
            assert.deepEqual(dims, kind === "multilabel" ? [3, LABELS] : [3, LABELS, 2]);
            assert.ok(Number.isFinite(r.loss), `loss is ${r.loss}`);
            losses.push(r.loss);
          }
          const bs = [...session.params()].filter(([k]) => k.endsWith("lora_B.weight"));
          await session.release();
          if (dropout === 0) assert.ok(losses[3] < losses[0], `loss did not decrease: ${losses.join(", ")}`);
          // Every LoRA B started at zero and moved.
          assert.ok(bs.length > 0);
          for (const [k, v] of bs)
            assert.ok(
              v.some((x) => x !== 0),
              `${k} did not change`,
            );
        });
      }
    }
  });
}
