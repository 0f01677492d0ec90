import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { parseCsv } from "../../src/sources/csv.js";
import { detectFormat, importTweets, readTweetFile } from "../../src/sources/import.js";
import type { TweetRecord } from "../../src/sources/tweet.js";

// A small X archive export as the "Download your data" zip lays it out: data/tweets.js + data/account.js.
// Written for this test: two Japanese posts, one with a t.co link and mention, one reply, one retweet.
const ARCHIVE_TWEETS = `window.YTD.tweets.part0 = [
  {
    "tweet" : {
      "edit_info" : { "initial" : { "editTweetIds" : [ "1788000000000000001" ], "editableUntil" : "2024-05-08T03:00:00.000Z", "editsRemaining" : "5", "isEditEligible" : true } },
      "retweeted" : false,
      "source" : "<a href=\\"https://mobile.twitter.com\\" rel=\\"nofollow\\">Twitter Web App</a>",
      "entities" : { "hashtags" : [ { "text" : "アニメ", "indices" : [ "12", "16" ] } ], "symbols" : [ ], "user_mentions" : [ ], "urls" : [ ] },
      "display_text_range" : [ "0", "16" ],
      "favorite_count" : "12",
      "id_str" : "1788000000000000001",
      "truncated" : false,
      "retweet_count" : "3",
      "id" : "1788000000000000001",
      "created_at" : "Wed May 08 02:00:00 +0000 2024",
      "favorited" : false,
      "full_text" : "今期の作画すごい &amp; 最高 #アニメ",
      "lang" : "ja"
    }
  },
  {
    "tweet" : {
      "in_reply_to_status_id_str" : "1787000000000000000",
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ { "name" : "Kana", "screen_name" : "kana_01", "indices" : [ "0", "8" ], "id_str" : "42", "id" : "42" } ], "urls" : [ { "url" : "https://t.co/AbC123", "expanded_url" : "https://example.com/ep5", "display_url" : "example.com/ep5", "indices" : [ "14", "37" ] } ] },
      "favorite_count" : "0",
      "id_str" : "1788000000000000002",
      "retweet_count" : "0",
      "id" : "1788000000000000002",
      "created_at" : "Thu May 09 15:30:05 +0000 2024",
      "full_text" : "@kana_01 5話みた？ https://t.co/AbC123",
      "lang" : "ja"
    }
  }
]`;

const ARCHIVE_ACCOUNT = `window.YTD.account.part0 = [
  { "account" : { "email" : "someone@example.com", "createdVia" : "web", "username" : "anime_fan_jp", "accountId" : "123456789", "createdAt" : "2015-01-01T00:00:00.000Z", "accountDisplayName" : "アニメ好き" } }
]`;

function readRows(file: string): TweetRecord[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as TweetRecord);
}

let dir: string;
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-tweets-import-"));
});

describe("tweets import", () => {
  test("X archive tweets.js (with account.js beside it) → normalised JSONL", () => {
    const data = join(dir, "data");
    mkdirSync(data);
    writeFileSync(join(data, "tweets.js"), ARCHIVE_TWEETS);
    writeFileSync(join(data, "account.js"), ARCHIVE_ACCOUNT);
    const out = join(dir, "tweets.jsonl");
    const res = importTweets([join(data, "tweets.js")], out, { normalize: true });
    assert.deepEqual(
      res.files.map((f) => f.format),
      ["archive"],
    );
    assert.equal(res.written, 2);
    const [a, b] = readRows(out) as [TweetRecord, TweetRecord];
    assert.deepEqual(Object.keys(a), [
      "id",
      "text",
      "created_at",
      "author_id",
      "author_username",
      "lang",
      "conversation_id",
      "public_metrics",
      "entities",
      "source",
      "text_normalized",
    ]);
    assert.equal(a.id, "1788000000000000001");
    assert.equal(a.text, "今期の作画すごい &amp; 最高 #アニメ", "raw text kept as exported");
    assert.equal(a.text_normalized, "今期の作画すごい & 最高 #アニメ");
    assert.equal(a.created_at, "2024-05-08T02:00:00.000Z");
    assert.equal(a.author_id, "123456789");
    assert.equal(a.author_username, "anime_fan_jp");
    assert.equal(a.lang, "ja");
    assert.equal(a.conversation_id, null);
    assert.deepEqual(a.public_metrics, { retweet_count: 3, like_count: 12 });
    assert.equal(a.source, "x-archive");
    assert.equal(b.created_at, "2024-05-09T15:30:05.000Z");
    assert.equal(b.text_normalized, "<USER> 5話みた? <URL>");
    assert.deepEqual(readdirSync(dir).sort(), ["data", "tweets.jsonl"], "no temp file left");
  });

  test("archive without account.js: author unknown (null)", () => {
    const file = join(dir, "tweets.js");
    writeFileSync(file, ARCHIVE_TWEETS);
    const { tweets } = readTweetFile(file);
    assert.equal(tweets[0]?.author_id, null);
  });

  test("JSONL from other tools: API v2 objects, saved API pages, v1.1 objects; duplicates dropped", () => {
    const file = join(dir, "other.jsonl");
    const lines = [
      { id: "11", text: "a", created_at: "2024-05-01T00:00:00Z", author_id: "7", lang: "ja" },
      {
        data: [
          { id: "12", text: "b", author_id: "8" },
          { id: "11", text: "a again" },
        ],
        includes: { users: [{ id: "8", username: "bee" }] },
        meta: { result_count: 2 },
      },
      { id_str: "13", full_text: "c", user: { id_str: "9", screen_name: "sea" }, favorite_count: 4 },
    ];
    writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join("\r\n")}\r\n\r\n`);
    const out = join(dir, "out.jsonl");
    const res = importTweets([file], out);
    assert.equal(res.files[0]?.format, "jsonl");
    assert.equal(res.read, 4);
    assert.equal(res.written, 3);
    assert.equal(res.duplicates, 1);
    const rows = readRows(out);
    assert.deepEqual(
      rows.map((r) => [r.id, r.text, r.author_id, r.author_username, r.source]),
      [
        ["11", "a", "7", null, "jsonl"],
        ["12", "b", "8", "bee", "jsonl"],
        ["13", "c", "9", "sea", "jsonl"],
      ],
    );
    assert.equal(rows[0]?.created_at, "2024-05-01T00:00:00.000Z");
    assert.deepEqual(rows[2]?.public_metrics, { like_count: 4 });
  });

  test("CSV with quoted fields, embedded newlines and tool-specific column names", () => {
    const file = join(dir, "export.csv");
    writeFileSync(
      file,
      '\uFEFFTweet Id,Date,Username,Tweet,Likes\r\n1001,2024-05-01 09:00:00Z,kana,"ok, ""quoted""\r\nsecond line",5\r\n1002,,,,\r\n',
    );
    const out = join(dir, "out.jsonl");
    importTweets([file], out);
    const rows = readRows(out);
    assert.equal(rows.length, 2);
    assert.equal(rows[0]?.id, "1001");
    assert.equal(rows[0]?.text, 'ok, "quoted"\r\nsecond line');
    assert.equal(rows[0]?.author_username, "kana");
    assert.equal(rows[0]?.created_at, "2024-05-01T09:00:00.000Z");
    assert.deepEqual(rows[0]?.public_metrics, { like_count: 5 });
    assert.equal(rows[0]?.source, "csv");
    assert.equal(rows[1]?.text, "", "an empty text cell is an empty text, not an error");
  });

  test("several inputs into one file", () => {
    const a = join(dir, "a.jsonl");
    const b = join(dir, "b.csv");
    writeFileSync(a, '{"id":"1","text":"x"}\n');
    writeFileSync(b, "id,text\n2,y\n1,dup\n");
    const res = importTweets([a, b], join(dir, "out.jsonl"));
    assert.equal(res.written, 2);
    assert.equal(res.duplicates, 1);
  });

  test("errors name the file, the line and the field; nothing is written", () => {
    const out = join(dir, "out.jsonl");
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"id":"1","text":"ok"}\n{"id":"2"}\n');
    assert.throws(() => importTweets([bad], out), /bad\.jsonl:2: field "text": missing/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
      "temp file removed",
    );

    writeFileSync(bad, '{"id":1790000000000000001,"text":"big id as a number"}\n');
    assert.throws(() => importTweets([bad], out), /bad\.jsonl:1: field "id": .*too large to be exact/);

    writeFileSync(bad, '{"id":"5","text":"x","created_at":"someday"}\n');
    assert.throws(() => importTweets([bad], out), /bad\.jsonl:1: field "created_at": unreadable time/);

    writeFileSync(bad, '{"id":"5","text":"x"}\n{oops\n');
    assert.throws(() => importTweets([bad], out), /bad\.jsonl:2: invalid JSON/);

    const csv = join(dir, "bad.csv");
    writeFileSync(csv, "id,body\n1,a\n2,b,extra\n");
    assert.throws(() => importTweets([csv], out), /bad\.csv:3: 3 fields, but the header has 2/);
    writeFileSync(csv, "tweet_id,message\n1,a\n");
    assert.throws(() => importTweets([csv], out), /bad\.csv:1: no "text" column/);

    const js = join(dir, "tweets.js");
    writeFileSync(js, 'window.YTD.tweets.part0 = [ { "tweet" : { "id_str" : "x1", "full_text" : "a" } } ]');
    assert.throws(() => importTweets([js], out), /tweets\.js: item 1: field "id": not a numeric id/);
  });
});

describe("format detection and CSV parsing", () => {
  test("detectFormat", () => {
    assert.equal(detectFormat("x.js", "window.YTD.tweets.part0 = []"), "archive");
    assert.equal(detectFormat("x.json", '[{"id":"1"}]'), "json");
    assert.equal(detectFormat("x.json", '{\n  "data": []\n}'), "json");
    assert.equal(detectFormat("x.jsonl", '{"id":"1"}\n{"id":"2"}\n'), "jsonl");
    assert.equal(detectFormat("x.csv", '{"looks":"json"}'), "csv");
    assert.equal(detectFormat("x.txt", "id,text\n"), "csv");
  });

  test("parseCsv keeps line numbers of records that span lines", () => {
    const recs = parseCsv('a,b\n"x\ny",2\n\nlast,"q"', "t.csv");
    assert.deepEqual(
      recs.map((r) => [r.line, r.fields]),
      [
        [1, ["a", "b"]],
        [2, ["x\ny", "2"]],
        [5, ["last", "q"]],
      ],
    );
    assert.throws(
      () => parseCsv('a\n"open', "t.csv"),
      /t\.csv:2: unclosed quote: the quoted field opened on line 2 never ends/,
    );
    assert.throws(
      () => parseCsv('"a"b', "t.csv"),
      /t\.csv:1: unclosed quote: .* closed on line 1 but followed by "b" instead of a delimiter or line end/,
    );
    // A lone \r ends a line, as in old Mac files (and as pandas reads them).
    assert.deepEqual(
      parseCsv("a,b\r1,2\r", "t.csv").map((r) => [r.line, r.fields]),
      [
        [1, ["a", "b"]],
        [2, ["1", "2"]],
      ],
    );
  });
});
