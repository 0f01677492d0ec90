// Limited-memory BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed., Alg. 7.4 two-loop
// recursion; Alg. 3.5/3.6 strong-Wolfe line search with cubic interpolation) for smooth
// unconstrained problems. No npm package offers a maintained L-BFGS on Float64Array, so this is
// the textbook method in one file.
//
// Stopping rule, as scipy's L-BFGS-B (which scikit-learn's lbfgs solver calls) applies it:
//   converged when max|∇f| <= gtol, or when the relative decrease of f over an iteration,
//   (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1), is <= ftol (scipy's default 2.22e-9); otherwise
//   stopped (not converged) after maxIter iterations or a line search that finds no decrease.

/** Writes ∇f(x) into `grad` and returns f(x). */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Iteration limit (scikit-learn's max_iter). */
  maxIter: number;
  /** Gradient tolerance on max|∇f| (scikit-learn's tol, scipy's gtol). */
  gtol: number;
  /** Relative decrease of f that counts as converged (scipy's ftol = factr · eps). */
  ftol: number;
  /** Correction pairs kept (scipy's maxcor). */
  memory: number;
  /** Function evaluations allowed per line search (scipy's maxls). */
  maxLineSearch: number;
}

export const DEFAULT_LBFGS: LbfgsOptions = {
  maxIter: 2000,
  gtol: 1e-4,
  ftol: 1e7 * Number.EPSILON,
  memory: 10,
  maxLineSearch: 20,
};

export type StopReason = "gtol" | "ftol" | "maxIter" | "lineSearch";

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  /** max|∇f| at x. */
  gradInf: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: StopReason;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function infNorm(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** d = −H·g by the two-loop recursion over the stored pairs (oldest first). */
function direction(g: Float64Array, s: Float64Array[], y: Float64Array[], rho: number[]): Float64Array {
  const q = Float64Array.from(g);
  const alpha = new Array<number>(s.length);
  for (let i = s.length - 1; i >= 0; i--) {
    alpha[i] = rho[i] * dot(s[i], q);
    const yi = y[i];
    for (let k = 0; k < q.length; k++) q[k] -= alpha[i] * yi[k];
  }
  const last = s.length - 1;
  const gamma = last >= 0 ? dot(s[last], y[last]) / dot(y[last], y[last]) : 1;
  for (let k = 0; k < q.length; k++) q[k] *= gamma;
  for (let i = 0; i < s.length; i++) {
    const beta = rho[i] * dot(y[i], q);
    const si = s[i];
    for (let k = 0; k < q.length; k++) q[k] += (alpha[i] - beta) * si[k];
  }
  for (let k = 0; k < q.length; k++) q[k] = -q[k];
  return q;
}

interface Point {
  a: number;
  f: number;
  /** Directional derivative ∇f(x + a·d)·d. */
  dg: number;
  x: Float64Array;
  g: Float64Array;
}

/** Minimiser of the cubic through (lo, hi) with their slopes, kept inside the bracket; else bisection. */
function cubicStep(lo: Point, hi: Point): number {
  const d1 = lo.dg + hi.dg - (3 * (lo.f - hi.f)) / (lo.a - hi.a);
  const disc = d1 * d1 - lo.dg * hi.dg;
  const mid = (lo.a + hi.a) / 2;
  if (!(disc >= 0)) return mid;
  const d2 = Math.sign(hi.a - lo.a) * Math.sqrt(disc);
  const a = hi.a - ((hi.a - lo.a) * (hi.dg + d2 - d1)) / (hi.dg - lo.dg + 2 * d2);
  const left = Math.min(lo.a, hi.a);
  const width = Math.abs(hi.a - lo.a);
  if (!Number.isFinite(a) || a < left + 0.1 * width || a > left + 0.9 * width) return mid;
  return a;
}

/** What the solver asks for: f and ∇f at a point. */
export interface Evaluation {
  f: number;
  g: Float64Array;
}

/**
 * The solver as a generator: it yields each point it needs evaluated and receives f and ∇f there.
 * This lets a caller evaluate several independent problems together (e.g. one pass over a sparse
 * matrix for every label) while each problem follows exactly its own iterates.
 */
export type LbfgsSteps = Generator<Float64Array, LbfgsResult, Evaluation>;

/** A step along d satisfying the strong Wolfe conditions, or null when none is found. */
function* lineSearch(
  start: Point,
  d: Float64Array,
  a0: number,
  opts: LbfgsOptions,
): Generator<Float64Array, { point: Point | null; evaluations: number }, Evaluation> {
  const c1 = 1e-3; // scipy's dcsrch ftol
  const c2 = 0.9; // scipy's dcsrch gtol
  let evaluations = 0;
  function* at(a: number): Generator<Float64Array, Point, Evaluation> {
    const x = new Float64Array(start.x.length);
    for (let i = 0; i < x.length; i++) x[i] = start.x[i] + a * d[i];
    const { f, g } = yield x;
    evaluations++;
    return { a, f, dg: dot(g, d), x, g };
  }
  const armijo = (p: Point) => p.f <= start.f + c1 * p.a * start.dg;
  const curvature = (p: Point) => Math.abs(p.dg) <= -c2 * start.dg;
  function* zoom(lo: Point, hi: Point): Generator<Float64Array, Point | null, Evaluation> {
    while (evaluations < opts.maxLineSearch) {
      const p = yield* at(cubicStep(lo, hi));
      if (!armijo(p) || p.f >= lo.f) hi = p;
      else {
        if (curvature(p)) return p;
        if (p.dg * (hi.a - lo.a) >= 0) hi = lo;
        lo = p;
      }
    }
    return lo.a > 0 && lo.f < start.f ? lo : null;
  }
  let prev = start;
  let a = a0;
  let found: Point | null = null;
  while (evaluations < opts.maxLineSearch) {
    const p = yield* at(a);
    if (!Number.isFinite(p.f) || !armijo(p) || (prev !== start && p.f >= prev.f)) {
      found = yield* zoom(prev, p);
      break;
    }
    if (curvature(p)) {
      found = p;
      break;
    }
    if (p.dg >= 0) {
      found = yield* zoom(p, prev);
      break;
    }
    prev = p;
    a *= 2;
  }
  return { point: found, evaluations };
}

/** L-BFGS from x0 as a generator of evaluation requests (see {@link LbfgsSteps}). */
export function* lbfgsSteps(x0: Float64Array, options: Partial<LbfgsOptions> = {}): LbfgsSteps {
  const opts = { ...DEFAULT_LBFGS, ...options };
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  const first = Float64Array.from(x0);
  const e0 = yield first;
  let cur: Point = { a: 0, f: e0.f, dg: 0, x: first, g: e0.g };
  let evaluations = 1;
  const done = (iterations: number, reason: StopReason): LbfgsResult => ({
    x: cur.x,
    f: cur.f,
    gradInf: infNorm(cur.g),
    iterations,
    evaluations,
    converged: reason === "gtol" || reason === "ftol",
    reason,
  });
  if (!Number.isFinite(cur.f)) throw new Error(`L-BFGS: the objective is ${cur.f} at the starting point`);
  if (infNorm(cur.g) <= opts.gtol) return done(0, "gtol");
  for (let it = 0; it < opts.maxIter; it++) {
    let d = direction(cur.g, s, y, rho);
    let dg = dot(cur.g, d);
    if (!(dg < 0)) {
      // Not a descent direction (round-off in the curvature pairs): restart from steepest descent.
      s.length = y.length = rho.length = 0;
      d = direction(cur.g, s, y, rho);
      dg = dot(cur.g, d);
    }
    const a0 = s.length === 0 ? Math.min(1, 1 / Math.sqrt(dot(cur.g, cur.g))) : 1;
    const ls = yield* lineSearch({ ...cur, a: 0, dg }, d, a0, opts);
    evaluations += ls.evaluations;
    if (!ls.point) return done(it, "lineSearch");
    const next = ls.point;
    const sk = new Float64Array(d.length);
    const yk = new Float64Array(d.length);
    for (let i = 0; i < d.length; i++) {
      sk[i] = next.x[i] - cur.x[i];
      yk[i] = next.g[i] - cur.g[i];
    }
    const sy = dot(sk, yk);
    if (sy > Number.EPSILON * dot(yk, yk)) {
      if (s.length === opts.memory) {
        s.shift();
        y.shift();
        rho.shift();
      }
      s.push(sk);
      y.push(yk);
      rho.push(1 / sy);
    }
    const decrease = (cur.f - next.f) / Math.max(Math.abs(cur.f), Math.abs(next.f), 1);
    cur = next;
    if (infNorm(cur.g) <= opts.gtol) return done(it + 1, "gtol");
    if (decrease <= opts.ftol) return done(it + 1, "ftol");
  }
  return done(opts.maxIter, "maxIter");
}

/** Minimises f from x0 with L-BFGS; see the stopping rule at the top of this file. */
export function minimizeLbfgs(
  fg: Objective,
  x0: Float64Array,
  options: Partial<LbfgsOptions> = {},
): LbfgsResult {
  const steps = lbfgsSteps(x0, options);
  let req = steps.next();
  while (!req.done) {
    const g = new Float64Array(x0.length);
    const f = fg(req.value, g);
    req = steps.next({ f, g });
  }
  return req.value;
}
