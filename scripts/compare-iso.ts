#!/usr/bin/env node
// rump_cd9660 beside fuseiso and the kernel's iso9660 (loop mount, as the
// reference, where the running kernel has it) on one image, and the source
// tree on the host's own file system as a floor: sequential read of a
// 256 MiB file and walks of a tree of 5,000 files with find and ls -lR, each
// cold (unmount, drop the page cache, mount again). Median of 3 with the
// spread, as a table.
//   node dist/scripts/compare-iso.js        (as root; builds dist/ first: npx tsc -p .)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNS = 3;
const BIG = 256 << 20;
const DIRS = 50, PER_DIR = 100;
const server = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../servers/rump_cd9660.js');

function check(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.error ?? ''}`);
  return r.stdout;
}

function mounted(mp: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] === mp);
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 10));
  }
}

/** A FUSE server run in the foreground as our child: mounted once the mount table shows it, gone once it exits. */
function fuseSystem(name: string, argv: (img: string, mp: string) => string[]): System {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  return {
    name,
    async mount(img, mp) {
      const [cmd, ...args] = argv(img, mp);
      const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
      child = c;
      exited = new Promise(resolve => c.on('exit', () => resolve()));
      let dead = false;
      void exited.then(() => { dead = true; });
      await until(`${name} to mount`, () => { if (dead) throw new Error(`${name} exited before mounting`); return mounted(mp); });
      return mp;
    },
    async unmount(mp) {
      check('umount', [mp]);
      await exited;
      child = null;
    },
    kill() { child?.kill('SIGKILL'); },
  };
}

interface System {
  name: string;
  /** Why it cannot run here, if it cannot. */
  missing?(): string | null;
  /** Mounts img at mp; returns the directory holding big.bin and tree/. */
  mount(img: string, mp: string): Promise<string>;
  unmount(mp: string): Promise<void>;
  kill(): void;
}

const systems: System[] = [
  fuseSystem('rump_cd9660', (img, mp) => [process.execPath, server, '-f', img, mp]),
  fuseSystem('fuseiso', (img, mp) => ['fuseiso', '-n', img, mp, '-f']),
  {
    name: 'kernel iso9660 (loop)',
    missing: () => /\tiso9660\n/.test(readFileSync('/proc/filesystems', 'utf8')) ? null : 'not in this kernel (/proc/filesystems)',
    async mount(img, mp) { check('mount', ['-t', 'iso9660', '-o', 'loop,ro', img, mp]); return mp; },
    async unmount(mp) { check('umount', [mp]); },
    kill() { /* nothing runs */ },
  },
  {
    name: 'host fs, source tree (no image)',
    async mount(img) { return path.join(path.dirname(img), 'src'); },
    async unmount() { /* nothing mounted */ },
    kill() { /* nothing runs */ },
  },
];

interface Op { name: string; unit: string; run(mp: string): number }

/** Seconds a shell command takes; its output must satisfy ok. */
function timed(script: string, mp: string, ok: (out: string) => boolean): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/bin/sh', ['-c', script, 'sh', mp], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 || !ok(r.stdout)) throw new Error(`${script} on ${mp}: exit ${r.status}: ${r.stderr} ${r.stdout.slice(0, 200)}`);
  return s;
}

const FILES = DIRS * PER_DIR;
const ops: Op[] = [
  { name: 'read 256 MiB', unit: 'MB/s', run: mp => BIG / 1e6 / timed('dd if="$1/big.bin" of=/dev/null bs=1M 2>&1 | grep -o "^[0-9]* bytes"', mp, o => o.trim() === `${BIG} bytes`) },
  { name: `find ${FILES} files`, unit: 's', run: mp => timed('find "$1/tree" | wc -l', mp, o => Number(o) === FILES + DIRS + 1) },
  { name: `ls -lR ${FILES} files`, unit: 's', run: mp => timed('ls -lR "$1/tree" | grep -c "^-"', mp, o => Number(o) === FILES) },
];

function buildImage(dir: string): string {
  const src = path.join(dir, 'src');
  mkdirSync(src);
  const fd = openSync(path.join(src, 'big.bin'), 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < BIG / chunk.length; i++) writeSync(fd, randomFillSync(chunk));
  } finally {
    closeSync(fd);
  }
  for (let d = 0; d < DIRS; d++) {
    const sub = path.join(src, 'tree', `dir-${d}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < PER_DIR; f++) writeFileSync(path.join(sub, `file-${f}.txt`), `file ${f} of directory ${d}\n`);
  }
  const img = path.join(dir, 'bench.iso');
  check('genisoimage', ['-quiet', '-R', '-J', '-o', img, src]);
  return img;
}

function dropCaches(): void {
  check('sync', []);
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number, unit: string) => (unit === 'MB/s' ? x.toFixed(0) : x.toFixed(2));

if (process.getuid?.() !== 0) throw new Error('compare-iso: run as root (drop_caches, loop mounts)');
const dir = mkdtempSync(path.join(tmpdir(), 'compare-iso-'));
const mp = path.join(dir, 'mnt');
mkdirSync(mp);
const results = new Map<string, number[]>();
let current: System | null = null;
try {
  const img = buildImage(dir);
  console.error(`image ${img}: ${(Number(check('stat', ['-c', '%s', img])) / 2 ** 20).toFixed(0)} MiB; ${RUNS} cold runs per cell`);
  for (let run = 0; run < RUNS; run++) {
    for (const op of ops) {
      // Systems interleaved within a run, so that drift in the machine touches all alike.
      for (const sys of systems.filter(x => !x.missing?.())) {
        dropCaches();
        current = sys;
        const root = await sys.mount(img, mp);
        try {
          const key = `${sys.name}\0${op.name}`;
          results.set(key, [...(results.get(key) ?? []), op.run(root)]);
        } finally {
          await sys.unmount(mp);
          current = null;
        }
      }
    }
  }
  const header = ['', ...ops.map(o => `${o.name} (${o.unit})`)];
  const rows = systems.map(sys => [sys.name, ...ops.map(op => {
    const why = sys.missing?.();
    if (why) return `n/a: ${why}`;
    const xs = results.get(`${sys.name}\0${op.name}`)!;
    return `${fmt(median(xs), op.unit)} (${fmt(Math.min(...xs), op.unit)}-${fmt(Math.max(...xs), op.unit)})`;
  })]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map(r => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map(w => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log(`\nmedian (min-max) of ${RUNS} cold runs each; read is dd bs=1M of one file, walks are find and ls -lR over ${DIRS} directories of ${PER_DIR} files.`);
} finally {
  if (current) current.kill();
  if (mounted(mp)) spawnSync('umount', ['-l', mp]);
  rmSync(dir, { recursive: true, force: true });
}
