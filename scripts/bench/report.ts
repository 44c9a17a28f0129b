// The bench's results: one JSON document (the record), and from it a table
// for the terminal, Markdown for the README, and an SVG chart drawn by hand.
// Ratios are costs: how many times the time (or memory) of the other
// target; above 1 is slower or larger.
import os from 'node:os';
import { fmt, summarize, type Summary } from './stats.js';
import type { FsGroup, Options, Role } from './targets.js';
import type { Outcome, Workload } from './workloads.js';

export interface Failed { na: string }
export type Cell = (Summary & { failed?: string[] }) | Failed;

export interface WorkloadResult {
  id: string;
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  results: Record<string, Cell>;
  /** The alternative with the best median, if any has one. */
  bestAlternative: string | null;
  /** Each target's cost relative to the best alternative. */
  ratios: Record<string, number | null>;
  /** The subject's cost relative to the goal's yardstick, and whether it is within budget. */
  goal?: { against: string; budget: number; ratio: number | null; met: boolean | null };
}

export interface GroupResult {
  id: string;
  title: string;
  targets: { id: string; role: Role }[];
  subject: string;
  workloads: WorkloadResult[];
}

export interface BenchResult {
  schema: 'rumpfs-bench/1';
  date: string;
  host: {
    cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; root: boolean; loadAverage: { start: number; end: number };
    /** Node alone starting and ending on an empty script, as a server is started (ms, at the bench's start and end): the floor of a server's mount latency. */
    nodeStart: { start: Summary; end: Summary };
  };
  options: Options;
  groups: GroupResult[];
}

export const isFailed = (c: Cell): c is Failed => 'na' in c;

export function aggregate(outcomes: readonly Outcome[]): Cell {
  const nums = outcomes.filter((o): o is number => typeof o === 'number' && Number.isFinite(o));
  const reasons = outcomes.filter((o): o is Failed => typeof o !== 'number').map(o => o.na);
  if (nums.length === 0) return { na: reasons[0] ?? 'not run' };
  return reasons.length ? { ...summarize(nums), failed: reasons } : summarize(nums);
}

/** How many times the cost of b is a's. */
function cost(a: Cell | undefined, b: Cell | undefined, better: Workload['better']): number | null {
  if (!a || !b || isFailed(a) || isFailed(b) || a.median <= 0 || b.median <= 0) return null;
  return better === 'higher' ? b.median / a.median : a.median / b.median;
}

export function groupResult(group: FsGroup, workloads: readonly Workload[], opts: Options,
  outcomes: Record<string, Record<string, Outcome[]>>): GroupResult {
  const subject = group.targets.find(t => t.role === 'subject')!.id;
  return {
    id: group.id,
    title: group.title,
    targets: group.targets.map(t => ({ id: t.id, role: t.role })),
    subject,
    workloads: workloads.map(w => {
      const results: Record<string, Cell> = {};
      for (const t of group.targets) results[t.id] = aggregate(outcomes[w.id]?.[t.id] ?? []);
      let best: string | null = null;
      for (const t of group.targets) {
        const c = results[t.id];
        if (t.role !== 'alternative' || isFailed(c)) continue;
        if (best === null || (cost(c, results[best], w.better) ?? 1) < 1) best = t.id;
      }
      const ratios = Object.fromEntries(group.targets.map(t => [t.id, best ? cost(results[t.id], results[best], w.better) : null]));
      const r: WorkloadResult = { id: w.id, title: w.title(opts), unit: w.unit, better: w.better, results, bestAlternative: best, ratios };
      if (group.goal) {
        const ratio = cost(results[subject], results[group.goal.against], w.better);
        r.goal = { ...group.goal, ratio, met: ratio === null ? null : ratio <= group.goal.budget };
      }
      return r;
    }),
  };
}

/** loadStart: the 1-minute load average when the bench began (others' work on the machine skews figures). */
export function benchResult(opts: Options, groups: GroupResult[], loadStart: number, nodeStart: BenchResult['host']['nodeStart']): BenchResult {
  return {
    schema: 'rumpfs-bench/1',
    date: new Date().toISOString(),
    host: {
      cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(), node: process.version, root: process.geteuid?.() === 0,
      loadAverage: { start: loadStart, end: os.loadavg()[0] }, nodeStart,
    },
    options: opts,
    groups,
  };
}

// ---- tables ----

function cellText(c: Cell, dash: string): string {
  if (isFailed(c)) return 'n/a';
  const spread = c.runs.length > 1 ? ` (${fmt(c.min)}${dash}${fmt(c.max)})` : '';
  return fmt(c.median) + spread + (c.failed ? ` [${c.failed.length} failed]` : '');
}

const ratioText = (r: number | null) => (r === null ? '-' : `${fmt(r)}×`);

interface Table { head: string[]; rows: string[][]; notes: string[] }

function table(g: GroupResult, dash: string): Table {
  const goal = g.workloads.find(w => w.goal)?.goal;
  const head = ['workload', 'unit', ...g.targets.map(t => t.id), `${g.subject} ÷ best alternative`];
  if (goal) head.push(`${g.subject} ÷ ${goal.against} (budget ${fmt(goal.budget)}×)`);
  const notes: string[] = [];
  const rows = g.workloads.map(w => {
    for (const t of g.targets) {
      const c = w.results[t.id];
      if (isFailed(c)) notes.push(`${t.id}, ${w.id}: ${c.na}`);
      else if (c.failed) notes.push(`${t.id}, ${w.id}: ${c.failed.length} run(s) failed: ${c.failed[0]}`);
    }
    const row = [w.title, w.unit + (w.better === 'lower' ? ' ↓' : ' ↑'), ...g.targets.map(t => cellText(w.results[t.id], dash)),
      w.bestAlternative ? `${ratioText(w.ratios[g.subject])} (vs ${w.bestAlternative})` : '-'];
    if (w.goal) row.push(w.goal.ratio === null ? '-' : `${ratioText(w.goal.ratio)} ${w.goal.met ? '✓' : '✗'}`);
    return row;
  });
  // The same reason for many workloads is said once.
  const merged = new Map<string, string[]>();
  for (const n of notes) {
    const [who, why] = [n.slice(0, n.indexOf(': ')), n.slice(n.indexOf(': ') + 2)];
    const [target, wl] = who.split(', ');
    const key = `${target}: ${why}`;
    merged.set(key, [...(merged.get(key) ?? []), wl]);
  }
  return { head, rows, notes: [...merged].map(([k, wls]) => `n/a ${k.replace(': ', ` (${wls.join(', ')}): `)}`) };
}

const LEGEND = 'Medians of the runs, (min-max) when more than one; ↑ higher is better, ↓ lower is better. '
  + 'Ratios are costs (time or memory, × the other\'s): above 1 is slower or larger.';

export function textReport(r: BenchResult): string {
  const out: string[] = [];
  for (const g of r.groups) {
    const t = table(g, '-');
    const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map(row => row[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
    out.push(`== ${g.title} ==`, line(t.head), widths.map(w => '-'.repeat(w)).join('  '), ...t.rows.map(line), ...t.notes.map(n => `  ${n}`), '');
  }
  out.push(LEGEND, `${r.options.runs} run(s); ${r.host.cpus} CPUs (${r.host.cpuModel}), Linux ${r.host.kernel}, Node ${r.host.node}; `
    + `load average ${r.host.loadAverage.start.toFixed(1)} at start, ${r.host.loadAverage.end.toFixed(1)} at end; ${nodeStartText(r)}.`);
  return out.join('\n') + '\n';
}

/** The floor under every server's mount latency on this machine, when the figures were taken. */
function nodeStartText(r: BenchResult): string {
  const { start, end } = r.host.nodeStart;
  return `Node alone (an empty script, as servers are started) took ${fmt(start.median)} ms at start, ${fmt(end.median)} ms at end (medians of ${start.runs.length})`;
}

export function markdownReport(r: BenchResult): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out: string[] = [];
  for (const g of r.groups) {
    const t = table(g, '–');
    out.push(`#### ${g.title}`, '', `| ${t.head.map(esc).join(' | ')} |`, `|${t.head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`,
      ...t.rows.map(row => `| ${row.map(esc).join(' | ')} |`), '');
    if (t.notes.length) out.push(...t.notes.map(n => `- ${esc(n)}`), '');
  }
  out.push(LEGEND, '', `${r.options.runs} run(s), ${r.date.slice(0, 10)}; ${r.host.cpus} CPUs (${r.host.cpuModel}), `
    + `${r.host.memoryGiB} GiB, Linux ${r.host.kernel}, Node ${r.host.node}; load average ${r.host.loadAverage.start.toFixed(1)} at start, `
    + `${r.host.loadAverage.end.toFixed(1)} at end; ${nodeStartText(r)}.`);
  return out.join('\n') + '\n';
}

// ---- chart ----

const COLORS: Record<Role, string[]> = {
  subject: ['#d62728'],
  alternative: ['#1f77b4', '#17becf'],
  reference: ['#7f7f7f', '#bcbd22'],
  ceiling: ['#2ca02c', '#98df8a'],
};

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Grouped horizontal bars: per workload, each target's cost relative to the best alternative, on a log scale. */
export function svgChart(r: BenchResult): string {
  const W = 980, LABEL = 330, X0 = LABEL + 10, X1 = W - 70, BAR = 11, GAP = 2;
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="10" y="22" font-size="16" font-weight="bold">rumpfs bench: cost relative to the best alternative (log scale; left of 1× is faster, right is slower)</text>`);
  for (const g of r.groups) {
    const ratios = g.workloads.flatMap(w => Object.values(w.ratios)).filter((v): v is number => v !== null && v > 0);
    let lo = Math.max(-10, Math.min(0, Math.floor(Math.log2(Math.min(1, ...ratios)))));
    let hi = Math.min(10, Math.max(0, Math.ceil(Math.log2(Math.max(1, ...ratios)))));
    if (hi === lo) hi = lo + 1;
    const x = (ratio: number) => X0 + ((Math.min(hi, Math.max(lo, Math.log2(ratio))) - lo) / (hi - lo)) * (X1 - X0);
    parts.push(`<g class="group" data-fs="${xml(g.id)}">`, `<text x="10" y="${y + 14}" font-size="14" font-weight="bold">${xml(g.title)}</text>`);
    // Legend.
    const used: Record<string, number> = {};
    const color = Object.fromEntries(g.targets.map(t => [t.id, COLORS[t.role][(used[t.role] = (used[t.role] ?? -1) + 1) % COLORS[t.role].length]]));
    let lx = LABEL;
    for (const t of g.targets) {
      parts.push(`<rect x="${lx}" y="${y + 4}" width="12" height="12" fill="${color[t.id]}"/>`,
        `<text x="${lx + 16}" y="${y + 14}" font-size="12">${xml(t.id)}</text>`);
      lx += 24 + t.id.length * 7;
    }
    y += 26;
    const top = y;
    const blockH = g.targets.length * (BAR + GAP) + 10;
    const height = g.workloads.length * blockH;
    // Grid: powers of two.
    const step = Math.ceil((hi - lo) / 12);
    for (let k = lo; k <= hi; k += step) {
      const gx = x(2 ** k);
      const label = k >= 0 ? `${2 ** k}×` : `1/${2 ** -k}×`;
      parts.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${top + height}" stroke="${k === 0 ? '#000' : '#ddd'}"/>`,
        `<text x="${gx}" y="${top + height + 12}" font-size="10" text-anchor="middle">${label}</text>`);
    }
    for (const w of g.workloads) {
      parts.push(`<text x="${LABEL}" y="${y + blockH / 2}" font-size="12" text-anchor="end">${xml(w.title)}</text>`);
      let by = y + 4;
      for (const t of g.targets) {
        const ratio = w.ratios[t.id];
        const cell = w.results[t.id];
        if (ratio === null) {
          parts.push(`<text x="${x(1) + 4}" y="${by + BAR - 2}" font-size="9" fill="#999">n/a</text>`);
        } else {
          const a = x(1), b = x(ratio);
          const tip = `${t.id}: ${isFailed(cell) ? 'n/a' : `${fmt(cell.median)} ${w.unit}`}, ${fmt(ratio)}× the best alternative`;
          parts.push(`<rect class="bar" data-target="${xml(t.id)}" data-workload="${w.id}" x="${Math.min(a, b).toFixed(1)}" y="${by}" width="${Math.max(1, Math.abs(b - a)).toFixed(1)}" height="${BAR}" fill="${color[t.id]}"><title>${xml(tip)}</title></rect>`,
            `<text x="${(Math.max(a, b) + 3).toFixed(1)}" y="${by + BAR - 2}" font-size="9">${fmt(ratio)}×</text>`);
        }
        by += BAR + GAP;
      }
      y += blockH;
    }
    y += 30;
    parts.push('</g>');
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n`
    + `<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}
