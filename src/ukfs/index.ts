// ukfs: the kernel's file systems in-process, no mount and no root.
// `await mount('msdos', 'stick.img')` returns an object shaped like
// node:fs/promises, plus unmount(); errors look like Node's. A call Node has
// and we do not throws ERR_METHOD_NOT_IMPLEMENTED naming it.
import { constants as nodeConstants } from 'node:fs';
import { posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  blkdev_open, Cred, errnos, KernError, kerr, Lwp, MNT_RDONLY, MNT_SYNCHRONOUS, O_CREAT, O_EXCL,
  O_RDONLY, O_RDWR, O_SYNC, O_TRUNC, O_WRONLY, O_APPEND, sys_access, sys_getxattr, sys_link, sys_listxattr, sys_mkdir,
  sys_open, sys_readdir, sys_readlink, sys_removexattr, sys_rename, sys_rmdir, sys_setattr, sys_setxattr,
  sys_stat, sys_statvfs, sys_symlink, sys_sync, sys_unlink, vfs_mount, vfs_unmount,
  ifmtToVtype, sys_mknod, VType,
  type Mount, type MountOptions, type Statvfs,
} from '../kern/index.js';
import { nodeError, notImplemented, syscall, throwIfAborted } from './errors.js';
import { detectType } from './detect.js';
import { canonicalType, ukfs_modload } from './modules.js';
import { BigIntStats, Dirent, Stats, statsOf } from './stats.js';
import { Dir } from './dir.js';
import { FileHandle, type Data, type DataOpt, type DataOptions } from './filehandle.js';
import { toTimespec, type TimeLike } from './time.js';

export { BigIntStats, Dirent, Stats } from './stats.js';
export { Dir } from './dir.js';
export { FileHandle } from './filehandle.js';
export type { TimeLike } from './time.js';
/** node:fs constants (open flags, access modes, copyFile modes: Linux values, as the kernel's). */
export const constants = nodeConstants;
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
  if (f === undefined) {
    const err = new TypeError(`The value "${flags}" is invalid for option "flags"`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return f;
}

/** symlink resolutions one realpath() follows before ELOOP (Linux's MAXSYMLINKS). */
const MAXSYMLINKS = 40;
type PathLike = string | Buffer | URL;
type ReaddirOpt = BufferEncoding | 'buffer' | null | { encoding?: BufferEncoding | 'buffer' | null; withFileTypes?: boolean; recursive?: boolean };
export interface CpOptions {
  recursive?: boolean; force?: boolean; errorOnExist?: boolean; preserveTimestamps?: boolean;
  dereference?: boolean; verbatimSymlinks?: boolean;
  filter?: (src: string, dest: string) => boolean | Promise<boolean>;
}

function pathOf(p: PathLike): string {
  if (typeof p === 'string') return p;
  if (p instanceof URL) return decodeURIComponent(p.pathname);
  return p.toString('utf8');
}

/** A mounted file system, used as node:fs/promises. Paths are relative to its root. */
export class Ukfs {
  private readonly handles = new Set<FileHandle>();
  private cwdPath = '/';
  readonly constants = nodeConstants;
  constructor(readonly mp: Mount, private readonly cred: Cred, private readonly umask: number) {}

  /** A request context with this handle's credential. */
  private lwp(): Lwp {
    if (!this.mp.rootvp) throw new KernError(errnos.EIO, 'file system is unmounted');
    return new Lwp(this.cred, this.mp.rootvp, this.mp.rootvp, this.umask, process.pid);
  }

  /** Relative paths resolve against chdir()'s directory (kept as a path). */
  private abs(p: PathLike): string {
    const s = pathOf(p);
    return s === '' || s.startsWith('/') ? s : `${this.cwdPath}/${s}`;
  }

  get type(): string { return this.mp.stat.fstypename; }

  async chdir(path: string): Promise<void> {
    await syscall('chdir', path, async () => {
      const va = await sys_stat(this.lwp(), this.abs(path), true);
      if (va.type !== VType.VDIR) throw new KernError(errnos.ENOTDIR);
    });
    this.cwdPath = this.abs(path);
  }

  async stat(path: PathLike, opt: { bigint: true }): Promise<BigIntStats>;
  async stat(path: PathLike, opt?: { bigint?: false }): Promise<Stats>;
  async stat(path: PathLike, opt?: { bigint?: boolean }): Promise<Stats | BigIntStats> {
    return statsOf(await syscall('stat', pathOf(path), () => sys_stat(this.lwp(), this.abs(path), true)), opt);
  }
  async lstat(path: PathLike, opt: { bigint: true }): Promise<BigIntStats>;
  async lstat(path: PathLike, opt?: { bigint?: false }): Promise<Stats>;
  async lstat(path: PathLike, opt?: { bigint?: boolean }): Promise<Stats | BigIntStats> {
    return statsOf(await syscall('lstat', pathOf(path), () => sys_stat(this.lwp(), this.abs(path), false)), opt);
  }
  /** F_OK (0), or R_OK | W_OK | X_OK: the kernel's VREAD/VWRITE/VEXEC have the same values. */
  access(path: PathLike, mode = nodeConstants.F_OK): Promise<void> {
    return syscall('access', pathOf(path), () => sys_access(this.lwp(), this.abs(path), mode & 7));
  }

  async open(path: PathLike, flags?: string | number, mode = 0o666): Promise<FileHandle> {
    const l = this.lwp();
    const fp = await syscall('open', pathOf(path), () => sys_open(l, this.abs(path), openFlags(flags, 'r'), mode));
    const fh = new FileHandle(() => this.lwp(), fp, pathOf(path));
    this.handles.add(fh);
    fh.onClose = () => this.handles.delete(fh);
    return fh;
  }

  /** A path, or an open FileHandle (not closed afterwards, as Node). */
  private async withHandle<T>(file: PathLike | FileHandle, flag: string, mode: number, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    if (file instanceof FileHandle) return fn(file);
    const fh = await this.open(file, flag, mode);
    try { return await fn(fh); } finally { await fh.close(); }
  }

  async readFile(path: PathLike | FileHandle, opt?: { encoding?: null; flag?: string; signal?: AbortSignal } | null): Promise<Buffer>;
  async readFile(path: PathLike | FileHandle, opt: BufferEncoding | { encoding: BufferEncoding; flag?: string; signal?: AbortSignal }): Promise<string>;
  async readFile(path: PathLike | FileHandle, opt?: DataOpt): Promise<Buffer | string>;
  async readFile(path: PathLike | FileHandle, opt?: DataOpt): Promise<Buffer | string> {
    const o: DataOptions = typeof opt === 'object' && opt !== null ? opt : {};
    throwIfAborted(o.signal);
    return this.withHandle(path, o.flag ?? 'r', 0o666, fh => fh.readFile(opt));
  }

  async writeFile(path: PathLike | FileHandle, data: Data, opt?: DataOpt): Promise<void> {
    const o: DataOptions = typeof opt === 'object' && opt !== null ? opt : {};
    throwIfAborted(o.signal);
    return this.withHandle(path, o.flag ?? 'w', o.mode ?? 0o666, fh => fh.writeFile(data, opt));
  }

  appendFile(path: PathLike | FileHandle, data: Data, opt?: DataOpt): Promise<void> {
    const o: DataOptions = typeof opt === 'object' && opt !== null ? opt : { encoding: opt };
    return this.writeFile(path, data, { ...o, flag: o.flag ?? 'a' });
  }

  async readdir(path: PathLike, opt?: { withFileTypes?: false; recursive?: boolean; encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<string[]>;
  async readdir(path: PathLike, opt: { withFileTypes?: false; recursive?: boolean; encoding: 'buffer' } | 'buffer'): Promise<Buffer[]>;
  async readdir(path: PathLike, opt: { withFileTypes: true; recursive?: boolean }): Promise<Dirent[]>;
  async readdir(path: PathLike, opt?: ReaddirOpt): Promise<string[] | Buffer[] | Dirent[]> {
    const o = typeof opt === 'object' && opt !== null ? opt : { encoding: opt };
    const p = pathOf(path);
    const out: Dirent[] = [];
    // Breadth first, as Node: a directory's entries, then its subdirectories'.
    const queue: [string, string][] = [[this.abs(path), p]];
    for (let q; (q = queue.shift());) {
      const [kdir, cdir] = q;
      const all = await syscall('scandir', p, () => sys_readdir(this.lwp(), kdir));
      for (const d of all) {
        if (d.name === '.' || d.name === '..') continue;
        out.push(new Dirent(d, cdir));
        if (o.recursive && d.type === VType.VDIR) queue.push([posix.join(kdir, d.name), posix.join(cdir, d.name)]);
      }
    }
    if (o.withFileTypes) return out;
    const names = out.map(d => o.recursive ? posix.relative(p, posix.join(d.parentPath, d.name)) : d.name);
    if (o.encoding === 'buffer') return names.map(n => Buffer.from(n));
    return o.encoding && o.encoding !== 'utf8' && o.encoding !== 'utf-8' ? names.map(n => Buffer.from(n).toString(o.encoding as BufferEncoding)) : names;
  }

  /** A Dir read lazily (Node's opendir); bufferSize is accepted and not needed. */
  async opendir(path: PathLike, opt: { recursive?: boolean; bufferSize?: number; encoding?: string } = {}): Promise<Dir> {
    return new Dir(() => this.lwp(), this.abs(path), pathOf(path), !!opt.recursive).start();
  }

  async mkdir(path: PathLike, opt?: number | string | { recursive?: boolean; mode?: number | string }): Promise<string | undefined> {
    const o = typeof opt === 'object' ? opt : { mode: opt };
    const mode = typeof o.mode === 'string' ? parseInt(o.mode, 8) : o.mode ?? 0o777;
    const p = pathOf(path);
    if (!o.recursive) {
      await syscall('mkdir', p, () => sys_mkdir(this.lwp(), this.abs(path), mode));
      return undefined;
    }
    const abs = this.abs(path);
    const parts = abs.split('/').filter(Boolean);
    let first: string | undefined;
    for (let i = 1; i <= parts.length; i++) {
      const sub = '/' + parts.slice(0, i).join('/');
      try {
        await sys_mkdir(this.lwp(), sub, mode);
        first ??= p.startsWith('/') ? sub : sub.slice(this.cwdPath.replace(/\/$/, '').length + 1);
      } catch (e) {
        if (!(e instanceof KernError && e.errno === errnos.EEXIST)) return syscall('mkdir', p, () => Promise.reject(e));
        const va = await syscall('mkdir', p, () => sys_stat(this.lwp(), sub, true));
        if (va.type !== VType.VDIR) return syscall('mkdir', p, () => Promise.reject(kerr('ENOTDIR')));
      }
    }
    return first;
  }

  /** A new directory named prefix + six random characters, mode 0700 (Node's mkdtemp). */
  async mkdtemp(prefix: string, _opt?: unknown): Promise<string> {
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    for (let tries = 0; ; tries++) {
      const name = prefix + [...randomBytes(6)].map(b => chars[b % chars.length]).join('');
      try {
        await syscall('mkdtemp', `${prefix}XXXXXX`, () => sys_mkdir(this.lwp(), this.abs(name), 0o700));
        return name;
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST' || tries > 100) throw e;
      }
    }
  }

  /** mknod(2): a FIFO, socket or device node (mode includes S_IF* type bits). */
  mknod(path: string, mode: number, rdev = 0): Promise<void> {
    return syscall('mknod', path, () => sys_mknod(this.lwp(), this.abs(path), ifmtToVtype(mode), mode & 0o7777, rdev));
  }

  unlink(path: PathLike): Promise<void> {
    return syscall('unlink', pathOf(path), () => sys_unlink(this.lwp(), this.abs(path)));
  }
  rmdir(path: PathLike, _opt?: unknown): Promise<void> {
    return syscall('rmdir', pathOf(path), () => sys_rmdir(this.lwp(), this.abs(path)));
  }

  async rm(path: PathLike, opt: { recursive?: boolean; force?: boolean; maxRetries?: number; retryDelay?: number } = {}): Promise<void> {
    const p = pathOf(path);
    let st: Stats;
    try {
      st = await this.lstat(p);
    } catch (e) {
      if (opt.force && (e as { code?: string }).code === 'ENOENT') return;
      throw e;
    }
    if (!st.isDirectory()) return this.unlink(p);
    if (!opt.recursive) throw Object.assign(nodeError('ERR_FS_EISDIR', `Path is a directory: rm returned EISDIR (is a directory) ${p}`, 'SystemError'), { errno: 21, syscall: 'rm', path: p });
    for (const name of await this.readdir(p)) await this.rm(posix.join(p, name), opt);
    await this.rmdir(p);
  }

  rename(from: PathLike, to: PathLike): Promise<void> {
    return syscall('rename', pathOf(from), () => sys_rename(this.lwp(), this.abs(from), this.abs(to)), pathOf(to));
  }
  symlink(target: PathLike, path: PathLike, _type?: string | null): Promise<void> {
    return syscall('symlink', pathOf(target), () => sys_symlink(this.lwp(), pathOf(target), this.abs(path)), pathOf(path));
  }
  readlink(path: PathLike, _opt?: unknown): Promise<string> {
    return syscall('readlink', pathOf(path), () => sys_readlink(this.lwp(), this.abs(path)));
  }
  link(existing: PathLike, path: PathLike): Promise<void> {
    return syscall('link', pathOf(existing), () => sys_link(this.lwp(), this.abs(existing), this.abs(path)), pathOf(path));
  }

  /** The path with every symlink, `.` and `..` resolved, from the file system's root (Node's realpath). */
  async realpath(path: PathLike, _opt?: unknown): Promise<string> {
    const p = pathOf(path);
    return syscall('realpath', p, async () => {
      const rest = this.abs(p).split('/').filter(Boolean);
      const done: string[] = [];
      let links = 0;
      while (rest.length) {
        const part = rest.shift()!;
        if (part === '.') continue;
        if (part === '..') { done.pop(); continue; }
        const here = '/' + [...done, part].join('/');
        const va = await sys_stat(this.lwp(), here, false);
        if (va.type === VType.VLNK) {
          if (++links > MAXSYMLINKS) throw kerr('ELOOP');
          const target = await sys_readlink(this.lwp(), here);
          if (target.startsWith('/')) done.length = 0;
          rest.unshift(...target.split('/').filter(Boolean));
          continue;
        }
        if (rest.length && va.type !== VType.VDIR) throw kerr('ENOTDIR');
        done.push(part);
      }
      return '/' + done.join('/');
    });
  }

  chmod(path: PathLike, mode: number | string): Promise<void> {
    const m = typeof mode === 'string' ? parseInt(mode, 8) : mode;
    return syscall('chmod', pathOf(path), () => sys_setattr(this.lwp(), this.abs(path), { mode: m }));
  }
  /** Linux has no lchmod: Node throws this too. */
  async lchmod(_path: PathLike, _mode: number): Promise<void> { notImplemented('lchmod'); }
  chown(path: PathLike, uid: number, gid: number): Promise<void> {
    return syscall('chown', pathOf(path), () => sys_setattr(this.lwp(), this.abs(path), { ...(uid !== -1 && { uid }), ...(gid !== -1 && { gid }) }));
  }
  lchown(path: PathLike, uid: number, gid: number): Promise<void> {
    return syscall('lchown', pathOf(path), () => sys_setattr(this.lwp(), this.abs(path), { ...(uid !== -1 && { uid }), ...(gid !== -1 && { gid }) }, false));
  }
  utimes(path: PathLike, atime: TimeLike, mtime: TimeLike): Promise<void> {
    return syscall('utime', pathOf(path), () => sys_setattr(this.lwp(), this.abs(path), { atime: toTimespec(atime), mtime: toTimespec(mtime) }));
  }
  lutimes(path: PathLike, atime: TimeLike, mtime: TimeLike): Promise<void> {
    return syscall('lutime', pathOf(path), () => sys_setattr(this.lwp(), this.abs(path), { atime: toTimespec(atime), mtime: toTimespec(mtime) }, false));
  }
  truncate(path: PathLike, len = 0): Promise<void> {
    return syscall('open', pathOf(path), () => sys_setattr(this.lwp(), this.abs(path), { size: len }));
  }

  /** copyFile: data and mode; COPYFILE_EXCL refuses an existing target; clones are not possible here. */
  async copyFile(src: PathLike, dest: PathLike, mode = 0): Promise<void> {
    if (mode & nodeConstants.COPYFILE_FICLONE_FORCE)
      return syscall('copyfile', pathOf(src), () => Promise.reject(kerr('ENOTSUP', 'no reflinks')), pathOf(dest));
    const from = await this.open(src, 'r');
    try {
      const st = await from.stat();
      if (st.isDirectory()) await syscall('copyfile', pathOf(src), () => Promise.reject(kerr('EISDIR')), pathOf(dest));
      const to = await this.open(dest, mode & nodeConstants.COPYFILE_EXCL ? 'wx' : 'w', st.mode & 0o7777);
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        for (let pos = 0, n; (n = (await from.read(buf, 0, buf.length, pos)).bytesRead) > 0; pos += n)
          await to.write(buf, 0, n, pos);
        await to.chmod(st.mode & 0o7777);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }

  /** Node's cp: files, symlinks and (recursive) directories, with its ERR_FS_CP_* checks. */
  async cp(src: PathLike, dest: PathLike, opt: CpOptions = {}): Promise<void> {
    const s = pathOf(src), d = pathOf(dest);
    const o = { force: true, ...opt };
    const st = o.dereference ? await this.stat(s) : await this.lstat(s);
    const ks = posix.resolve(this.abs(s)), kd = posix.resolve(this.abs(d));
    if (ks === kd) throw nodeError('ERR_FS_CP_EINVAL', `Invalid src or dest: cp returned EINVAL (src and dest cannot be the same) ${d}`, 'SystemError');
    if (st.isDirectory() && (kd + '/').startsWith(ks + '/'))
      throw nodeError('ERR_FS_CP_EINVAL', `Invalid src or dest: cp returned EINVAL (cannot copy ${s} to a subdirectory of self ${d}) ${d}`, 'SystemError');
    if (st.isDirectory() && !o.recursive)
      throw nodeError('ERR_FS_EISDIR', `Recursive option is required to copy a directory: cp returned EISDIR (${s} is a directory (not copied)) ${s}`, 'SystemError');
    await this.cpEntry(s, d, st, o);
  }

  private async cpEntry(s: string, d: string, st: Stats, o: CpOptions): Promise<void> {
    if (o.filter && !(await o.filter(s, d))) return;
    const dst = await this.lstat(d).catch((e: { code?: string }) => { if (e.code === 'ENOENT') return null; throw e; });
    if (st.isDirectory()) {
      if (dst && !dst.isDirectory())
        throw nodeError('ERR_FS_CP_DIR_TO_NON_DIR', `Cannot overwrite non-directory with directory: cp returned ENOTDIR (cannot overwrite non-directory ${d} with directory ${s}) ${d}`, 'SystemError');
      if (!dst) await this.mkdir(d, { mode: 0o700 });
      for (const name of await this.readdir(s)) {
        const child = posix.join(s, name);
        await this.cpEntry(child, posix.join(d, name), o.dereference ? await this.stat(child) : await this.lstat(child), o);
      }
      if (!dst) await this.chmod(d, st.mode & 0o7777);
    } else {
      if (dst?.isDirectory())
        throw nodeError('ERR_FS_CP_NON_DIR_TO_DIR', `Cannot overwrite directory with non-directory: cp returned EISDIR (cannot overwrite directory ${d} with non-directory ${s}) ${d}`, 'SystemError');
      if (dst) {
        if (!o.force) {
          if (o.errorOnExist) throw nodeError('ERR_FS_CP_EEXIST', `Target already exists: cp returned EEXIST (${d} already exists) ${d}`, 'SystemError');
          return;
        }
        await this.unlink(d);
      }
      if (st.isSymbolicLink()) {
        const target = await this.readlink(s);
        await this.symlink(o.verbatimSymlinks || target.startsWith('/') ? target : posix.resolve(posix.dirname(this.abs(s)), target), d);
        return;
      }
      if (!st.isFile()) return syscall('cp', s, () => Promise.reject(kerr('EINVAL', 'cannot copy a special file')), d);
      await this.copyFile(s, d);
    }
    if (o.preserveTimestamps) await this.lutimes(d, st.atime, st.mtime);
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

  /** statfs(2), with Node's StatsFs field names (type: the driver's name, not a magic number). */
  async statfs(_path = '/'): Promise<{ type: string; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; namemax: number; readOnly: boolean }> {
    const s: Statvfs = await syscall('statfs', '/', () => sys_statvfs(this.lwp()));
    return { type: this.type, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namemax: s.namemax, readOnly: (s.flag & MNT_RDONLY) !== 0 };
  }

  /** No change notification from an in-process kernel. */
  watch(_path: PathLike, _opt?: unknown): never { return notImplemented('watch'); }
  glob(_pattern: string | string[], _opt?: unknown): never { return notImplemented('glob'); }

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
 * file system `type` ('tmpfs', 'msdos'/'vfat', 'exfat', 'ext2fs'/'ext4', 'ntfs', 'cd9660'/'iso9660', 'udf', or
 * 'auto' to detect it from the content).
 */
export async function mount(type: string, source: string, opts: UkfsMountOptions = {}): Promise<Ukfs> {
  return syscall('mount', source, async () => {
    const name = type === 'auto' ? await detectSource(source, opts.partition) : canonicalType(type);
    const ops = await ukfs_modload(name);
    const flags = (opts.readOnly ? MNT_RDONLY : 0) | (opts.sync ? MNT_SYNCHRONOUS : 0);
    const dev = ops.name === 'tmpfs' ? null
      : await blkdev_open(source, { readOnly: !!opts.readOnly || ops.readOnlyFormat === true, exclusive: true, partition: opts.partition });
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
