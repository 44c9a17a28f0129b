// ISO images for tests: a source tree with what Rock Ridge and Joliet must
// carry (modes, owners, times, long and unicode names, deep directories,
// symlinks, hard links, special files), and the images genisoimage and
// xorriso make of it; a multi-session image; a sparse one holding a file
// over 4 GiB.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as path from 'node:path';

/** The tools read names as UTF-8 only in a UTF-8 locale. */
export const isoEnv = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

/** Names and times of the source tree. */
export const T0 = 1_600_000_000;
export const LONG = 'a-long-file-name-' + 'x'.repeat(90) + '.txt';
export const UNICODE = 'ünïcödé ☃ file.txt';
/** Outside the BMP: Rock Ridge keeps it; genisoimage and libisofs both mangle it in Joliet. */
export const CLEF = 'clef 𝄞.txt';
// Continued across SL entries. (genisoimage loops forever or writes bad SL entries for much longer targets.)
export const SLTARGET = ['..', 'c'.repeat(200), 'dd', ...Array.from({ length: 5 }, (_, i) => `comp-${i}`)].join('/');

function tool(cmd: string, args: string[], cwd?: string): void {
  execFileSync(cmd, args, { cwd, env: isoEnv, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export function buildTree(root: string): void {
  const f = (p: string, data: string | Buffer, mode = 0o644) => {
    nfs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    nfs.writeFileSync(path.join(root, p), data);
    nfs.chmodSync(path.join(root, p), mode);
  };
  f('Dir/Hello.TXT', 'hello, world\n');
  f('Dir/Sub/MixedCase.Data', 'private\n', 0o600);
  f('Dir/Sub/script.sh', '#!/bin/sh\necho hi\n', 0o755);
  f('setuid-prog', 'suid', 0o4755);
  f('NOEXT', 'no extension\n');
  f('empty', '');
  f('big.bin', bytes(5 * 1024 * 1024 + 123, 7));
  f(LONG, 'long name\n');
  f(UNICODE, 'unicode\n');
  f(CLEF, 'music\n');
  f('owned', 'owned by someone\n');
  nfs.chownSync(path.join(root, 'owned'), 1234, 5678);
  for (let i = 0; i < 300; i++) f(`many/file-${String(i).padStart(3, '0')}`, `file ${i}\n`);
  f('a/b/c/d/e/f/g/h/i/j/deepfile', 'deep\n');
  nfs.mkdirSync(path.join(root, 'links'));
  nfs.symlinkSync('../Dir/Hello.TXT', path.join(root, 'links/rel'));
  nfs.symlinkSync('/etc/hostname', path.join(root, 'links/abs'));
  nfs.symlinkSync('../Dir', path.join(root, 'links/dir'));
  nfs.symlinkSync(SLTARGET, path.join(root, 'links/longtarget'));
  nfs.linkSync(path.join(root, 'Dir/Hello.TXT'), path.join(root, 'links/hard'));
  tool('mkfifo', [path.join(root, 'fifo')]);
  tool('mknod', [path.join(root, 'chardev'), 'c', '1', '3']);
  // Times last, children before their directories.
  const walk = (p: string): void => {
    const st = nfs.lstatSync(p);
    if (st.isDirectory()) for (const n of nfs.readdirSync(p)) walk(path.join(p, n));
    const t = T0 + (st.ino % 100000);
    if (!st.isSymbolicLink()) nfs.utimesSync(p, t, t);
  };
  walk(root);
}

export interface Variant { tool: 'genisoimage' | 'xorriso'; flags: string[]; rr: 'R' | 'r' | null; joliet: boolean }

/** Plain, Joliet, Rock Ridge (-R, -r), both, and level 3, from each tool. */
export const VARIANTS: readonly Variant[] = (['genisoimage', 'xorriso'] as const).flatMap(t => [
  { tool: t, flags: [], rr: null, joliet: false },
  { tool: t, flags: ['-J'], rr: null, joliet: true },
  { tool: t, flags: ['-R'], rr: 'R', joliet: false },
  { tool: t, flags: ['-r'], rr: 'r', joliet: false },
  { tool: t, flags: ['-J', '-R'], rr: 'R', joliet: true },
  { tool: t, flags: ['-iso-level', '3', '-R'], rr: 'R', joliet: false },
] satisfies Variant[]);

export const imgName = (v: Variant) => `${v.tool}${v.flags.join('')}.iso`;

export function makeIso(v: Variant, out: string, dir: string): void {
  const args = [...v.flags, '-input-charset', 'utf-8', '-o', out, dir];
  if (v.tool === 'genisoimage') tool('genisoimage', ['-quiet', ...args]);
  // xorriso's mkisofs writes Rock Ridge unless told not to.
  else tool('xorriso', ['-as', 'mkisofs', '-quiet', ...(v.rr ? [] : ['--norock']), ...args]);
}

/**
 * Three sessions appended by xorriso in dir/img.iso: 1 holds /one; 2 adds
 * /more/two; 3 adds /more/three and removes /one. Returns the image and
 * each session's start sector.
 */
export function makeMultiSession(dir: string): { img: string; sb: number[] } {
  nfs.mkdirSync(path.join(dir, 'd1'), { recursive: true });
  nfs.mkdirSync(path.join(dir, 'd2'));
  nfs.writeFileSync(path.join(dir, 'd1/one'), 'first session\n');
  nfs.writeFileSync(path.join(dir, 'd2/two'), 'second session\n');
  nfs.writeFileSync(path.join(dir, 'd2/three'), 'third session\n');
  tool('xorriso', ['-dev', 'img.iso', '-map', 'd1', '/', '-commit'], dir);
  tool('xorriso', ['-dev', 'img.iso', '-map', 'd2/two', '/more/two', '-commit'], dir);
  tool('xorriso', ['-dev', 'img.iso', '-map', 'd2/three', '/more/three', '-rm', '/one', '--', '-commit'], dir);
  const img = path.join(dir, 'img.iso');
  const toc = execFileSync('xorriso', ['-indev', img, '-toc'], { env: isoEnv, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return { img, sb: [...toc.matchAll(/ISO session\s*:\s*\d+\s*,\s*(\d+)/g)].map(m => Number(m[1])) };
}

/** The file in makeHugeIso's image: just over 4 GiB of zeros but for 1000-byte marks (bytes(1000, 100 + i)) at these offsets. */
export const HUGE_SIZE = 2 ** 32 + (8 << 20);
export const HUGE_MARKS = [0, 2 ** 32 - 4096, 2 ** 32 - 2048 - 7, 2 ** 32 - 5, 2 ** 32 + 2000, HUGE_SIZE - 1000];

/** dir/huge.iso (xorriso -R -iso-level 3, multi-extent) holding /huge.bin; sparse, as is the file it is made from (removed after). */
export function makeHugeIso(dir: string): string {
  const src = path.join(dir, 'huge');
  nfs.mkdirSync(src);
  const file = path.join(src, 'huge.bin');
  const fd = nfs.openSync(file, 'w');
  try {
    nfs.ftruncateSync(fd, HUGE_SIZE);
    HUGE_MARKS.forEach((off, i) => nfs.writeSync(fd, bytes(1000, 100 + i), 0, 1000, off));
  } finally {
    nfs.closeSync(fd);
  }
  const img = path.join(dir, 'huge.iso');
  try {
    // Written sparse: the image is as large as the file, its zeros are holes.
    tool('sh', ['-c', 'xorriso -as mkisofs -quiet -R -iso-level 3 -o - "$1" | cp --sparse=always /dev/stdin "$2"', 'sh', src, img]);
  } finally {
    nfs.rmSync(src, { recursive: true });
  }
  return img;
}
