// Where the tests find their fixtures: test/fixtures/ in this repository (see its README for
// provenance and licences). Tests never read anything outside the clone.
import { fileURLToPath } from "node:url";

/** Absolute path of `rel` inside test/fixtures/. */
export function fixture(rel: string): string {
  return fileURLToPath(new URL(`./fixtures/${rel}`, import.meta.url));
}
