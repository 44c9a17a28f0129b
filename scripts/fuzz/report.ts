// The campaign's table (one row per file system, one column per class),
// the list of kept mutants with their replay commands, and the JSON form.
import { writeFileSync } from 'node:fs';
import type { CampaignOptions, FsSummary, MutantRecord } from './campaign.js';
import { replayCommand } from './campaign.js';
import { CLASSES, UNCONTAINED, type Outcome } from './classify.js';

export function table(summaries: readonly FsSummary[]): string {
  const head = ['fs', 'mutants', ...CLASSES];
  const rows = summaries.map(s => [s.fs, String(s.mutants), ...CLASSES.map(c => String(s.counts[c]))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

export function uncontained(summaries: readonly FsSummary[]): number {
  return summaries.reduce((n, s) => n + UNCONTAINED.reduce((m, c) => m + s.counts[c], 0), 0);
}

export function keptList(summaries: readonly FsSummary[]): string {
  const lines: string[] = [];
  for (const s of summaries) {
    for (const r of s.kept) lines.push(`${r.fs} #${r.index} (${r.seedName}) ${r.outcome.class}${r.outcome.step ? ` in "${r.outcome.step}"` : ''}: ${r.outcome.message}\n  ${replayCommand(r.kept!)}`);
  }
  return lines.join('\n');
}

export function describeOutcome(o: Outcome): string {
  const out = [`outcome: ${o.class}`, ...(o.step ? [`step: ${o.step}`] : []), `message: ${o.message}`];
  if (o.stack) out.push(`stack:\n${o.stack}`);
  if (o.errors?.length) out.push(`errno failures:\n${o.errors.map(e => `  ${e.step}: ${e.message}`).join('\n')}`);
  if (o.notes?.length) out.push(`notes:\n${o.notes.map(n => `  ${n}`).join('\n')}`);
  if (o.stderr?.trim()) out.push(`stderr (end):\n${o.stderr.trimEnd()}`);
  return out.join('\n');
}

export function writeJson(file: string, o: CampaignOptions, summaries: readonly FsSummary[]): void {
  const strip = (r: MutantRecord) => ({ index: r.index, seed: r.seedName, class: r.outcome.class, step: r.outcome.step, message: r.outcome.message, file: r.kept, replay: replayCommand(r.kept!) });
  writeFileSync(file, JSON.stringify({
    mode: o.mode, seed: o.seed, count: o.count, timeoutMs: o.timeoutMs,
    filesystems: summaries.map(s => ({ fs: s.fs, mutants: s.mutants, counts: s.counts, kept: s.kept.map(strip) })),
    uncontained: uncontained(summaries),
  }, null, 2) + '\n');
}
