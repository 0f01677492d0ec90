// L2-regularised binary logistic regression on a sparse matrix, with scikit-learn's objective
// (LogisticRegression(solver="lbfgs"), sklearn 1.2):
//
//   f(w, b) = Σᵢ sᵢ · [log(1 + e^{zᵢ}) − yᵢ·zᵢ] + ‖w‖² / (2C),   zᵢ = xᵢ·w + b
//   ∂f/∂w = Xᵀ·r + w / C,   ∂f/∂b = Σᵢ rᵢ,   rᵢ = sᵢ · (σ(zᵢ) − yᵢ)
//
// sᵢ is the sample weight (class_weight="balanced": n / (2 · count of yᵢ's class)); the intercept
// is not penalised. Solved with L-BFGS (./lbfgs.ts) from zero, as sklearn starts.
import {
  DEFAULT_LBFGS,
  type LbfgsOptions,
  type LbfgsResult,
  minimizeLbfgs,
  type StopReason,
} from "./lbfgs.js";
import { type CsrMatrix, matvec, transpose } from "./sparse.js";

// Xᵀ of each design matrix, built once and kept while X lives (every gradient needs Xᵀ·r).
const transposes = new WeakMap<CsrMatrix, CsrMatrix>();

function transposeOf(X: CsrMatrix): CsrMatrix {
  let t = transposes.get(X);
  if (!t) {
    t = transpose(X);
    transposes.set(X, t);
  }
  return t;
}

export interface LogisticOptions {
  /** Inverse regularisation strength (sklearn's C). */
  C: number;
  /** Per-row weights (default 1). */
  sampleWeight?: ArrayLike<number>;
  maxIter?: number;
  /** Gradient tolerance max|∇f| (sklearn's tol, default 1e-4). */
  tol?: number;
}

export interface LogisticFit {
  coef: Float64Array;
  intercept: number;
  iterations: number;
  converged: boolean;
  reason: StopReason;
  /** Objective at the solution. */
  loss: number;
  /** max|∇f| at the solution. */
  gradInf: number;
}

/** log(1 + e^z) without overflow. */
export function log1pExp(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** The logistic function without overflow. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** sklearn's class_weight="balanced" for 0/1 labels: [weight of class 0, weight of class 1]. */
export function balancedClassWeights(y: ArrayLike<number>): [number, number] {
  let pos = 0;
  for (let i = 0; i < y.length; i++) pos += y[i];
  const neg = y.length - pos;
  return [y.length / (2 * neg), y.length / (2 * pos)];
}

/**
 * The objective and its gradient at params = [w (X.cols values), b]; the gradient is written into
 * `grad` (same layout).
 */
export function logisticLossGrad(
  X: CsrMatrix,
  y: ArrayLike<number>,
  sampleWeight: ArrayLike<number>,
  C: number,
  params: Float64Array,
  grad: Float64Array,
): number {
  const V = X.cols;
  const w = params.subarray(0, V);
  const z = matvec(X, w, params[V]);
  let loss = 0;
  let gb = 0;
  const r = new Float64Array(X.rows);
  for (let i = 0; i < X.rows; i++) {
    const s = sampleWeight[i];
    loss += s * (log1pExp(z[i]) - y[i] * z[i]);
    r[i] = s * (sigmoid(z[i]) - y[i]);
    gb += r[i];
  }
  matvec(transposeOf(X), r, 0, grad);
  let wsq = 0;
  for (let k = 0; k < V; k++) {
    wsq += w[k] * w[k];
    grad[k] += w[k] / C;
  }
  grad[V] = gb;
  return loss + wsq / (2 * C);
}

function asFit(r: LbfgsResult, V: number): LogisticFit {
  return {
    coef: r.x.slice(0, V),
    intercept: r.x[V],
    iterations: r.iterations,
    converged: r.converged,
    reason: r.reason,
    loss: r.f,
    gradInf: r.gradInf,
  };
}

/** Fits one binary logistic regression; y holds 0/1 per row of X. */
export function fitLogistic(
  X: CsrMatrix,
  y: ArrayLike<number>,
  options: LogisticOptions,
  lbfgs: Partial<LbfgsOptions> = {},
): LogisticFit {
  if (y.length !== X.rows) throw new Error(`logistic regression: ${y.length} labels for ${X.rows} rows`);
  if (!(options.C > 0)) throw new Error(`logistic regression: C must be positive, got ${options.C}`);
  const sw = options.sampleWeight ?? new Float64Array(X.rows).fill(1);
  const r = minimizeLbfgs(
    (params, grad) => logisticLossGrad(X, y, sw, options.C, params, grad),
    new Float64Array(X.cols + 1),
    {
      ...lbfgs,
      maxIter: options.maxIter ?? DEFAULT_LBFGS.maxIter,
      gtol: options.tol ?? DEFAULT_LBFGS.gtol,
    },
  );
  return asFit(r, X.cols);
}

/** P(y = 1) for each row of X. */
export function predictLogistic(X: CsrMatrix, coef: Float64Array, intercept: number): Float64Array {
  const z = matvec(X, coef, intercept);
  for (let i = 0; i < z.length; i++) z[i] = sigmoid(z[i]);
  return z;
}
