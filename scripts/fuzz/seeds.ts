// Seed images are made by the real tools (mkfs.vfat + mtools, genisoimage)
// from a small host tree: nested directories, long and non-ASCII names,
// empty/small/multi-cluster files, a directory spanning several clusters, a
// tree deeper than ISO 9660's 8 levels, and (where the format has them)
// symlinks. Built once into fuzz/out/seeds/ and reused, so that failing
// mutants saved by earlier campaigns replay against the same bytes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from './prng.js';

/** Fixed time for every file of the tree (2023-11-14). */
const TREE_TIME = 1_700_000_000;

/** Write the seed tree under `dir`; symlinks only when the format can hold them. */
export function makeTree(dir: string, symlinks: boolean): void {
  const rng = new Rng(1);
  const file = (rel: string, size: number) => {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, Uint8Array.from({ length: size }, () => 0x20 + rng.int(95)));
  };
  file('README.TXT', 300);
  file('A long file name with spaces.txt', 1200);
  file('ünïcödé – 名前.txt', 40);
  file('empty', 0);
  file('big.bin', 70_000);
  file('docs/notes/todo.md', 5000);
  file('docs/notes/Mixed Case Name.Data', 10);
  for (let i = 0; i < 40; i++) file(`many/file number ${String(i).padStart(2, '0')} with a long name.txt`, 16 + i);
  file('a/b/c/d/e/f/g/h/i/j/leaf.txt', 100);
  if (symlinks) {
    symlinkSync('../README.TXT', path.join(dir, 'docs/readme-link'));
    symlinkSync('/etc/hostname', path.join(dir, 'absolute-link'));
    symlinkSync('nowhere/at/all', path.join(dir, 'dangling-link'));
    symlinkSync('a/b/c', path.join(dir, 'dir-link'));
  }
  const touch = (p: string) => utimesSync(p, TREE_TIME, TREE_TIME);
  execFileSync('find', [dir, '-depth', '-not', '-type', 'l', '-print0']).toString().split('\0').filter(Boolean).forEach(touch);
}

export interface SeedSpec {
  /** Unique among all seeds of the file system (names the cached image). */
  name: string;
  /** Build the image at `out` from a fresh host tree in `work`. */
  build(out: string, work: string): void;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
}

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The seed image's path under `dir`, building it first when it is not there. */
export function seedImage(dir: string, fs: string, spec: SeedSpec): string {
  const out = path.join(dir, `${fs}-${spec.name}.img`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), 'rumpfs-seed-'));
  try {
    spec.build(path.join(work, 'image'), work);
    copyFileSync(path.join(work, 'image'), out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}
