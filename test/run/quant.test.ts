// Which quantization a run is loaded with: the trained one by default, an explicit one wins (with
// one notice line when it differs), runs from before quantization load in float32.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeQuant, quantSpec, queueName } from "../../src/cluster/jobs.js";
import { runLoadQuant, runQuantization } from "../../src/run/quant.js";

const NF4_DQ = { train: { quantize: "nf4", quantBlockSize: 128, doubleQuant: true } };

describe("runLoadQuant", () => {
  it("without --quantize: the run's scheme, block size and double quantization, no notice", () => {
    const r = runLoadQuant(NF4_DQ, { quantCache: false });
    assert.deepEqual(r.options, {
      quantize: "nf4",
      quantBlockSize: 128,
      quantCache: false,
      doubleQuant: true,
    });
    assert.equal(r.notice, undefined);
  });

  it("the same scheme named again keeps the run's block size and double quantization", () => {
    const r = runLoadQuant(NF4_DQ, { quantize: "nf4" });
    assert.deepEqual(r.options, {
      quantize: "nf4",
      quantBlockSize: 128,
      quantCache: undefined,
      doubleQuant: true,
    });
    assert.equal(r.notice, undefined);
  });

  it("another scheme or --no-double-quant wins, and says so in one line", () => {
    const int8 = runLoadQuant(NF4_DQ, { quantize: "int8" });
    assert.deepEqual(int8.options, { quantize: "int8", quantBlockSize: undefined, quantCache: undefined });
    assert.equal(
      int8.notice,
      "loading the base quantized as int8 (block 32), not as the run was trained: nf4 (block 128, double-quant)",
    );
    const plain = runLoadQuant(NF4_DQ, { doubleQuant: false });
    assert.equal(plain.options.doubleQuant, undefined);
    assert.match(
      plain.notice ?? "",
      /as nf4 \(block 128\), not as the run was trained: nf4 \(block 128, double-quant\)$/,
    );
  });

  it("a run from before quantization loads in float32; a bad recorded scheme names the file", () => {
    assert.deepEqual(runLoadQuant({ train: {} }, {}).options.quantize, "none");
    assert.equal(runLoadQuant({ train: {} }, {}).notice, undefined);
    assert.throws(
      () => runLoadQuant({ train: { quantize: "fp8" } }, {}, "runs/x"),
      /^Error: runs\/x\/config.json train.quantize: unknown quantization scheme "fp8"/,
    );
  });

  it("config.json's quantization record resolves the default block size", () => {
    assert.deepEqual(runQuantization({ quantize: "nf4", doubleQuant: true }), {
      scheme: "nf4",
      blockSize: 64,
      doubleQuant: true,
    });
    assert.deepEqual(runQuantization({ quantize: "int4" }), {
      scheme: "int4",
      blockSize: 32,
      doubleQuant: false,
    });
    assert.deepEqual(runQuantization({}), { scheme: "none" });
  });

  it("the cluster's job spec carries double quantization (another queue, refused by a worker without it)", () => {
    const dq = quantSpec(runLoadQuant(NF4_DQ, {}).options);
    assert.deepEqual(dq, { scheme: "nf4", blockSize: 128, doubleQuant: true });
    assert.equal(describeQuant(dq), "nf4 (block 128, double-quant)");
    const plain = quantSpec(runLoadQuant(NF4_DQ, { doubleQuant: false }).options);
    assert.deepEqual(plain, { scheme: "nf4", blockSize: 128 });
    assert.notEqual(queueName("f".repeat(64), dq), queueName("f".repeat(64), plain));
  });
});
