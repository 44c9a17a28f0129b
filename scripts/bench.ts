#!/usr/bin/env node
// The bench: the rump servers side by side with what users would pick
// instead (kernel tmpfs, fusefat, fuseiso; kernel drivers on loop devices
// for scale) and with bare FUSE servers (barefs on fuse-native, memfs in C:
// what the transport allows at best). Prints a table, writes JSON, Markdown
// and an SVG chart to bench/results/. Root (kernel mounts, drop_caches);
// needs the dist/ build, gcc and libfuse-dev.
//   node dist/scripts/bench.js [--quick] [--size 256M] [--files 10000] [--tree 5000]
//        [--ops 8192] [--runs 3] [--timeout 120] [--fs tmpfs,fat,iso] [--targets rump,fusefat,...] [--out DIR]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TREE_DIR, TREE_FILE_BYTES, treeFiles } from './bench/layout.js';
import { cleanupAll, nodeStartMs } from './bench/mounts.js';
import { benchResult, groupResult, markdownReport, svgChart, textReport } from './bench/report.js';
import { summarize } from './bench/stats.js';
import { serverNodeFlags, serverProgram } from '../servers/programs.js';
import { buildC, GROUPS, type Context, type Options } from './bench/targets.js';
import { abortWork, Aborted, session, WORKLOADS, type Outcome } from './bench/workloads.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(dist, '..');

const USAGE = `usage: bench [--quick] [--size BYTES[K|M|G]] [--files N] [--tree N] [--ops N] [--runs N]
             [--timeout SECONDS] [--fs ${GROUPS.map(g => g.id).join(',')}] [--targets PREFIX,...] [--out DIR]`;

const DEFAULTS: Options = { size: 256 << 20, files: 10_000, tree: 5_000, ops: 8192, runs: 3, timeout: 120 };
const QUICK: Options = { size: 4 << 20, files: 200, tree: 200, ops: 256, runs: 1, timeout: 60 };

function bytes(s: string): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(s);
  if (!m) throw new Error(`not a size: ${s}`);
  return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
}

function positive(name: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: not a positive integer: ${s}`);
  return n;
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' }, size: { type: 'string' }, files: { type: 'string' }, tree: { type: 'string' },
    ops: { type: 'string' }, runs: { type: 'string' }, timeout: { type: 'string' }, fs: { type: 'string' },
    targets: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const base = values.quick ? QUICK : DEFAULTS;
const opts: Options = {
  size: values.size ? bytes(values.size) : base.size,
  files: values.files ? positive('files', values.files) : base.files,
  tree: values.tree ? positive('tree', values.tree) : base.tree,
  ops: values.ops ? positive('ops', values.ops) : base.ops,
  runs: values.runs ? positive('runs', values.runs) : base.runs,
  timeout: values.timeout ? positive('timeout', values.timeout) : base.timeout,
};
if (opts.size < 1 << 20 || opts.size % 4096) throw new Error('--size: at least 1 MiB, a multiple of 4 KiB');
const fsWanted = values.fs?.split(',') ?? GROUPS.map(g => g.id);
for (const f of fsWanted) if (!GROUPS.some(g => g.id === f)) throw new Error(`--fs: unknown file system ${f}\n${USAGE}`);
const selectors = values.targets?.toLowerCase().split(',');
const groups = GROUPS.filter(g => fsWanted.includes(g.id))
  .map(g => ({ ...g, targets: g.targets.filter(t => !selectors || selectors.some(s => t.id.toLowerCase().startsWith(s))) }))
  .filter(g => g.targets.some(t => t.role === 'subject'));
if (groups.length === 0) throw new Error('nothing to measure: each file system needs its rump server among the targets');

const log = (s: string) => process.stderr.write(s + '\n');

// Servers are measured as installed, from their bundles: a bundle older than
// its compiled module (tsc ran since) would be passed over for the module,
// and every mount would start ~60 ms slower.
const servers = groups.flatMap(g => g.targets.map(t => t.id)).filter(id => /^rump_\w+$/.test(id));
if (servers.some(s => !serverProgram(s).endsWith('.cjs'))) {
  log('bench: the server bundles are older than dist/servers: node scripts/bundle.mjs');
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs')], { stdio: 'inherit' });
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (!interrupted) log(`\nbench: ${sig}: stopping, unmounting`);
    interrupted = true;
    abortWork();
  });
}

const loadStart = loadavg()[0];
const work = mkdtempSync(path.join(tmpdir(), 'rumpfs-bench-'));
/** Five Node starts in a row, as a server's (its flags): the mount latency's floor now. */
const nodeStarts = async () => {
  const ms: number[] = [];
  for (let i = 0; i < 5; i++) ms.push(await nodeStartMs(work, serverNodeFlags('rump_msdos')));
  return summarize(ms);
};
let status = 0;
try {
  const nodeStartFirst = await nodeStarts();
  const hostTree = path.join(work, 'host', TREE_DIR);
  for (const f of treeFiles(opts.tree)) {
    mkdirSync(path.join(hostTree, path.dirname(f)), { recursive: true });
    writeFileSync(path.join(hostTree, f), 'x'.repeat(TREE_FILE_BYTES));
  }
  const ctx: Context = { opts, dist, bin: buildC(root, path.join(root, 'build/bench')), work, hostTree };
  const results = [];
  for (const g of groups) {
    log(`bench: ${g.title}: preparing`);
    const source = g.prepare(ctx);
    // outcomes[workload][target]: one entry per run.
    const outcomes: Record<string, Record<string, Outcome[]>> = {};
    for (let run = 1; run <= opts.runs; run++) {
      for (const t of g.targets) {
        const record = (o: Record<string, Outcome>) => {
          for (const w of WORKLOADS) ((outcomes[w.id] ??= {})[t.id] ??= []).push(o[w.id] ?? { na: 'not run' });
        };
        const why = t.unavailable?.();
        if (why) {
          record(Object.fromEntries(WORKLOADS.map(w => [w.id, { na: why }])));
          continue;
        }
        const t0 = performance.now();
        const src = source(`${t.id.replace(/\W+/g, '_')}-${run}`);
        try {
          record(await session(ctx, g, t, src.path));
        } finally {
          src.discard();
        }
        log(`bench: ${g.id} run ${run}/${opts.runs}: ${t.id}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
    results.push(groupResult(g, WORKLOADS, opts, outcomes));
  }
  const result = benchResult(opts, results, loadStart, { start: nodeStartFirst, end: await nodeStarts() });
  const outDir = path.resolve(values.out ?? path.join(root, 'bench/results'));
  mkdirSync(outDir, { recursive: true });
  const stem = path.join(outDir, `bench-${result.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}`);
  writeFileSync(`${stem}.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${stem}.md`, markdownReport(result));
  writeFileSync(`${stem}.svg`, svgChart(result));
  process.stdout.write(textReport(result));
  log(`bench: wrote ${stem}.json, .md, .svg`);
} catch (e) {
  if (e instanceof Aborted) {
    status = 130;
  } else {
    log(`bench: ${(e as Error).stack ?? e}`);
    status = 1;
  }
} finally {
  await cleanupAll();
  // Never recurse into anything still mounted.
  const stuck = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map(l => l.split(' ')[4]).filter(p => p?.startsWith(work + '/'));
  if (stuck.length) log(`bench: still mounted, left in place: ${stuck.join(' ')}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(status);
