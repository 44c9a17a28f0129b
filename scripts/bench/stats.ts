// Summaries of repeated measurements: the median is the figure, the spread
// (min-max, and the quartiles in the JSON) says how far to trust it.

export interface Summary {
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
  runs: number[];
}

/** Linear interpolation between closest ranks (the usual R-7 quantile). */
function quantile(sorted: readonly number[], p: number): number {
  const i = (sorted.length - 1) * p;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export function summarize(runs: readonly number[]): Summary {
  if (runs.length === 0) throw new Error('summarize: no runs');
  const s = [...runs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), min: s[0], max: s[s.length - 1], q1: quantile(s, 0.25), q3: quantile(s, 0.75), runs: [...runs] };
}

/** Three significant digits, thousands separated: 0.0123, 4.56, 789, 12,300. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(n))));
  const r = Number(n.toPrecision(3));
  return r.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
