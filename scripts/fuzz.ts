#!/usr/bin/env node
// rumpfs fuzz: does a driver survive a hostile image? Mutants of seed images
// made by the real tools, run in-process through the library or through
// real rump_<fs> mounts, each classified as refused, served,
// served-with-errors, panic-contained, hang, escape or crash.
//   node dist/scripts/fuzz.js [--fs msdos,cd9660] [--count N] [--seed S]
//       [--mode inprocess|mount] [--jobs J] [--timeout ms] [--quick]
//       [--json out.json] [--out dir]
//   node dist/scripts/fuzz.js --replay fuzz/out/<fs>/<mutant>.json
// Exits 1 when any mutant hangs, escapes or crashes; 2 on a usage or set-up error.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Lane, runCampaign, runMutant, type CampaignOptions, type Mode, type MutantSpec } from './fuzz/campaign.js';
import { UNCONTAINED } from './fuzz/classify.js';
import { defaultLimits } from './fuzz/exercise.js';
import { MountRunner, SetupError } from './fuzz/mountmode.js';
import { WorkerSlot } from './fuzz/pool.js';
import { describeOutcome, keptList, table, uncontained, writeJson } from './fuzz/report.js';
import { sha256 } from './fuzz/seeds.js';
import { targets } from './fuzz/targets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const workerPath = path.join(here, 'fuzz', 'worker.js');
const QUICK_COUNT = 30;

class UsageError extends Error {}

function int(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} wants an integer >= ${min}, not '${v}'`);
  return Number(v);
}

async function replay(file: string, timeoutMs: number): Promise<number> {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as MutantSpec & { outcome?: { class: string } };
  const t = targets[spec.fs];
  if (!t) throw new UsageError(`${file}: unknown file system '${spec.fs}'`);
  if (sha256(spec.seedPath) !== spec.seedSha256) process.stderr.write(`warning: seed ${spec.seedPath} is not the one this mutant was made from\n`);
  const base = mkdtempSync(path.join(os.tmpdir(), 'rumpfs-replay-'));
  let runner: WorkerSlot | MountRunner | undefined;
  try {
    if (spec.mode === 'mount') {
      MountRunner.check(root, t);
      [runner] = await MountRunner.setup(root, base, 1, timeoutMs, workerPath);
    } else {
      runner = new WorkerSlot({ workerPath, cwd: mkdtempSync(path.join(base, 'cwd-')), timeoutMs });
    }
    console.log(`replaying ${spec.fs} mutant #${spec.index} of seed ${spec.seedName} (campaign seed ${spec.campaignSeed}, ${spec.mode}), ${spec.patches.length} patches`);
    if (spec.outcome) console.log(`recorded outcome: ${spec.outcome.class}`);
    const outcome = await runMutant(spec, new Lane(base, 'replay'), runner, t, defaultLimits);
    console.log(describeOutcome(outcome));
    return UNCONTAINED.includes(outcome.class) ? 1 : 0;
  } finally {
    await runner?.close();
    rmSync(base, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: {
      fs: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' }, mode: { type: 'string' },
      jobs: { type: 'string' }, timeout: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' },
      out: { type: 'string' }, replay: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    const header = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
    console.log(header.slice(0, header.findIndex(l => !l.startsWith('//'))).map(l => l.slice(3)).join('\n'));
    return 0;
  }
  const timeoutMs = int('timeout', v.timeout, 5000, 100);
  if (v.replay) return replay(v.replay, timeoutMs);
  const fs = (v.fs ?? Object.keys(targets).join(',')).split(',').filter(Boolean);
  for (const f of fs) if (!targets[f]) throw new UsageError(`unknown file system '${f}' (known: ${Object.keys(targets).join(', ')})`);
  const mode = (v.mode ?? 'inprocess') as Mode;
  if (mode !== 'inprocess' && mode !== 'mount') throw new UsageError(`--mode is inprocess or mount, not '${v.mode}'`);
  const o: CampaignOptions = {
    fs, mode, timeoutMs, workerPath, root,
    count: int('count', v.count, v.quick ? QUICK_COUNT : 1000, 1),
    seed: int('seed', v.seed, 1),
    jobs: int('jobs', v.jobs, 2, 1),
    outDir: path.resolve(v.out ?? path.join(root, 'fuzz', 'out')),
    progress: line => process.stderr.write(`${line}\n`),
  };
  const start = Date.now();
  const summaries = await runCampaign(o);
  console.log(`rumpfs fuzz: mode ${o.mode}, seed ${o.seed}, ${o.count} mutants per file system, ${((Date.now() - start) / 1000).toFixed(1)} s`);
  console.log(table(summaries));
  const kept = keptList(summaries);
  if (kept) console.log(`\nkept mutants:\n${kept}`);
  if (v.json) writeJson(v.json, o, summaries);
  const bad = uncontained(summaries);
  console.log(bad === 0 ? '\nno hang, escape or crash' : `\n${bad} uncontained (hang, escape or crash)`);
  return bad === 0 ? 0 : 1;
}

main().then(code => { process.exitCode = code; }, (e: unknown) => {
  if (e instanceof UsageError || e instanceof SetupError) {
    process.stderr.write(`fuzz: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    throw e;
  }
});
