// The demo dataset: a few hundred short Japanese sentences in the LLM-jp Toxicity Dataset schema,
// written for this project so that `toxlora demo` runs offline on a fresh clone.
//
// Every sentence is built by a seeded generator from hand-written fragments below. Everything in it
// is fictional: people are placeholder names (モブ山, ポチ田…), companies are made up (ダミー商事…),
// the "groups" targeted by discriminatory lines are imaginary peoples (ピコピコ星人…), and the insults
// are mild. No text is copied from any dataset.
//
// Label rules (consistent, so a small model can learn them from the words):
// - each category field says whether the text contains that kind of toxic expression;
// - `label` is `toxic` when the text itself says it, `has_toxic_expression` when it only quotes or
//   discusses such a phrase in a harmless frame (an anime villain's line, a reminder to report posts),
//   and `nontoxic` when no category is present (all seven fields `no`).
// The committed file assets/demo/toxicity-ja.jsonl is `demoDatasetJsonl(generateDemoDataset())`; a
// test checks they are identical. To regenerate it after editing the fragments:
//   node --import tsx -e 'import("./src/demo/data.ts").then((m) => m.writeDemoDataset())'
import { fileURLToPath } from "node:url";
import { createRng, type Rng } from "../data/random.js";
import { LLMJP_LABELS } from "../data/schema.js";
import { writeFileAtomic } from "../io/atomic.js";

/** The seven LLM-jp category fields, in the dataset's order. */
export type DemoCategory = (typeof LLMJP_LABELS)[number];
/** LLM-jp's overall label. */
export type DemoOverall = "toxic" | "nontoxic" | "has_toxic_expression";
type YesNo = "yes" | "no";

/** One row of the demo dataset (same fields, same order as LLM-jp Toxicity Dataset v2). */
export interface DemoRecord {
  id: string;
  text: string;
  label: DemoOverall;
  obscene: YesNo;
  discriminatory: YesNo;
  violent: YesNo;
  illegal: YesNo;
  personal: YesNo;
  corporate: YesNo;
  others: YesNo;
}

/** Seed of the committed demo file. */
export const DEMO_SEED = 20_241;
/** Rows in the committed demo file. */
export const DEMO_SIZE = 400;
/** Path of the committed demo file (works from src/ under tsx and from dist/ once built). */
export const DEMO_DATASET_PATH = fileURLToPath(
  new URL("../../assets/demo/toxicity-ja.jsonl", import.meta.url),
);

// ---------------------------------------------------------------------------------------------
// Fragments. `{p}` = a fictional person, `{y}` = "you"/"that guy", `{g}` = an imaginary group,
// `{c}` = a made-up company, `{a}` = a made-up anime title.

const PEOPLE = ["モブ山", "ポチ田", "テス崎", "カカシ野", "ダミ田", "名無野"];
const YOU = ["お前", "おまえ", "あんた", "こいつ", "あいつ"];
const GROUPS = ["ピコピコ星人", "モグラ族", "ゾルダ星の人", "キノコ村の連中", "ネコ耳族"];
const COMPANIES = ["ダミー商事", "架空電機", "モックフーズ", "サンプル銀行", "ホゲホゲ運輸"];
const ANIME = ["ほしぞら探偵団", "まほうのパン屋さん", "銀河ラーメン伝", "ねこねこ戦記", "ふわふわ学園"];

/** Toxic phrases per category; each one on its own is an example of that category. */
const TOXIC: Record<DemoCategory, string[]> = {
  obscene: [
    "えっちな自撮りを送ってよ",
    "今夜はエロい話しかしないぞ",
    "エロ動画のリンクを貼っとくね",
    "下着姿の写真を見せてくれたら教えてあげる",
    "裸の写真をこっそり送ってよ",
    "卑猥な言葉をいっぱい言わせたい",
    "下ネタしか言わないアカウントです",
  ],
  discriminatory: [
    "{g}はみんな生まれつき頭が悪い",
    "{g}なんかこの街から追い出せ",
    "{g}は全員うそつきだから信用するな",
    "{g}と同じ電車に乗りたくない",
    "{g}はみんな不潔で気持ち悪い",
    "{g}に仕事を任せるなんてありえない",
    "{g}は劣った種族だ",
  ],
  violent: [
    "{y}を殴ってやる",
    "次に会ったら{y}をぶっ飛ばすぞ",
    "{p}をボコボコにしてやる",
    "覚えてろよ{y}、痛い目にあわせてやる",
    "{p}なんか蹴り飛ばしてやる",
    "{y}の顔面にパンチをお見舞いしてやる",
    "{p}を階段から突き落としてやりたい",
  ],
  illegal: [
    "海賊版サイトで{a}の新作をタダで見よう",
    "違法ダウンロードのやり方を教えるよ",
    "割れたゲームのデータを配ってます",
    "万引きのコツを教えてあげる",
    "他人のアカウントを乗っ取る方法を知ってる",
    "偽ブランド品を本物として売りさばこう",
    "無免許でバイクを乗り回してきた",
  ],
  personal: [
    "{p}の電話番号は000-0000-0000だからさらしとく",
    "{p}の本名と住所をここに書いてやる",
    "{p}は本当にバカで役立たず",
    "{p}って顔も性格も最悪",
    "{y}みたいなポンコツは黙ってろ",
    "{y}ほんとにアホだな",
    "{p}はクズだからみんなで無視しよう",
  ],
  corporate: [
    "{c}はブラック企業だから絶対に入るな",
    "{c}の製品はゴミしかない",
    "{c}は客をだまして金をとる詐欺会社だ",
    "{c}の社員は全員無能",
    "{c}なんて早く潰れればいい",
    "{c}は裏で不正ばかりしている",
  ],
  others: [
    "今すぐ登録で10万円プレゼント！リンクはプロフから",
    "フォローしてくれた人全員に現金配布中",
    "この壺を買えば運気が上がる、今だけ半額",
    "副業で月100万円稼げる方法、DMください",
    "このURLを踏むだけでポイントが無限にもらえる",
    "拡散しないと不幸が訪れるチェーンメールです",
  ],
};

/**
 * Harmless frames around a quoted toxic phrase (`{q}`): the text is not toxic as a whole. Frames
 * about posts suit every category; frames about a character's line only threats and insults.
 */
const POST_FRAMES = [
  "「{q}」みたいな書き込みを見かけたら通報しよう",
  "「{q}」なんて言葉は使わないようにしようね",
  "「{q}」って投稿が流れてきたけど無視した",
  "授業で「{q}」のような書き込みが問題になると習った",
];
const SPOKEN_FRAMES = [
  "{a}の悪役の「{q}」ってセリフ、迫力があった",
  "ドラマで「{q}」と叫ぶシーンがあって驚いた",
  "小説の中で敵が「{q}」と言う場面が怖かった",
  "昨日の{a}で「{q}」って台詞が出てきてびっくりした",
];
const SPOKEN_CATEGORIES: readonly DemoCategory[] = ["discriminatory", "violent", "personal"];

/** Neutral sentences: subjects with the predicates that fit them, plus complete everyday lines. */
const NEUTRAL_PAIRS: [subjects: string[], predicates: string[]][] = [
  [
    [
      "{a}の最新話",
      "{a}の劇場版",
      "図書館で借りた本",
      "{p}さんの描いたイラスト",
      "{p}くんにすすめられた漫画",
    ],
    [
      "がとてもよかった",
      "は最高だった",
      "を友だちにすすめたい",
      "をもう一度見たい",
      "はちょっと難しかった",
      "が気になっている",
    ],
  ],
  [
    ["{a}のオープニング曲", "推しの新曲", "{a}のサントラ"],
    ["が頭から離れない", "を一日中聴いている", "のおかげで元気が出た", "が楽しみすぎる"],
  ],
  [
    ["駅前の新しいカフェ", "近所のパン屋さん", "{c}の社員食堂", "商店街のラーメン屋"],
    ["のランチがおいしかった", "に今度行ってみたい", "の店員さんがすごく親切だった", "が混んでいた"],
  ],
  [
    ["週末のピクニック", "{g}のお祭り", "{p}くんとのゲーム大会", "朝の散歩", "近所の公園の桜"],
    ["が楽しみすぎる", "で一日が楽しくなった", "は最高だった", "の写真をたくさん撮った"],
  ],
  [
    ["{c}の新しいアプリ", "{c}の窓口の対応", "{c}の新サービス"],
    ["が便利で助かっている", "がすごく丁寧だった", "を使ってみた", "が思ったよりわかりやすかった"],
  ],
];
const NEUTRAL_LINES = [
  "今日は雨だから家でゆっくり{a}を見る",
  "明日のテスト、みんなでがんばろう",
  "{p}さん、誕生日おめでとう",
  "{a}の聖地巡礼に行ってきました",
  "お昼はラーメンにしようかな",
  "{g}の言葉を少し勉強してみた",
  "猫が膝の上で寝ていて動けない",
  "{a}の二期が決まってうれしい",
  "今日は早く寝て明日に備える",
  "新しいマグカップでコーヒーを飲んだ",
  "{p}さんと一緒に{a}の感想を語り合った",
  "{c}に就職した先輩が楽しそうでよかった",
];

const PREFIXES = ["", "", "", "正直、", "マジで", "もう", "ねえ、", "聞いて、"];
const TOXIC_ENDINGS = ["", "。", "！", "ｗ", "！！"];
const NEUTRAL_ENDINGS = ["", "。", "！", "♪", "～"];

// Shares of the dataset (the rest is nontoxic), and how many toxic rows mix two categories.
const TOXIC_SHARE = 0.48;
const QUOTED_SHARE = 0.12;
const MIXED_SHARE = 0.2;

/** Replace the slots of a template with fictional names drawn from `rng`. */
function fill(template: string, rng: Rng): string {
  return template
    .replaceAll("{p}", () => rng.pick(PEOPLE))
    .replaceAll("{y}", () => rng.pick(YOU))
    .replaceAll("{g}", () => rng.pick(GROUPS))
    .replaceAll("{c}", () => rng.pick(COMPANIES))
    .replaceAll("{a}", () => rng.pick(ANIME));
}

function record(id: string, text: string, label: DemoOverall, categories: Set<DemoCategory>): DemoRecord {
  const yn = (c: DemoCategory): YesNo => (categories.has(c) ? "yes" : "no");
  // Field order follows the LLM-jp files: id, text, label, then the seven categories.
  return {
    id,
    text,
    label,
    obscene: yn("obscene"),
    discriminatory: yn("discriminatory"),
    violent: yn("violent"),
    illegal: yn("illegal"),
    personal: yn("personal"),
    corporate: yn("corporate"),
    others: yn("others"),
  };
}

/**
 * Generate the demo dataset: `size` rows (default {@link DEMO_SIZE}) with unique texts, about 48%
 * toxic (every category represented, a fifth of them mixing two categories), 12%
 * has_toxic_expression and 40% nontoxic, in a seeded random order with ids `demo-0001`….
 * Same seed → same rows.
 */
export function generateDemoDataset(seed: number = DEMO_SEED, size: number = DEMO_SIZE): DemoRecord[] {
  if (!Number.isInteger(size) || size < 1 || size > 2000)
    throw new Error(`size must be 1..2000, got ${size}`);
  const rng = createRng(seed);
  const seen = new Set<string>();
  const rows: { text: string; label: DemoOverall; categories: Set<DemoCategory> }[] = [];

  // Draw until the text is new; the fragment space (tens of thousands of texts) makes this quick.
  const unique = (make: () => string): string => {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const text = make();
      if (!seen.has(text)) {
        seen.add(text);
        return text;
      }
    }
    throw new Error("demo generator ran out of distinct sentences; add fragments or lower the size");
  };
  const phrase = (c: DemoCategory): string => fill(rng.pick(TOXIC[c]), rng);

  const nToxic = Math.round(size * TOXIC_SHARE);
  const nQuoted = Math.round(size * QUOTED_SHARE);
  const nMixed = Math.round(nToxic * MIXED_SHARE);

  // Toxic rows: categories taken in turn so each gets its share; some rows join two categories.
  for (let i = 0; i < nToxic; i++) {
    const first = LLMJP_LABELS[i % LLMJP_LABELS.length] as DemoCategory;
    const categories = new Set<DemoCategory>([first]);
    if (i < nMixed) {
      const others = LLMJP_LABELS.filter((c) => c !== first);
      categories.add(rng.pick(others));
    }
    const text = unique(() => {
      const parts = [...categories].map(phrase);
      return rng.pick(PREFIXES) + parts.join("。") + rng.pick(TOXIC_ENDINGS);
    });
    rows.push({ text, label: "toxic", categories });
  }

  // Quoted rows: a toxic phrase inside a harmless frame.
  for (let i = 0; i < nQuoted; i++) {
    const category = LLMJP_LABELS[i % LLMJP_LABELS.length] as DemoCategory;
    const frames = SPOKEN_CATEGORIES.includes(category) ? [...POST_FRAMES, ...SPOKEN_FRAMES] : POST_FRAMES;
    const text = unique(
      () => fill(rng.pick(frames).replace("{q}", phrase(category)), rng) + rng.pick(["", "。"]),
    );
    rows.push({ text, label: "has_toxic_expression", categories: new Set([category]) });
  }

  // Neutral rows, some mentioning the same people, companies and groups in a friendly way.
  for (let i = rows.length; i < size; i++) {
    const text = unique(() => {
      let body: string;
      if (rng.next() < 0.7) {
        const [subjects, predicates] = rng.pick(NEUTRAL_PAIRS);
        body = fill(rng.pick(subjects) + rng.pick(predicates), rng);
      } else {
        body = fill(rng.pick(NEUTRAL_LINES), rng);
      }
      return rng.pick(PREFIXES) + body + rng.pick(NEUTRAL_ENDINGS);
    });
    rows.push({ text, label: "nontoxic", categories: new Set() });
  }

  rng.shuffle(rows);
  return rows.map((r, i) => record(`demo-${String(i + 1).padStart(4, "0")}`, r.text, r.label, r.categories));
}

/** JSON lines of the records, one per line, ending with a newline (the committed file's format). */
export function demoDatasetJsonl(records: readonly DemoRecord[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join("");
}

/**
 * Write the demo dataset as JSONL (atomically).
 * @param path - destination (default: the committed {@link DEMO_DATASET_PATH})
 */
export async function writeDemoDataset(
  path: string = DEMO_DATASET_PATH,
  seed: number = DEMO_SEED,
): Promise<string> {
  await writeFileAtomic(path, demoDatasetJsonl(generateDemoDataset(seed)));
  return path;
}
