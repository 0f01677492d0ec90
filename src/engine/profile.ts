// Reads the memory figures of an onnxruntime profile (SessionOptions.profilePrefix): for each run
// of the session, the peak of bytes in use in its CPU memory arena and what the arena held.
import { readFileSync } from "node:fs";

export interface RunMemory {
  /** Largest `mem_bytes_in_use` over the run's node events: the arena's live bytes. */
  peakInUse: number;
  /** Bytes in use when the run's first node ran: what lives across runs (weights, pre-packed copies). */
  startInUse: number;
  /** Largest `mem_arena_held`: the bytes the arena had taken from the system by then. */
  arenaHeld: number;
  /** Node runs in the run. */
  nodes: number;
}

interface ProfileEvent {
  cat: string;
  name: string;
  args?: { node_index?: string; mem_bytes_in_use?: string; mem_arena_held?: string };
}

/** One entry per `session.run`, in order; a run is a sequence of node events starting again at the first node. */
export function readMemoryProfile(file: string): RunMemory[] {
  const events = (JSON.parse(readFileSync(file, "utf8")) as ProfileEvent[]).filter(
    (e) => e.cat === "Node" && e.name.endsWith("_kernel_time"),
  );
  if (events.length === 0) throw new Error(`${file}: no node events (was the profile written by a run?)`);
  if (events[0].args?.mem_bytes_in_use === undefined) {
    throw new Error(
      `${file}: node events carry no memory figures (this onnxruntime build does not record them)`,
    );
  }
  const runs: RunMemory[] = [];
  const first = events[0].name;
  for (const e of events) {
    const inUse = Number(e.args?.mem_bytes_in_use ?? 0);
    if (e.name === first || runs.length === 0) {
      runs.push({ peakInUse: 0, startInUse: inUse, arenaHeld: 0, nodes: 0 });
    }
    const r = runs[runs.length - 1];
    r.peakInUse = Math.max(r.peakInUse, inUse);
    r.arenaHeld = Math.max(r.arenaHeld, Number(e.args?.mem_arena_held ?? 0));
    r.nodes++;
  }
  return runs;
}
