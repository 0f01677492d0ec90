// A Triton Inference Server model configuration (config.pbtxt) for an exported classifier, served by
// Triton's onnxruntime backend with dynamic batching. Triton's model repository layout is
// `<repository>/<model name>/config.pbtxt` beside `<repository>/<model name>/<version>/model.onnx`,
// so `export --triton` wants `--out <repository>/<name>/<version>/model.onnx`.
import { basename, dirname } from "node:path";

export interface TritonOptions {
  /** Largest batch Triton forms (default 32). */
  maxBatchSize?: number;
  /** How long a request may wait for others to share its batch (default 5000 µs). */
  maxQueueDelayMicroseconds?: number;
  /** Model instances (default 1) and where they run (default CPU). */
  instances?: number;
  kind?: "KIND_CPU" | "KIND_GPU";
}

/** Where a model file sits in a Triton repository, or an error saying what the layout must be. */
export function tritonModelPath(onnxFile: string): { name: string; configFile: string } {
  const versionDir = dirname(onnxFile);
  const modelDir = dirname(versionDir);
  if (basename(onnxFile) !== "model.onnx" || !/^[1-9]\d*$/.test(basename(versionDir))) {
    throw new Error(
      `--triton: --out must be <repository>/<model name>/<version>/model.onnx (Triton's layout, version a number ≥ 1), got ${onnxFile}`,
    );
  }
  return { name: basename(modelDir), configFile: `${modelDir}/config.pbtxt` };
}

/**
 * The config.pbtxt text: inputs input_ids and attention_mask (INT64, [batch, tokens], the batch
 * dimension implied by max_batch_size), output logits (FP32, [batch, labels]), labels in order in a
 * comment and in `parameters`, dynamic batching on.
 */
export function tritonConfig(name: string, labels: readonly string[], opts: TritonOptions = {}): string {
  const maxBatch = opts.maxBatchSize ?? 32;
  const preferred = [
    ...new Set([Math.max(1, Math.floor(maxBatch / 4)), Math.max(1, Math.floor(maxBatch / 2)), maxBatch]),
  ];
  const tensor = (n: string, type: string, dims: number[]) =>
    `  {\n    name: "${n}"\n    data_type: ${type}\n    dims: [ ${dims.join(", ")} ]\n  }`;
  return [
    `# Written by toxlora export --triton. P(label) = sigmoid(logits[label]); labels: ${labels.join(", ")}`,
    `name: ${JSON.stringify(name)}`,
    `backend: "onnxruntime"`,
    `max_batch_size: ${maxBatch}`,
    `input [\n${[tensor("input_ids", "TYPE_INT64", [-1]), tensor("attention_mask", "TYPE_INT64", [-1])].join(",\n")}\n]`,
    `output [\n${tensor("logits", "TYPE_FP32", [labels.length])}\n]`,
    `dynamic_batching {\n  preferred_batch_size: [ ${preferred.join(", ")} ]\n  max_queue_delay_microseconds: ${opts.maxQueueDelayMicroseconds ?? 5000}\n}`,
    `instance_group [\n  {\n    count: ${opts.instances ?? 1}\n    kind: ${opts.kind ?? "KIND_CPU"}\n  }\n]`,
    `parameters {\n  key: "labels"\n  value: { string_value: ${JSON.stringify(labels.join(","))} }\n}`,
    "",
  ].join("\n");
}
