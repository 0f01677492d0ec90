// The label database: one SQLite file (WAL mode) holding the pool of posts, the model's scores,
// the serving order, the open assignments and every answer. Its tables are made and upgraded by the
// numbered migrations below; `PRAGMA user_version` records how many have run, so an older file is
// brought up to date on open and a file from a newer toxlora is refused rather than misread.
import Database from "better-sqlite3";

export type Db = Database.Database;

/**
 * Schema migrations, in order. Never edit one that has shipped: add the next. Each runs in its own
 * transaction together with the user_version bump, so a crash leaves the file at a whole version.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the pool, scores, order, assignments and answers.
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE posts (
     id INTEGER PRIMARY KEY,
     ext_id TEXT NOT NULL UNIQUE,      -- the pool's id (or line number)
     text TEXT NOT NULL,
     source TEXT NOT NULL,             -- file:line it was imported from
     answers INTEGER NOT NULL DEFAULT 0 -- non-skipped answers, kept in step by each answer
   );
   CREATE TABLE scores (
     run TEXT NOT NULL,                -- which classifier (a hash of its identity)
     post INTEGER NOT NULL REFERENCES posts(id),
     probs TEXT NOT NULL,              -- JSON list, one probability per label of the run
     margin REAL NOT NULL,             -- min over labels of |p - threshold|: small = unsure
     PRIMARY KEY (run, post)
   ) WITHOUT ROWID;
   CREATE TABLE plan (
     rank INTEGER PRIMARY KEY,         -- serving order
     post INTEGER NOT NULL UNIQUE REFERENCES posts(id),
     pick TEXT NOT NULL                -- 'uncertain' | 'random'
   );
   CREATE TABLE leases (
     post INTEGER NOT NULL REFERENCES posts(id),
     annotator TEXT NOT NULL,
     served_at INTEGER NOT NULL,       -- ms since the epoch
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (post, annotator)
   ) WITHOUT ROWID;
   CREATE TABLE answers (
     seq INTEGER PRIMARY KEY,          -- order of first answering
     post INTEGER NOT NULL REFERENCES posts(id),
     annotator TEXT NOT NULL,
     labels TEXT,                      -- JSON {label: 0|1}; NULL when skipped
     overall TEXT,
     note TEXT,
     skipped INTEGER NOT NULL,
     served_at INTEGER NOT NULL,
     answered_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     UNIQUE (post, annotator)
   );
   CREATE INDEX answers_by_annotator ON answers (annotator, seq);`,
];

/** Opens (creating if needed) a label database and brings its tables up to date. */
export function openDb(file: string): Db {
  let db: Db;
  try {
    db = new Database(file);
  } catch (err) {
    // An install with --ignore-scripts leaves the native module unbuilt; say how to build it.
    if (/bindings file|better_sqlite3\.node/.test((err as Error).message)) {
      throw new Error(
        `the SQLite module (better-sqlite3) is not built: run \`npm rebuild better-sqlite3\` (${(err as Error).message.split("\n")[0]})`,
      );
    }
    throw err;
  }
  try {
    // WAL: readers never block the writer, and a commit is one append (durable with synchronous=FULL).
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    migrate(db, file);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Runs the migrations `db` has not had yet. */
export function migrate(db: Db, file = "label database"): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(
      `${file}: schema version ${version} is newer than this toxlora knows (${MIGRATIONS.length}); upgrade toxlora`,
    );
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

export function getMeta(db: Db, key: string): string | undefined {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMeta(db: Db, key: string, value: string): void {
  db.prepare(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  ).run(key, value);
}
