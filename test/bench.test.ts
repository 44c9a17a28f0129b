// The bench runs (--quick) and writes well-formed results; it leaves no
// mount or server behind, also when interrupted. No speed is judged here.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summarize } from '../scripts/bench/stats.js';
import { WORKLOADS } from '../scripts/bench/workloads.js';
import { cleanupMounts, ensureBuilt, ROOT, run, SKIP_FUSE, tempDir } from './helpers/mount.js';

const BENCH = path.join(ROOT, 'dist/scripts/bench.js');

interface Ran { status: number | null; stdout: string; stderr: string }

/** Runs the bench; SIGINT as soon as `interruptWhen` holds (polled). */
function bench(args: string[], interruptWhen?: () => boolean): Promise<Ran> {
  return new Promise(resolve => {
    const c = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const poll = interruptWhen && setInterval(() => {
      if (interruptWhen()) { clearInterval(poll); c.kill('SIGINT'); }
    }, 10);
    c.on('close', status => { clearInterval(poll); resolve({ status, stdout, stderr }); });
  });
}

/** What the bench may leave behind: mounts and processes under its scratch directory. */
function leftovers(): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map(l => l.split(' ')[4]).filter(p => p?.includes('/rumpfs-bench-'));
  const procs: string[] = [];
  for (const pid of readdirSync('/proc').filter(n => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('/rumpfs-bench-')) procs.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`);
    } catch { /* gone */ }
  }
  return [...mounts, ...procs];
}

describe('stats', () => {
  it('median and quartiles interpolate between ranks', () => {
    const s = summarize([5, 1, 4, 2, 3]);
    expect([s.median, s.min, s.max, s.q1, s.q3]).toEqual([3, 1, 5, 2, 4]);
    expect(summarize([1, 2]).median).toBe(1.5);
  });
});

describe.skipIf(SKIP_FUSE)('bench --quick', () => {
  afterAll(cleanupMounts);

  it('measures every target and writes JSON, Markdown and SVG that are well-formed', async () => {
    ensureBuilt();
    const out = tempDir('bench-out-');
    // The groups this test knows; others (udf, ...) are measured by their own runs, keeping this under its timeout.
    const r = await bench(['--quick', '--fs', 'tmpfs,fat,iso', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(leftovers()).toEqual([]);
    const files = readdirSync(out).sort();
    expect(files.map(f => path.extname(f))).toEqual(['.json', '.md', '.svg']);
    const file = (ext: string) => path.join(out, files.find(f => f.endsWith(ext))!);

    const doc = JSON.parse(readFileSync(file('.json'), 'utf8'));
    expect(doc.schema).toBe('rumpfs-bench/1');
    expect(doc.groups.map((g: { id: string }) => g.id)).toEqual(['tmpfs', 'fat', 'iso']);
    // The mount latency's floor, measured in the same run: five Node starts at each end.
    for (const at of ['start', 'end']) {
      const n = doc.host.nodeStart[at];
      expect(n.runs, at).toHaveLength(5);
      expect(n.median > 0 && n.min <= n.median && n.median <= n.max, `${at}: ${JSON.stringify(n)}`).toBe(true);
    }
    for (const g of doc.groups) {
      expect(g.workloads.map((w: { id: string }) => w.id)).toEqual(WORKLOADS.map(w => w.id));
      for (const w of g.workloads) {
        for (const t of g.targets) {
          const c = w.results[t.id];
          if ('na' in c) {
            expect(typeof c.na === 'string' && c.na.length > 0, `${g.id} ${w.id} ${t.id}`).toBe(true);
          } else {
            expect(Number.isFinite(c.median) && c.median > 0, `${g.id} ${w.id} ${t.id}: ${c.median}`).toBe(true);
            expect(c.min <= c.median && c.median <= c.max).toBe(true);
            expect(c.runs).toHaveLength(1);
          }
        }
        // The rump server measures everything its file system allows.
        const readOnlyNa = g.id === 'iso' && ['seq_write', 'create', 'unlink'].includes(w.id);
        expect('na' in w.results[g.subject], `${g.id} ${w.id}: ${JSON.stringify(w.results[g.subject])}`).toBe(readOnlyNa);
        if (w.bestAlternative) expect(w.ratios[w.bestAlternative]).toBeCloseTo(1, 10);
      }
    }
    expect(doc.groups[0].workloads[0].goal).toMatchObject({ against: 'barefs', budget: 1.2 });

    // Markdown: a table per group, each row with as many cells as its header.
    const md = readFileSync(file('.md'), 'utf8').split('\n');
    expect(md.join('\n')).toMatch(/Node alone \(an empty script, as servers are started\) took [\d.,]+ ms at start, [\d.,]+ ms at end/);
    const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
    const heads = md.flatMap((l, i) => (l.startsWith('|') && !md[i - 1]?.startsWith('|') ? [i] : []));
    expect(heads).toHaveLength(3);
    for (const h of heads) {
      expect(md[h + 1]).toMatch(/^\|(---:?\|)+$/);
      const rows = md.slice(h + 2).filter((l, i, a) => a.slice(0, i + 1).every(x => x.startsWith('|')));
      expect(rows).toHaveLength(WORKLOADS.length);
      for (const row of [md[h + 1], ...rows]) expect(cells(row)).toBe(cells(md[h]));
    }

    // SVG: an XML parser (not ours) reads it; bars for every group.
    const py = run('python3', ['-c', `
import sys, xml.etree.ElementTree as ET
ns = '{http://www.w3.org/2000/svg}'
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + 'svg', root.tag
for g in root.iter(ns + 'g'):
    print(g.get('data-fs'), sum(1 for r in g.iter(ns + 'rect') if r.get('class') == 'bar'))
`, file('.svg')]);
    expect(py.status, py.stderr).toBe(0);
    const bars = Object.fromEntries(py.stdout.trim().split('\n').map(l => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    expect(Object.keys(bars)).toEqual(['tmpfs', 'fat', 'iso']);
    for (const n of Object.values(bars)) expect(n).toBeGreaterThan(5);
  }, 240_000);

  it('on Ctrl-C unmounts, waits for its servers and exits 130', async () => {
    ensureBuilt();
    const out = tempDir('bench-out-');
    // Interrupted while rump_tmpfs is mounted and working.
    const r = await bench(['--quick', '--fs', 'tmpfs', '--out', out],
      () => readFileSync('/proc/self/mountinfo', 'utf8').includes('/rumpfs-bench-'));
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SIGINT: stopping/);
    expect(leftovers()).toEqual([]);
    expect(readdirSync(out)).toEqual([]);
  }, 60_000);
});
