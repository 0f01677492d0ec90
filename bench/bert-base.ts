// The BERT-base-shaped random checkpoint (12 layers, hidden 768, FFN 3072) that the quantization
// benches (`bench:quantize`'s prediction half, `bench:double-quant`) measure, written once here.
import { writeSyntheticCheckpoint } from "../src/models/synthetic.js";

export async function writeBertBaseModel(dir: string): Promise<void> {
  await writeSyntheticCheckpoint(dir, {
    family: "bert",
    hidden: 768,
    layers: 12,
    heads: 12,
    intermediate: 3072,
    vocab: 32_000,
    maxPositions: 512,
  });
}
