// The SHA-256 of a base's weight files (config.json's `base.sha256`, the quantized cache's key) is
// remembered under the cache dir by path, size, mtime and inode, so a second run does not read the
// files again; hashing reports its progress in bytes, and hashProgress() shows it (after a
// second) as a bar on a terminal, lines in a log, nothing when quiet.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, mock, test } from "node:test";
import { checkpointHash } from "../../src/models/quantized-load.js";
import { loadClassifier } from "../../src/predict/classifier.js";
import { hashProgress } from "../../src/run/progress.js";
import { trainTinyRun } from "../report/trained-run.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-hash-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

test("checkpointHash remembers each file by path, size, mtime and inode; progress only while hashing", async () => {
  const a = join(dir, "model-00001.safetensors");
  const b = join(dir, "model-00002.safetensors");
  writeFileSync(a, Buffer.alloc(3 << 20, 1)); // 3 MiB: several reads
  writeFileSync(b, "second shard");
  const mtime = 1_700_000_000; // whole seconds, so that it can be set back exactly
  utimesSync(b, mtime, mtime);
  const cache = join(dir, "cache");
  const seen: [number, number][] = [];
  const first = await checkpointHash([b, a], cache, (d, t) => seen.push([d, t]));
  // Names and hashes, in name order.
  const expected = sha(
    `model-00001.safetensors:${sha(readFileSync(a))}\nmodel-00002.safetensors:${sha(readFileSync(b))}\n`,
  );
  assert.equal(first, expected);
  const total = statSync(a).size + statSync(b).size;
  assert.ok(seen.length >= 3, `${seen.length} progress calls`);
  assert.ok(seen.every(([, t]) => t === total));
  assert.ok(
    seen.every(([d], i) => i === 0 || d > seen[i - 1][0]),
    "bytes only grow",
  );
  assert.deepEqual(seen.at(-1), [total, total]);

  // Remembered: no progress, and the file is not read (same size and mtime, other bytes: old hash).
  writeFileSync(b, "SECOND SHARD");
  utimesSync(b, mtime, mtime);
  seen.length = 0;
  assert.equal(await checkpointHash([a, b], cache, (d, t) => seen.push([d, t])), first);
  assert.equal(seen.length, 0);
  // A new mtime: that file alone is hashed again.
  utimesSync(b, mtime, mtime + 5);
  const again = await checkpointHash([a, b], cache, (d, t) => seen.push([d, t]));
  assert.notEqual(again, first);
  assert.deepEqual(seen.at(-1), [statSync(b).size, statSync(b).size]);
  const memo = JSON.parse(readFileSync(join(cache, "hashes.json"), "utf8"));
  assert.equal(memo[b].sha256, sha("SECOND SHARD"));
});

test("loadClassifier reports hashing the base only while it is not remembered", async () => {
  const run = await trainTinyRun(join(dir, "tiny"));
  const was = process.env.TOXLORA_CACHE;
  process.env.TOXLORA_CACHE = join(dir, "fresh-cache"); // nothing remembered there yet
  try {
    const loads: number[] = [];
    for (let i = 0; i < 2; i++) {
      let calls = 0;
      const clf = await loadClassifier(run, { onHashProgress: () => calls++ });
      await clf.close();
      loads.push(calls);
    }
    assert.ok(loads[0] > 0, "the first load hashes the base (the run records its sha256)");
    assert.equal(loads[1], 0, "the second finds it remembered");
  } finally {
    if (was === undefined) delete process.env.TOXLORA_CACHE;
    else process.env.TOXLORA_CACHE = was;
  }
});

/** A terminal (or a log) that keeps what is written. */
function fakeStream(isTTY: boolean) {
  const out = {
    text: "",
    isTTY,
    write(s: string) {
      out.text += s;
      return true;
    },
  };
  return out as typeof out & NodeJS.WriteStream;
}

test("hashProgress: silent for a second, then a bar on a terminal or lines in a log; quiet says nothing", () => {
  mock.timers.enable({ apis: ["Date"], now: 1_700_000_000_000 });
  try {
    const tty = fakeStream(true);
    const log = fakeStream(false);
    const quiet = fakeStream(true);
    const shown = [hashProgress("auto", tty), hashProgress("auto", log), hashProgress("quiet", quiet)];
    for (const p of shown) p(1e9, 3.2e9);
    assert.equal(tty.text + log.text, "", "a short or remembered hash shows nothing");
    mock.timers.tick(1500);
    for (const p of shown) p(1.6e9, 3.2e9);
    mock.timers.tick(200);
    for (const p of shown) p(3.2e9, 3.2e9);
    assert.ok(tty.text.startsWith("\r\x1b[2Khashing the base weights (MB) "), JSON.stringify(tty.text));
    assert.match(tty.text, /hashing the base weights \(MB\) █+░+ 1600\/3200 /);
    assert.match(tty.text, /hashing the base weights \(MB\) █{24} 3200\/3200 .*\n$/);
    assert.equal(tty.text.split("\n").length, 2, "one line, ended once");
    assert.match(
      log.text,
      /^hashing the base weights \(MB\) 1600\/3200 \(50%\).*\nhashing the base weights \(MB\) 3200\/3200 \(100%\)/,
    );
    assert.equal(quiet.text, "");
  } finally {
    mock.timers.reset();
  }
});
