// Whole training runs equal PyTorch step by step: `toxlora train` with the flags of each PyTorch
// trajectory fixture (test/fixtures/trajectory/, see its README), run inside a copy of the case
// folder, must end with PyTorch's adapter and log PyTorch's loss, lr and gradient norm at every
// optimizer step.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { readSafetensors } from "../../src/io/safetensors.js";
import { fixture } from "../fixture.js";

const MAIN = resolve(process.cwd(), "src/cli/main.ts");
const tmp = mkdtempSync(join(tmpdir(), "toxlora-trajectory-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface ExpectedStep {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  rows: number;
}

/** Runs the case's flags in a copy of its folder; returns the run directory. */
function runCase(name: string): string {
  const dir = join(tmp, name);
  cpSync(fixture(`trajectory/${name}`), dir, { recursive: true });
  const { flags } = JSON.parse(readFileSync(join(dir, "args.json"), "utf8")) as { flags: string[] };
  const r = spawnSync(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), MAIN, "train", ...flags, "--out", "run", "--quiet"],
    {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, HF_HUB_OFFLINE: "1" },
    },
  );
  assert.equal(r.status, 0, `toxlora train failed:\n${r.stderr}`);
  return join(dir, "run");
}

for (const name of ["bert-multilabel", "llama-per-label-softmax"]) {
  test(`${name}: toxlora train ends with PyTorch's adapter after the same steps`, async () => {
    const run = runCase(name);
    const want = JSON.parse(readFileSync(fixture(`trajectory/${name}/expected/steps.json`), "utf8")) as {
      T: number;
      steps: ExpectedStep[];
    };
    const got = readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === "step");
    assert.equal(got.length, want.T, "optimizer steps");
    const near = (a: number, b: number, scale: number) => Math.abs(a - b) <= 1e-5 + 1e-4 * scale;
    want.steps.forEach((w, i) => {
      const g = got[i];
      assert.equal(g.step, w.step);
      for (const [key, theirs] of [
        ["loss", w.loss],
        ["lr", w.lr],
        ["gradNorm", w.grad_norm],
      ] as const) {
        assert.ok(
          near(g[key], theirs, Math.abs(theirs)),
          `step ${w.step} ${key}: ${g[key]} vs PyTorch ${theirs}`,
        );
      }
    });

    const expected = await readSafetensors(fixture(`trajectory/${name}/expected/adapter_model.safetensors`));
    const ours = await readSafetensors(join(run, "adapter", "adapter_model.safetensors"));
    assert.deepEqual([...ours.keys()].sort(), [...expected.keys()].sort(), "adapter keys");
    for (const [key, t] of expected) {
      const o = ours.get(key);
      assert.ok(o);
      assert.deepEqual(o.shape, t.shape, key);
      const maxAbs = t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      let worst = 0;
      for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(o.data[i] - t.data[i]));
      assert.ok(worst <= 1e-5 + 1e-4 * maxAbs, `${key}: off by ${worst} (max |expected| ${maxAbs})`);
    }
  });
}

test("--adapter: flags that contradict the adapter's config are refused, naming both values", () => {
  const dir = join(tmp, "contradict");
  cpSync(fixture("trajectory/bert-multilabel"), dir, { recursive: true });
  const { flags } = JSON.parse(readFileSync(join(dir, "args.json"), "utf8")) as { flags: string[] };
  const cases: [flag: string, value: string, message: RegExp][] = [
    ["--lora-r", "8", /--lora-r 8 contradicts .*r is 4 in .*adapter_config\.json/],
    ["--lora-alpha", "16", /--lora-alpha 16 contradicts .*lora_alpha is 8/],
    ["--head", "per-label-softmax", /--head per-label-softmax contradicts .*saved head is multilabel/],
    ["--target-modules", "query,value", /--target-modules query,value contradicts .*target_modules is/],
  ];
  for (const [flag, value, message] of cases) {
    const changed = [...flags];
    const at = changed.indexOf(flag);
    if (at >= 0) changed[at + 1] = value;
    else changed.push(flag, value);
    const r = spawnSync(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), MAIN, "train", ...changed, "--out", "run", "--quiet"],
      { cwd: dir, encoding: "utf8" },
    );
    assert.notEqual(r.status, 0, `${flag} ${value} was accepted`);
    assert.match(r.stderr, message);
  }
});
