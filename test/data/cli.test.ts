// The analyze / balance / split commands end to end, as a user runs them (spawned from the repo root).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { fixture } from "../fixture.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const FIXTURE = fixture("llmjp-v2-seed-stats.jsonl");
const INSPECTION = fixture("data/inspection-ai/subset.csv");
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function toxlora(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function jsonl(path: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path, "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-cli-data-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("toxlora analyze / balance / split on the LLM-jp fixture", () => {
  it("analyze prints the prototype's histogram and per-label lines", async () => {
    const r = await toxlora("analyze", FIXTURE);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.ok(lines.includes("rows: 3847"));
    assert.ok(
      lines.includes(
        "positive labels per row: {'0': 1965, '1': 1468, '2': 382, '3': 28, '4': 3, '5': 0, '6': 1, '7': 0}",
      ),
    );
    for (const line of [
      "'obscene': yes..63.39%(1193), no..36.61%(689)",
      "'discriminatory': yes..22.21%(418), no..77.79%(1464)",
      "'violent': yes..8.98%(169), no..91.02%(1713)",
      "'illegal': yes..3.24%(61), no..96.76%(1821)",
      "'personal': yes..2.18%(41), no..97.82%(1841)",
      "'corporate': yes..22.48%(423), no..77.52%(1459)",
      "'others': yes..1.54%(29), no..98.46%(1853)",
    ]) {
      assert.ok(lines.includes(line), line);
    }
    assert.equal(r.stderr, "");
  });

  it("analyze --format json", async () => {
    const r = await toxlora("analyze", FIXTURE, "--format", "json");
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.rows, 3847);
    assert.deepEqual(result.positivesPerRow, [1965, 1468, 382, 28, 3, 0, 1, 0]);
  });

  it("balance drop-all-negative,keep-labels:... → 1,839 rows, dropped label columns removed", async () => {
    const out = join(dir, "four.jsonl");
    const r = await toxlora(
      "balance",
      FIXTURE,
      "--strategy",
      "drop-all-negative,keep-labels:obscene,discriminatory,violent,corporate",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    for (const line of [
      "rows: 1839",
      "'obscene': yes..64.87%(1193), no..35.13%(646)",
      "'discriminatory': yes..22.73%(418), no..77.27%(1421)",
      "'violent': yes..9.19%(169), no..90.81%(1670)",
      "'corporate': yes..23.00%(423), no..77.00%(1416)",
      `wrote ${out} (1839 rows)`,
    ]) {
      assert.ok(r.stdout.split("\n").includes(line), `${line}\n---\n${r.stdout}`);
    }
    const rows = await jsonl(out);
    assert.equal(rows.length, 1839);
    assert.deepEqual(Object.keys(rows[0] ?? {}), [
      "id",
      "text",
      "label",
      "obscene",
      "discriminatory",
      "violent",
      "corporate",
    ]);
  });

  it("balance --strategy prototype → 1,218 rows; split --test 0.3 → 852 / 366", async () => {
    const out = join(dir, "proto.jsonl");
    const b = await toxlora("balance", FIXTURE, "--strategy", "prototype", "--out", out);
    assert.equal(b.code, 0, b.stderr);
    for (const line of [
      "equalize:obscene: 1802 -> 1218 rows (obscene 609/609)",
      "rows: 1218",
      "'obscene': yes..50.00%(609), no..50.00%(609)",
      "'discriminatory': yes..34.32%(418), no..65.68%(800)",
      "'corporate': yes..34.73%(423), no..65.27%(795)",
    ]) {
      assert.ok(b.stdout.split("\n").includes(line), `${line}\n---\n${b.stdout}`);
    }
    const balanced = await jsonl(out);
    assert.equal(balanced.length, 1218);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes(".tmp-")),
      [],
    );

    const splitDir = join(dir, "split");
    const s = await toxlora("split", out, "--test", "0.3", "--seed", "42", "--out-dir", splitDir);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /1218 rows -> train 852, test 366 \(seed 42\)/);
    // The balanced file has only three label columns; that is a warning, not an error.
    assert.match(s.stderr, /label field\(s\) violent, illegal, personal, others appear in no row/);
    const train = await jsonl(join(splitDir, "train.jsonl"));
    const test = await jsonl(join(splitDir, "test.jsonl"));
    assert.equal(train.length, 852);
    assert.equal(test.length, 366);
    for (const label of ["obscene", "discriminatory", "corporate"]) {
      const rate = (rows: Record<string, unknown>[]) =>
        rows.filter((x) => x[label] === "yes").length / rows.length;
      assert.ok(Math.abs(rate(train) - rate(test)) * 100 <= 2, label);
      assert.match(
        s.stdout,
        new RegExp(`^${label} +\\d+\\.\\d\\d% \\(\\d+\\) +\\d+\\.\\d\\d% \\(\\d+\\)$`, "m"),
      );
    }
    const manifest = JSON.parse(await readFile(join(splitDir, "split.json"), "utf8"));
    assert.deepEqual(manifest.sizes, { train: 852, test: 366 });
    assert.deepEqual(
      manifest.ids.test,
      test.map((x) => x.id),
    );
    const all = [...manifest.ids.train, ...manifest.ids.test].sort();
    assert.deepEqual(all, balanced.map((x) => x.id).sort());
  });

  it("split --valid writes three files", async () => {
    const splitDir = join(dir, "split3");
    const s = await toxlora("split", FIXTURE, "--test", "0.2", "--valid", "0.1", "--out-dir", splitDir);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual((await readdir(splitDir)).sort(), [
      "split.json",
      "test.jsonl",
      "train.jsonl",
      "valid.jsonl",
    ]);
    assert.equal((await jsonl(join(splitDir, "valid.jsonl"))).length, 385);
  });
});

describe("toxlora analyze --preset inspection-ai", () => {
  it("reads the real subset.csv and writes tables and charts", async () => {
    const out = join(dir, "inspection");
    const r = await toxlora("analyze", INSPECTION, "--preset", "inspection-ai", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes("rows: 437\n"));
    assert.match(r.stdout, /^'差別': yes\.\.\d+\.\d\d%\(\d+\), no\.\.\d+\.\d\d%\(\d+\)$/m);
    const files = (await readdir(out)).sort();
    for (const name of ["label-rates", "positives-per-row", "cooccurrence", "text-length"]) {
      assert.ok(files.includes(`${name}.svg`) && files.includes(`${name}.png`), name);
      const png = await readFile(join(out, `${name}.png`));
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
      if (name !== "positives-per-row") {
        const svg = await readFile(join(out, `${name}.svg`), "utf8");
        assert.ok(svg.includes("差別"), `${name}.svg has the Japanese label`);
      }
    }
    for (const name of [
      "analysis.json",
      "analysis.md",
      "labels.csv",
      "labels.md",
      "cooccurrence.csv",
      "overall.csv",
    ]) {
      assert.ok(files.includes(name), name);
    }
    const labelsCsv = await readFile(join(out, "labels.csv"), "utf8");
    assert.match(labelsCsv, /^出会い・プライバシー侵害,0,437,0\.00,0,47,0\.00$/m);
  });
});

describe("bad input: one clear error line naming file and line", () => {
  const good = (i: number) =>
    JSON.stringify({
      id: String(i),
      text: `t${i}`,
      label: "nontoxic",
      obscene: "no",
      discriminatory: "no",
      violent: "no",
      illegal: "no",
      personal: "no",
      corporate: "no",
      others: "no",
    });

  it("bad JSON on line 7; --lenient skips it and says which line", async () => {
    const path = join(dir, "bad.jsonl");
    const lines = [1, 2, 3, 4, 5, 6].map(good);
    lines.push('{"id": "7", "text": ');
    lines.push(good(8));
    await writeFile(path, `${lines.join("\n")}\n`);
    const r = await toxlora("analyze", path);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const errLines = r.stderr.trimEnd().split("\n");
    assert.equal(errLines.length, 1, r.stderr);
    assert.match(
      errLines[0] ?? "",
      new RegExp(`^toxlora: ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:7: invalid JSON`),
    );

    const lenient = await toxlora("analyze", path, "--lenient");
    assert.equal(lenient.code, 0, lenient.stderr);
    assert.ok(lenient.stdout.includes("rows: 7\n"));
    assert.match(lenient.stderr, /^skipped 1 bad row\(s\) \(line 7\):\n {2}.*bad\.jsonl:7: invalid JSON/);
  });

  it("a CSV with an unclosed quote", async () => {
    const path = join(dir, "quote.csv");
    await writeFile(path, 'id,text,a,b\n1,x,yes,no\n2,"never closed,no,no\n3,z,no,yes\n');
    const r = await toxlora("analyze", path, "--labels", "a,b");
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      /quote\.csv:3: field "text": unclosed quote: the quoted field opened on line 3 never ends\n$/,
    );
  });

  it("a `maybe` label value", async () => {
    const path = join(dir, "maybe.jsonl");
    await writeFile(path, `${good(1)}\n${good(2).replace('"violent":"no"', '"violent":"maybe"')}\n`);
    const r = await toxlora(
      "balance",
      path,
      "--strategy",
      "drop-all-negative",
      "--out",
      join(dir, "never.jsonl"),
    );
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `toxlora: ${path}:2: field "violent": unknown label value "maybe" (expected yes or no)\n`,
    );
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith("never")),
      [],
    );
  });

  it("an unknown strategy", async () => {
    const r = await toxlora(
      "balance",
      FIXTURE,
      "--strategy",
      "drop-everything",
      "--out",
      join(dir, "x.jsonl"),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown balance strategy "drop-everything"/);
  });
});
