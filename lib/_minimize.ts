/**
 * Private helper: derivative-free minimisation (Nelder–Mead) for the small, cheap objectives of
 * the model-free grid optimisers (DMN). Deterministic: the same start gives the same answer.
 *
 * @module
 */

/** Options of {@linkcode nelderMead}. */
export interface NelderMeadOptions {
  /** Size of the initial simplex along each axis. @default {0.5} */
  step?: number;
  /** Objective evaluations per restart. @default {4000 · dimension} */
  maxEvaluations?: number;
  /** Stop a restart when the simplex's values agree to this relative spread. @default {1e-12} */
  tolerance?: number;
  /** Restarts from the best point (a fresh simplex escapes a collapsed one). @default {6} */
  restarts?: number;
}

/**
 * Minimises `f` from `start` with the Nelder–Mead simplex method (reflection 1, expansion 2,
 * contraction ½, shrink ½), restarted from the best point until a restart improves nothing.
 *
 * @returns The best point found and its value.
 */
export function nelderMead(
  f: (x: Float64Array) => number,
  start: ArrayLike<number>,
  options: NelderMeadOptions = {},
): { x: Float64Array; value: number } {
  let best: Float64Array = Float64Array.from(start);
  let bestValue = f(best);
  const restarts = options.restarts ?? 6;
  for (let r = 0; r < restarts; r++) {
    const result = simplexRun(f, best, options);
    const improved = result.value < bestValue - 1e-14 * Math.abs(bestValue);
    if (result.value < bestValue) {
      best = result.x;
      bestValue = result.value;
    }
    if (!improved) break;
  }
  return { x: best, value: bestValue };
}

/** One Nelder–Mead run from a fresh simplex around `start`. */
function simplexRun(
  f: (x: Float64Array) => number,
  start: Float64Array,
  options: NelderMeadOptions,
): { x: Float64Array; value: number } {
  const n = start.length;
  const step = options.step ?? 0.5;
  const maxEvaluations = options.maxEvaluations ?? 4000 * Math.max(n, 1);
  const tolerance = options.tolerance ?? 1e-12;
  const points: Float64Array[] = [start.slice()];
  for (let i = 0; i < n; i++) {
    const p = start.slice();
    p[i] += step;
    points.push(p);
  }
  const values = points.map(f);
  let evaluations = points.length;
  const along = (a: Float64Array, b: Float64Array, t: number) =>
    a.map((v, i) => v + t * (b[i] - v));
  while (evaluations < maxEvaluations) {
    const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
    const sorted = order.map((i) => points[i]);
    const sortedValues = order.map((i) => values[i]);
    points.splice(0, points.length, ...sorted);
    values.splice(0, values.length, ...sortedValues);
    const spread = values[n] - values[0];
    if (spread <= tolerance * (Math.abs(values[0]) + 1e-300)) break;
    const centroid = new Float64Array(n);
    for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) centroid[i] += points[k][i] / n;
    const worst = points[n];
    const reflected = along(centroid, worst, -1);
    const fr = f(reflected);
    evaluations++;
    if (fr < values[0]) {
      const expanded = along(centroid, worst, -2);
      const fe = f(expanded);
      evaluations++;
      [points[n], values[n]] = fe < fr ? [expanded, fe] : [reflected, fr];
    } else if (fr < values[n - 1]) {
      [points[n], values[n]] = [reflected, fr];
    } else {
      const contracted = fr < values[n]
        ? along(centroid, reflected, 0.5)
        : along(centroid, worst, 0.5);
      const fc = f(contracted);
      evaluations++;
      if (fc < Math.min(fr, values[n])) {
        [points[n], values[n]] = [contracted, fc];
      } else {
        for (let k = 1; k <= n; k++) {
          points[k] = along(points[0], points[k], 0.5);
          values[k] = f(points[k]);
        }
        evaluations += n;
      }
    }
  }
  let bestIndex = 0;
  for (let k = 1; k <= n; k++) if (values[k] < values[bestIndex]) bestIndex = k;
  return { x: points[bestIndex], value: values[bestIndex] };
}
