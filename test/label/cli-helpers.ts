// Starts `toxlora label serve` as a child process (the real CLI) and reads the URL it prints.
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

export interface LabelServerProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<void>;
}

const MAIN = resolve("src/cli/main.ts");

export function startLabelServe(args: string[]): Promise<LabelServerProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", MAIN, "label", "serve", "--port", "0", "--quiet", ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let err = "";
  let out = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  return new Promise((res, rej) => {
    child.stdout?.on("data", (d) => {
      out += d;
      const m = /^(http:\/\/\S+)\n/m.exec(out);
      if (m)
        res({
          url: m[1] as string,
          child,
          stderr: () => err,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            await exited;
          },
        });
    });
    child.once("exit", (code) => rej(new Error(`label serve exited (${code}) before listening:\n${err}`)));
  });
}

export async function getJson(
  url: string,
): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const r = await fetch(url);
  return { status: r.status, body: r.status === 204 ? null : ((await r.json()) as Record<string, unknown>) };
}

export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}
