// The npm package as a user gets it: npm prints no warning about this project's configuration, and
// `npm pack` (which builds dist/) gives a tarball that installs without its dev dependencies and runs
// `toxlora --help` and `toxlora demo` from another directory. Nothing is downloaded: the install is
// `npm ci --offline` from npm's cache, pinned to the versions of this repository's package-lock.json.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
// The `node` that runs the tests runs npm and the installed bin too.
const ENV = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };

const dir = mkdtempSync(join(tmpdir(), "toxlora-pack-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, timeout = 240_000) {
  const r = spawnSync(cmd, args, { cwd, env: ENV, encoding: "utf8", timeout });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} (in ${cwd}) failed:\n${r.stderr}\n${r.stdout}`);
  return r;
}

test("npm prints no warning about this project's configuration; onnxruntime-node's download script is denied", () => {
  const r = run(NPM, ["pkg", "get", "allowScripts", "--json"], ROOT, 60_000);
  assert.equal(r.stderr.replace(/^\s+|\s+$/g, ""), "", "npm warned");
  assert.equal(JSON.parse(r.stdout)["onnxruntime-node"], false);
});

interface LockEntry {
  dev?: boolean;
  [key: string]: unknown;
}

/**
 * A project in `prefix` that depends on the tarball alone, locked to the runtime packages of the
 * repository's package-lock.json (dev-only entries left out), so `npm ci --offline` installs exactly
 * what the repository tests, from the cache `npm ci` filled, without asking the registry.
 */
function writeConsumer(prefix: string, tarball: string): void {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const self = lock.packages[""] as LockEntry;
  const deps = { toxlora: `file:${tarball}` };
  const packages: Record<string, unknown> = {
    "": { name: "consumer", version: "1.0.0", dependencies: deps },
    "node_modules/toxlora": {
      version: self.version,
      resolved: `file:${tarball}`,
      license: self.license,
      dependencies: self.dependencies,
      bin: self.bin,
      engines: self.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages))
    if (path !== "" && !entry.dev) packages[path] = entry;
  const pkg = { name: "consumer", version: "1.0.0", private: true, dependencies: deps };
  writeFileSync(join(prefix, "package.json"), JSON.stringify(pkg, null, 2));
  const consumerLock = { name: "consumer", version: "1.0.0", lockfileVersion: 3, requires: true, packages };
  writeFileSync(join(prefix, "package-lock.json"), JSON.stringify(consumerLock, null, 2));
}

test("npm pack → install the tarball without dev dependencies → toxlora --help and toxlora demo elsewhere", () => {
  const packed = run(NPM, ["pack", "--pack-destination", dir, "--json"], ROOT);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  assert.ok(info);
  const files = info.files.map((f) => f.path);
  for (const f of ["dist/cli/main.js", "dist/index.js", "dist/index.d.ts", "assets/demo/toxicity-ja.jsonl"])
    assert.ok(files.includes(f), `the tarball lacks ${f}`);
  assert.deepEqual(
    files.filter((f) => /^(src|test|bench)\//.test(f)),
    [],
    "sources and tests are not shipped",
  );

  const prefix = join(dir, "prefix");
  mkdirSync(prefix);
  writeConsumer(prefix, join(dir, info.filename));
  run(NPM, ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], prefix);
  for (const dev of ["tsx", "typescript", "playwright-core", "@biomejs/biome", "@types/node"])
    assert.ok(!existsSync(join(prefix, "node_modules", dev)), `dev dependency ${dev} was installed`);

  const bin = join(prefix, "node_modules", ".bin", "toxlora");
  const elsewhere = join(dir, "elsewhere");
  mkdirSync(elsewhere);
  const help = run(bin, ["--help"], elsewhere, 60_000);
  assert.match(help.stdout, /Usage: toxlora/);
  assert.match(help.stdout, /\bdemo\b/);

  const out = join(elsewhere, "demo-out");
  const demo = run(bin, ["demo", "--out", out, "--epochs", "1", "--quiet"], elsewhere);
  assert.equal(demo.status, 0);
  for (const f of [
    "run/adapter/adapter_model.safetensors",
    "predictions.jsonl",
    "export/model.onnx",
    "run/report.html",
  ])
    assert.ok(existsSync(join(out, f)), `demo did not write ${f}`);
});
