// .ci/run must run exactly the README's set-up and test commands (in both languages), so what CI
// proves is what a new user following the README gets.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const root = new URL("../", import.meta.url);

/** The commands of a shell script: lines that are not blank, comments, `set` or `cd`. */
function ciCommands(): string[] {
  return readFileSync(new URL(".ci/run", root), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !/^(set|cd)\s/.test(l));
}

/** The commands of the README's `sh` code blocks, without their trailing comments. */
function readmeCommands(file: string): Set<string> {
  const text = readFileSync(new URL(file, root), "utf8");
  const commands = new Set<string>();
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of (block[1] ?? "").split("\n")) {
      const command = line.replace(/\s+#.*$/, "").trim();
      if (command !== "") commands.add(command);
    }
  }
  return commands;
}

for (const readme of ["README.md", "README.ja.md"]) {
  test(`.ci/run runs only commands written in ${readme}`, () => {
    const commands = ciCommands();
    assert.ok(commands.length > 0, ".ci/run runs no command");
    const documented = readmeCommands(readme);
    for (const c of commands)
      assert.ok(documented.has(c), `.ci/run runs \`${c}\`, which ${readme} does not show`);
    assert.ok(
      commands.some((c) => c.includes("npm test")),
      ".ci/run must run the tests",
    );
    assert.ok(
      commands.some((c) => c.includes("npm run test:setup")),
      ".ci/run must run the test set-up",
    );
  });
}

test("no source, test or benchmark reads ../shared (a fresh clone stands on its own)", () => {
  const offenders: string[] = [];
  for (const dir of ["src", "test", "bench"]) {
    for (const file of readdirSync(new URL(dir, root), { recursive: true, encoding: "utf8" })) {
      if (!/\.(ts|js|mjs|json)$/.test(file) || file.startsWith("fixtures") || file === "ci.test.ts") continue;
      const text = readFileSync(new URL(`${dir}/${file}`, root), "utf8");
      if (/\.\.\/shared\b/.test(text)) offenders.push(`${dir}/${file}`);
    }
  }
  assert.deepEqual(offenders, [], "these files refer to ../shared; copy the fixture into test/fixtures/");
});
