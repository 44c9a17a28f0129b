// What is measured: per file system, the rump server and what users would
// pick instead, each a table entry. Adding a target (ext2: rump_ext2fs,
// fuse2fs, kernel ext2 on a loop device) is one entry here, plus an image
// builder if the file system is new.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { serverCommand } from '../../servers/programs.js';
import { BIG, fileName, META_DIR, TREE_DIR } from './layout.js';
import { isRoot, type ServerKind } from './mounts.js';

/**
 * subject: the project's server. alternative: what a user would pick
 * instead (ratios are against the best of these). reference: kernel
 * drivers on a loop device, root only, shown for scale. ceiling: bare FUSE
 * servers, what the transport allows at best.
 */
export type Role = 'subject' | 'alternative' | 'reference' | 'ceiling';

export interface Options {
  /** Bytes of the sequential file. */
  size: number;
  /** Files of the create/stat/list/unlink workloads. */
  files: number;
  /** Files of the walked tree. */
  tree: number;
  /** Reads of the random-read workloads (capped at the file's 4 KiB pages). */
  ops: number;
  runs: number;
  /** Seconds one workload may take. */
  timeout: number;
}

export interface Context {
  opts: Options;
  /** dist/ (the compiled servers). */
  dist: string;
  /** The compiled C programs. */
  bin: { memfs: string; randread: string };
  /** Scratch space of this bench run. */
  work: string;
  /** The host copy of the walked tree (what `cp -r` puts on tmpfs targets). */
  hostTree: string;
}

export interface Target {
  id: string;
  role: Role;
  kind: ServerKind;
  /** Data survives a remount (image-backed): cold caches then mean unmount and mount again. */
  persistent: boolean;
  /** Files in the root directory only. */
  flat?: boolean;
  /** The mount command for a session's source (image or null) and mount point. */
  command(ctx: Context, source: string | null, mnt: string): string[];
  /** Why it cannot run here; null when it can. */
  unavailable?(): string | null;
}

/** What a session mounts (an image, or null), and how to get rid of it afterwards. */
export interface Source { path: string | null; discard(): void }

export interface FsGroup {
  id: string;
  title: string;
  readOnly: boolean;
  /** The tree is copied in through the mount, not built into an image. */
  treeThroughMount: boolean;
  /** The target whose cost the project bounds: at most `budget` times the `against` target. */
  goal?: { against: string; budget: number };
  /** Builds what every session starts from, once per bench; returns how to get a session's source. */
  prepare(ctx: Context): (session: string) => Source;
  targets: Target[];
}

const MiB = 1 << 20;
const mib = (bytes: number) => `${Math.ceil(bytes / MiB)}m`;
const needRoot = () => (isRoot ? null : 'needs root');
/** A kernel driver on a loop device: root, and a kernel that has the driver. */
const kernelHas = (type: string) => () => {
  if (!isRoot) return 'needs root';
  const known = readFileSync('/proc/filesystems', 'utf8').split('\n').some(l => l.split('\t')[1] === type);
  return known ? null : `this kernel has no ${type} driver`;
};

function check(argv: string[], env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status ?? r.signal}: ${(r.stderr ?? '') + (r.error ?? '')}`.trim());
}

/** The sequential file's content: not zeros (no file system may store it sparsely). */
export function writeBigFile(file: string, bytes: number): void {
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 8) chunk.writeDoubleLE(i, i);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '');
  for (let done = 0; done < bytes; done += MiB) writeFileSync(file, chunk.subarray(0, Math.min(MiB, bytes - done)), { flag: 'a' });
}

/** Room for the workloads on a sized file system. */
const roomFor = (o: Options) => o.size + o.tree * 8192 + o.files * 1024 + 64 * MiB;

const node = process.execPath;

/** A rump server as the installed command runs it: its bundle, without Node 20's slow CA-bundle start. */

/**
 * libfuse 2's nearest to what p2k asks of the kernel: permissions checked by
 * the kernel, inode numbers passed through, names and attributes cached for
 * a second, the page cache kept; its writes stop at 128 KiB.
 */
const MEMFS_OPTIONS = '-o' + ['default_permissions', ...(process.geteuid?.() === 0 ? ['allow_other'] : []), 'use_ino', 'big_writes',
  'max_write=131072', 'kernel_cache', 'entry_timeout=1', 'attr_timeout=1', 'negative_timeout=1', 'fsname=memfs', 'subtype=memfs'].join(',');

const tmpfs: FsGroup = {
  id: 'tmpfs',
  title: 'tmpfs (memory)',
  readOnly: false,
  treeThroughMount: true,
  goal: { against: 'barefs', budget: 1.2 },
  prepare: () => () => ({ path: null, discard() {} }),
  targets: [
    { id: 'rump_tmpfs', role: 'subject', kind: 'launcher', persistent: false,
      command: (ctx, _, mnt) => [...serverCommand('rump_tmpfs'), '-s', mib(roomFor(ctx.opts)), 'tmpfs', mnt] },
    { id: 'kernel tmpfs', role: 'alternative', kind: 'kernel', persistent: false, unavailable: needRoot,
      command: (ctx, _, mnt) => ['mount', '-t', 'tmpfs', '-o', `size=${mib(roomFor(ctx.opts))}`, 'tmpfs', mnt] },
    { id: 'barefs', role: 'ceiling', kind: 'foreground', persistent: false, flat: true,
      command: (ctx, _, mnt) => [node, path.join(ctx.dist, 'p2k/barefs.js'), mnt] },
    { id: 'C memfs', role: 'ceiling', kind: 'foreground', persistent: false,
      command: (ctx, _, mnt) => [ctx.bin.memfs, '-f', MEMFS_OPTIONS, mnt] },
  ],
};

const fat: FsGroup = {
  id: 'fat',
  title: 'FAT32 (image file)',
  readOnly: false,
  treeThroughMount: false,
  prepare(ctx) {
    const template = path.join(ctx.work, 'fat-template.img');
    writeFileSync(template, '');
    spawnSync('truncate', ['-s', String(roomFor(ctx.opts) + ctx.opts.size), template]);
    check(['mkfs.vfat', '-F', '32', '-n', 'BENCH', template]);
    check(['mcopy', '-s', '-i', template, ctx.hostTree, '::/'], { MTOOLS_SKIP_CHECK: '1' });
    return session => {
      const img = path.join(ctx.work, `fat-${session}.img`);
      // Sparse copies of a mostly empty volume: cheap.
      check(['cp', '--sparse=always', template, img]);
      return { path: img, discard: () => rmSync(img, { force: true }) };
    };
  },
  targets: [
    { id: 'rump_msdos', role: 'subject', kind: 'launcher', persistent: true,
      command: (ctx, img, mnt) => [...serverCommand('rump_msdos'), img!, mnt] },
    { id: 'fusefat', role: 'alternative', kind: 'foreground', persistent: true,
      command: (_, img, mnt) => ['fusefat', '-o', 'rw+', img!, mnt, '-f'] },
    { id: 'kernel vfat (loop)', role: 'reference', kind: 'kernel', persistent: true, unavailable: kernelHas('vfat'),
      command: (_, img, mnt) => ['mount', '-t', 'vfat', '-o', 'loop', img!, mnt] },
  ],
};

/** The bench tree as an image made by genisoimage with `flags`, shared by every session (read-only). */
function genisoPrepare(name: string, flags: string[]): FsGroup['prepare'] {
  return ctx => {
    const dir = path.join(ctx.work, `${name}-src`);
    writeBigFile(path.join(dir, BIG), ctx.opts.size);
    mkdirSync(path.join(dir, META_DIR));
    for (let i = 0; i < ctx.opts.files; i++) writeFileSync(path.join(dir, META_DIR, fileName(i)), '');
    check(['cp', '-r', ctx.hostTree, path.join(dir, TREE_DIR)]);
    const img = path.join(ctx.work, `bench-${name}.iso`);
    check(['genisoimage', '-quiet', ...flags, '-o', img, dir]);
    return () => ({ path: img, discard() {} });
  };
}

const fuseiso: Target = { id: 'fuseiso', role: 'alternative', kind: 'foreground', persistent: true,
  command: (_, img, mnt) => ['fuseiso', '-n', img!, mnt, '-f'] };

const iso: FsGroup = {
  id: 'iso',
  title: 'ISO 9660 (Rock Ridge, Joliet)',
  readOnly: true,
  treeThroughMount: false,
  prepare: genisoPrepare('iso', ['-R', '-J']),
  targets: [
    { id: 'rump_cd9660', role: 'subject', kind: 'launcher', persistent: true,
      command: (ctx, img, mnt) => [...serverCommand('rump_cd9660'), img!, mnt] },
    fuseiso,
    { id: 'kernel iso9660 (loop)', role: 'reference', kind: 'kernel', persistent: true, unavailable: kernelHas('iso9660'),
      command: (_, img, mnt) => ['mount', '-t', 'iso9660', '-o', 'loop,ro', img!, mnt] },
  ],
};

/** A UDF bridge image: fuseiso reads its ISO 9660 side, the same files. */
const udf: FsGroup = {
  id: 'udf',
  title: 'UDF bridge image (genisoimage -udf)',
  readOnly: true,
  treeThroughMount: false,
  prepare: genisoPrepare('udf', ['-udf', '-R', '-J']),
  targets: [
    { id: 'rump_udf', role: 'subject', kind: 'launcher', persistent: true,
      command: (ctx, img, mnt) => [...serverCommand('rump_udf'), img!, mnt] },
    fuseiso,
    { id: 'kernel udf (loop)', role: 'reference', kind: 'kernel', persistent: true, unavailable: kernelHas('udf'),
      command: (_, img, mnt) => ['mount', '-t', 'udf', '-o', 'loop,ro', img!, mnt] },
  ],
};

const ntfs: FsGroup = {
  id: 'ntfs',
  title: 'NTFS (image file, read-only)',
  readOnly: true,
  treeThroughMount: false,
  prepare(ctx) {
    // mkntfs, then filled through ntfs-3g (as root: a FUSE mount of the image file).
    if (!isRoot) throw new Error('ntfs: building the image needs root (an ntfs-3g mount)');
    const img = path.join(ctx.work, 'bench-ntfs.img');
    writeFileSync(img, '');
    spawnSync('truncate', ['-s', String(roomFor(ctx.opts) + ctx.opts.size), img]);
    check(['mkntfs', '-F', '-f', '-Q', '-L', 'BENCH', img]);
    const mnt = path.join(ctx.work, 'ntfs-fill');
    mkdirSync(mnt);
    check(['ntfs-3g', img, mnt]);
    try {
      writeBigFile(path.join(mnt, BIG), ctx.opts.size);
      mkdirSync(path.join(mnt, META_DIR));
      for (let i = 0; i < ctx.opts.files; i++) writeFileSync(path.join(mnt, META_DIR, fileName(i)), '');
      check(['cp', '-r', ctx.hostTree, path.join(mnt, TREE_DIR)]);
    } finally {
      check(['fusermount', '-u', mnt]);
      // ntfs-3g finishes writing the image as it exits.
      for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `ntfs-3g ${img} ${mnt}`]).status === 0; i++) spawnSync('sleep', ['0.1']);
    }
    // Read-only: every session shares the image.
    return () => ({ path: img, discard() {} });
  },
  targets: [
    { id: 'rump_ntfs', role: 'subject', kind: 'launcher', persistent: true,
      command: (ctx, img, mnt) => [...serverCommand('rump_ntfs'), img!, mnt] },
    { id: 'ntfs-3g -o ro', role: 'alternative', kind: 'foreground', persistent: true,
      command: (_, img, mnt) => ['ntfs-3g', '-o', 'ro,no_detach', img!, mnt] },
  ],
};


/**
 * exfat-fuse on an image: as root it wants a block device, so a loop
 * device, detached at once (the kernel frees it when exfat-fuse lets go).
 */
const exfatFuse = (img: string, mnt: string) => ['sh', '-c',
  'L=$(losetup --find --show "$1") || exit 1; mount.exfat-fuse "$L" "$2"; r=$?; losetup -d "$L"; exit $r', 'sh', img, mnt];

const exfat: FsGroup = {
  id: 'exfat',
  title: 'exFAT (image file)',
  readOnly: false,
  treeThroughMount: false,
  prepare(ctx) {
    const template = path.join(ctx.work, 'exfat-template.img');
    writeFileSync(template, '');
    spawnSync('truncate', ['-s', String(roomFor(ctx.opts) + ctx.opts.size), template]);
    check(['mkfs.exfat', '-L', 'BENCH', template]);
    const mnt = path.join(ctx.work, 'exfat-fill');
    mkdirSync(mnt, { recursive: true });
    check(exfatFuse(template, mnt));
    try {
      check(['cp', '-r', ctx.hostTree, path.join(mnt, path.basename(ctx.hostTree))]);
    } finally {
      check(['fusermount', '-u', mnt]);
    }
    return session => {
      const img = path.join(ctx.work, `exfat-${session}.img`);
      check(['cp', '--sparse=always', template, img]);
      return { path: img, discard: () => rmSync(img, { force: true }) };
    };
  },
  targets: [
    { id: 'rump_exfat', role: 'subject', kind: 'launcher', persistent: true,
      command: (ctx, img, mnt) => [...serverCommand('rump_exfat'), img!, mnt] },
    { id: 'exfat-fuse', role: 'alternative', kind: 'launcher', persistent: true, unavailable: needRoot,
      command: (_, img, mnt) => exfatFuse(img!, mnt) },
    { id: 'kernel exfat (loop)', role: 'reference', kind: 'kernel', persistent: true, unavailable: kernelHas('exfat'),
      command: (_, img, mnt) => ['mount', '-t', 'exfat', '-o', 'loop', img!, mnt] },
  ],
};

const ext2: FsGroup = {
  id: 'ext2',
  title: 'ext2 (image file, 4 KiB blocks)',
  readOnly: false,
  treeThroughMount: false,
  prepare(ctx) {
    const dir = path.join(ctx.work, 'ext2-src');
    mkdirSync(dir, { recursive: true });
    check(['cp', '-r', ctx.hostTree, path.join(dir, TREE_DIR)]);
    const template = path.join(ctx.work, 'ext2-template.img');
    check(['mke2fs', '-q', '-F', '-t', 'ext2', '-b', '4096', '-d', dir, template, `${Math.ceil((roomFor(ctx.opts) + ctx.opts.size) / 1024)}k`]);
    return session => {
      const img = path.join(ctx.work, `ext2-${session}.img`);
      check(['cp', '--sparse=always', template, img]);
      return { path: img, discard: () => rmSync(img, { force: true }) };
    };
  },
  targets: [
    { id: 'rump_ext2fs', role: 'subject', kind: 'launcher', persistent: true,
      command: (ctx, img, mnt) => [...serverCommand('rump_ext2fs'), img!, mnt] },
    { id: 'fuse2fs', role: 'alternative', kind: 'foreground', persistent: true,
      command: (_, img, mnt) => ['fuse2fs', img!, mnt, '-f', '-o', 'fakeroot'] },
    { id: 'kernel ext4 (loop)', role: 'reference', kind: 'kernel', persistent: true, unavailable: kernelHas('ext4'),
      command: (_, img, mnt) => ['mount', '-t', 'ext4', '-o', 'loop', img!, mnt] },
  ],
};

export const GROUPS: readonly FsGroup[] = [tmpfs, fat, iso, ext2, udf, ntfs, exfat];

/** Build the C programs into dir when missing or older than their source. */
export function buildC(root: string, dir: string): Context['bin'] {
  mkdirSync(dir, { recursive: true });
  const build = (src: string, out: string, libs: string[]) => {
    const s = path.join(root, src), o = path.join(dir, out);
    if (!existsSync(o) || statSync(o).mtimeMs < statSync(s).mtimeMs) check(['gcc', '-O2', '-Wall', '-o', o, s, ...libs]);
    return o;
  };
  const fuse = spawnSync('pkg-config', ['--cflags', '--libs', 'fuse'], { encoding: 'utf8' });
  const fuseFlags = fuse.status === 0 ? fuse.stdout.trim().split(/\s+/) : ['-I/usr/include/fuse', '-D_FILE_OFFSET_BITS=64', '-lfuse', '-pthread'];
  return { memfs: build('bench/memfs.c', 'memfs', fuseFlags), randread: build('scripts/bench/randread.c', 'randread', []) };
}
