// p2k: FUSE requests become calls into the kernel's system-call layer, as
// NetBSD's libp2k turns puffs requests into VOPs. Every handler has the same
// shape: the FUSE caller becomes a credential and a request context (Lwp),
// the kernel resolves the name, checks permissions and takes the declared
// locks, and the result or errno goes back. p2k knows no driver.
// A KernError becomes -errno; anything else escaping the kernel is a bug: panic.
import {
  Cred, KernError, LK_EXCLUSIVE, Lwp, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, FSYNC_DATAONLY, FSYNC_WAIT,
  VType, errnos, ifmtToVtype, nanotime, panic, sys_access, sys_getxattr, sys_link, sys_listxattr, sys_mkdir,
  sys_mknod, sys_open, sys_readlink, sys_removexattr, sys_rename, sys_rmdir, sys_setattr, sys_setxattr, sys_stat,
  sys_statvfs, sys_symlink, sys_unlink, timespecToMs, vcache_stats, vfs_unmount, vn_close, vn_fstat, vn_fsync,
  vn_locked, vn_read, vn_readdir, vn_setattr, vn_write, vtypeToIfmt,
  type File, type Mount, type Timespec, type Vattr, type VattrSet, type Vnode,
} from '../src/kern/index.js';
import { rumpuser_putstr } from '../src/rumpuser/index.js';
import type { CallerGroups } from './caller_groups.js';
import {
  FuseMount, UTIME_NOW, UTIME_OMIT, direntStat, fuseCaller, statArray, statfsArray, u64,
  type FuseMountOptions, type Signal,
} from './fuse.js';

export interface P2kOptions {
  mountpoint: string;
  fuse: FuseMountOptions;
  /** Where callers' supplementary groups come from; null: none. */
  groups: CallerGroups | null;
  /** P2K_WIZARDUID: every request is made by this uid (and gid), with no groups. */
  wizardUid?: number;
  /** P2K_DEBUG: every operation, its argument and result on stderr. */
  debug?: boolean;
}

const ENOTCONN = -errnos.ENOTCONN;
const UNSET = 0xffffffff; // chown's "leave as is" ((uid_t)-1)

function ms(t: Timespec): number {
  return Math.floor(timespecToMs(t));
}

function toStat(va: Vattr): Uint32Array {
  return statArray({
    mode: vtypeToIfmt(va.type) | va.mode, uid: va.uid, gid: va.gid, size: va.size, nlink: va.nlink,
    ino: va.fileid, rdev: va.rdev, blksize: va.blocksize, blocks: Math.ceil(va.bytes / 512),
    atimeMs: ms(va.atime), mtimeMs: ms(va.mtime), ctimeMs: ms(va.ctime),
  });
}

/** A utimens time: undefined for UTIME_OMIT, now for UTIME_NOW. */
function utime(sec: number, nsec: number, now: Timespec): Timespec | undefined {
  if (nsec === UTIME_OMIT) return undefined;
  return nsec === UTIME_NOW ? now : { sec, nsec };
}

export class P2k extends FuseMount {
  private readonly root: Vnode;
  /** Open files and directories by the handle number FUSE holds (0 is "none" to fuse-native). */
  private readonly files: (File | undefined)[] = [undefined];
  private readonly freeHandles: number[] = [];
  private readonly wizard: Cred | null;
  private stopping: Promise<void> | null = null;
  /** Requests answered, by operation (SIGUSR2). */
  private readonly counts = new Map<string, number>();

  constructor(readonly mp: Mount, private readonly opts: P2kOptions) {
    super(opts.mountpoint, opts.fuse);
    if (!mp.rootvp) throw new Error('p2k: the mount has no root vnode');
    this.root = mp.rootvp;
    this.wizard = opts.wizardUid !== undefined ? new Cred(opts.wizardUid, opts.wizardUid, []) : null;
  }

  /** The request context of the request being dispatched (call synchronously at entry). */
  private lwp(): Lwp {
    const [uid, gid, pid] = fuseCaller();
    const cred = this.wizard ??
      new Cred(uid, gid, uid === 0 || !this.opts.groups ? [] : this.opts.groups.get(pid));
    return new Lwp(cred, this.root, this.root, 0, pid);
  }

  /**
   * Run one request: fn gets the caller's context and returns the values to
   * signal (the first being the result code). failTail: what libfuse needs
   * after the errno (the buffers it detaches).
   */
  private serve(signal: Signal, op: string, arg: unknown, fn: (l: Lwp) => Promise<unknown[]>, failTail: unknown[] = []): void {
    if (this.stopping) {
      signal(ENOTCONN, ...failTail);
      return;
    }
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    fn(this.lwp()).then(
      r => {
        if (this.opts.debug) this.trace(op, arg, typeof r[0] === 'number' && r[0] > 0 ? String(r[0]) : 'ok');
        signal(...(r as [number, ...unknown[]]));
      },
      e => {
        if (!(e instanceof KernError)) panic(`p2k: ${op} ${String(arg)}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        if (this.opts.debug) this.trace(op, arg, e.message);
        signal(-e.errno, ...failTail);
      });
  }

  private trace(op: string, arg: unknown, result: string): void {
    rumpuser_putstr(`p2k: ${op} ${String(arg)} -> ${result}\n`);
  }

  private addFile(fp: File): number {
    const fh = this.freeHandles.pop() ?? this.files.length;
    this.files[fh] = fp;
    return fh;
  }

  private file(fh: number): File {
    const fp = this.files[fh];
    if (!fp) throw new KernError(errnos.EBADF, `no handle ${fh}`);
    return fp;
  }

  private dropFile(fh: number): File {
    const fp = this.file(fh);
    this.files[fh] = undefined;
    this.freeHandles.push(fh);
    return fp;
  }

  // Attributes and names

  _op_getattr(signal: Signal, path: string): void {
    this.serve(signal, 'getattr', path, async l => [0, toStat(await sys_stat(l, path, false))]);
  }

  _op_fgetattr(signal: Signal, path: string | null, fh: number): void {
    this.serve(signal, 'fgetattr', fh, async l => [0, toStat(await vn_fstat(l, this.file(fh)))]);
  }

  _op_access(signal: Signal, path: string, mode: number): void {
    this.serve(signal, 'access', path, async l => { await sys_access(l, path, mode & 7); return [0]; });
  }

  _op_readlink(signal: Signal, path: string): void {
    this.serve(signal, 'readlink', path, async l => [0, await sys_readlink(l, path)]);
  }

  _op_mknod(signal: Signal, path: string, mode: number, dev: number): void {
    this.serve(signal, 'mknod', path, async l => {
      const type = ifmtToVtype(mode);
      if (type === VType.VREG) await vn_close(l, await sys_open(l, path, O_CREAT | O_EXCL, mode & 0o7777));
      else await sys_mknod(l, path, type, mode & 0o7777, dev);
      return [0];
    });
  }

  _op_mkdir(signal: Signal, path: string, mode: number): void {
    this.serve(signal, 'mkdir', path, async l => { await sys_mkdir(l, path, mode & 0o7777); return [0]; });
  }

  _op_unlink(signal: Signal, path: string): void {
    this.serve(signal, 'unlink', path, async l => { await sys_unlink(l, path); return [0]; });
  }

  _op_rmdir(signal: Signal, path: string): void {
    this.serve(signal, 'rmdir', path, async l => { await sys_rmdir(l, path); return [0]; });
  }

  /** symlink(target, path): FUSE names the link's contents first. */
  _op_symlink(signal: Signal, target: string, path: string): void {
    this.serve(signal, 'symlink', path, async l => { await sys_symlink(l, target, path); return [0]; });
  }

  _op_rename(signal: Signal, from: string, to: string): void {
    this.serve(signal, 'rename', `${from} ${to}`, async l => { await sys_rename(l, from, to); return [0]; });
  }

  _op_link(signal: Signal, existing: string, path: string): void {
    this.serve(signal, 'link', `${existing} ${path}`, async l => { await sys_link(l, existing, path); return [0]; });
  }

  private setattr(signal: Signal, op: string, path: string, va: VattrSet): void {
    this.serve(signal, op, path, async l => { await sys_setattr(l, path, va, false); return [0]; });
  }

  _op_chmod(signal: Signal, path: string, mode: number): void {
    this.setattr(signal, 'chmod', path, { mode: mode & 0o7777 });
  }

  _op_chown(signal: Signal, path: string, uid: number, gid: number): void {
    this.setattr(signal, 'chown', path, {
      ...(uid !== UNSET ? { uid } : {}), ...(gid !== UNSET ? { gid } : {}),
    });
  }

  _op_truncate(signal: Signal, path: string, lo: number, hi: number): void {
    this.setattr(signal, 'truncate', path, { size: u64(lo, hi) });
  }

  _op_utimens(signal: Signal, path: string, asec: number, ansec: number, msec: number, mnsec: number): void {
    const now = nanotime();
    const atime = utime(asec, ansec, now), mtime = utime(msec, mnsec, now);
    // utimes(NULL) and its kin: setting times to "now" needs only write access.
    const utimesNow = (ansec === UTIME_NOW || ansec === UTIME_OMIT) && (mnsec === UTIME_NOW || mnsec === UTIME_OMIT);
    this.setattr(signal, 'utimens', path, { ...(atime ? { atime } : {}), ...(mtime ? { mtime } : {}), utimesNow });
  }

  // Open files

  _op_open(signal: Signal, path: string, flags: number): void {
    this.serve(signal, 'open', path, async l =>
      [0, this.addFile(await sys_open(l, path, (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW))]);
  }

  _op_create(signal: Signal, path: string, mode: number, flags: number): void {
    this.serve(signal, 'create', path, async l =>
      [0, this.addFile(await sys_open(l, path, flags | O_CREAT, mode & 0o7777))]);
  }

  _op_opendir(signal: Signal, path: string): void {
    this.serve(signal, 'opendir', path, async l =>
      [0, this.addFile(await sys_open(l, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW))]);
  }

  private release(signal: Signal, op: string, fh: number): void {
    this.serve(signal, op, fh, async l => { await vn_close(l, this.dropFile(fh)); return [0]; });
  }

  _op_release(signal: Signal, path: string | null, fh: number): void {
    this.release(signal, 'release', fh);
  }

  _op_releasedir(signal: Signal, path: string | null, fh: number): void {
    this.release(signal, 'releasedir', fh);
  }

  /** A short read means end of file to FUSE: fill the request unless the file ends. */
  _op_read(signal: Signal, path: string | null, fh: number, buf: Buffer, len: number, lo: number, hi: number): void {
    this.serve(signal, 'read', fh, async l => {
      const fp = this.file(fh), off = u64(lo, hi);
      let done = 0;
      while (done < len) {
        const n = await vn_read(l, fp, buf.subarray(done, len), off + done);
        if (n === 0) break;
        done += n;
      }
      return [done, 0, buf.buffer];
    }, [0, buf.buffer]);
  }

  _op_write(signal: Signal, path: string | null, fh: number, buf: Buffer, len: number, lo: number, hi: number): void {
    this.serve(signal, 'write', fh, async l => {
      const fp = this.file(fh), off = u64(lo, hi);
      let done = 0;
      while (done < len) {
        const n = await vn_write(l, fp, buf.subarray(done, len), off + done);
        if (n === 0) break;
        done += n;
      }
      return [done, 0, buf.buffer];
    }, [0, buf.buffer]);
  }

  /** Truncation through a handle: allowed by the handle's write access, else by the mode (open with O_TRUNC). */
  _op_ftruncate(signal: Signal, path: string | null, fh: number, lo: number, hi: number): void {
    this.serve(signal, 'ftruncate', fh, async l => {
      const fp = this.file(fh);
      await vn_locked(fp.vp, LK_EXCLUSIVE, l, () => vn_setattr(fp.vp, { size: u64(lo, hi) }, l, fp.writable));
      return [0];
    });
  }

  /** close(2) of one descriptor: nothing to do, the data went with each write. */
  _op_flush(signal: Signal): void {
    signal(0);
  }

  _op_fsync(signal: Signal, path: string | null, datasync: number, fh: number): void {
    this.serve(signal, 'fsync', fh, async l => {
      await vn_fsync(l, this.file(fh), FSYNC_WAIT | (datasync ? FSYNC_DATAONLY : 0));
      return [0];
    });
  }

  _op_fsyncdir(signal: Signal, path: string | null, datasync: number, fh: number): void {
    this._op_fsync(signal, path, datasync, fh);
  }

  /** The whole directory in one reply (libfuse 2 keeps it for the kernel's later offsets), with types. */
  _op_readdir(signal: Signal, path: string | null, fh: number): void {
    this.serve(signal, 'readdir', path ?? fh, async l => {
      const fp = this.file(fh);
      const names: string[] = [], stats: Uint32Array[] = [];
      for (let cookie = 0; ;) {
        const { entries, eof } = await vn_readdir(l, fp, cookie);
        for (const e of entries) {
          names.push(e.name);
          stats.push(direntStat(vtypeToIfmt(e.type), e.fileid));
        }
        if (eof || entries.length === 0) break;
        cookie = entries[entries.length - 1].cookie;
      }
      return [0, names, stats];
    });
  }

  _op_statfs(signal: Signal): void {
    this.serve(signal, 'statfs', '/', async l => [0, statfsArray(await sys_statvfs(l))]);
  }

  // Extended attributes (ENOTSUP from the kernel when the driver has none)

  _op_setxattr(signal: Signal, path: string, name: string, value: Buffer, position: number, flags: number): void {
    this.serve(signal, 'setxattr', `${path} ${name}`, async l => {
      // The driver keeps what it is given; libfuse's buffer is reused after the reply.
      await sys_setxattr(l, path, name, Uint8Array.prototype.slice.call(value), flags, false);
      return [0, value.buffer];
    }, [value.buffer]);
  }

  /** size 0 asks for the length; a smaller buffer than the value is ERANGE. */
  _op_getxattr(signal: Signal, path: string, name: string, out: Buffer): void {
    this.serve(signal, 'getxattr', `${path} ${name}`, async l => {
      const v = await sys_getxattr(l, path, name, false);
      if (out.length > 0) {
        if (v.length > out.length) throw new KernError(errnos.ERANGE);
        out.set(v);
      }
      return [v.length, out.buffer];
    }, [out.buffer]);
  }

  _op_listxattr(signal: Signal, path: string, out: Buffer): void {
    this.serve(signal, 'listxattr', path, async l => {
      const list = Buffer.from((await sys_listxattr(l, path, false)).map(n => n + '\0').join(''));
      if (out.length > 0) {
        if (list.length > out.length) throw new KernError(errnos.ERANGE);
        out.set(list);
      }
      return [list.length, out.buffer];
    }, [out.buffer]);
  }

  _op_removexattr(signal: Signal, path: string, name: string): void {
    this.serve(signal, 'removexattr', `${path} ${name}`, async l => { await sys_removexattr(l, path, name, false); return [0]; });
  }

  // Server side

  /** Open handles (for status and tests). */
  get openHandles(): number {
    return this.files.filter(f => f !== undefined).length;
  }

  /**
   * Stop serving and unmount the file system from the kernel: close what
   * FUSE left open, then vfs_unmount (flush, mark clean). Requests still in
   * flight hold vnodes: then the unmount is forced. Idempotent.
   */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      const l = new Lwp(Cred.root, this.root);
      for (let fh = 1; fh < this.files.length; fh++) {
        const fp = this.files[fh];
        this.files[fh] = undefined;
        if (fp) await vn_close(l, fp).catch(() => {});
      }
      try {
        await vfs_unmount(this.mp);
      } catch (e) {
        if (!(e instanceof KernError && e.code === 'EBUSY')) throw e;
        await vfs_unmount(this.mp, true);
      }
    })();
    return this.stopping;
  }

  /** SIGUSR1: every vnode of the mount. */
  dumpVnodes(): string {
    const lines = [`p2k: ${this.mp.vnodes.size} vnodes of ${this.mp.stat.fstypename} ${this.mp.stat.from}`];
    for (const vp of this.mp.vnodes.values()) {
      lines.push(`  ${vp.key}\t${VType[vp.type]}\tusecount ${vp.usecount}\t${vp.lock.isLocked() ? 'locked' : 'unlocked'}`);
    }
    return lines.join('\n') + '\n';
  }

  /** SIGUSR2: the mount's status. */
  async dumpStatus(): Promise<string> {
    const sv = await this.mp.op.statvfs(this.mp);
    const vc = vcache_stats();
    const ops = [...this.counts].map(([k, v]) => `${k} ${v}`).join(', ');
    return `p2k: ${this.mp.stat.fstypename} ${this.mp.stat.from} on ${this.opts.mountpoint}\n` +
      `  blocks ${sv.blocks - sv.bfree}/${sv.blocks} of ${sv.frsize} bytes, files ${sv.files - sv.ffree}/${sv.files}\n` +
      `  open handles ${this.openHandles}, vnodes ${this.mp.vnodes.size}, unused vnodes (all mounts) ${vc.free}/${vc.max}\n` +
      `  requests: ${ops || 'none'}\n`;
  }
}
