// Ctrl-C for long commands: the first press asks the job to stop at its next safe point (through
// an AbortSignal, so outputs stay valid and resumable); a second press quits at once.

/** Runs `job` with a signal that the first SIGINT aborts after printing `message`. */
export async function withInterrupt<T>(
  message: string,
  job: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`\n${message} (Ctrl-C again to quit at once)\n`);
    ac.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    return await job(ac.signal);
  } finally {
    process.off("SIGINT", onSigint);
  }
}
