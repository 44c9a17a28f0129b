// The workloads, and one session: mount a target, run every workload in
// order (cold caches where the name says so), read the server's memory,
// unmount. Each timed workload runs in a child process with a time limit.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { BIG, META_DIR, TREE_DIR, treeFiles } from './layout.js';
import { dropCaches, memoryOf, mounted, mountWith, unmount, type Live, type Memory } from './mounts.js';
import { summarize } from './stats.js';
import type { Context, FsGroup, Options, Target } from './targets.js';

export interface Workload {
  id: string;
  title(o: Options): string;
  unit: string;
  better: 'higher' | 'lower';
}

const n = (x: number) => x.toLocaleString('en-US');
const size = (bytes: number) => bytes >= 1 << 20 ? `${n(bytes / (1 << 20))} MiB` : `${n(bytes / 1024)} KiB`;

export const WORKLOADS: readonly Workload[] = [
  { id: 'seq_write', title: o => `sequential write ${size(o.size)} + fsync`, unit: 'MB/s', better: 'higher' },
  { id: 'seq_read', title: o => `sequential read ${size(o.size)}, cold`, unit: 'MB/s', better: 'higher' },
  { id: 'rand_read_1', title: () => '4 KiB random reads, 1 reader, cold', unit: 'reads/s', better: 'higher' },
  { id: 'rand_read_4', title: () => '4 KiB random reads, 4 readers, cold', unit: 'reads/s', better: 'higher' },
  { id: 'create', title: o => `create ${n(o.files)} files in a directory`, unit: 'files/s', better: 'higher' },
  { id: 'stat', title: o => `stat ${n(o.files)} files, cold`, unit: 'files/s', better: 'higher' },
  { id: 'list', title: o => `list ${n(o.files)} files (readdir)`, unit: 'ms', better: 'lower' },
  { id: 'unlink', title: o => `unlink ${n(o.files)} files`, unit: 'files/s', better: 'higher' },
  { id: 'walk_ls', title: o => `ls -lR of a ${n(treeFiles(o.tree).length)}-file tree, cold`, unit: 'ms', better: 'lower' },
  { id: 'walk_find', title: o => `find in the ${n(treeFiles(o.tree).length)}-file tree, cold`, unit: 'ms', better: 'lower' },
  { id: 'mount', title: () => 'mount latency (command start to mount answering; median of a run\'s mounts)', unit: 'ms', better: 'lower' },
  { id: 'rss', title: () => 'server VmRSS after the workloads', unit: 'MiB', better: 'lower' },
  { id: 'hwm', title: () => 'server VmHWM (peak resident)', unit: 'MiB', better: 'lower' },
];

/** A figure, or why there is none. */
export type Outcome = number | { na: string };

export class Aborted extends Error {}

let aborted = false;
let current: { kill(): void } | null = null;

/** Ctrl-C: stop the running workload; sessions then unmount on their way out. */
export function abortWork(): void {
  aborted = true;
  current?.kill();
}

function checkAbort(): void {
  if (aborted) throw new Aborted('interrupted');
}

/** Run a program to completion within the time limit; its stdout. */
function runChild(argv: readonly string[], timeoutS: number): Promise<string> {
  checkAbort();
  return new Promise((resolve, reject) => {
    // Its own process group: a timeout or Ctrl-C kills it with its children (randread's readers).
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const kill = () => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } };
    current = { kill };
    let out = '', err = '', timedOut = false;
    c.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const timer = setTimeout(() => { timedOut = true; kill(); }, timeoutS * 1000);
    c.on('error', e => { err += String(e); });
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      if (aborted) reject(new Aborted('interrupted'));
      else if (timedOut) reject(new Error(`timed out after ${timeoutS} s`));
      else if (code !== 0) reject(new Error(`exit ${code ?? signal}: ${err.trim().split('\n').pop()}`));
      else resolve(out);
    });
  });
}

async function work(ctx: Context, ...args: string[]): Promise<{ seconds: number; count: number }> {
  // Margin: a workload that bounds its own time (create) reports before it is killed.
  return JSON.parse(await runChild([process.execPath, path.join(ctx.dist, 'scripts/bench/work.js'), ...args], ctx.opts.timeout + 30));
}

/** Lines a program prints, timed. */
async function lines(ctx: Context, ...argv: string[]): Promise<{ seconds: number; count: number }> {
  const t0 = performance.now();
  const out = await runChild(argv, ctx.opts.timeout);
  return { seconds: (performance.now() - t0) / 1000, count: out.split('\n').length - 1 };
}

async function randomReads(ctx: Context, file: string, readers: number): Promise<number> {
  const pages = Math.floor(ctx.opts.size / 4096);
  const ops = Math.min(ctx.opts.ops, pages);
  const seconds = Number(await runChild([ctx.bin.randread, file, String(readers), String(ops), '12345'], ctx.opts.timeout));
  return ops / seconds;
}

function expect(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: ${got}, expected ${want}`);
}

/** Cold passes of each read-only workload (reads, stat, ls -lR, find) in a session; its figure is their median. */
const COLD_PASSES = 3;

/** At least this many mounts make a session's mount latency. */
const LATENCY_MOUNTS = 5;

/** One target, once: every workload's figure or the reason it has none. */
export async function session(ctx: Context, group: FsGroup, target: Target, source: string | null): Promise<Record<string, Outcome>> {
  const out: Record<string, Outcome> = {};
  const mnt = mkdtempSync(path.join(ctx.work, 'mnt-'));
  const at = (...p: string[]) => path.join(mnt, ...p);
  const o = ctx.opts;
  let live: Live | null = null;
  const memory: Memory[] = [];
  // Every mount of the session is a sample (the cold remounts too): one alone moves by a third here.
  const mounts: number[] = [];

  const up = async () => {
    const r = await mountWith(target.kind, target.command(ctx, source, mnt), mnt);
    live = r.live;
    mounts.push(r.ms);
  };
  const down = async () => {
    const l: Live | null = live;
    if (!l) return;
    live = null;
    if (l.pid !== null) {
      const m = memoryOf(l.pid);
      if (m) memory.push(m);
    }
    await unmount(l);
  };
  // Cold: nothing of the file system in the host's caches, nor in the server's.
  const cold = async () => {
    if (target.persistent) {
      await down();
      await up();
    }
    dropCaches();
  };
  // A target that mounts once a session (no cold remounts: tmpfs) would give
  // one mount's latency, which moves by a third here: it mounts again, empty,
  // after its memory figures are taken, until there are LATENCY_MOUNTS. (Never
  // a recursive rmdir after: a mount that would not go keeps its files.)
  const moreMounts = async () => {
    try {
      while (mounts.length > 0 && mounts.length < LATENCY_MOUNTS) {
        checkAbort();
        await up();
        const l: Live = live!;
        live = null;
        await unmount(l);
      }
    } catch (e) {
      if (e instanceof Aborted) throw e;
      // The workloads' own mounts stand.
    }
  };
  // The read-only workloads take a fifth of a second or less on a fast
  // target: one pass moves by a third here (the machine's other work;
  // fuseiso's own cold find took 101-145 ms within one run), and a ratio of
  // medians of three runs still flipped across a budget from run to run.
  const coldPasses = async (pass: () => Promise<number>) => {
    const figures: number[] = [];
    for (let i = 0; i < COLD_PASSES; i++) {
      await cold();
      figures.push(await pass());
    }
    return summarize(figures).median;
  };
  const step = async (ids: string[], fn: () => Promise<Record<string, number>>) => {
    checkAbort();
    try {
      Object.assign(out, await fn());
    } catch (e) {
      if (e instanceof Aborted) throw e;
      for (const id of ids) out[id] ??= { na: `failed: ${(e as Error).message.split('\n')[0].slice(0, 200)}` };
    }
  };
  const na = (ids: string[], why: string) => { for (const id of ids) out[id] = { na: why }; };
  const metaDir = target.flat ? mnt : at(META_DIR);
  const mbps = (r: { seconds: number; count: number }) => r.count / r.seconds / 1e6;

  try {
    await up();
    if (target.flat) {
      na(['walk_ls', 'walk_find'], 'flat file system: no directories');
    } else {
      const files = treeFiles(o.tree).length;
      if (group.treeThroughMount) await step(['walk_ls', 'walk_find'], async () => { await lines(ctx, 'cp', '-r', ctx.hostTree, at(TREE_DIR)); return {}; });
      await step(['walk_ls'], async () => ({ walk_ls: await coldPasses(async () => (await lines(ctx, 'ls', '-lR', at(TREE_DIR))).seconds * 1000) }));
      await step(['walk_find'], async () => ({
        walk_find: await coldPasses(async () => {
          const r = await lines(ctx, 'find', at(TREE_DIR));
          // The tree's files, its 110 directories and itself.
          expect('find: lines', r.count, files + 111);
          return r.seconds * 1000;
        }),
      }));
    }
    if (group.readOnly) na(['seq_write', 'create', 'unlink'], 'read-only file system');
    else await step(['seq_write'], async () => ({ seq_write: mbps(await work(ctx, 'seqwrite', at(BIG), String(o.size))) }));
    await step(['seq_read'], async () => ({
      seq_read: await coldPasses(async () => {
        const r = await work(ctx, 'seqread', at(BIG));
        expect('bytes read', r.count, o.size);
        return mbps(r);
      }),
    }));
    for (const readers of [1, 4]) {
      const id = `rand_read_${readers}`;
      await step([id], async () => ({ [id]: await coldPasses(() => randomReads(ctx, at(BIG), readers)) }));
    }
    let created = true;
    if (!group.readOnly) {
      await step(['create'], async () => {
        const r = await work(ctx, 'create', metaDir, String(o.files), String(o.timeout));
        if (r.count === o.files) return { create: r.count / r.seconds };
        created = false;
        na(['stat', 'list', 'unlink'], 'the create workload did not finish');
        throw new Error(`gave up after ${o.timeout} s: ${r.count} of ${o.files} files created (${(r.count / r.seconds).toFixed(1)}/s)`);
      });
    }
    if (created) {
      await step(['stat'], async () => ({ stat: await coldPasses(async () => o.files / (await work(ctx, 'stat', metaDir, String(o.files))).seconds) }));
      await step(['list'], async () => {
        const r = await work(ctx, 'list', metaDir);
        // A flat target's root holds the sequential file too.
        expect('entries listed', r.count, o.files + (target.flat ? 1 : 0));
        return { list: r.seconds * 1000 };
      });
      if (!group.readOnly) await step(['unlink'], async () => ({ unlink: o.files / (await work(ctx, 'unlink', metaDir, String(o.files))).seconds }));
    }
  } catch (e) {
    if (e instanceof Aborted) throw e;
    for (const w of WORKLOADS) out[w.id] ??= { na: `failed: ${(e as Error).message.split('\n')[0].slice(0, 200)}` };
  } finally {
    await down();
    if (!mounted(mnt)) await moreMounts().finally(() => { if (!mounted(mnt)) rmdirSync(mnt); });
  }
  if (mounts.length > 0) out.mount = summarize(mounts).median;
  if (target.kind === 'kernel') {
    na(['rss', 'hwm'], 'in the kernel');
  } else if (memory.length > 0) {
    out.rss = memory[memory.length - 1].rssMiB;
    out.hwm = Math.max(...memory.map(m => m.hwmMiB));
  } else {
    out.rss ??= { na: 'server not found' };
    out.hwm ??= { na: 'server not found' };
  }
  return out;
}
