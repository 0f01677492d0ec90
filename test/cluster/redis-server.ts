// A real redis-server for tests: on a free loopback port, no persistence, in a temporary folder,
// started and stopped by the test itself (never a system service).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { connect, createServer } from "node:net";

export interface TestRedis {
  port: number;
  /** redis://[:password@]127.0.0.1:port */
  url: string;
  /** Stop it (SIGKILL: as abrupt as a crash). */
  kill(): Promise<void>;
  /** Start it again on the same port (empty: there is no persistence). */
  restart(): Promise<void>;
}

const INSTALL_HINT = "redis-server is not installed (Debian: apt-get install -y redis-server)";

export function redisServerPath(): string {
  const r = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  const path = r.stdout.trim();
  if (r.status !== 0 || path === "") throw new Error(INSTALL_HINT);
  return path;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

async function launch(bin: string, port: number, dir: string, password?: string): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  args.push("--dir", dir, "--daemonize", "no", "--loglevel", "warning");
  if (password !== undefined) args.push("--requirepass", password);
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  // Ready once it accepts a TCP connection.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
    const ok = await new Promise<boolean>((done) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        done(true);
      });
      s.once("error", () => done(false));
    });
    if (ok) return child;
    if (Date.now() > deadline) throw new Error(`redis-server did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts redis-server on a free port; `password` enables requirepass. */
export async function startRedis(dir: string, password?: string): Promise<TestRedis> {
  const bin = redisServerPath();
  const port = await freePort();
  let child = await launch(bin, port, dir, password);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  };
  return {
    port,
    url: `redis://${password !== undefined ? `:${password}@` : ""}127.0.0.1:${port}`,
    kill,
    async restart() {
      await kill();
      child = await launch(bin, port, dir, password);
    },
  };
}
