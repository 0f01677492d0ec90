// `toxlora label serve | export | stats`: label your own posts, the ones the model is least sure
// about first, and turn the answers into a training file (src/label/).
import { basename, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { LabelSchema } from "../data/schema.js";
import { schemaFromOptions } from "../data/schema.js";
import { setMeta } from "../label/db.js";
import { exportLabels, type TieRule } from "../label/export.js";
import { planOrder } from "../label/plan.js";
import { planCandidates, runKey, scorePool } from "../label/score.js";
import { createLabelServer } from "../label/server.js";
import { formatStats, labelStats } from "../label/stats.js";
import { LabelStore } from "../label/store.js";
import { loadClassifier, readRunConfig } from "../predict/classifier.js";
import { schemaForConfig } from "../run/data.js";
import { addDatasetOptions, type DatasetFlags, integer, positiveInt } from "./analyze.js";
import { withInterrupt } from "./interrupt.js";

interface ServeFlags extends DatasetFlags {
  db: string;
  pool: string[];
  run?: string;
  overlap: number;
  random: number;
  seed: number;
  port: number;
  host: string;
  token?: string;
  allowedHost: string[];
  leaseMinutes: number;
  threads?: number;
  quiet?: boolean;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

function share(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n >= 0 && n <= 1))
    throw new InvalidArgumentError("expected a number in [0, 1]");
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port 0–65535");
  return n;
}

/** Whether any label-schema flag was given (else the database's, or the run's, schema is used). */
function schemaGiven(f: DatasetFlags): boolean {
  return [
    f.preset,
    f.labels,
    f.textField,
    f.idField,
    f.positive,
    f.negative,
    f.labelsField,
    f.overallField,
    f.minVotes,
  ].some((v) => v !== undefined);
}

async function serve(f: ServeFlags): Promise<void> {
  if (!LOOPBACK.has(f.host) && !f.token) {
    throw new Error(
      `--host ${f.host} lets other machines in: give --token <secret> (or TOXLORA_LABEL_TOKEN)`,
    );
  }
  const log = (line: string) => process.stderr.write(`label: ${line}\n`);
  let schema: LabelSchema | undefined = schemaGiven(f) ? schemaFromOptions(f) : undefined;
  const run = f.run ? await readRunConfig(f.run) : undefined;
  // A new database with a run and no schema flags collects the labels the run was trained on.
  const fallback = run ? schemaForConfig(run.train as Parameters<typeof schemaForConfig>[0]) : undefined;
  const store = LabelStore.open(
    f.db,
    schema,
    { overlap: f.overlap, leaseMs: f.leaseMinutes * 60_000 },
    fallback,
  );
  schema = store.schema;
  setMeta(store.db, "overlap", String(f.overlap));
  for (const pool of f.pool) {
    const idField = schema.idField === "id" ? undefined : schema.idField;
    const r = await store.importPool(pool, { textField: schema.textField, idField });
    log(`${pool}: ${r.added} posts added, ${r.existing} already in ${f.db}`);
  }
  if (store.postCount() === 0) throw new Error(`${f.db} has no posts yet: give --pool <file>`);

  let key: string | undefined;
  if (f.run) {
    const clf = await loadClassifier(f.run, { threads: f.threads, onNotice: (l) => log(`note: ${l}`) });
    try {
      key = await runKey(clf, f.run);
      const r = await withInterrupt("stopping after this block; start again to continue scoring", (signal) =>
        scorePool(store, clf, key as string, {
          signal,
          onProgress: (done, total) => {
            if (!f.quiet) process.stderr.write(`\rlabel: scoring the pool with the run: ${done}/${total}`);
          },
        }),
      );
      if (r.scored > 0 && !f.quiet) process.stderr.write("\n");
      if (r.scored + r.kept < store.postCount()) {
        store.close();
        process.exitCode = 130;
        return;
      }
      log(`${r.scored} posts scored now, ${r.kept} scored before (run ${key})`);
    } finally {
      await clf.close();
    }
    store.runKey = key;
  }
  const planKey = JSON.stringify({
    run: key ?? null,
    random: f.random,
    seed: f.seed,
    posts: store.postCount(),
  });
  if (store.planKey() !== planKey) {
    store.setPlan(planOrder(planCandidates(store, key), { random: f.random, seed: f.seed }), planKey);
    log(
      key
        ? `order: most uncertain first, ${Math.round(f.random * 100)}% at random`
        : "order: random (no --run)",
    );
  }
  const server = await createLabelServer(store, {
    port: f.port,
    host: f.host,
    token: f.token,
    allowedHosts: f.allowedHost,
    title: f.run ? basename(resolve(f.run)) : basename(f.db),
    log: f.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  const p = store.progress();
  log(
    `${p.posts} posts, ${p.answered} answered, labels ${store.labels.join(", ")}; overlap ${f.overlap}; ` +
      `open ${server.url}/${f.token ? "?token=<token>" : ""}`,
  );
  process.stdout.write(`${server.url}\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) process.exit(130);
    stopping = true;
    log("stopping");
    await server.close();
    store.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

export function register(program: Command): void {
  const label = program
    .command("label")
    .description("label your own posts, the ones the model is least sure about first (an annotation page)");

  addDatasetOptions(
    label
      .command("serve")
      .description("serve the annotation page and its API (GET /api/next, POST /api/answer, GET /api/stats)")
      .requiredOption("--db <file>", "SQLite database of the labelling (created if missing)")
      .option(
        "--pool <file>",
        "posts to label (.jsonl/.csv/.tsv/.txt; imported once, repeatable; ids from the id field, else line numbers)",
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .option(
        "--run <dir>",
        "order posts by this run's uncertainty (most uncertain first); without it: random",
      )
      .option("--overlap <n>", "annotators per post", positiveInt, 1)
      .option(
        "--random <share>",
        "with --run: share of posts drawn at random (for unbiased estimates)",
        share,
        0.2,
      )
      .option("--seed <n>", "seed of the random order and draws", integer, 42)
      .option("--port <n>", "TCP port (0: any free port)", port, 8090)
      .option("--host <addr>", "address to listen on; anything but loopback needs --token", "127.0.0.1")
      .addOption(
        new Option("--token <secret>", "shared secret the annotators open the page with (/?token=…)").env(
          "TOXLORA_LABEL_TOKEN",
        ),
      )
      .option(
        "--allowed-host <name>",
        "also accept this Host header (repeatable)",
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .option(
        "--lease-minutes <n>",
        "how long a served post stays reserved for its annotator",
        positiveInt,
        15,
      )
      .option("--threads <n>", "CPU threads for scoring the pool", positiveInt)
      .option("--quiet", "do not log requests"),
  )
    .addHelpText(
      "after",
      "\nExample:\n  toxlora label serve --db labels.sqlite --pool posts.jsonl --run outputs/bert/2026-01-01/12-00-00 --overlap 2\n" +
        "  toxlora label export --db labels.sqlite --out labelled.jsonl\n",
    )
    .action((f: ServeFlags) => serve(f));

  label
    .command("export")
    .description("write the labelled posts as a training file (majority vote per category; vote counts kept)")
    .requiredOption("--db <file>", "label database")
    .requiredOption("--out <file>", "JSON lines in the database's label schema, for `toxlora train --data`")
    .option("--min-votes <n>", "leave out posts with fewer (non-skipped) answers", positiveInt, 1)
    .addOption(
      new Option("--ties <rule>", "a category with as many yes as no answers counts as")
        .choices(["positive", "negative"])
        .default("positive"),
    )
    .action(async (f: { db: string; out: string; minVotes: number; ties: TieRule }) => {
      const store = LabelStore.open(f.db, undefined);
      try {
        const r = await exportLabels(store, f.out, { minVotes: f.minVotes, ties: f.ties });
        process.stderr.write(
          `label export: ${r.rows.length} posts to ${f.out}` +
            `${r.tooFewVotes ? ` (${r.tooFewVotes} with fewer than ${f.minVotes} answers left out)` : ""}` +
            `${r.ties ? `; ${r.ties} tied category decisions counted as ${f.ties}` : ""}\n` +
            `train on it: toxlora train --data ${f.out} ${schemaFlags(store.schema)}\n`,
        );
      } finally {
        store.close();
      }
    });

  label
    .command("stats")
    .description("per-annotator counts and time per post, Krippendorff's alpha and the yes rate per category")
    .requiredOption("--db <file>", "label database")
    .option("--json", "print the stats as JSON")
    .action((f: { db: string; json?: boolean }) => {
      const store = LabelStore.open(f.db, undefined);
      try {
        const s = labelStats(store);
        process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : formatStats(s));
      } finally {
        store.close();
      }
    });
}

/** The schema flags that read an export back (`--preset x` or `--labels a,b`). */
function schemaFlags(schema: LabelSchema): string {
  const labels = schema.labels.map((l) => l.name).join(",");
  return schema.name === "custom" ? `--labels ${labels}` : `--preset ${schema.name} --labels ${labels}`;
}
