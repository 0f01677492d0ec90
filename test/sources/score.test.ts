import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import type { Classifier, Scored } from "../../src/run/types.js";
import {
  formatScoreSummary,
  type ScoredTweet,
  type ScoreSummary,
  scoreTweets,
} from "../../src/sources/score.js";

/**
 * A deterministic stand-in for a trained model: P(label) grows with the number of the label's keywords
 * in the text (0.1 + 0.4 per hit, capped at 0.95). Records every batch it sees.
 */
class KeywordClassifier implements Classifier {
  readonly labels = ["obscene", "discriminatory", "corporate"];
  readonly thresholds = [0.5, 0.5, 0.8];
  readonly batches: string[][] = [];
  closed = false;
  private readonly keywords: Record<string, string[]> = {
    obscene: ["えろ", "下品"],
    discriminatory: ["差別", "バカ"],
    corporate: ["株式会社", "炎上"],
  };

  async predict(texts: string[]): Promise<Scored[]> {
    this.batches.push([...texts]);
    return texts.map((t) => {
      const probs = this.labels.map((l) => {
        const hits = (this.keywords[l] ?? []).filter((k) => t.includes(k)).length;
        return Math.min(0.95, 0.1 + 0.4 * hits);
      });
      return { probs, decisions: probs.map((p, j) => p >= (this.thresholds[j] as number)) };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function tweet(id: number, text: string, extra: Record<string, unknown> = {}) {
  return {
    id: String(id),
    text,
    created_at: `2024-05-0${(id % 9) + 1}T00:00:00.000Z`,
    author_id: `u${id}`,
    ...extra,
  };
}

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as T);
}

let dir: string;
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-tweets-score-"));
});

describe("scoreTweets", () => {
  const rows = [
    tweet(1, "今日のアニメよかった"),
    tweet(2, "えろい作画で下品だな"), // obscene 0.9
    tweet(3, "差別的な発言はやめろ"), // discriminatory 0.5 (= threshold → flagged)
    tweet(4, "株式会社なんとかが炎上"), // corporate 0.9
    tweet(5, "下品 バカ 差別 炎上"), // obscene 0.5, discriminatory 0.9, corporate 0.5 (< 0.8)
    tweet(6, "えろ"), // obscene 0.5
    tweet(7, "普通の感想"),
  ];

  test("streams in batches, writes scored rows and a summary", async () => {
    const input = join(dir, "tweets.jsonl");
    writeFileSync(input, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
    const out = join(dir, "scored.jsonl");
    const clf = new KeywordClassifier();
    const logs: string[] = [];
    const summary = await scoreTweets(clf, input, out, { batchSize: 3, topK: 2, log: (l) => logs.push(l) });

    assert.deepEqual(
      clf.batches.map((b) => b.length),
      [3, 3, 1],
    );
    assert.equal(logs.length, 3, "progress after each batch");

    const scored = readJsonl<ScoredTweet>(out);
    assert.deepEqual(
      scored.map((s) => s.id),
      rows.map((r) => r.id),
    );
    const s2 = scored[1] as ScoredTweet;
    assert.deepEqual(Object.keys(s2), [
      "id",
      "created_at",
      "author_id",
      "text",
      "probs",
      "decisions",
      "flagged",
    ]);
    assert.equal(s2.text, "えろい作画で下品だな");
    assert.equal(s2.author_id, "u2");
    assert.equal(s2.created_at, "2024-05-03T00:00:00.000Z");
    assert.ok(Math.abs((s2.probs.obscene as number) - 0.9) < 1e-12);
    assert.deepEqual(s2.decisions, { obscene: true, discriminatory: false, corporate: false });
    assert.deepEqual(s2.flagged, ["obscene"]);
    assert.deepEqual((scored[4] as ScoredTweet).flagged, ["obscene", "discriminatory"]);

    assert.equal(summary.total, 7);
    assert.deepEqual(summary.flagged, { obscene: 3, discriminatory: 2, corporate: 1 });
    assert.equal(summary.anyFlagged, 5);
    assert.ok(Math.abs((summary.rate.obscene as number) - 3 / 7) < 1e-12);
    assert.deepEqual(summary.thresholds, { obscene: 0.5, discriminatory: 0.5, corporate: 0.8 });
    // Top examples: most probable first, ties broken by input order, capped at topK.
    assert.deepEqual(
      summary.top.obscene?.map((e) => e.id),
      ["2", "5"],
    );
    assert.deepEqual(
      summary.top.discriminatory?.map((e) => [e.id, e.flagged]),
      [
        ["5", true],
        ["3", true],
      ],
    );
    assert.deepEqual(
      summary.top.corporate?.map((e) => [e.id, e.flagged]),
      [
        ["4", true],
        ["5", false],
      ],
    );

    // summary.json beside the output, same content as returned.
    const written = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8")) as ScoreSummary;
    assert.deepEqual(written, summary);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );

    // Bar chart of flagged counts, rendered with the shared chart module.
    assert.deepEqual(summary.chart, { svg: join(dir, "summary.svg"), png: join(dir, "summary.png") });
    const svg = readFileSync(join(dir, "summary.svg"), "utf8");
    for (const label of clf.labels) assert.ok(svg.includes(label), `chart shows ${label}`);
    assert.match(svg, /Flagged tweets per label/);
    const png = readFileSync(join(dir, "summary.png"));
    assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");

    const text = formatScoreSummary(summary);
    assert.match(text, /^7 tweets scored, 5 flagged for at least one label/);
    assert.match(text, /obscene\s+3 flagged \(42\.9%\)/);
  });

  test("scores text_normalized when present, or normalises on the fly with normalize", async () => {
    const input = join(dir, "tweets.jsonl");
    writeFileSync(
      input,
      [
        JSON.stringify(tweet(1, "@a raw", { text_normalized: "<USER> pre" })),
        JSON.stringify(tweet(2, "@b ｴﾛ https://t.co/x")),
      ].join("\n"),
    );
    const clf = new KeywordClassifier();
    await scoreTweets(clf, input, join(dir, "a.jsonl"), { summaryFile: null });
    assert.deepEqual(clf.batches[0], ["<USER> pre", "@b ｴﾛ https://t.co/x"]);
    const clf2 = new KeywordClassifier();
    await scoreTweets(clf2, input, join(dir, "b.jsonl"), { summaryFile: null, normalize: true });
    assert.deepEqual(clf2.batches[0], ["<USER> pre", "<USER> エロ <URL>"]);
    assert.equal(existsSync(join(dir, "summary.json")), false);
    // Output keeps the raw text.
    assert.equal(readJsonl<ScoredTweet>(join(dir, "b.jsonl"))[1]?.text, "@b ｴﾛ https://t.co/x");
  });

  test("bad input names file, line and field; no partial output", async () => {
    const input = join(dir, "tweets.jsonl");
    writeFileSync(
      input,
      `${JSON.stringify(tweet(1, "ok"))}\n\n${JSON.stringify({ id: "2", txt: "typo" })}\n`,
    );
    const out = join(dir, "scored.jsonl");
    await assert.rejects(
      scoreTweets(new KeywordClassifier(), input, out),
      /tweets\.jsonl:3: field "text": missing/,
    );
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir), ["tweets.jsonl"]);
  });

  test("interrupted, then resume: kept rows are not scored again; same file and summary; another job refused", async () => {
    const input = join(dir, "tweets.jsonl");
    writeFileSync(input, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
    const full = await scoreTweets(new KeywordClassifier(), input, join(dir, "full", "scored.jsonl"), {
      batchSize: 2,
      topK: 2,
      chartBase: null,
    });
    const out = join(dir, "part", "scored.jsonl");
    const ac = new AbortController();
    const first = new KeywordClassifier();
    const predict = first.predict.bind(first);
    first.predict = async (texts) => {
      if (first.batches.length === 1) ac.abort(); // stop after the second batch
      return predict(texts);
    };
    const opts = { batchSize: 2, topK: 2, chartBase: null } as const;
    await assert.rejects(
      scoreTweets(first, input, out, { ...opts, signal: ac.signal }),
      /interrupted: 4 tweets kept in .*scored\.jsonl\.partial; run the same command with --resume/,
    );
    assert.equal(existsSync(out), false);
    await assert.rejects(
      scoreTweets(new KeywordClassifier(), input, out, { ...opts, batchSize: 3, resume: true }),
      /cannot resume: it was made with batchSize 2, not 3/,
    );
    const second = new KeywordClassifier();
    const summary = await scoreTweets(second, input, out, { ...opts, resume: true });
    assert.deepEqual(
      second.batches.flat(),
      rows.slice(4).map((r) => r.text),
    );
    assert.ok(readFileSync(out).equals(readFileSync(join(dir, "full", "scored.jsonl"))));
    assert.deepEqual({ ...summary, output: undefined }, { ...full, output: undefined });
  });

  test("a classifier that returns the wrong number of results is caught", async () => {
    const input = join(dir, "tweets.jsonl");
    writeFileSync(input, `${JSON.stringify(tweet(1, "a"))}\n${JSON.stringify(tweet(2, "b"))}\n`);
    const clf = new KeywordClassifier();
    clf.predict = async (texts) => (await KeywordClassifier.prototype.predict.call(clf, texts)).slice(1);
    await assert.rejects(scoreTweets(clf, input, join(dir, "o.jsonl")), /returned 1 results for 2 texts/);
  });

  test("empty input → empty output and a zero summary", async () => {
    const input = join(dir, "tweets.jsonl");
    writeFileSync(input, "");
    // The output directory is created when missing.
    const out = join(dir, "new", "dir", "o.jsonl");
    const summary = await scoreTweets(new KeywordClassifier(), input, out);
    assert.equal(summary.total, 0);
    assert.deepEqual(summary.rate, { obscene: 0, discriminatory: 0, corporate: 0 });
    assert.equal(readFileSync(out, "utf8"), "");
    assert.ok(existsSync(join(dir, "new", "dir", "summary.json")));
  });
});
