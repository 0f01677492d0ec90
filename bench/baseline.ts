// `npm run bench:baseline`: the tfidf-lr baseline against scikit-learn on the same data, in one run.
//
// Data: an LLM-jp-sized set (BENCH_ROWS, default 3,847 documents of ~BENCH_CHARS = 2,500 characters,
// LLM-jp v1's average), made from the demo generator's sentences: each document is one labelled
// sentence (its seven category labels are the document's) inside non-toxic filler sentences, so the
// signal is a small part of a long text as in web documents. 70 % train / 30 % test.
//
// Each side runs in its own process, alternately, BENCH_ROUNDS times (default 3; medians reported):
// - toxlora: fitTfidfLr (TF-IDF 1–3-grams, min_df 2, sublinear; L-BFGS logistic regression C=4,
//   balanced, per label) and TfidfLrModel.probs on the test texts; single-threaded JavaScript;
// - scikit-learn (bench/baseline_sklearn.py, when /usr/bin/python3 or python3 imports sklearn): the
//   same estimators, with OMP/OpenBLAS limited to 1 thread so both use one core.
// Speed-ups are scikit-learn's time / toxlora's, from CPU seconds (user + system; one thread on
// each side, so they are what an idle machine's wall clock would show) and from wall seconds.
// Also: mean |Δp| between the two sides' test probabilities. Results: one JSON line on stdout and
// bench/results/baseline.json. BENCH_KEEP=1 keeps the generated data (its folder is printed).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_TFIDF_LR, fitTfidfLr } from "../src/baseline/model.js";
import { createRng } from "../src/data/random.js";
import { LLMJP_LABELS } from "../src/data/schema.js";
import { type DemoRecord, generateDemoDataset } from "../src/demo/data.js";
import { writeJsonAtomic } from "../src/io/atomic.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 3847);
const CHARS = Number(process.env.BENCH_CHARS ?? 2500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HERE = fileURLToPath(new URL(".", import.meta.url));
const LABELS = [...LLMJP_LABELS];

interface Side {
  fitSeconds: number;
  fitCpuSeconds: number;
  predictSeconds: number;
  predictCpuSeconds: number;
  terms: number;
  nnz: number;
  iterations: number[];
  peakRssMB: number;
}

/** LLM-jp-sized documents: one labelled sentence in non-toxic filler (see the header). */
function makeData(dir: string): void {
  const pool = Array.from({ length: 10 }, (_, k) => generateDemoDataset(7 + k, 2000)).flat();
  const filler = pool.filter((r) => r.label === "nontoxic").map((r) => r.text);
  const rng = createRng(11);
  const docs = Array.from({ length: ROWS }, (_, i): DemoRecord => {
    const key = pool[Math.floor(rng.next() * pool.length)];
    const parts = [key.text];
    let len = key.text.length;
    while (len < CHARS) {
      const t = filler[Math.floor(rng.next() * filler.length)];
      parts.push(t);
      len += t.length + 1;
    }
    const at = Math.floor(rng.next() * parts.length);
    [parts[0], parts[at]] = [parts[at], parts[0]];
    return { ...key, id: `doc-${i}`, text: parts.join("\n") };
  });
  const cut = Math.round(ROWS * 0.7);
  const jsonl = (rows: DemoRecord[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join("");
  writeFileSync(join(dir, "train.jsonl"), jsonl(docs.slice(0, cut)));
  writeFileSync(join(dir, "test.jsonl"), jsonl(docs.slice(cut)));
  writeFileSync(join(dir, "labels.json"), JSON.stringify(LABELS));
}

function readRows(file: string) {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, string>);
}

/** The toxlora side (run in a child process: BENCH_CHILD=toxlora). */
function toxloraSide(dir: string): void {
  const train = readRows(join(dir, "train.jsonl"));
  const test = readRows(join(dir, "test.jsonl"));
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const t0 = performance.now();
  const c0 = cpu();
  const { model, fits, nnz } = fitTfidfLr(
    train.map((r) => r.text),
    train.map((r) => LABELS.map((l) => (r[l] === "yes" ? 1 : 0))),
    LABELS,
    DEFAULT_TFIDF_LR,
  );
  const fitSeconds = (performance.now() - t0) / 1000;
  const fitCpuSeconds = cpu() - c0;
  const t1 = performance.now();
  const c1 = cpu();
  const probs = model.probs(test.map((r) => r.text));
  const predictSeconds = (performance.now() - t1) / 1000;
  const predictCpuSeconds = cpu() - c1;
  writeFileSync(join(dir, "toxlora-probs.json"), JSON.stringify(probs));
  const side: Side & { converged: boolean[] } = {
    fitSeconds,
    fitCpuSeconds,
    predictSeconds,
    predictCpuSeconds,
    terms: model.vectorizer.model.vocabulary.length,
    nnz,
    iterations: fits.map((f) => f.iterations),
    converged: fits.map((f) => f.converged),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(side)}\n`);
}

function python(): string | null {
  for (const py of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(py, ["-c", "import sklearn"], { encoding: "utf8" });
    if (r.status === 0) return py;
  }
  return null;
}

function runSide(cmd: string, args: string[], env: NodeJS.ProcessEnv): Side {
  const out = execFileSync(cmd, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 1 << 26,
  });
  return JSON.parse(out.trim().split("\n").pop() as string) as Side;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-baseline-"));
  try {
    makeData(dir);
    const py = python();
    const ours: Side[] = [];
    const theirs: Side[] = [];
    const oneThread = {
      OMP_NUM_THREADS: "1",
      OPENBLAS_NUM_THREADS: "1",
      OPENBLAS_CORETYPE: "SapphireRapids",
    };
    for (let r = 0; r < ROUNDS; r++) {
      ours.push(
        runSide(process.execPath, ["--import", "tsx", join(HERE, "baseline.ts"), dir], {
          BENCH_CHILD: "toxlora",
        }),
      );
      if (py) theirs.push(runSide(py, [join(HERE, "baseline_sklearn.py"), dir], oneThread));
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }
    const summary = (s: Side[]) => ({
      fitCpuSeconds: median(s.map((x) => x.fitCpuSeconds)),
      predictCpuSeconds: median(s.map((x) => x.predictCpuSeconds)),
      fitSeconds: median(s.map((x) => x.fitSeconds)),
      predictSeconds: median(s.map((x) => x.predictSeconds)),
      fitCpuSecondsAll: s.map((x) => x.fitCpuSeconds),
      fitSecondsAll: s.map((x) => x.fitSeconds),
      terms: s[0].terms,
      nnz: s[0].nnz,
      iterations: s[0].iterations,
      peakRssMB: Math.max(...s.map((x) => x.peakRssMB)),
    });
    const a = summary(ours);
    let comparison: Record<string, unknown> | null = null;
    if (py) {
      const b = summary(theirs);
      const pa = JSON.parse(readFileSync(join(dir, "toxlora-probs.json"), "utf8")) as number[][];
      const pb = JSON.parse(readFileSync(join(dir, "sklearn-probs.json"), "utf8")) as number[][];
      let sum = 0;
      let max = 0;
      pa.forEach((row, i) => {
        row.forEach((p, j) => {
          const d = Math.abs(p - pb[i][j]);
          sum += d;
          max = Math.max(max, d);
        });
      });
      comparison = {
        sklearn: { ...b, version: (theirs[0] as Side & { sklearn?: string }).sklearn },
        // CPU seconds: the machine is shared, so wall times carry other processes' load.
        fitSpeedup: b.fitCpuSeconds / a.fitCpuSeconds,
        predictSpeedup: b.predictCpuSeconds / a.predictCpuSeconds,
        fitSpeedupWall: b.fitSeconds / a.fitSeconds,
        predictSpeedupWall: b.predictSeconds / a.predictSeconds,
        meanAbsProbDiff: sum / (pa.length * LABELS.length),
        maxAbsProbDiff: max,
      };
    }
    const result = {
      bench: "baseline",
      rows: ROWS,
      trainRows: Math.round(ROWS * 0.7),
      testRows: ROWS - Math.round(ROWS * 0.7),
      charsPerDoc: CHARS,
      labels: LABELS.length,
      rounds: ROUNDS,
      toxlora: a,
      ...(comparison ?? { sklearn: null, note: "no python3 with scikit-learn: toxlora alone" }),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await writeJsonAtomic(join(HERE, "results", "baseline.json"), result);
  } finally {
    if (process.env.BENCH_KEEP) process.stderr.write(`data kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.BENCH_CHILD === "toxlora") toxloraSide(process.argv[2] as string);
else await main();
