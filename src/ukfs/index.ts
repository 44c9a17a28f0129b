// ukfs: the kernel's file systems in-process, no mount and no root.
// `await mount('msdos', 'stick.img')` returns an object shaped like
// node:fs/promises, plus unmount(); errors look like Node's.
import {
  blkdev_open, Cred, errnos, File, KernError, Lwp, MNT_RDONLY, MNT_SYNCHRONOUS, O_APPEND, O_CREAT, O_EXCL,
  O_RDONLY, O_RDWR, O_SYNC, O_TRUNC, O_WRONLY, sys_access, sys_getxattr, sys_link, sys_listxattr, sys_mkdir,
  sys_open, sys_readdir, sys_readlink, sys_removexattr, sys_rename, sys_rmdir, sys_setattr, sys_setxattr,
  sys_stat, sys_statvfs, sys_symlink, sys_sync, sys_unlink, timespecFromMs, vfs_mount, vfs_unmount,
  vn_close, vn_fsetattr, vn_fstat, vn_fsync, vn_read, vn_write, ifmtToVtype, sys_mknod, VType,
  type Mount, type MountOptions, type Statvfs,
} from '../kern/index.js';
import { syscall } from './errors.js';
import { detectType } from './detect.js';
import { canonicalType, ukfs_modload } from './modules.js';
import { Dirent, Stats } from './stats.js';

export { Dirent, Stats } from './stats.js';
export type { UkfsError } from './errors.js';
export { ukfs_vfstypes } from './modules.js';

export interface UkfsMountOptions {
  readOnly?: boolean;
  /** Write through (-o sync). */
  sync?: boolean;
  /** Partition N (1-based) of an MBR or GPT disk image. */
  partition?: number;
  /** Who the calls run as; default: this process's uid, gid and groups. */
  cred?: { uid: number; gid: number; groups?: number[] };
  /** Applied to created files' modes; default: this process's umask. */
  umask?: number;
  /** File-system specific options (size, uid, codepage, norrip, ...). */
  options?: MountOptions;
}

export type TimeLike = Date | number | string;
type Encoding = BufferEncoding | null | undefined;
type EncodingOpt = Encoding | { encoding?: Encoding; flag?: string };

const flagTable: Record<string, number> = {
  r: O_RDONLY, 'r+': O_RDWR, rs: O_RDONLY | O_SYNC, 'rs+': O_RDWR | O_SYNC, 'sr+': O_RDWR | O_SYNC,
  w: O_TRUNC | O_CREAT | O_WRONLY, wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL, xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  'w+': O_TRUNC | O_CREAT | O_RDWR, 'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL, 'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  a: O_APPEND | O_CREAT | O_WRONLY, ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL, xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC, sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  'a+': O_APPEND | O_CREAT | O_RDWR, 'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL, 'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC, 'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
};

function openFlags(flags: string | number | undefined, dflt: string): number {
  if (typeof flags === 'number') return flags;
  const f = flagTable[flags ?? dflt];
  if (f === undefined) throw new KernError(errnos.EINVAL, `unknown open flags '${flags}'`);
  return f;
}

function toTimespec(t: TimeLike) {
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Number(t) * 1000 : t * 1000;
  if (!Number.isFinite(ms)) throw new KernError(errnos.EINVAL, `bad time ${String(t)}`);
  return timespecFromMs(ms);
}

function encodingOf(opt: EncodingOpt): Encoding {
  return typeof opt === 'object' && opt !== null ? opt.encoding : opt;
}

function toBytes(data: string | Uint8Array, encoding: Encoding): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data;
}

const CHUNK = 1 << 20;

/** An open file, as node:fs/promises' FileHandle. */
export class FileHandle {
  private static nextFd = 3;
  readonly fd = FileHandle.nextFd++;
  constructor(private readonly l: Lwp, private readonly fp: File, private readonly path: string) {}

  async read(buffer: Uint8Array, offset = 0, length = buffer.length - offset, position: number | null = null):
    Promise<{ bytesRead: number; buffer: Uint8Array }> {
    const pos = position ?? this.fp.offset;
    const n = await syscall('read', undefined, () => vn_read(this.l, this.fp, buffer.subarray(offset, offset + length), pos));
    if (position === null) this.fp.offset += n;
    return { bytesRead: n, buffer };
  }

  async write(data: Uint8Array | string, offset?: number | null, length?: number | BufferEncoding, position: number | null = null):
    Promise<{ bytesWritten: number; buffer: Uint8Array | string }> {
    let bytes: Uint8Array;
    if (typeof data === 'string') {
      bytes = Buffer.from(data, (typeof length === 'string' ? length : 'utf8'));
      position = typeof offset === 'number' ? offset : null;
    } else {
      const off = offset ?? 0;
      bytes = data.subarray(off, off + (typeof length === 'number' ? length : data.length - off));
    }
    const pos = position ?? this.fp.offset;
    const n = await syscall('write', undefined, () => vn_write(this.l, this.fp, bytes, pos));
    if (position === null) this.fp.offset = (this.fp.flags & O_APPEND) ? (await this.stat()).size : pos + n;
    return { bytesWritten: n, buffer: data };
  }

  async readFile(opt?: EncodingOpt): Promise<Buffer | string> {
    const chunks: Buffer[] = [];
    for (let pos = 0; ;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = await syscall('read', this.path, () => vn_read(this.l, this.fp, buf, pos));
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      pos += n;
    }
    const all = Buffer.concat(chunks);
    const enc = encodingOf(opt);
    return enc ? all.toString(enc) : all;
  }

  async writeFile(data: string | Uint8Array, opt?: EncodingOpt): Promise<void> {
    const bytes = toBytes(data, encodingOf(opt));
    let pos = (this.fp.flags & O_APPEND) ? (await this.stat()).size : 0;
    for (let done = 0; done < bytes.length;) {
      const n = await syscall('write', this.path, () => vn_write(this.l, this.fp, bytes.subarray(done, done + CHUNK), pos));
      done += n;
      pos += n;
    }
  }

  async stat(): Promise<Stats> {
    return new Stats(await syscall('fstat', undefined, () => vn_fstat(this.l, this.fp)));
  }
  truncate(len = 0): Promise<void> {
    return syscall('ftruncate', undefined, () => vn_fsetattr(this.l, this.fp, { size: len }));
  }
  chmod(mode: number): Promise<void> {
    return syscall('fchmod', undefined, () => vn_fsetattr(this.l, this.fp, { mode }));
  }
  chown(uid: number, gid: number): Promise<void> {
    return syscall('fchown', undefined, () => vn_fsetattr(this.l, this.fp, { uid, gid }));
  }
  utimes(atime: TimeLike, mtime: TimeLike): Promise<void> {
    return syscall('futime', undefined, () => vn_fsetattr(this.l, this.fp, { atime: toTimespec(atime), mtime: toTimespec(mtime) }));
  }
  sync(): Promise<void> { return syscall('fsync', undefined, () => vn_fsync(this.l, this.fp)); }
  datasync(): Promise<void> { return this.sync(); }
  close(): Promise<void> {
    if (this.fp.closed) return Promise.resolve();
    return syscall('close', undefined, () => vn_close(this.l, this.fp));
  }
}

/** A mounted file system, used as node:fs/promises. Paths are relative to its root. */
export class Ukfs {
  private readonly handles = new Set<FileHandle>();
  private cwdPath = '/';
  constructor(readonly mp: Mount, private readonly cred: Cred, private readonly umask: number) {}

  /** A request context with this handle's credential. */
  private lwp(): Lwp {
    if (!this.mp.rootvp) throw new KernError(errnos.EIO, 'file system is unmounted');
    return new Lwp(this.cred, this.mp.rootvp, this.mp.rootvp, this.umask, process.pid);
  }

  /** Relative paths resolve against chdir()'s directory (kept as a path). */
  private abs(p: string): string {
    return p === '' || p.startsWith('/') ? p : `${this.cwdPath}/${p}`;
  }

  get type(): string { return this.mp.stat.fstypename; }

  async chdir(path: string): Promise<void> {
    await syscall('chdir', path, async () => {
      const va = await sys_stat(this.lwp(), this.abs(path), true);
      if (va.type !== VType.VDIR) throw new KernError(errnos.ENOTDIR);
    });
    this.cwdPath = this.abs(path);
  }

  async stat(path: string): Promise<Stats> {
    return new Stats(await syscall('stat', path, () => sys_stat(this.lwp(), this.abs(path), true)));
  }
  async lstat(path: string): Promise<Stats> {
    return new Stats(await syscall('lstat', path, () => sys_stat(this.lwp(), this.abs(path), false)));
  }
  access(path: string, mode = 0): Promise<void> {
    return syscall('access', path, () => sys_access(this.lwp(), this.abs(path), mode));
  }

  async open(path: string, flags?: string | number, mode = 0o666): Promise<FileHandle> {
    const l = this.lwp();
    const fp = await syscall('open', path, () => sys_open(l, this.abs(path), openFlags(flags, 'r'), mode));
    const fh = new FileHandle(l, fp, path);
    this.handles.add(fh);
    const close = fh.close.bind(fh);
    fh.close = async () => { this.handles.delete(fh); await close(); };
    return fh;
  }

  async readFile(path: string, opt?: EncodingOpt): Promise<Buffer>;
  async readFile(path: string, opt: BufferEncoding | { encoding: BufferEncoding }): Promise<string>;
  async readFile(path: string, opt?: EncodingOpt): Promise<Buffer | string> {
    const fh = await this.open(path, typeof opt === 'object' && opt?.flag ? opt.flag : 'r');
    try { return await fh.readFile(opt); } finally { await fh.close(); }
  }

  async writeFile(path: string, data: string | Uint8Array, opt?: EncodingOpt & { mode?: number } | BufferEncoding): Promise<void> {
    const o = typeof opt === 'object' && opt !== null ? opt : {};
    const fh = await this.open(path, o.flag ?? 'w', (o as { mode?: number }).mode ?? 0o666);
    try { await fh.writeFile(data, opt as EncodingOpt); } finally { await fh.close(); }
  }

  appendFile(path: string, data: string | Uint8Array, opt?: EncodingOpt): Promise<void> {
    const o = typeof opt === 'object' && opt !== null ? opt : { encoding: opt };
    return this.writeFile(path, data, { ...o, flag: o.flag ?? 'a' });
  }

  async readdir(path: string, opt?: { withFileTypes?: false } | BufferEncoding): Promise<string[]>;
  async readdir(path: string, opt: { withFileTypes: true }): Promise<Dirent[]>;
  async readdir(path: string, opt?: { withFileTypes?: boolean } | BufferEncoding): Promise<string[] | Dirent[]> {
    const all = await syscall('scandir', path, () => sys_readdir(this.lwp(), this.abs(path)));
    const entries = all.filter(d => d.name !== '.' && d.name !== '..');
    if (typeof opt === 'object' && opt.withFileTypes) return entries.map(d => new Dirent(d, path));
    return entries.map(d => d.name);
  }

  async mkdir(path: string, opt?: number | { recursive?: boolean; mode?: number }): Promise<string | undefined> {
    const o = typeof opt === 'number' ? { mode: opt } : opt ?? {};
    const mode = o.mode ?? 0o777;
    if (!o.recursive) {
      await syscall('mkdir', path, () => sys_mkdir(this.lwp(), this.abs(path), mode));
      return undefined;
    }
    const parts = this.abs(path).split('/').filter(Boolean);
    let first: string | undefined;
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      try {
        await sys_mkdir(this.lwp(), p, mode);
        first ??= p;
      } catch (e) {
        if (!(e instanceof KernError && e.errno === errnos.EEXIST)) return syscall('mkdir', path, () => Promise.reject(e));
        const st = await this.stat(p);
        if (!st.isDirectory()) return syscall('mkdir', path, () => Promise.reject(new KernError(errnos.ENOTDIR)));
      }
    }
    return first;
  }

  /** mknod(2): a FIFO, socket or device node (mode includes S_IF* type bits). */
  mknod(path: string, mode: number, rdev = 0): Promise<void> {
    return syscall('mknod', path, () => sys_mknod(this.lwp(), this.abs(path), ifmtToVtype(mode), mode & 0o7777, rdev));
  }

  unlink(path: string): Promise<void> {
    return syscall('unlink', path, () => sys_unlink(this.lwp(), this.abs(path)));
  }
  rmdir(path: string): Promise<void> {
    return syscall('rmdir', path, () => sys_rmdir(this.lwp(), this.abs(path)));
  }

  async rm(path: string, opt: { recursive?: boolean; force?: boolean } = {}): Promise<void> {
    let st: Stats;
    try {
      st = await this.lstat(path);
    } catch (e) {
      if (opt.force && (e as { code?: string }).code === 'ENOENT') return;
      throw e;
    }
    if (!st.isDirectory()) return this.unlink(path);
    if (!opt.recursive) {
      const err = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${path}`) as Error & { code: string };
      err.code = 'ERR_FS_EISDIR';
      throw err;
    }
    for (const name of await this.readdir(path)) await this.rm(`${path.replace(/\/+$/, '')}/${name}`, opt);
    await this.rmdir(path);
  }

  rename(from: string, to: string): Promise<void> {
    return syscall('rename', from, () => sys_rename(this.lwp(), this.abs(from), this.abs(to)), to);
  }
  symlink(target: string, path: string): Promise<void> {
    return syscall('symlink', target, () => sys_symlink(this.lwp(), target, this.abs(path)), path);
  }
  readlink(path: string): Promise<string> {
    return syscall('readlink', path, () => sys_readlink(this.lwp(), this.abs(path)));
  }
  link(existing: string, path: string): Promise<void> {
    return syscall('link', existing, () => sys_link(this.lwp(), this.abs(existing), this.abs(path)), path);
  }
  chmod(path: string, mode: number): Promise<void> {
    return syscall('chmod', path, () => sys_setattr(this.lwp(), this.abs(path), { mode }));
  }
  chown(path: string, uid: number, gid: number): Promise<void> {
    return syscall('chown', path, () => sys_setattr(this.lwp(), this.abs(path), { uid, gid }));
  }
  lchown(path: string, uid: number, gid: number): Promise<void> {
    return syscall('lchown', path, () => sys_setattr(this.lwp(), this.abs(path), { uid, gid }, false));
  }
  utimes(path: string, atime: TimeLike, mtime: TimeLike): Promise<void> {
    return syscall('utime', path, () => sys_setattr(this.lwp(), this.abs(path), { atime: toTimespec(atime), mtime: toTimespec(mtime) }));
  }
  lutimes(path: string, atime: TimeLike, mtime: TimeLike): Promise<void> {
    return syscall('lutime', path, () => sys_setattr(this.lwp(), this.abs(path), { atime: toTimespec(atime), mtime: toTimespec(mtime) }, false));
  }
  truncate(path: string, len = 0): Promise<void> {
    return syscall('truncate', path, () => sys_setattr(this.lwp(), this.abs(path), { size: len }));
  }

  getxattr(path: string, name: string): Promise<Uint8Array> {
    return syscall('getxattr', path, () => sys_getxattr(this.lwp(), this.abs(path), name));
  }
  setxattr(path: string, name: string, value: Uint8Array, flags = 0): Promise<void> {
    return syscall('setxattr', path, () => sys_setxattr(this.lwp(), this.abs(path), name, value, flags));
  }
  listxattr(path: string): Promise<string[]> {
    return syscall('listxattr', path, () => sys_listxattr(this.lwp(), this.abs(path)));
  }
  removexattr(path: string, name: string): Promise<void> {
    return syscall('removexattr', path, () => sys_removexattr(this.lwp(), this.abs(path), name));
  }

  /** statfs(2), with Node's StatsFs field names. */
  async statfs(): Promise<{ type: string; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; namemax: number; readOnly: boolean }> {
    const s: Statvfs = await syscall('statfs', '/', () => sys_statvfs(this.lwp()));
    return { type: this.type, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namemax: s.namemax, readOnly: (s.flag & MNT_RDONLY) !== 0 };
  }

  /** Write everything dirty to the image now. */
  sync(): Promise<void> {
    return syscall('sync', undefined, () => sys_sync(this.lwp()));
  }

  /** Close open handles, flush, mark the file system clean, close the device. */
  async unmount(): Promise<void> {
    for (const fh of [...this.handles]) await fh.close();
    await syscall('umount', this.mp.stat.from, () => vfs_unmount(this.mp));
    await this.mp.dev?.close();
  }
}

/**
 * Mount `source` (an image file, a block device, or for tmpfs any name) as
 * file system `type` ('tmpfs', 'msdos'/'vfat', 'cd9660'/'iso9660', or
 * 'auto' to detect it from the content).
 */
export async function mount(type: string, source: string, opts: UkfsMountOptions = {}): Promise<Ukfs> {
  return syscall('mount', source, async () => {
    const name = type === 'auto' ? await detectSource(source, opts.partition) : canonicalType(type);
    const ops = await ukfs_modload(name);
    const flags = (opts.readOnly ? MNT_RDONLY : 0) | (opts.sync ? MNT_SYNCHRONOUS : 0);
    const dev = ops.name === 'tmpfs' ? null
      : await blkdev_open(source, { readOnly: !!opts.readOnly || ops.name === 'cd9660', exclusive: true, partition: opts.partition });
    try {
      const mp = await vfs_mount(ops.name, { dev, from: source, flags, options: opts.options ?? {} });
      const c = opts.cred ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
      return new Ukfs(mp, new Cred(c.uid, c.gid, c.groups ?? []), opts.umask ?? process.umask());
    } catch (e) {
      await dev?.close();
      throw e;
    }
  });
}

/** The driver for what `source` holds, read without writing or locking it. */
export async function detectSource(source: string, partition?: number): Promise<string> {
  const dev = await blkdev_open(source, { readOnly: true, partition });
  try { return await detectType(dev); } finally { await dev.close(); }
}
