// A real run directory made by the trainer in a second or two: a tiny random BERT-shaped model with a
// character tokenizer (test/train/helpers.ts), trained 2 epochs on the bundled demo data with
// per-epoch re-sampling, so every file of RUN_FILES is the trainer's own output.
import { join } from "node:path";
import { train } from "../../src/train/trainer.js";
import { DEMO_DATA, demoTexts, tinyModel } from "../train/helpers.js";

export const TRAINED_LABELS = ["obscene", "discriminatory", "corporate"];

/** Trains into `<dir>/run` (model in `<dir>/model`) and returns the run directory. */
export async function trainTinyRun(dir: string): Promise<string> {
  const model = await tinyModel(join(dir, "model"), demoTexts(), "bert", { hidden: 16, layers: 1 });
  const result = await train(
    {
      model,
      data: DEMO_DATA,
      preset: "llmjp-toxicity",
      labels: TRAINED_LABELS,
      epochs: 2,
      batchSize: 32,
      maxLength: 32,
      loraR: 2,
      loraAlpha: 4,
      lr: 5e-3,
      resampleEachEpoch: "equalize:obscene",
      out: join(dir, "run"),
    },
    { progress: "quiet" },
  );
  return result.runDir;
}
