// Readers, schemas and validation: RFC 4180 CSV, JSON variants, BOM, presets, and clear errors.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DataError } from "../../src/data/errors.js";
import { loadDataset } from "../../src/data/load.js";
import { parseDelimited, parseJsonDocument, parseJsonLines } from "../../src/data/readers.js";
import {
  customSchema,
  inspectionAiSchema,
  llmjpToxicitySchema,
  schemaFromOptions,
  selectLabels,
} from "../../src/data/schema.js";
import { fixture } from "../fixture.js";

const FIXTURE = fixture("llmjp-v2-seed-stats.jsonl");
const INSPECTION = fixture("data/inspection-ai/subset.csv");

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-data-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

const ab = customSchema({ labels: ["a", "b"] });

function llmjpLine(id: number, obscene = "no"): string {
  return JSON.stringify({
    id: String(id),
    text: `text ${id}`,
    label: "nontoxic",
    obscene,
    discriminatory: "no",
    violent: "no",
    illegal: "no",
    personal: "no",
    corporate: "no",
    others: "no",
  });
}

describe("CSV reader (RFC 4180)", () => {
  it("reads quoted fields with delimiters, newlines and escaped quotes, with line numbers", () => {
    const text = 'id,text,a\r\n1,"hello, world",yes\r\n2,"two\nlines",no\n3,"say ""hi""",1\n\n4,plain,0';
    const r = parseDelimited(text, "x.csv", ",");
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.columns, ["id", "text", "a"]);
    assert.deepEqual(
      r.rows.map((x) => [x.line, x.value.text, x.value.a]),
      [
        [2, "hello, world", "yes"],
        [3, "two\nlines", "no"],
        [5, 'say "hi"', "1"],
        [7, "plain", "0"],
      ],
    );
  });

  it("reads lone \\r line ends (old Mac files) as line breaks", () => {
    const r = parseDelimited('id,text,a\r1,x,yes\r2,"two\rparts",no\r', "mac.csv", ",");
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.rows.map((x) => [x.line, x.value.text, x.value.a]),
      [
        [2, "x", "yes"],
        [3, "two\rparts", "no"],
      ],
    );
  });

  it("reads TSV", () => {
    const r = parseDelimited("id\ttext\ta\n1\tx, y\tyes\n", "x.tsv", "\t");
    assert.deepEqual(r.rows[0]?.value, { id: "1", text: "x, y", a: "yes" });
  });

  it("strips a UTF-8 BOM", async () => {
    const path = await file("bom.csv", "\uFEFFid,text,a,b\n1,こんにちは,yes,no\n");
    const ds = await loadDataset(path, ab);
    assert.equal(ds.records[0]?.id, "1");
    assert.deepEqual(ds.records[0]?.labels, [1, 0]);
  });

  it("counts lines with bytes that are not UTF-8 in the warnings (file and first line)", async () => {
    const path = join(dir, "latin1.csv");
    await writeFile(
      path,
      Buffer.concat([
        Buffer.from("id,text,a,b\n1,ok,yes,no\n2,caf"),
        Buffer.from([0xe9]),
        Buffer.from(",no,no\n"),
      ]),
    );
    const ds = await loadDataset(path, ab);
    assert.equal(ds.records[1]?.text, "caf\uFFFD");
    assert.ok(
      ds.warnings.includes(`${path}: 1 lines hold bytes that are not UTF-8, read as U+FFFD (first: line 3)`),
      ds.warnings.join("\n"),
    );
    assert.equal(
      (await loadDataset(await file("clean.csv", "id,text,a,b\n1,ok,yes,no\n"), ab)).warnings.length,
      0,
    );
  });

  it("reports an unclosed quote at the line where it opened, naming the field", () => {
    const text = 'id,text,a\n1,ok,yes\n2,"broken,no\n3,fine,no\n';
    const r = parseDelimited(text, "bad.csv", ",");
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]?.line, 3);
    assert.equal(r.errors[0]?.field, "text");
    assert.match(r.errors[0]?.message ?? "", /^bad\.csv:3: field "text": unclosed quote/);
    // Lenient reading resumes on the next line.
    assert.deepEqual(
      r.rows.map((x) => x.value.id),
      ["1", "3"],
    );
  });

  it("reports a quote closed in the wrong place (text after the closing quote)", () => {
    const r = parseDelimited('id,text,a\n1,"abc"d,yes\n2,x,no\n', "q.csv", ",");
    assert.equal(r.errors[0]?.line, 2);
    assert.match(r.errors[0]?.message ?? "", /q\.csv:2: field "text": unclosed quote.*followed by "d"/);
  });

  it("reports rows with the wrong number of fields", () => {
    const r = parseDelimited("id,text,a\n1,x\n", "n.csv", ",");
    assert.match(r.errors[0]?.message ?? "", /^n\.csv:2: expected 3 fields \(as in the header\), found 2$/);
  });
});

describe("JSON readers", () => {
  it("reads a JSON array and {data: [...]} with each element's line", () => {
    const arr = parseJsonDocument('[\n  {"text": "a"},\n  {"text": "b"}\n]', "x.json");
    assert.deepEqual(
      arr.rows.map((r) => [r.line, r.value.text]),
      [
        [2, "a"],
        [3, "b"],
      ],
    );
    const data = parseJsonDocument(
      '{"version": [1, 2],\n "data": [\n{"text": "a"},\n{"text": "b"}]}',
      "x.json",
    );
    assert.deepEqual(
      data.rows.map((r) => [r.line, r.value.text]),
      [
        [3, "a"],
        [4, "b"],
      ],
    );
  });

  it("names the line of invalid JSON in an array, and non-object lines", () => {
    const arr = parseJsonDocument('[\n{"text": "a"},\n{"text": "b" "x"}\n]', "x.json");
    assert.match(arr.errors[0]?.message ?? "", /^x\.json:3: invalid JSON/);
    const lines = parseJsonLines('{"a": 1}\n[1]\n', "y.jsonl");
    assert.equal(lines.errors[0]?.message, "y.jsonl:2: expected a JSON object on this line");
  });

  it("reads JSON lines in a .json file (what datasets' to_json writes), with label lists", async () => {
    const path = await file(
      "hf.json",
      '{"text": "x", "labels": ["b"]}\n{"text": "y", "labels": [1, 1]}\n{"text": "z", "labels": []}\n',
    );
    const ds = await loadDataset(path, customSchema({ labels: ["a", "b"], labelsField: "labels" }));
    assert.equal(ds.format, "json");
    assert.deepEqual(
      ds.records.map((r) => [r.id, r.labels]),
      [
        ["1", [0, 1]],
        ["2", [1, 1]],
        ["3", [0, 0]],
      ],
    );
  });
});

describe("loadDataset validation", () => {
  it("bad JSON on line 7: one error naming file and line", async () => {
    const lines = [1, 2, 3, 4, 5, 6].map((i) => llmjpLine(i));
    lines.push('{"id": "7", "text": "oops", "obscene": "no",');
    lines.push(llmjpLine(8));
    const path = await file("bad-json.jsonl", `${lines.join("\n")}\n`);
    await assert.rejects(loadDataset(path, llmjpToxicitySchema()), (err: unknown) => {
      assert.ok(err instanceof DataError);
      assert.equal(err.line, 7);
      assert.match(err.message, /bad-json\.jsonl:7: invalid JSON/);
      assert.ok(!err.message.includes("\n"), "one line");
      return true;
    });
    const lenient = await loadDataset(path, llmjpToxicitySchema(), { lenient: true });
    assert.equal(lenient.records.length, 7);
    assert.deepEqual(
      lenient.skipped.map((e) => e.line),
      [7],
    );
  });

  it("a `maybe` label value names file, line and field", async () => {
    const path = await file("maybe.csv", "id,text,a,b\n1,x,yes,no\n2,y,maybe,no\n3,z,no,yes\n");
    await assert.rejects(loadDataset(path, ab), (err: unknown) => {
      assert.ok(err instanceof DataError);
      assert.equal(
        err.message,
        `${path}:3: field "a": unknown label value "maybe" (expected yes/1/true or no/0/false)`,
      );
      return true;
    });
    const lenient = await loadDataset(path, ab, { lenient: true });
    assert.deepEqual(
      lenient.records.map((r) => r.id),
      ["1", "3"],
    );
    assert.equal(lenient.skipped.length, 1);
  });

  it("an unclosed quote fails strictly and is skipped leniently", async () => {
    const path = await file("quote.csv", 'id,text,a,b\n1,x,yes,no\n2,"y,no,no\n3,z,no,yes\n');
    await assert.rejects(loadDataset(path, ab), /quote\.csv:3: field "text": unclosed quote/);
    const lenient = await loadDataset(path, ab, { lenient: true });
    assert.deepEqual(
      lenient.records.map((r) => r.id),
      ["1", "3"],
    );
  });

  it("missing text, empty file, no valid rows", async () => {
    const noText = await file("notext.jsonl", '{"id": 1, "a": "yes", "b": "no"}\n');
    await assert.rejects(loadDataset(noText, ab), /notext\.jsonl:1: field "text": missing text/);
    const empty = await file("empty.jsonl", "\n\n");
    await assert.rejects(loadDataset(empty, ab), /empty\.jsonl: empty file/);
    const headerOnly = await file("header.csv", "id,text,a,b\n");
    await assert.rejects(loadDataset(headerOnly, ab), /header\.csv: empty file/);
    const allBad = await file("allbad.jsonl", "{\n{\n");
    await assert.rejects(
      loadDataset(allBad, ab, { lenient: true }),
      /no valid records \(2 bad rows skipped\)/,
    );
  });

  it("warns about duplicate ids", async () => {
    const path = await file("dup.jsonl", `${llmjpLine(1)}\n${llmjpLine(2)}\n${llmjpLine(1)}\n`);
    const ds = await loadDataset(path, llmjpToxicitySchema());
    assert.equal(ds.records.length, 3);
    assert.deepEqual(ds.warnings, [`${path}:3: duplicate id "1" (first on line 1)`]);
  });

  it("checks the overall label of the llmjp preset", async () => {
    const path = await file("overall.jsonl", `${llmjpLine(1).replace("nontoxic", "harmless")}\n`);
    await assert.rejects(
      loadDataset(path, llmjpToxicitySchema()),
      /overall\.jsonl:1: field "label": unknown overall label "harmless"/,
    );
  });

  it("drops label fields absent from every row, with a warning", async () => {
    const path = await file("kept.jsonl", '{"id": "1", "text": "x", "obscene": "yes", "corporate": "no"}\n');
    const ds = await loadDataset(path, llmjpToxicitySchema());
    assert.deepEqual(ds.labels, ["obscene", "corporate"]);
    assert.match(ds.warnings[0] ?? "", /violent.*appear in no row/);
    await assert.rejects(
      loadDataset(path, llmjpToxicitySchema(), { dropAbsentLabels: false }),
      /field "discriminatory": missing label value/,
    );
  });
});

describe("schemas", () => {
  it("the llmjp-toxicity preset reads the fixture", async () => {
    const ds = await loadDataset(FIXTURE, llmjpToxicitySchema());
    assert.equal(ds.records.length, 3847);
    assert.deepEqual(ds.labels, [
      "obscene",
      "discriminatory",
      "violent",
      "illegal",
      "personal",
      "corporate",
      "others",
    ]);
    const first = ds.records[0];
    assert.equal(first?.id, "00001");
    assert.equal(first?.line, 1);
    assert.equal(first?.overall, "toxic");
    assert.deepEqual(first?.labels, [0, 0, 0, 0, 0, 1, 0]);
    assert.deepEqual(ds.warnings, []);
  });

  it("the inspection-ai preset: majority of annotators, --min-votes, overall by majority vote", async () => {
    const ds = await loadDataset(INSPECTION, inspectionAiSchema());
    assert.equal(ds.records.length, 437);
    assert.equal(ds.labels[0], "卑語");
    // id 14: ヤクザより怖い — levels 1,3,0,0; categories 1,3,2,0,0,1,0 of 4 annotators.
    const r14 = ds.records.find((r) => r.id === "14");
    assert.equal(r14?.text, "ヤクザより怖い");
    assert.deepEqual(r14?.labels, [0, 1, 0, 0, 0, 0, 0]); // 3 of 4 > half; 2 of 4 is not
    assert.equal(r14?.overall, "has_toxic_expression");
    // id 0: levels 2,0,0,1 → nontoxic 2 vs toxic 1.
    assert.equal(ds.records.find((r) => r.id === "0")?.overall, "nontoxic");
    // id 39: levels 1,0,1,2 → Toxic + Very Toxic = 3 → toxic.
    assert.equal(ds.records.find((r) => r.id === "39")?.overall, "toxic");
    // id 38: levels 2,2,0,0 → a tie → has_toxic_expression.
    assert.equal(ds.records.find((r) => r.id === "38")?.overall, "has_toxic_expression");

    const two = await loadDataset(INSPECTION, inspectionAiSchema({ minVotes: 2 }));
    assert.deepEqual(two.records.find((r) => r.id === "14")?.labels, [0, 1, 1, 0, 0, 0, 0]);
    const positives = (d: typeof ds) =>
      d.records.reduce((n, r) => n + r.labels.reduce((a, b) => a + b, 0), 0);
    assert.ok(positives(two) > positives(ds));
  });

  it("builds schemas from CLI-style options", () => {
    assert.equal(schemaFromOptions({}).name, "llmjp-toxicity");
    const sub = schemaFromOptions({ preset: "llmjp-toxicity", labels: ["corporate", "obscene"] });
    assert.deepEqual(
      sub.labels.map((l) => l.name),
      ["corporate", "obscene"],
    );
    const custom = schemaFromOptions({ labels: ["x"], textField: "body", positive: ["Y"] });
    assert.equal(custom.textField, "body");
    assert.deepEqual(custom.values, { kind: "values", positive: ["y"], negative: ["no", "0", "false"] });
    assert.throws(() => schemaFromOptions({ preset: "nope" }), /unknown preset "nope"/);
    assert.throws(() => selectLabels(llmjpToxicitySchema(), ["rude"]), /label "rude" is not in schema/);
    assert.throws(() => schemaFromOptions({ minVotes: 2 }), /inspection-ai/);
    assert.throws(
      () => customSchema({ labels: ["a"], positive: ["1"], negative: ["1"] }),
      /both positive and negative/,
    );
  });

  it("custom values are case-insensitive and accept JSON booleans and numbers", async () => {
    const path = await file(
      "bools.jsonl",
      '{"text": "x", "a": true, "b": 0}\n{"text": "y", "a": "YES", "b": " 1 "}\n',
    );
    const ds = await loadDataset(path, ab);
    assert.deepEqual(
      ds.records.map((r) => r.labels),
      [
        [1, 0],
        [1, 1],
      ],
    );
  });
});
