// An output that resolves to an input is refused before anything is written: same path, another
// spelling of it, a symlink, a hard link — in the library check and in every command that writes.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { isSameFile, refuseOutputOverInput, SameFileError } from "../../src/io/same-file.js";
import { predictFile } from "../../src/predict/predict.js";
import { importTweets } from "../../src/sources/import.js";
import { scoreTweets } from "../../src/sources/score.js";
import { KeywordClassifier } from "../serve/keyword-classifier.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DEMO = fileURLToPath(new URL("../../assets/demo/toxicity-ja.jsonl", import.meta.url));

let dir: string;
let data: string; // 50 rows of the demo data set
before(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-same-file-"));
  data = join(dir, "same.jsonl");
  writeFileSync(data, `${readFileSync(DEMO, "utf8").split("\n").slice(0, 50).join("\n")}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function toxlora(...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { cwd: ROOT },
      (err, _stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stderr }),
    );
  });
}

describe("refuseOutputOverInput", () => {
  test("same path, another spelling, symlink and hard link are the input; a copy is not", () => {
    const link = join(dir, "link.jsonl");
    const hard = join(dir, "hard.jsonl");
    const copy = join(dir, "copy.jsonl");
    symlinkSync(data, link);
    linkSync(data, hard);
    writeFileSync(copy, readFileSync(data));
    for (const out of [data, join(dir, ".", "same.jsonl"), link, hard]) {
      assert.ok(isSameFile(out, data), out);
      assert.throws(() => refuseOutputOverInput([out], [data]), SameFileError, out);
    }
    assert.throws(() => refuseOutputOverInput([data], [link]), /through a link or another path/);
    assert.doesNotThrow(() => refuseOutputOverInput([copy, join(dir, "new.jsonl")], [data, "-"]));
    assert.equal(isSameFile(copy, data), false);
  });
});

describe("commands refuse to write over their input, exit non-zero and leave it intact", () => {
  test("balance same.jsonl --out same.jsonl", async () => {
    const before = readFileSync(data);
    const r = await toxlora("balance", data, "--strategy", "drop-all-negative", "--out", data);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /refusing to write .*same\.jsonl: it is the input/);
    assert.deepEqual(readFileSync(data), before);
  });

  test("split splitsame/train.jsonl --out-dir splitsame (and through a symlinked folder)", async () => {
    const sub = join(dir, "splitsame");
    mkdirSync(sub);
    const train = join(sub, "train.jsonl");
    writeFileSync(train, readFileSync(data));
    symlinkSync(sub, join(dir, "alias"));
    for (const outDir of [sub, join(dir, "alias")]) {
      const r = await toxlora("split", train, "--test", "0.3", "--out-dir", outDir);
      assert.notEqual(r.code, 0, outDir);
      assert.match(r.stderr, /train\.jsonl: it is the input/);
      assert.deepEqual(readFileSync(train), readFileSync(data));
    }
  });

  test("predict --input same.txt --out same.txt (and --resume, and out.partial)", async () => {
    const txt = join(dir, "same.txt");
    writeFileSync(txt, "一行目\n二行目\n");
    const clf = new KeywordClassifier();
    for (const opts of [{ out: txt }, { out: txt, resume: true }, { out: join(dir, "same") }]) {
      const input = opts.out === txt ? txt : join(dir, "same.partial");
      if (input !== txt) writeFileSync(input, "x\n");
      await assert.rejects(predictFile(clf, { input, ...opts }), SameFileError);
    }
    assert.equal(readFileSync(txt, "utf8"), "一行目\n二行目\n");
    assert.equal(clf.calls.length, 0, "nothing was scored");
  });

  test("tweets import and tweets score", async () => {
    const tweets = join(dir, "tweets.jsonl");
    const body = `${JSON.stringify({ id: "1", text: "会社" })}\n`;
    writeFileSync(tweets, body);
    assert.throws(() => importTweets([tweets], tweets), SameFileError);
    const clf = new KeywordClassifier();
    await assert.rejects(
      scoreTweets(clf, tweets, tweets, { summaryFile: null, chartBase: null }),
      SameFileError,
    );
    await assert.rejects(
      scoreTweets(clf, tweets, join(dir, "scored.jsonl"), { summaryFile: tweets, chartBase: null }),
      SameFileError,
    );
    assert.equal(readFileSync(tweets, "utf8"), body);
  });
});
