// GPU readiness without a GPU: every ONNX node that the training and inference graphs of the three
// architectures run must have a kernel in onnxruntime's CUDA execution provider for the types it
// gets, or it would fall back to the CPU on `--device cuda` (a copy to host and back per node).
// The node types are what onnxruntime itself reports (session profiling, graph optimizations off so
// the graph is exactly the one toxlora emits); the kernel list is cuda-kernels.json (source inside).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import * as ort from "onnxruntime-node";
import * as E from "../../src/engine/index.js";
import { loraConfig } from "../../src/io/peft.js";
import type { HeadKind } from "../../src/models/heads.js";
import { buildClassifier, loadCheckpoint } from "../../src/models/registry.js";
import { type SyntheticSpec, writeSyntheticCheckpoint } from "../../src/models/synthetic.js";

interface Kernel {
  domain: string;
  since: number;
  until?: number;
  types: string[];
  input?: number;
  outputTypes?: string[];
}
const TABLE = JSON.parse(readFileSync(new URL("./cuda-kernels.json", import.meta.url), "utf8")) as {
  ops: Record<string, Kernel>;
};
const OPSET = 21;

const tmp = mkdtempSync(join(tmpdir(), "toxlora-cuda-ops-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** One node as onnxruntime ran it: op type, input and output element types. */
interface RanNode {
  op: string;
  inputs: string[];
  outputs: string[];
}

/** Runs `g` once on the CPU with profiling and returns every node it executed. */
async function ranNodes(g: E.Graph, feeds: Record<string, ort.Tensor>): Promise<RanNode[]> {
  const dir = mkdtempSync(join(tmp, "prof-"));
  const s = await ort.InferenceSession.create(E.toOnnx(g), {
    enableProfiling: true,
    profileFilePrefix: join(dir, "p"),
    graphOptimizationLevel: "disabled",
    executionProviders: ["cpu"],
    intraOpNumThreads: 1,
  });
  await s.run(Object.fromEntries(s.inputNames.map((n) => [n, feeds[n]])));
  s.endProfiling();
  await s.release();
  const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), "utf8")) as {
    cat: string;
    args?: { op_name?: string; input_type_shape?: object[]; output_type_shape?: object[] };
  }[];
  const keys = (xs: object[] | undefined) => (xs ?? []).map((x) => Object.keys(x)[0]);
  return events
    .filter((e) => e.cat === "Node" && e.args?.op_name)
    .map((e) => ({
      op: e.args?.op_name as string,
      inputs: keys(e.args?.input_type_shape),
      outputs: keys(e.args?.output_type_shape),
    }));
}

/** Why `n` would not run on the CUDA provider, or null when it would. */
function cudaProblem(n: RanNode): string | null {
  const k = TABLE.ops[n.op];
  if (!k) return `${n.op}: no CUDA kernel in the table`;
  if (OPSET < k.since || (k.until !== undefined && OPSET > k.until))
    return `${n.op}: the CUDA kernel covers opset ${k.since}${k.until ? `-${k.until}` : "+"}, the graph declares ${OPSET}`;
  // Profiling leaves out inputs that are initializers; the output has the same type T then.
  const t = n.inputs[k.input ?? 0] ?? n.outputs[0];
  if (!k.types.includes(t)) return `${n.op}: CUDA has no ${t} kernel (only ${k.types.join(", ")})`;
  if (k.outputTypes && !k.outputTypes.includes(n.outputs[0]))
    return `${n.op}: CUDA has no ${n.outputs[0]} output`;
  return null;
}

const SPECS: SyntheticSpec[] = [
  { family: "bert", hidden: 16, layers: 2, heads: 2, intermediate: 32, vocab: 30, seed: 1 },
  { family: "llama", hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 32, vocab: 30, seed: 2 },
  {
    family: "modernbert",
    hidden: 16,
    layers: 2,
    heads: 2,
    intermediate: 32,
    vocab: 30,
    seed: 3,
    config: { local_attention: 4, global_attn_every_n_layers: 2 },
  },
];
const MODES = ["train step", "gradients (accumulation)", "evaluation", "prediction (merged)"] as const;

function feedsFor(g: E.Graph, initial: Map<string, Float32Array>): Record<string, ort.Tensor> {
  const B = 2;
  const T = 5;
  // The second row ends in padding, so pooling and masks see a pad.
  const pad = (i: number) => i >= 8;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: E.tensor(
      "int64",
      BigInt64Array.from({ length: B * T }, (_, i) => BigInt(pad(i) ? 0 : 3 + i)),
      [B, T],
    ),
    attention_mask: E.tensor(
      "int64",
      BigInt64Array.from({ length: B * T }, (_, i) => (pad(i) ? 0n : 1n)),
      [B, T],
    ),
    token_type_ids: E.tensor("int64", new BigInt64Array(B * T), [B, T]),
    labels: E.tensor("float32", [1, 0, 1, 0, 0, 1], [B, 3]),
    [E.DROPOUT_KEY]: E.tensor("int64", BigInt64Array.of(E.dropoutKey(1)), []),
    lr: E.tensor("float32", [1e-3], []),
    step: E.tensor("float32", [1], []),
  };
  for (const p of g.params)
    feeds[p.name] = E.tensor("float32", initial.get(p.name) as Float32Array, p.shape as number[]);
  for (const i of g.inputs)
    if (/\.exp_avg(_sq)?$/.test(i.name))
      feeds[i.name] = E.tensor(
        "float32",
        new Float32Array((i.shape as number[]).reduce((a, b) => a * b, 1)),
        i.shape as number[],
      );
  return feeds;
}

test("every node of the training and inference graphs has a CUDA kernel for its types", async () => {
  const problems = new Set<string>();
  const seen = new Set<string>();
  for (const spec of SPECS) {
    const dir = join(tmp, spec.family);
    await writeSyntheticCheckpoint(dir, spec);
    const ckpt = await loadCheckpoint(dir);
    for (const kind of ["multilabel", "per-label-softmax"] as HeadKind[]) {
      // The heads differ only in their last layers: the second one is checked in a train step.
      for (const mode of kind === "multilabel" ? MODES : (["train step"] as const)) {
        const g = new E.Graph();
        const training = mode === "train step" || mode === "gradients (accumulation)";
        const m = buildClassifier(g, ckpt, {
          head: { kind, numLabels: 3, posWeight: [1, 2, 3] },
          lora: loraConfig({ r: 2, lora_alpha: 4, lora_dropout: 0.1, target_modules: "all-linear" }),
          training,
          merged: mode === "prediction (merged)",
        });
        const loss = m.loss();
        g.output("loss", loss);
        g.output("probs", m.probs);
        if (mode === "train step") E.adamw(g, E.grad(loss, m.params), { maxGradNorm: 1, weightDecay: 0.01 });
        if (mode === "gradients (accumulation)")
          for (const [p, gr] of E.grad(loss, m.params)) if (gr) g.output(`grad.${p.name}`, gr);
        for (const n of await ranNodes(g, feedsFor(g, m.initial))) {
          seen.add(n.op);
          const why = cudaProblem(n);
          if (why) problems.add(`${spec.family} ${kind} ${mode}: ${why}`);
        }
      }
    }
  }
  assert.deepEqual([...problems], []);
  // The check saw the graphs' real content (dropout's integer hashing, LayerNorm, the optimizer...).
  for (const op of ["FusedMatMul", "LayerNormalization", "Softmax", "Gather", "Div", "Pow", "Where"])
    assert.ok(seen.has(op), `${op} never ran`);
});

test("the check catches an op without a CUDA kernel for its type", () => {
  assert.match(cudaProblem({ op: "Neg", inputs: ["uint64"], outputs: ["uint64"] }) ?? "", /no uint64 kernel/);
  assert.match(
    cudaProblem({ op: "BitShift", inputs: ["uint64"], outputs: ["uint64"] }) ?? "",
    /no CUDA kernel/,
  );
  assert.equal(cudaProblem({ op: "Mul", inputs: ["uint64", "uint64"], outputs: ["uint64"] }), null);
});
