// ext2/3/4 test images: a source tree with every kind of file, images made
// from it by mke2fs -d (then e2fsck -fyD, which indexes the big directory),
// nanosecond times set by debugfs, and the tree's description as the host
// sees it, to compare what a driver reads against.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as nfs from 'node:fs';
import * as path from 'node:path';
import { pattern } from './mount.js';

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface Variant { name: string; type: 'ext2' | 'ext3' | 'ext4'; block: number; inode: number }

/** 1 KiB and 4 KiB blocks, 128- and 256-byte inodes, and ext4 with Debian's default features. */
export const VARIANTS: Variant[] = [
  { name: 'ext2-1k-128', type: 'ext2', block: 1024, inode: 128 },
  { name: 'ext2-4k-256', type: 'ext2', block: 4096, inode: 256 },
  { name: 'ext3-1k-256', type: 'ext3', block: 1024, inode: 256 },
  { name: 'ext4-4k-256', type: 'ext4', block: 4096, inode: 256 },
  { name: 'ext4-1k-128', type: 'ext4', block: 1024, inode: 128 },
];

export const LONG_A = 'p'.repeat(200) + '-alpha';
export const LONG_B = 'p'.repeat(200) + '-beta';
export const LONG_255 = 'n'.repeat(251) + '.txt';
export const MANY = 600;
/** Nanoseconds debugfs sets on ns.txt's mtime (256-byte inodes only hold them). */
export const NS = 123456789;
export const NS_MTIME = 1234567890;

export function buildTree(root: string): void {
  const p = (...a: string[]) => path.join(root, ...a);
  nfs.mkdirSync(p('dir/sub/deep'), { recursive: true });
  nfs.mkdirSync(p('many'));
  nfs.mkdirSync(p('sticky'), { mode: 0o1777 });
  nfs.chmodSync(p('sticky'), 0o1777);
  nfs.mkdirSync(p('sgid'));
  nfs.chmodSync(p('sgid'), 0o2750);
  nfs.writeFileSync(p('empty'), '');
  nfs.writeFileSync(p('hello.txt'), 'hello, world\n');
  nfs.writeFileSync(p('ns.txt'), 'nanoseconds\n');
  nfs.writeFileSync(p('block-and-one'), pattern(4097, 1));
  nfs.writeFileSync(p('dir/three-mib'), pattern(3 * 1024 * 1024 + 5, 2));
  nfs.writeFileSync(p('dir/sub/deep/file'), pattern(70000, 3));
  // Sparse: data at the start, in the middle and past the 1 KiB triple indirect boundary (64.3 MiB).
  const fd = nfs.openSync(p('sparse'), 'w');
  nfs.writeSync(fd, pattern(5000, 4), 0, 5000, 0);
  nfs.writeSync(fd, pattern(9000, 5), 0, 9000, 20 * 1024 * 1024 + 100);
  nfs.writeSync(fd, pattern(3000, 6), 0, 3000, 66 * 1024 * 1024 + 7);
  nfs.closeSync(fd);
  nfs.writeFileSync(p(LONG_A), 'a');
  nfs.writeFileSync(p(LONG_B), 'b');
  nfs.writeFileSync(p(LONG_255), 'long');
  nfs.writeFileSync(p('größe-日本.txt'), 'unicode');
  nfs.writeFileSync(p('setuid'), '#!/bin/sh\n');
  nfs.chmodSync(p('setuid'), 0o4755);
  nfs.writeFileSync(p('private'), 'secret');
  nfs.chmodSync(p('private'), 0o600);
  nfs.chownSync(p('private'), 1000, 1000);
  nfs.writeFileSync(p('bigids'), 'ids');
  nfs.chownSync(p('bigids'), 70000, 123456);
  nfs.writeFileSync(p('linked'), 'three names');
  nfs.linkSync(p('linked'), p('dir/link2'));
  nfs.linkSync(p('linked'), p('dir/sub/link3'));
  nfs.symlinkSync('hello.txt', p('fast-link'));
  nfs.symlinkSync('d/'.repeat(50) + 'target', p('slow-link'));
  nfs.symlinkSync('x'.repeat(1000), p('long-link'));
  execFileSync('mknod', [p('null'), 'c', '1', '3']);
  execFileSync('mknod', [p('bigdev'), 'b', '300', '70000']);
  execFileSync('mkfifo', [p('fifo')]);
  execFileSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(p('sock'))})`]);
  for (let i = 0; i < MANY; i++) nfs.writeFileSync(p('many', `entry-with-a-shared-prefix-${String(i).padStart(4, '0')}`), String(i));
  // Times: before 1970, ordinary ones (whole seconds: mke2fs -d stores seconds).
  nfs.utimesSync(p('hello.txt'), 1000000000, 1000000001);
  nfs.utimesSync(p('empty'), -86400, -86400);
  nfs.utimesSync(p('dir/three-mib'), 1600000000, 1700000000);
}

export function makeImage(v: Variant, src: string, img: string, sizeMb = 96): void {
  const env = { ...process.env, E2FSPROGS_FAKE_TIME: undefined, MKE2FS_CONFIG: undefined };
  execFileSync('mke2fs', ['-q', '-F', '-t', v.type, '-b', String(v.block), '-I', String(v.inode), '-d', src, img, `${sizeMb}M`],
    { env, stdio: 'pipe' });
  // -D: index the directories (the big one becomes a hashed directory); exit 1 = changed, fine.
  try { execFileSync('e2fsck', ['-fyD', img], { stdio: 'pipe' }); } catch (e) {
    if ((e as { status?: number }).status !== 1) throw e;
  }
  if (v.inode > 128) {
    execFileSync('debugfs', ['-w', '-R', `sif /ns.txt mtime @${NS_MTIME}`, img], { stdio: 'pipe' });
    execFileSync('debugfs', ['-w', '-R', `sif /ns.txt mtime_extra ${NS << 2}`, img], { stdio: 'pipe' });
  }
}

export interface Info {
  type: string; mode: number; uid: number; gid: number; size: number; mtime: number; nlink: number;
  target?: string; sha?: string; rdev?: number;
}

interface StatLike {
  isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean;
  isBlockDevice(): boolean; isSocket(): boolean;
  mode: number; uid: number; gid: number; size: number; mtimeMs: number; nlink: number; rdev: number;
}

export function typeOf(st: StatLike): string {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo'
    : st.isCharacterDevice() ? 'chr' : st.isBlockDevice() ? 'blk' : st.isSocket() ? 'sock' : 'other';
}

/** The attributes both sides keep (directory sizes and nlink differ by format, so not those). */
export function infoOf(st: StatLike): Info {
  const i: Info = {
    type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.isDirectory() ? 0 : st.size,
    mtime: Math.floor(st.mtimeMs / 1000), nlink: st.isDirectory() ? 0 : st.nlink,
  };
  if (st.isCharacterDevice() || st.isBlockDevice()) i.rdev = st.rdev;
  return i;
}

/** The host tree as Info by relative path (lost+found left out). */
export function walkHost(root: string): Map<string, Info> {
  const out = new Map<string, Info>();
  const walk = (rel: string): void => {
    for (const n of nfs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (r === 'lost+found') continue;
      const full = path.join(root, r), st = nfs.lstatSync(full);
      const i = infoOf(st);
      if (st.isSymbolicLink()) i.target = nfs.readlinkSync(full);
      if (st.isFile()) i.sha = sha(nfs.readFileSync(full));
      out.set(r, i);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
