// What the FAT mount tests share: images by mkfs.vfat, the real tools as
// judges (fsck.fat, mtools), the boot sector and FAT[1] read independently
// of the driver, and a mounted image.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { pattern, rumpMount, run, sh } from './mount.js';

export const env = { ...process.env, MTOOLS_SKIP_CHECK: '1', TZ: 'UTC', LC_ALL: 'C.UTF-8' };


export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A sparse image made by mkfs.vfat over kb KiB. */
export function mkfs(dir: string, kb: number, args: string[]): string {
  const img = path.join(dir, 'fat.img');
  execFileSync('mkfs.vfat', ['-C', ...args, img, String(kb)], { env, stdio: 'pipe' });
  return img;
}

/** A FAT image over kb KiB (dir/fat.img, made anew) holding a copy of the tree at src (mcopy -s). */
export function fatOfTree(dir: string, kb: number, src: string): string {
  rmSync(path.join(dir, 'fat.img'), { force: true });
  const img = mkfs(dir, kb, []);
  execFileSync('mcopy', ['-s', '-i', img, ...readdirSync(src).map(n => path.join(src, n)), '::/'], { env, stdio: 'pipe' });
  return img;
}

export function ok(r: ReturnType<typeof run>): string {
  expect(r.stderr, r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}
export const shOk = (script: string) => ok(sh(script, { env }));
export const mtools = (cmd: string, args: string[]) => ok(run(cmd, args, { env }));

/** Whatever a user sees of a tree: names and types, sizes (find and ls -l), contents. */
export function listing(dir: string): string {
  return shOk(`cd '${dir}' && echo '== find' && find . -mindepth 1 -printf '%p %y\\n' | sort
echo '== sizes' && find . -type f -printf '%p %s\\n' | sort
echo '== ls' && ls -lAR --time-style=+ . | awk '/:$/ { print } /^-/ { $1 = $2 = $3 = $4 = ""; print }'
echo '== sums' && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`);
}

/** fsck.fat -n: exit 0 and nothing to complain about. */
export function fsckClean(img: string): void {
  const r = run('fsck.fat', ['-n', img], { env });
  const text = r.stdout + r.stderr;
  expect(text.split('\n').filter(l => l && !/^fsck\.fat |files, .* clusters$/.test(l)), text).toEqual([]);
  expect(r.status, text).toBe(0);
}

export function peek(img: string, off: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync(img, 'r');
  try { readSync(fd, b, 0, n, off); } finally { closeSync(fd); }
  return b;
}

export function poke(img: string, off: number, bytes: Buffer): void {
  const fd = openSync(img, 'r+');
  try { writeSync(fd, bytes, 0, bytes.length, off); } finally { closeSync(fd); }
}

/** The boot sector's geometry, read independently of the driver. */
export function bpb(img: string) {
  const b = peek(img, 0, 512);
  const bps = b.readUInt16LE(11), rsvd = b.readUInt16LE(14), nfats = b[16];
  const fat32 = b.readUInt16LE(22) === 0;
  const fatSectors = fat32 ? b.readUInt32LE(36) : b.readUInt16LE(22);
  const total = b.readUInt16LE(19) || b.readUInt32LE(32);
  const clusters = (total - rsvd - nfats * fatSectors - (b.readUInt16LE(17) * 32) / bps) / b[13];
  const bits = fat32 ? 32 : clusters < 4085 ? 12 : 16;
  return { bps, fatOff: rsvd * bps, fatBytes: fatSectors * bps, nfats, bits };
}

/** FAT[1]'s clean-shutdown bit (FAT16 bit 15, FAT32 bit 27; FAT12 has none). */
export function cleanBit(img: string): boolean {
  const g = bpb(img);
  if (g.bits === 12) return true;
  const f = peek(img, g.fatOff, 8);
  return g.bits === 32 ? (f.readUInt32LE(4) & 0x08000000) !== 0 : (f.readUInt16LE(2) & 0x8000) !== 0;
}

/** A tree with long, unicode, mixed-case and 8.3 names, nesting, empty and multi-MB files (mtools keeps to the BMP). */
export function fixtureTree(dir: string, bigSize: number): void {
  const put = (p: string, data: Buffer | string) => {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), data);
  };
  put('README.TXT', 'read me\n');
  put('lower.txt', 'lower case 8.3\n');
  put('MiXeD.Txt', 'mixed\n');
  put('Ünïcødé ファイル.txt', 'unicode\n');
  put('empty', '');
  put('Documents and Settings/a very long directory name indeed/big file.bin', pattern(bigSize, 1));
  for (let i = 1; i <= 12; i++) put(`Documents and Settings/Same Prefix Name ${i}.data`, pattern(i * 700, i + 1));
  put('DIR8/SUB/FILE.C', pattern(5000, 99));
  mkdirSync(path.join(dir, 'empty dir'));
}

export const fats = [
  { name: 'FAT12', kb: 8000, args: ['-F', '12', '-s', '4'], big: 3_000_000 },
  { name: 'FAT16', kb: 32768, args: ['-F', '16', '-s', '4'], big: 6_000_000 },
  // FAT32 needs 65525 clusters for mtools to take it as FAT32.
  { name: 'FAT32', kb: 300_000, args: ['-F', '32', '-s', '8'], big: 6_000_000 },
];

/** A mount point and a mounted image. */
export function mountImage(img: string, opts: string[] = ['-o', 'tz=UTC']) {
  const mp = path.join(path.dirname(img), 'mnt');
  mkdirSync(mp, { recursive: true });
  return rumpMount('rump_msdos', [...opts, img, mp], mp, { TZ: 'UTC' });
}

