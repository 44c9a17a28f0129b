// NTFS images for tests, made by the format's own tools: mkntfs, then filled
// through an ntfs-3g mount of the image file (small, large, sparse,
// compressed and fragmented files, hard links, Interix symlinks from
// ntfs-3g, Windows symlinks and a junction set as reparse data, DOS 8.3
// names, long Unicode names, a large directory). The expected tree is what
// ntfs-3g itself shows on a read-only mount of the finished image.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as path from 'node:path';
import { pattern } from './mount.js';

export const ntfsEnv = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface Info {
  type: 'file' | 'dir' | 'link';
  ino: number;
  size: number;
  nlink: number;
  mtimeNs: string;
  ctimeNs: string;
  sha?: string;
  target?: string;
}

export const UNICODE_NAMES = ['日本語のファイル名.txt', 'Ελληνικά αρχεία', 'smile 😀 emoji.txt', 'é'.repeat(120) + '.t'];
/** 2001-02-03 04:05:06.1234567 UTC: NTFS keeps 100 ns. */
export const MTIME = '2001-02-03T04:05:06.123456789Z';
export const MTIME_NS = 981173106123456700n;
export const LARGE_SIZE = 24 << 20;
export const SPARSE_SIZE = 5 * 2 ** 30;
export const SPARSE_MARKS = [0, 1 << 20, 2 ** 32 + 12345, SPARSE_SIZE - 7];
/** Files larger than this are compared by size and sampled, not hashed whole. */
export const HASH_LIMIT = 256 << 20;
/** The 7 bytes written at each sparse mark. */
export function markAt(m: number): Buffer {
  return Buffer.from(`m@${m}`.padEnd(7, '.').slice(0, 7));
}
/** Runs of the fragmented file: enough to need extension records through an attribute list. */
export const FRAGMENTS = 600;

function tool(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { env: ntfsEnv, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).toString();
}

/** Mount img with ntfs-3g at mnt for fn, and unmount it whatever happens. */
export async function withNtfs3g<T>(img: string, mnt: string, ro: boolean, fn: () => T | Promise<T>): Promise<T> {
  tool('ntfs-3g', [...(ro ? ['-o', 'ro'] : []), img, mnt]);
  try {
    return await fn();
  } finally {
    let done = false;
    for (let i = 0; i < 50 && !done; i++) {
      done = spawnSync('fusermount', ['-u', mnt]).status === 0;
      if (!done) await new Promise(r => setTimeout(r, 100));
    }
    // Still busy (a descriptor left open by a failure): detach it, so nothing is left mounted.
    if (!done) spawnSync('fusermount', ['-u', '-z', mnt]);
    // ntfs-3g writes the image until it exits: wait for it.
    for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `ntfs-3g.* ${img} ${mnt}`]).status === 0; i++) {
      await new Promise(r => setTimeout(r, 100));
    }
  }
}

/** Reparse data of a Windows symbolic link (tag A000000C) or junction (A0000003). */
export function reparseData(kind: 'symlink' | 'junction', subst: string, relative: boolean): Buffer {
  const s = Buffer.from(subst, 'utf16le');
  const print = Buffer.from(subst.replace(/^\\\?\?\\/, ''), 'utf16le');
  const hdr = kind === 'symlink' ? 12 : 8;
  const body = Buffer.alloc(hdr + s.length + print.length + 4);
  body.writeUInt16LE(0, 0);
  body.writeUInt16LE(s.length, 2);
  body.writeUInt16LE(s.length + 2, 4);
  body.writeUInt16LE(print.length, 6);
  if (kind === 'symlink') body.writeUInt32LE(relative ? 1 : 0, 8);
  s.copy(body, hdr);
  print.copy(body, hdr + s.length + 2);
  const out = Buffer.alloc(8 + body.length);
  out.writeUInt32LE(kind === 'symlink' ? 0xa000000c : 0xa0000003, 0);
  out.writeUInt16LE(body.length, 4);
  body.copy(out, 8);
  return out;
}

/** Text that compresses well, and varies. */
function text(n: number, seed: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'ntfs', 'rump', 'lznt1', 'cluster', '\n'];
  const out: string[] = [];
  let x = seed, len = 0;
  while (len < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = words[x % words.length] + ' ';
    out.push(w);
    len += w.length;
  }
  return Buffer.from(out.join('').slice(0, n));
}

/** Fill the mounted file system at root. */
function fill(root: string, bigDir: number): void {
  const p = (...a: string[]) => path.join(root, ...a);
  nfs.mkdirSync(p('small'));
  nfs.writeFileSync(p('small', 'empty'), '');
  nfs.writeFileSync(p('small', 'a.txt'), 'hello, ntfs\n');
  nfs.writeFileSync(p('small', 'resident-700'), pattern(700, 1));
  nfs.writeFileSync(p('small', 'nonres-5000'), pattern(5000, 2));
  nfs.writeFileSync(p('large.bin'), pattern(LARGE_SIZE, 3));
  // Sparse: data at a few places of a 5 GiB file (more than the volume), holes between.
  const fd = nfs.openSync(p('sparse.bin'), 'w');
  try {
    for (const m of SPARSE_MARKS) nfs.writeSync(fd, markAt(m), 0, 7, m);
  } finally { nfs.closeSync(fd); }
  // Fragmented: a byte every 64 KiB leaves one run per byte, more than a record holds.
  const fg = nfs.openSync(p('fragmented.bin'), 'w');
  try {
    for (let i = 0; i < FRAGMENTS; i++) nfs.writeSync(fg, Buffer.from([i & 0xff]), 0, 1, i * 65536);
  } finally { nfs.closeSync(fg); }
  // Compressed: the directory's attribute is inherited by what is created in it.
  nfs.mkdirSync(p('comp'));
  tool('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', p('comp')]);
  nfs.writeFileSync(p('comp', 'text.txt'), text(3 << 20, 7));
  nfs.writeFileSync(p('comp', 'random.bin'), pattern(300_000, 8));
  nfs.writeFileSync(p('comp', 'mixed.bin'), Buffer.concat([text(100_000, 9), pattern(70_000, 10), Buffer.alloc(200_000), text(33_333, 11)]));
  const cs = nfs.openSync(p('comp', 'sparse.bin'), 'w');
  try {
    nfs.writeSync(cs, text(5000, 12), 0, 5000, 10 << 20);
  } finally { nfs.closeSync(cs); }
  // Hard links.
  nfs.mkdirSync(p('links'));
  nfs.writeFileSync(p('links', 'target'), 'linked data\n');
  nfs.linkSync(p('links', 'target'), p('links', 'hard1'));
  nfs.linkSync(p('links', 'target'), p('small', 'hard2'));
  // ntfs-3g's own symlinks (Interix files).
  nfs.symlinkSync('target', p('links', 'rel'));
  nfs.symlinkSync('../small/a.txt', p('links', 'up'));
  nfs.symlinkSync('/etc/hostname', p('links', 'abs'));
  // Windows symlinks and a junction, as reparse data.
  nfs.writeFileSync(p('links', 'winrel'), '');
  tool('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + reparseData('symlink', '..\\small\\a.txt', true).toString('hex'), p('links', 'winrel')]);
  nfs.writeFileSync(p('links', 'winabs'), '');
  tool('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + reparseData('symlink', '\\??\\C:\\small\\a.txt', false).toString('hex'), p('links', 'winabs')]);
  nfs.mkdirSync(p('links', 'junction'));
  tool('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + reparseData('junction', '\\??\\C:\\comp', false).toString('hex'), p('links', 'junction')]);
  // Reparse points ntfs-3g (without its plugins) cannot show: a WSL symlink and a deduplicated file.
  nfs.mkdirSync(p(FOREIGN));
  nfs.writeFileSync(p(FOREIGN, 'wsl-link'), '');
  const lx = Buffer.concat([Buffer.from([0x1d, 0, 0, 0xa0, 12, 0, 0, 0, 2, 0, 0, 0]), Buffer.from('target/x')]);
  tool('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + lx.toString('hex'), p(FOREIGN, 'wsl-link')]);
  nfs.writeFileSync(p(FOREIGN, 'dedup'), 'data\n');
  const dedup = Buffer.from([0x13, 0, 0, 0x80, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  tool('setfattr', ['-n', 'system.ntfs_reparse_data', '-v', '0x' + dedup.toString('hex'), p(FOREIGN, 'dedup')]);
  // A Win32 name with a DOS 8.3 name beside it.
  nfs.writeFileSync(p('Long File Name.txt'), 'has a short name too\n');
  tool('setfattr', ['-n', 'system.ntfs_dos_name', '-v', 'LONGFI~1.TXT', p('Long File Name.txt')]);
  // Names.
  nfs.mkdirSync(p('names'));
  for (const [i, n] of UNICODE_NAMES.entries()) nfs.writeFileSync(p('names', n), `name ${i}\n`);
  nfs.writeFileSync(p('names', 'MixedCase.TXT'), 'case\n');
  // Times, at 100 ns.
  nfs.writeFileSync(p('timed'), 'time\n');
  const t = new Date(MTIME);
  nfs.utimesSync(p('timed'), t, t);
  tool('touch', ['-h', '-m', '-d', '2001-02-03 04:05:06.123456789 UTC', p('timed')]);
  // A large directory (its index needs several levels of blocks).
  nfs.mkdirSync(p('big'));
  for (let i = 0; i < bigDir; i++) nfs.writeFileSync(p('big', `file-${String(i).padStart(5, '0')}.dat`), `${i}\n`);
}

/** Remove a test directory, never recursing into a mount left inside it. */
export function removeTree(dir: string): void {
  const mounted = nfs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map(l => l.split(' ')[4]).filter(p => p?.startsWith(dir + '/'));
  for (const m of mounted) spawnSync('fusermount', ['-u', '-z', m]);
  nfs.rmSync(dir, { recursive: true, force: true });
}

/** Where the reparse points ntfs-3g cannot show (lstat: EIO) are: left out of walks, tested on their own. */
export const FOREIGN = 'foreign';

/** Walk a directory tree on the host (ntfs-3g's view), all but FOREIGN. */
export function walkHost(root: string): Map<string, Info> {
  const out = new Map<string, Info>();
  const walk = (rel: string): void => {
    for (const n of nfs.readdirSync(path.join(root, rel))) {
      if (rel === '' && n === FOREIGN) continue;
      const r = rel ? `${rel}/${n}` : n;
      const f = path.join(root, r);
      const st = nfs.lstatSync(f, { bigint: true });
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      const i: Info = { type, ino: Number(st.ino), size: Number(st.size), nlink: Number(st.nlink), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
      if (type === 'link') i.target = nfs.readlinkSync(f);
      if (type === 'file' && i.size <= HASH_LIMIT) i.sha = sha(nfs.readFileSync(f));
      out.set(r, i);
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

export interface NtfsFixture {
  img: string;
  /** Where ntfs-3g had it mounted: absolute Windows link targets are shown under it there. */
  mnt: string;
  ref: Map<string, Info>;
  ntfsinfo: (path: string) => string;
}

/**
 * A link target as ntfs-3g shows it, in this driver's form: ntfs-3g makes
 * a drive-absolute Windows target absolute under its own mount point; the
 * driver makes it relative to the link, which leads to the same file
 * wherever the volume is mounted.
 */
export function ntfs3gTarget(fx: NtfsFixture, link: string, target: string): string {
  if (!target.startsWith(fx.mnt + '/')) return target;
  return path.relative(path.dirname('/' + link), '/' + target.slice(fx.mnt.length + 1)) || '.';
}

/**
 * Make the image in dir: mkntfs, fill through ntfs-3g, then take the
 * expected tree from a read-only ntfs-3g mount.
 */
export async function makeNtfsImage(dir: string, bigDir = 10_000, size = '96M'): Promise<NtfsFixture> {
  const img = path.join(dir, 'ntfs.img');
  const mnt = path.join(dir, 'ntfs-3g-mnt');
  nfs.mkdirSync(mnt, { recursive: true });
  tool('truncate', ['-s', size, img]);
  tool('mkntfs', ['-F', '-f', '-Q', '-L', 'RumpNTFS', img]);
  await withNtfs3g(img, mnt, false, () => fill(mnt, bigDir));
  const ref = await withNtfs3g(img, mnt, true, () => walkHost(mnt));
  return { img, mnt, ref, ntfsinfo: (p: string) => tool('ntfsinfo', ['-F', p, img]) };
}
