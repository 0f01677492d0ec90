import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import {
  type InputRecord,
  openResumableJsonlWriter,
  type ReadInputOptions,
  readInputs,
} from "../../src/predict/io.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-io-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(path: string, options?: ReadInputOptions): Promise<InputRecord[]> {
  const out: InputRecord[] = [];
  for await (const r of readInputs(path, options)) out.push(r);
  return out;
}

/** A stream delivering `parts` as separate chunks (strings or raw bytes). */
function chunked(parts: (string | Buffer)[]): Readable {
  return Readable.from(
    parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p)),
    { objectMode: false },
  );
}

/** Write `n` JSONL inputs through a stream (never builds the whole file in memory). */
async function writeJsonlInput(path: string, n: number): Promise<void> {
  const ws = createWriteStream(path);
  for (let i = 0; i < n; i++) {
    const ok = ws.write(
      `${JSON.stringify({ id: `post-${i}`, text: `投稿 ${i}: 今日のアニメ最高`, likes: i % 7 })}\n`,
    );
    if (!ok) await new Promise<void>((resolve) => ws.once("drain", () => resolve()));
  }
  await new Promise<void>((resolve, reject) =>
    ws.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

describe("readInputs: JSONL", () => {
  test("50 000 lines, lazily, in order, with ids and fields", async () => {
    const path = join(dir, "big.jsonl");
    await writeJsonlInput(path, 50_000);
    let n = 0;
    for await (const r of readInputs(path)) {
      assert.equal(r.index, n);
      assert.equal(r.line, n + 1);
      assert.equal(r.id, `post-${n}`);
      assert.equal(r.text, `投稿 ${n}: 今日のアニメ最高`);
      assert.equal(r.fields.likes, n % 7);
      n++;
    }
    assert.equal(n, 50_000);
  });

  test("other text/id fields, numeric ids, BOM, CRLF, blank lines", async () => {
    const path = join(dir, "fields.jsonl");
    await writeFile(path, '\ufeff{"no": 7, "body": "a"}\r\n\r\n{"no": 8, "body": "b\\nc"}\n');
    const rows = await collect(path, { textField: "body", idField: "no" });
    assert.deepEqual(
      rows.map((r) => [r.index, r.id, r.text, r.line]),
      [
        [0, 7, "a", 1],
        [1, 8, "b\nc", 3],
      ],
    );
    // Without an id field the id is simply absent.
    const noId = await collect(path, { textField: "body" });
    assert.equal(noId[0]?.id, undefined);
    assert.equal("id" in (noId[0] as object), false);
  });

  test("errors name file, line and field", async () => {
    const bad = join(dir, "bad.jsonl");
    await writeFile(bad, '{"text": "ok"}\n{"text": "ok"}\n{"text": oops}\n');
    await assert.rejects(collect(bad), (e: Error) => e.message.startsWith(`${bad}:3: invalid JSON`));
    await writeFile(bad, '{"text": "ok"}\n{"body": "x"}\n');
    await assert.rejects(collect(bad), (e: Error) => e.message === `${bad}:2: field "text": missing text`);
    await writeFile(bad, '{"text": 5}\n');
    await assert.rejects(collect(bad), /bad\.jsonl:1: field "text": text must be a string, got 5/);
    await writeFile(bad, "[1, 2]\n");
    await assert.rejects(collect(bad), /bad\.jsonl:1: expected a JSON object/);
    await writeFile(bad, '{"text": "a", "id": 1}\n{"text": "b"}\n');
    await assert.rejects(collect(bad, { idField: "id" }), /bad\.jsonl:2: field "id": missing id/);
  });
});

describe("readInputs: CSV / TSV", () => {
  const csv =
    "\ufeffid, text ,score\r\n" +
    '1,"hello, world",3\r\n' +
    '2,"line one\r\nline two",4\r\n' +
    '3,"she said ""hi""",5\r\n' +
    "\r\n" +
    '4,plain "quote" kept,6\r\n' +
    "5,,7";

  test("RFC 4180: quoted commas, newlines, escaped quotes, CRLF, BOM, trimmed header", async () => {
    const path = join(dir, "in.csv");
    await writeFile(path, csv);
    const rows = await collect(path);
    assert.deepEqual(
      rows.map((r) => [r.index, r.id, r.text, r.line]),
      [
        [0, "1", "hello, world", 2],
        [1, "2", "line one\r\nline two", 3],
        [2, "3", 'she said "hi"', 5],
        [3, "4", 'plain "quote" kept', 7],
        [4, "5", "", 8],
      ],
    );
    assert.deepEqual(rows[0]?.fields, { id: "1", text: "hello, world", score: "3" });
  });

  test("the same records when the input arrives one character at a time", async () => {
    const parts = [...Buffer.from(csv)].map((b) => Buffer.from([b])); // splits UTF-8 sequences too
    const rows = await collect("-", { format: "csv", stdin: chunked(parts) });
    const whole = await collect(join(dir, "in.csv"));
    assert.deepEqual(rows, whole);
  });

  test("multi-byte characters split across chunks", async () => {
    const bytes = Buffer.from('id,text\n1,"日本語の\n投稿"\n2,二つ目\n');
    const parts = [bytes.subarray(0, 12), bytes.subarray(12, 13), bytes.subarray(13, 20), bytes.subarray(20)];
    const rows = await collect("-", { format: "csv", stdin: chunked(parts) });
    assert.deepEqual(
      rows.map((r) => r.text),
      ["日本語の\n投稿", "二つ目"],
    );
  });

  test("TSV", async () => {
    const path = join(dir, "in.tsv");
    await writeFile(path, 'text\tid\n"a\tb"\tx\nc\ty\n');
    const rows = await collect(path);
    assert.deepEqual(
      rows.map((r) => [r.text, r.id]),
      [
        ["a\tb", "x"],
        ["c", "y"],
      ],
    );
  });

  test("errors: unclosed quote, junk after a quote, field count, missing column", async () => {
    const bad = join(dir, "bad.csv");
    await writeFile(bad, 'id,text\n1,ok\n2,"never closed\n3,x\n');
    await assert.rejects(collect(bad), (e: Error) =>
      e.message.startsWith(`${bad}:3: unclosed quote: the quoted field opened on line 3 never ends`),
    );
    await writeFile(bad, 'id,text\n1,"closed"x\n');
    await assert.rejects(collect(bad), /bad\.csv:2: unclosed quote: .* followed by "x"/);
    await writeFile(bad, "id,text\n1,a\n2,b,extra\n");
    await assert.rejects(collect(bad), /bad\.csv:3: expected 2 fields \(as in the header\), found 3/);
    await writeFile(bad, "id,body\n1,a\n");
    await assert.rejects(collect(bad), /bad\.csv:1: field "text": no such column \(columns: id, body\)/);
    await writeFile(bad, "text,text\n1,a\n");
    await assert.rejects(collect(bad), /bad\.csv:1: field "text": duplicate column/);
  });
});

describe("readInputs: TXT and stdin", () => {
  test("one text per line, blank lines skipped", async () => {
    const path = join(dir, "in.txt");
    await writeFile(path, "first post\r\n\nsecond, with comma\n   \nthird");
    const rows = await collect(path);
    assert.deepEqual(
      rows.map((r) => [r.index, r.text, r.line]),
      [
        [0, "first post", 1],
        [1, "second, with comma", 3],
        [2, "third", 5],
      ],
    );
    assert.deepEqual(rows[0]?.fields, { text: "first post" });
  });

  test("stdin: JSONL and TXT are sniffed, CSV is given explicitly", async () => {
    const jsonl = await collect("-", {
      stdin: chunked(['\n{"text":"x","id":1}\n', '{"text":"y","id":2}\n']),
    });
    assert.deepEqual(
      jsonl.map((r) => [r.id, r.text]),
      [
        [1, "x"],
        [2, "y"],
      ],
    );
    const txt = await collect("-", { stdin: chunked(["just text\nmore"]) });
    assert.deepEqual(
      txt.map((r) => r.text),
      ["just text", "more"],
    );
    await assert.rejects(
      collect("-", { stdin: chunked(['{"text": 1}\n']) }),
      /^DataError: <stdin>:1: field "text"/,
    );
    assert.deepEqual(await collect("-", { stdin: chunked([]) }), []);
  });

  test("unknown extension is sniffed like stdin", async () => {
    const path = join(dir, "posts.data");
    await writeFile(path, '{"text": "sniffed"}\n');
    assert.equal((await collect(path))[0]?.text, "sniffed");
  });

  test("stops reading when the consumer breaks early", async () => {
    const path = join(dir, "big.jsonl"); // from the first test
    let n = 0;
    for await (const _ of readInputs(path)) if (++n === 3) break;
    assert.equal(n, 3);
  });
});

describe("readInputs: memory", () => {
  test("heap stays flat while reading a large CSV", async () => {
    // ~64 MB of CSV with quoted multi-line fields. Reading it whole would need ≥ 64 MB of heap for
    // the string alone; streaming needs a few chunks. Sample the heap while reading.
    const path = join(dir, "large.csv");
    const ws = createWriteStream(path);
    ws.write("id,text\n");
    const filler = "x".repeat(600);
    for (let i = 0; i < 100_000; i++) {
      if (!ws.write(`${i},"row ${i}, with ""quotes""\nand a newline ${filler}"\n`)) {
        await new Promise<void>((resolve) => ws.once("drain", () => resolve()));
      }
    }
    await new Promise<void>((resolve) => ws.end(resolve));
    const size = (await stat(path)).size;
    assert.ok(size > 60e6, `file is ${size} bytes`);
    // Measure live memory, not garbage waiting for collection: enable gc() for this process.
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let n = 0;
    for await (const r of readInputs(path)) {
      if (n % 10_000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      }
      if (n === 99_999) assert.ok(r.text.startsWith('row 99999, with "quotes"\nand a newline x'));
      n++;
    }
    assert.equal(n, 100_000);
    // Measured: ~4.5 MB live while reading 65 MB.
    assert.ok(
      peak < 16e6,
      `heap grew by ${(peak / 1e6).toFixed(1)} MB while reading ${(size / 1e6).toFixed(0)} MB`,
    );
  });
});

describe("openResumableJsonlWriter", () => {
  test("fresh write: rows go to .partial, close renames to the final file", async () => {
    const out = join(dir, "fresh", "scores.jsonl");
    const w = await openResumableJsonlWriter(out);
    assert.equal(w.resumedRows, 0);
    await w.append([
      { index: 0, p: 0.1 },
      { index: 1, p: 0.2 },
    ]);
    await w.append([{ index: 2, p: 0.3 }]);
    assert.equal(w.rowCount, 3);
    await assert.rejects(stat(out)); // not visible before close
    assert.equal((await readFile(w.partialPath, "utf8")).split("\n").length, 4);
    await w.close();
    assert.equal(
      await readFile(out, "utf8"),
      '{"index":0,"p":0.1}\n{"index":1,"p":0.2}\n{"index":2,"p":0.3}\n',
    );
    await assert.rejects(stat(w.partialPath));
    await assert.rejects(w.append([{}]), /writer is closed/);
  });

  test("without resume a stale partial file is discarded", async () => {
    const out = join(dir, "stale.jsonl");
    await writeFile(`${out}.partial`, '{"index":0}\n{"index":1}\n');
    const w = await openResumableJsonlWriter(out);
    assert.equal(w.resumedRows, 0);
    await w.append([{ index: 0, fresh: true }]);
    await w.close();
    assert.equal(await readFile(out, "utf8"), '{"index":0,"fresh":true}\n');
  });

  test("interrupted half-way with a torn line, resumed: exactly one row per input", async () => {
    const input = join(dir, "resume-in.jsonl");
    await writeJsonlInput(input, 50_000);
    const out = join(dir, "resume-out.jsonl");
    const score = (r: InputRecord) => ({ index: r.index, id: r.id, text: r.text, p: (r.index % 100) / 100 });

    // First run: write 20 000 rows in batches of 64, then "crash" leaving a torn line behind.
    const w1 = await openResumableJsonlWriter(out);
    let batch: InputRecord[] = [];
    for await (const r of readInputs(input)) {
      if (r.index >= 20_000) break;
      batch.push(r);
      if (batch.length === 64) {
        await w1.append(batch.map(score));
        batch = [];
      }
    }
    await w1.append(batch.map(score));
    await w1.suspend();
    await appendFile(w1.partialPath, '{"index":20000,"id":"post-20000","te');

    // Second run resumes: skips the inputs already written, appends the rest.
    const w2 = await openResumableJsonlWriter(out, { resume: true });
    assert.equal(w2.resumedRows, 20_000);
    assert.equal(w2.lastIndex, 19_999);
    batch = [];
    for await (const r of readInputs(input)) {
      if (r.index < w2.resumedRows) continue;
      batch.push(r);
      if (batch.length === 64) {
        await w2.append(batch.map(score));
        batch = [];
      }
    }
    await w2.append(batch.map(score));
    assert.equal(w2.rowCount, 50_000);
    await w2.close();

    const lines = (await readFile(out, "utf8")).split("\n");
    assert.equal(lines.pop(), ""); // ends with a newline
    assert.equal(lines.length, 50_000);
    lines.forEach((line, i) => {
      const row = JSON.parse(line);
      assert.equal(row.index, i);
      assert.equal(row.id, `post-${i}`);
    });
  });

  test("resume with no previous output starts fresh; resume of a finished file keeps it", async () => {
    const out = join(dir, "resume-none.jsonl");
    const w = await openResumableJsonlWriter(out, { resume: true });
    assert.equal(w.resumedRows, 0);
    assert.equal(w.lastIndex, undefined);
    await w.append([{ index: 0 }, { index: 1 }]);
    await w.close();
    const again = await openResumableJsonlWriter(out, { resume: true });
    assert.equal(again.resumedRows, 2);
    assert.equal(again.lastIndex, 1);
    await again.close();
    assert.equal(await readFile(out, "utf8"), '{"index":0}\n{"index":1}\n');
  });

  test("refuses to resume a file that is not one row per input in order", async () => {
    const out = join(dir, "gappy.jsonl");
    await writeFile(`${out}.partial`, '{"index":0}\n{"index":5}\n');
    await assert.rejects(
      openResumableJsonlWriter(out, { resume: true }),
      /gappy\.jsonl\.partial:2: field "index": cannot resume: 2 complete rows but the last has index 5/,
    );
    await writeFile(`${out}.partial`, '{"index":0}\n{"index":1, oops}\n');
    await assert.rejects(
      openResumableJsonlWriter(out, { resume: true }),
      /:2: cannot resume: the last complete line/,
    );
  });

  test("a killed writer process resumes without duplicates", async () => {
    // A child process appends batches as fast as it can; it is killed with SIGKILL mid-run, so the
    // file may end in a torn line. The resumed run must still produce rows 0..N-1 exactly once.
    const out = join(dir, "killed.jsonl");
    const N = 40_000;
    const ioModule = fileURLToPath(new URL("../../src/predict/io.ts", import.meta.url));
    const script = join(dir, "writer-child.mts"); // .mts: an ES module, so top-level await works
    await writeFile(
      script,
      `import { openResumableJsonlWriter } from ${JSON.stringify(ioModule)};
const w = await openResumableJsonlWriter(${JSON.stringify(out)});
for (let start = 0; start < ${N}; start += 50) {
  const rows = [];
  for (let i = start; i < Math.min(start + 50, ${N}); i++) rows.push({ index: i, text: "x".repeat(200 + (i % 50)) });
  await w.append(rows);
  if (start === 5000) process.stdout.write("halfway\\n");
  await new Promise((r) => setImmediate(r));
}
await w.close();
`,
    );
    const repoRoot = fileURLToPath(new URL("../..", import.meta.url)); // where tsx resolves
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let killed = false;
    const exited = new Promise<void>((resolve, reject) => {
      child.on("exit", () => resolve());
      child.on("error", reject);
    });
    child.stdout.on("data", (d: Buffer) => {
      if (!killed && d.toString().includes("halfway")) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    await exited;
    assert.ok(killed, "the child finished or failed before it could be killed");
    await assert.rejects(stat(out)); // never finalised

    const w = await openResumableJsonlWriter(out, { resume: true });
    assert.ok(w.resumedRows >= 5050 && w.resumedRows < N, `resumed at ${w.resumedRows}`);
    for (let start = w.resumedRows; start < N; start += 50) {
      const rows = [];
      for (let i = start; i < Math.min(start + 50, N); i++)
        rows.push({ index: i, text: "x".repeat(200 + (i % 50)) });
      await w.append(rows);
    }
    await w.close();
    const lines = (await readFile(out, "utf8")).trimEnd().split("\n");
    assert.equal(lines.length, N);
    lines.forEach((line, i) => {
      assert.equal(JSON.parse(line).index, i);
    });
  });
});
