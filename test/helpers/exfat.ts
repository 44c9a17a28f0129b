// exFAT images for tests: made by mkfs.exfat, filled or read back by an
// independent implementation (exfat-fuse, Debian's FUSE driver, on a loop
// device: as root it asks for a block device), judged by fsck.exfat -n.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { sha } from './iso.js';

/** A sparse image of `mb` MiB made by mkfs.exfat with this cluster size (bytes), and more mkfs.exfat arguments. */
export function mkexfat(dir: string, name: string, mb: number, clusterSize: number, label?: string, args: string[] = []): string {
  const img = path.join(dir, name);
  execFileSync('truncate', ['-s', `${mb}M`, img]);
  execFileSync('mkfs.exfat', ['-c', String(clusterSize), ...(label ? ['-L', label] : []), ...args, img], { stdio: 'pipe' });
  return img;
}

/** Run fn with the image mounted by exfat-fuse at a fresh directory; always unmounted and detached after. */
export function withExfatFuse<T>(img: string, fn: (dir: string) => T, readOnly = false): T {
  const mnt = `${img}.fuse`;
  mkdirSync(mnt, { recursive: true });
  const loop = execFileSync('losetup', ['--find', '--show', img]).toString().trim();
  try {
    execFileSync('mount.exfat-fuse', [...(readOnly ? ['-o', 'ro'] : []), loop, mnt], { stdio: 'pipe' });
    try {
      return fn(mnt);
    } finally {
      const r = spawnSync('fusermount', ['-u', mnt]);
      if (r.status !== 0) spawnSync('umount', ['-l', mnt]);
      // The unmount returns before exfat-fuse has written what it still holds
      // and exited (an image read at once was once seen empty): wait for it.
      for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `${loop} ${mnt}`]).status === 0; i++) spawnSync('sleep', ['0.1']);
    }
  } finally {
    // exfat-fuse may still hold the loop device for a moment after the unmount.
    for (let i = 0; i < 50 && spawnSync('losetup', ['-d', loop]).status !== 0; i++) spawnSync('sleep', ['0.1']);
  }
}

/** fsck.exfat -n: exit 0 and "clean". */
export function fsckExfat(img: string): void {
  const r = spawnSync('fsck.exfat', ['-n', img]);
  const text = r.stdout.toString() + r.stderr.toString();
  expect(text, text).toMatch(/: clean\./);
  expect(r.status, text).toBe(0);
}

/** Every file under a host directory: relative path -> sha256 of its bytes ('dir' for directories). */
export function hostTree(root: string, rel = '', out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(path.join(root, rel))) {
    const q = `${rel}/${name}`;
    if (statSync(path.join(root, q)).isDirectory()) { out.set(q, 'dir'); hostTree(root, q, out); }
    else out.set(q, sha(readFileSync(path.join(root, q))));
  }
  return out;
}

export function peek(img: string, off: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync(img, 'r');
  try { readSync(fd, b, 0, n, off); } finally { closeSync(fd); }
  return b;
}

export function poke(img: string, off: number, bytes: Uint8Array): void {
  const fd = openSync(img, 'r+');
  try { writeSync(fd, bytes, 0, bytes.length, off); } finally { closeSync(fd); }
}

/** VolumeFlags of the main boot sector. */
export function volumeFlags(img: string): number {
  return peek(img, 106, 2).readUInt16LE(0);
}

/** Names that test the edges: the longest (255 units; Linux allows 255 bytes), non-ASCII, outside the BMP. */
export const NAMES = {
  long: `${'L'.repeat(251)}.txt`,
  longCjk: `${'日本'.repeat(42)}語`,
  nonAscii: 'Ünïcödé — 日本語のファイル名.txt',
  astral: '😀 smile 𝄞.bin',
  greek: 'Σίσυφος',
};
