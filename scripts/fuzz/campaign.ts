// A campaign: seeds -> N mutants per file system -> run each (in-process
// in a worker pool, or through real mounts) -> classify -> keep the
// failures under <out>/<fs>/ with what it takes to replay them.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLASSES, classify, tail, UNCONTAINED, type Outcome, type OutcomeClass } from './classify.js';
import { defaultLimits, type Limits } from './exercise.js';
import { MountRunner, SetupError } from './mountmode.js';
import { mutantPatches, writeMutant, type Patch } from './mutate.js';
import { WorkerSlot } from './pool.js';
import { seedImage, sha256 } from './seeds.js';
import { targets, type FuzzTarget } from './targets.js';

export type Mode = 'inprocess' | 'mount';

export interface CampaignOptions {
  fs: string[];
  count: number;
  seed: number;
  mode: Mode;
  jobs: number;
  timeoutMs: number;
  /** fuzz/out: seeds/ and <fs>/ with the kept mutants. */
  outDir: string;
  workerPath: string;
  /** The repository root (dist/servers/ lives there). */
  root: string;
  limits?: Limits;
  progress?: (line: string) => void;
}

/** Everything needed to run one mutant again. */
export interface MutantSpec {
  fs: string;
  mode: Mode;
  seedName: string;
  seedPath: string;
  seedSha256: string;
  campaignSeed: number;
  index: number;
  patches: Patch[];
}

export interface MutantRecord extends MutantSpec { outcome: Outcome; ms: number; kept?: string }

export interface FsSummary { fs: string; mutants: number; counts: Record<OutcomeClass, number>; kept: MutantRecord[] }

/** Failures worth keeping: uncontained ones, and in-process panics (a driver bug to fix). */
export function keep(mode: Mode, c: OutcomeClass): boolean {
  return UNCONTAINED.includes(c) || (mode === 'inprocess' && c === 'panic-contained');
}

interface Seed { name: string; path: string; sha256: string; image: Uint8Array; regions: ReturnType<FuzzTarget['regions']> }

export function loadSeeds(t: FuzzTarget, outDir: string): Seed[] {
  return t.seeds.map(spec => {
    const p = seedImage(path.join(outDir, 'seeds'), t.fs, spec);
    const image = readFileSync(p);
    return { name: spec.name, path: p, sha256: createHash('sha256').update(image).digest('hex'), image, regions: t.regions(image) };
  });
}

/** Mutant i of a campaign: seed i mod #seeds, patches from (fs, seed, campaign seed, i). */
export function mutantSpec(t: FuzzTarget, seeds: Seed[], mode: Mode, campaignSeed: number, index: number): MutantSpec {
  const s = seeds[index % seeds.length];
  return {
    fs: t.fs, mode, seedName: s.name, seedPath: s.path, seedSha256: s.sha256, campaignSeed, index,
    patches: mutantPatches(t.fs, s.name, s.image, s.regions, campaignSeed, index),
  };
}

const CANARY = 'canary.txt';
const CANARY_TEXT = 'must stay exactly as it is\n';

/** A lane's private directory: the mutant image and a canary beside it. */
export class Lane {
  readonly dir: string;
  readonly image: string;
  constructor(base: string, name: string) {
    this.dir = path.join(base, name);
    this.image = path.join(this.dir, 'image.img');
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(path.join(this.dir, CANARY), CANARY_TEXT);
  }

  /** What changed next to the image (empty: nothing). */
  escaped(): string[] {
    const out: string[] = [];
    let canary = '';
    try { canary = readFileSync(path.join(this.dir, CANARY), 'utf8'); } catch { /* reported below */ }
    if (canary !== CANARY_TEXT) out.push(`canary file next to the image changed or vanished`);
    const extra = readdirSync(this.dir).filter(n => n !== CANARY && n !== 'image.img');
    if (extra.length > 0) out.push(`new files next to the image: ${extra.join(', ')}`);
    return out;
  }
}

/**
 * The seed must never change. Mount mode hashes it after every mutant (a
 * server could reach it); in-process the worker never learns its path, and
 * hashing a 34 MB FAT32 seed per mutant would dominate, so its size and
 * times stand in (any write changes ctime).
 */
const seedStats = new Map<string, string>();
function seedChanged(spec: MutantSpec, hash: boolean): boolean {
  if (hash) return sha256(spec.seedPath) !== spec.seedSha256;
  const st = statSync(spec.seedPath);
  const sig = `${st.size}/${st.mtimeMs}/${st.ctimeMs}`;
  if (!seedStats.has(spec.seedPath)) seedStats.set(spec.seedPath, sha256(spec.seedPath) === spec.seedSha256 ? sig : 'changed');
  return seedStats.get(spec.seedPath) !== sig;
}

/** Run one mutant in a lane, then check what is outside it. */
export async function runMutant(spec: MutantSpec, lane: Lane, runner: WorkerSlot | MountRunner, t: FuzzTarget, limits: Limits): Promise<Outcome> {
  await writeMutant(spec.seedPath, spec.patches, lane.image);
  try {
    let outcome: Outcome;
    if (runner instanceof WorkerSlot) {
      const run = await runner.run({ mode: 'inprocess', mountType: t.mountType, image: lane.image, readWrite: t.readWrite, limits });
      // Dead before its first step: the worker or the library cannot even load (a broken build), no mutant's doing.
      if (run.kind === 'died' && run.step === 'start') throw new SetupError(`the worker could not start:\n${tail(run.stderr, 12)}`);
      outcome = classify(run, lane.escaped());
    } else {
      outcome = await runner.run(lane, t, limits);
    }
    if (seedChanged(spec, runner instanceof MountRunner)) outcome = { class: 'escape', message: `seed image ${spec.seedPath} changed` };
    return outcome;
  } finally {
    rmSync(lane.image, { force: true });
  }
}

export function replayCommand(file: string): string {
  return `node dist/scripts/fuzz.js --replay ${path.relative(process.cwd(), file) || file}`;
}

export async function runCampaign(o: CampaignOptions): Promise<FsSummary[]> {
  const limits = o.limits ?? defaultLimits;
  const base = mkdtempSync(path.join(os.tmpdir(), 'rumpfs-fuzz-'));
  const summaries: FsSummary[] = [];
  const runners: (WorkerSlot | MountRunner)[] = [];
  try {
    if (o.mode === 'mount') for (const name of o.fs) MountRunner.check(o.root, targets[name]);
    const mountRunners = o.mode === 'mount' ? await MountRunner.setup(o.root, base, o.jobs, o.timeoutMs, o.workerPath) : undefined;
    for (let j = 0; j < o.jobs; j++) {
      runners.push(mountRunners?.[j] ?? new WorkerSlot({ workerPath: o.workerPath, cwd: mkdtempSync(path.join(base, 'cwd-')), timeoutMs: o.timeoutMs }));
    }
    for (const name of o.fs) {
      const t = targets[name];
      const seeds = loadSeeds(t, o.outDir);
      const summary: FsSummary = { fs: name, mutants: o.count, counts: Object.fromEntries(CLASSES.map(c => [c, 0])) as Record<OutcomeClass, number>, kept: [] };
      let next = 0, done = 0;
      const lanes = runners.map((_, j) => new Lane(base, `${name}-lane${j}`));
      await Promise.all(runners.map(async (runner, j) => {
        for (let i = next++; i < o.count; i = next++) {
          const spec = mutantSpec(t, seeds, o.mode, o.seed, i);
          const start = Date.now();
          const outcome = await runMutant(spec, lanes[j], runner, t, limits);
          summary.counts[outcome.class]++;
          if (keep(o.mode, outcome.class)) {
            const rec: MutantRecord = { ...spec, outcome, ms: Date.now() - start };
            rec.kept = saveMutant(o.outDir, rec);
            summary.kept.push(rec);
            o.progress?.(`${name} #${i} ${outcome.class}: ${outcome.message}\n    ${replayCommand(rec.kept)}`);
          }
          if (++done % 100 === 0) o.progress?.(`${name}: ${done}/${o.count}`);
        }
      }));
      summary.kept.sort((a, b) => a.index - b.index);
      summaries.push(summary);
    }
  } finally {
    for (const r of runners) await r.close();
    rmSync(base, { recursive: true, force: true });
  }
  return summaries;
}

function saveMutant(outDir: string, rec: MutantRecord): string {
  const dir = path.join(outDir, rec.fs);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${rec.mode}-${rec.seedName}-s${rec.campaignSeed}-${rec.index}.json`);
  writeFileSync(file, JSON.stringify({ ...rec, kept: undefined, replay: replayCommand(file) }, null, 2) + '\n');
  return file;
}
