// Finite-difference gradient checking for graphs built with the engine.
import {
  type DType,
  Graph,
  grad,
  mul,
  Session,
  sumAll,
  type Tensor,
  tensor,
  toTypedArray,
} from "../../src/engine/index.js";

export interface InputSpec {
  shape: number[];
  /** Values (default: seeded uniform in [-1, 1]). */
  values?: number[];
  /** Differentiable (a param) or fixed data (an input). Default true. */
  diff?: boolean;
  dtype?: DType;
}

export function rand(n: number, seed: number, lo = -1, hi = 1): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296));
  }
  return out;
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Compares autodiff gradients of sum(f(inputs) * R) (R random) with central differences.
 * Returns the worst error relative to `atol + rtol * |numeric|` (<= 1 means pass).
 */
export async function gradCheck(
  f: (...xs: Tensor[]) => Tensor,
  specs: InputSpec[],
  opts: { dtype?: DType; h?: number; atol?: number; rtol?: number } = {},
): Promise<{ worst: number; detail: string }> {
  const dtype = opts.dtype ?? "float64";
  const h = opts.h ?? (dtype === "float64" ? 1e-6 : 1e-2);
  const atol = opts.atol ?? (dtype === "float64" ? 1e-7 : 2e-3);
  const rtol = opts.rtol ?? (dtype === "float64" ? 1e-5 : 2e-2);
  const g = new Graph();
  const values = specs.map((s, i) => s.values ?? rand(size(s.shape), 1234 + 17 * i));
  const xs = specs.map((s, i) =>
    s.diff === false
      ? g.input(`in${i}`, s.dtype ?? dtype, s.shape)
      : g.param(`p${i}`, s.shape, s.dtype ?? dtype),
  );
  const y = f(...xs);
  const r = g.initializer(
    "R",
    y.dtype,
    y.shape as number[],
    toTypedArray(y.dtype, rand(size(y.shape as number[]), 99)),
  );
  const loss = sumAll(mul(y, r));
  g.output("loss", loss);
  const params = xs.filter((_, i) => specs[i].diff !== false);
  const grads = grad(loss, params);
  params.forEach((p) => {
    const gp = grads.get(p);
    if (!gp) throw new Error(`no gradient for ${p.name}`);
    g.output(`grad_${p.name}`, gp);
  });
  const session = await Session.fromGraph(g, { threads: 1 });
  const feeds = (vals: number[][]) =>
    Object.fromEntries(
      xs.map((x, i) => [x.name, tensor(x.dtype, toTypedArray(x.dtype, vals[i]), specs[i].shape)]),
    );
  const base = await session.run(feeds(values));
  let worst = 0;
  let detail = "";
  const lossOnly = async (vals: number[][]) =>
    Number((await session.run(feeds(vals), ["loss"])).loss.data[0]);
  for (const [i, spec] of specs.entries()) {
    if (spec.diff === false) continue;
    const analytic = Array.from(base[`grad_${xs[i].name}`].data as Float64Array, Number);
    for (let k = 0; k < values[i].length; k++) {
      const plus = values.map((v) => [...v]);
      const minus = values.map((v) => [...v]);
      plus[i][k] += h;
      minus[i][k] -= h;
      const numeric = ((await lossOnly(plus)) - (await lossOnly(minus))) / (2 * h);
      const err = Math.abs(analytic[k] - numeric) / (atol + rtol * Math.abs(numeric));
      if (err > worst) {
        worst = err;
        detail = `input ${i} element ${k}: autodiff ${analytic[k]} vs numeric ${numeric}`;
      }
    }
  }
  await session.release();
  return { worst, detail };
}
