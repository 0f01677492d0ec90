// Debian's chromium, driven by playwright-core, for the browser tests of the report and of `toxlora
// serve`: one place for its path, the flags that keep it headless and off the network, and the
// message that says how to install it (without chromium these tests fail rather than skip).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export type LaunchOptions = Omit<
  NonNullable<Parameters<typeof chromium.launchPersistentContext>[1]>,
  "executablePath" | "args"
>;

/**
 * Starts chromium with a fresh profile in `profileDir` (put it in the test's temporary folder so it
 * is deleted with it) and returns the browser context and its first page. Close the context after.
 */
export async function launchChromium(
  profileDir: string,
  options: LaunchOptions,
): Promise<{ context: BrowserContext; page: Page }> {
  assert.ok(
    existsSync(CHROMIUM),
    `chromium is not installed at ${CHROMIUM}: run \`npm run test:setup\` (installs it with apt-get)`,
  );
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    args: ARGS,
    ...options,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}
