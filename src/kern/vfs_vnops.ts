// Operations on vnodes that callers share: permission checks, attribute
// changes with the ownership rules, and open files (struct file).
import { kerr } from './errno.js';
import { genfs_can_chmod, genfs_can_chown, genfs_can_utimes, genfs_killpriv_mode, vaccess, VEXEC, VWRITE, VREAD } from './kauth.js';
import { LK_EXCLUSIVE, LK_SHARED, type LockMode } from './lock.js';
import type { Lwp } from './lwp.js';
import { vrele } from './vcache.js';
import type { Vnode } from './vnode.js';
import {
  andThen, vop_close, vop_getattr, vop_loan, vop_open, vop_read, vop_setattr, vop_write, VOP_FSYNC, VOP_GETATTR, VOP_GETXATTR,
  VOP_LISTXATTR, VOP_READDIR, VOP_READLINK, VOP_REMOVEXATTR, VOP_SETATTR, VOP_SETXATTR,
} from './vnode_if.js';
import {
  FSYNC_WAIT, IO_APPEND, IO_SYNC, O_ACCMODE, O_APPEND, O_DIRECTORY, O_RDONLY, O_RDWR, O_SYNC, O_TRUNC, O_WRONLY,
  VType, type Dirent, type MaybePromise, type Vattr, type VattrSet,
} from './vnode_types.js';

// The *m functions (vn_openm, vn_readm, ...) are the calls as they come:
// a value when nothing had to wait (a free lock, a driver that answered at
// once), else a Promise, and a synchronous throw for an error found at
// once. The names without m are the same calls as Promises (a throw becomes
// a rejection), for callers that chain them (ukfs, tests).

/** Run fn with vp locked as asked; the lock goes on every path. */
export async function vn_locked<T>(vp: Vnode, mode: LockMode, l: Lwp, fn: () => MaybePromise<T>): Promise<T> {
  await vp.lock.lock(l, mode);
  try { return await fn(); } finally { vp.lock.unlock(l); }
}

/**
 * vn_locked as it comes: a free lock is taken at once, and when fn answers
 * at once, so does this (the lock released before returning).
 */
export function vn_locking<T>(vp: Vnode, mode: LockMode, l: Lwp, fn: () => MaybePromise<T>): MaybePromise<T> {
  if (!vp.lock.tryLock(l, mode)) return vn_locked(vp, mode, l, fn);
  let r: MaybePromise<T>;
  try {
    r = fn();
  } catch (e) {
    vp.lock.unlock(l);
    throw e;
  }
  if (r instanceof Promise) return unlockAfter(vp, l, r);
  vp.lock.unlock(l);
  return r;
}

/** vp unlocked when r settles (apart from vn_locking: its closures would cost that a context per call). */
function unlockAfter<T>(vp: Vnode, l: Lwp, r: Promise<T>): Promise<T> {
  return r.then(v => { vp.lock.unlock(l); return v; }, e => { vp.lock.unlock(l); throw e; });
}

/** The same as a Promise: a synchronous throw becomes a rejection. */
function promise<T>(f: () => MaybePromise<T>): Promise<T> {
  try {
    const r = f();
    return r instanceof Promise ? r : Promise.resolve(r);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * access(2) on a locked vnode: EROFS for writes on a read-only mount, then
 * the mode bits. Root needs no attributes except to execute a non-directory.
 */
export function vn_access(vp: Vnode, accmode: number, l: Lwp): void | Promise<void> {
  if ((accmode & VWRITE) && vp.mount.readOnly &&
      (vp.type === VType.VREG || vp.type === VType.VDIR || vp.type === VType.VLNK)) throw kerr('EROFS');
  if (l.cred.isRoot() && !((accmode & VEXEC) && vp.type !== VType.VDIR)) return;
  const va = vop_getattr(vp, l);
  if (va instanceof Promise) return va.then(a => vaccess(vp.type, a.mode, a.uid, a.gid, accmode, l.cred));
  vaccess(vp.type, va.mode, va.uid, va.gid, accmode, l.cred);
}

/**
 * setattr with the ownership rules applied here, once for every driver:
 * chmod and chown by owner or root, times by owner (or "now" by a writer),
 * size by a writer (or through a descriptor open for writing).
 * vp locked exclusive.
 */
export async function vn_setattr(vp: Vnode, va: VattrSet, l: Lwp, openForWrite = false): Promise<void> {
  if (vp.mount.readOnly) throw kerr('EROFS');
  const cur = await VOP_GETATTR(vp, l);
  const set: VattrSet = { ...va };
  if (va.mode !== undefined) set.mode = genfs_can_chmod(vp.type, l.cred, cur.uid, cur.gid, va.mode);
  if (va.uid !== undefined || va.gid !== undefined) {
    const uid = va.uid ?? cur.uid, gid = va.gid ?? cur.gid;
    const mode = genfs_can_chown(l.cred, cur.uid, cur.gid, uid, gid, set.mode ?? cur.mode);
    if (mode !== (set.mode ?? cur.mode) && vp.type !== VType.VDIR) set.mode = mode;
  }
  if ((va.atime || va.mtime || va.birthtime) && !vp.ops.utimesAllowed?.(vp, l.cred)) {
    genfs_can_utimes(vp.type, cur.mode, cur.uid, cur.gid, !!va.utimesNow, l.cred);
  }
  if (va.size !== undefined) {
    if (vp.type === VType.VDIR) throw kerr('EISDIR');
    if (vp.type !== VType.VREG) throw kerr('EINVAL');
    if (va.size < 0) throw kerr('EINVAL');
    if (!openForWrite) vaccess(vp.type, cur.mode, cur.uid, cur.gid, VWRITE, l.cred);
    if (!l.cred.isRoot()) {
      const kept = genfs_killpriv_mode(set.mode ?? cur.mode);
      if (kept !== (set.mode ?? cur.mode)) set.mode = kept;
    }
  }
  await VOP_SETATTR(vp, set, l);
}

/** A write by an unprivileged caller: clear setuid/setgid as Linux does. vp locked exclusive. */
export function vn_killpriv(vp: Vnode, l: Lwp): void | Promise<void> {
  return andThen(vop_getattr(vp, l), ({ mode }) => {
    const kept = genfs_killpriv_mode(mode);
    if (kept !== mode) return vop_setattr(vp, { mode: kept }, l);
  });
}

/**
 * stat(2) of a vnode. A free lock and a driver that answers at once give
 * the attributes at once (no Promise): READDIRPLUS asks this per entry.
 */
export function vn_stat(l: Lwp, vp: Vnode): Vattr | Promise<Vattr> {
  if (!vp.lock.tryLock(l, LK_SHARED)) return vn_locked(vp, LK_SHARED, l, () => VOP_GETATTR(vp, l));
  let r: Vattr | Promise<Vattr>;
  try {
    r = vop_getattr(vp, l);
  } catch (e) {
    vp.lock.unlock(l);
    throw e;
  }
  if (!(r instanceof Promise)) {
    vp.lock.unlock(l);
    return r;
  }
  return r.finally(() => vp.lock.unlock(l));
}

export function vn_readlink(l: Lwp, vp: Vnode): Promise<string> {
  if (vp.type !== VType.VLNK) return Promise.reject(kerr('EINVAL', 'not a symbolic link'));
  return vn_locked(vp, LK_SHARED, l, () => VOP_READLINK(vp, l));
}

/** vn_open as it comes (see above). */
export function vn_openm(l: Lwp, vp: Vnode, flags: number, created = false): MaybePromise<File> {
  const failed = (e: unknown): MaybePromise<never> => andThen(vrele(vp), () => { throw e; });
  let r: MaybePromise<void>;
  try {
    if (vp.type === VType.VLNK) throw kerr('ELOOP');
    if ((flags & O_DIRECTORY) && vp.type !== VType.VDIR) throw kerr('ENOTDIR');
    const accmode = openAccmode(flags) | (flags & O_TRUNC ? VWRITE : 0);
    if (vp.type === VType.VDIR && (accmode & VWRITE)) throw kerr('EISDIR');
    const trunc = (flags & O_TRUNC) !== 0 && vp.type === VType.VREG && !created;
    r = vn_locking(vp, trunc ? LK_EXCLUSIVE : LK_SHARED, l, () => {
      const checked = created ? undefined : vn_access(vp, accmode, l);
      const truncated = trunc ? andThen(checked, () => vn_setattr(vp, { size: 0 }, l, true)) : checked;
      return andThen(truncated, () => vop_open(vp, flags, l));
    });
  } catch (e) {
    return failed(e);
  }
  if (r instanceof Promise) return r.then(() => new File(vp, flags), failed);
  return new File(vp, flags);
}

/**
 * open(2) of a vnode the caller holds: checks the type and the access the
 * flags want (unless the caller just created it), truncates with O_TRUNC,
 * VOP_OPEN. The File takes over the caller's reference (released on failure).
 */
export function vn_open(l: Lwp, vp: Vnode, flags: number, created = false): Promise<File> {
  return promise(() => vn_openm(l, vp, flags, created));
}

export function vn_getxattr(l: Lwp, vp: Vnode, name: string): Promise<Uint8Array> {
  return vn_locked(vp, LK_SHARED, l, () => VOP_GETXATTR(vp, name, l));
}

export function vn_listxattr(l: Lwp, vp: Vnode): Promise<string[]> {
  return vn_locked(vp, LK_SHARED, l, () => VOP_LISTXATTR(vp, l));
}

export function vn_setxattr(l: Lwp, vp: Vnode, name: string, value: Uint8Array, flags: number): Promise<void> {
  return vn_locked(vp, LK_EXCLUSIVE, l, async () => {
    await vn_access(vp, VWRITE, l);
    await VOP_SETXATTR(vp, name, value, flags, l);
  });
}

export function vn_removexattr(l: Lwp, vp: Vnode, name: string): Promise<void> {
  return vn_locked(vp, LK_EXCLUSIVE, l, async () => {
    await vn_access(vp, VWRITE, l);
    await VOP_REMOVEXATTR(vp, name, l);
  });
}

/** An open file: the vnode it holds a reference on, and how it was opened. */
export class File {
  offset = 0;
  closed = false;
  constructor(readonly vp: Vnode, readonly flags: number) {}
  get readable(): boolean { return (this.flags & O_ACCMODE) === O_RDONLY || (this.flags & O_ACCMODE) === O_RDWR; }
  get writable(): boolean { return (this.flags & O_ACCMODE) === O_WRONLY || (this.flags & O_ACCMODE) === O_RDWR; }
}

function live(fp: File): Vnode {
  if (fp.closed) throw kerr('EBADF');
  return fp.vp;
}

export function vn_readm(l: Lwp, fp: File, buf: Uint8Array, offset: number): MaybePromise<number> {
  const vp = live(fp);
  if (!fp.readable) throw kerr('EBADF');
  if (vp.type === VType.VDIR) throw kerr('EISDIR');
  if (offset < 0) throw kerr('EINVAL');
  return vn_locking(vp, LK_SHARED, l, () => vop_read(vp, buf, offset, 0, l));
}

export function vn_read(l: Lwp, fp: File, buf: Uint8Array, offset: number): Promise<number> {
  return promise(() => vn_readm(l, fp, buf, offset));
}

/**
 * read(2) without a copy, where the driver lends its memory (VOP_LOAN): the
 * bytes as views, good until the caller yields (it writes them out at once,
 * as p2k does its reply), or null: no loan now (the driver has none, the
 * lock is taken), vn_readm instead.
 */
export function vn_loanm(l: Lwp, fp: File, offset: number, size: number): Uint8Array[] | null {
  const vp = live(fp);
  // A driver without loans answers every READ through vn_readm, which checks the arguments.
  if (!vp.ops.loan) return null;
  if (!fp.readable) throw kerr('EBADF');
  if (vp.type === VType.VDIR) throw kerr('EISDIR');
  if (offset < 0) throw kerr('EINVAL');
  if (!vp.lock.tryLock(l, LK_SHARED)) return null;
  try {
    return vop_loan(vp, offset, size, l);
  } finally {
    vp.lock.unlock(l);
  }
}

/**
 * write(2). killpriv: clear setuid/setgid first (default: when the caller is
 * not root; FUSE says per request, since with write-back caching the
 * kernel's writer is not the caller).
 */
export function vn_writem(l: Lwp, fp: File, buf: Uint8Array, offset: number, killpriv = !l.cred.isRoot()): MaybePromise<number> {
  const vp = live(fp);
  if (!fp.writable) throw kerr('EBADF');
  if (offset < 0) throw kerr('EINVAL');
  const ioflag = (fp.flags & O_APPEND ? IO_APPEND : 0) |
    ((fp.flags & O_SYNC) === O_SYNC ? IO_SYNC : 0);
  return vn_locking(vp, LK_EXCLUSIVE, l, () =>
    andThen(killpriv && vp.type === VType.VREG ? vn_killpriv(vp, l) : undefined, () => vop_write(vp, buf, offset, ioflag, l)));
}

export function vn_write(l: Lwp, fp: File, buf: Uint8Array, offset: number, killpriv = !l.cred.isRoot()): Promise<number> {
  return promise(() => vn_writem(l, fp, buf, offset, killpriv));
}

export async function vn_fstat(l: Lwp, fp: File): Promise<Vattr> {
  const vp = live(fp);
  return vn_locked(vp, LK_SHARED, l, () => VOP_GETATTR(vp, l));
}

export async function vn_fsetattr(l: Lwp, fp: File, va: VattrSet): Promise<void> {
  const vp = live(fp);
  if (va.size !== undefined && !fp.writable) throw kerr('EINVAL', 'not open for writing');
  return vn_locked(vp, LK_EXCLUSIVE, l, () => vn_setattr(vp, va, l, fp.writable));
}

export async function vn_fsync(l: Lwp, fp: File, flags = FSYNC_WAIT): Promise<void> {
  const vp = live(fp);
  return vn_locked(vp, LK_SHARED, l, () => VOP_FSYNC(vp, flags, l));
}

/** Entries from cookie on, of a directory open for reading. */
export async function vn_readdir(l: Lwp, fp: File, cookie: number): Promise<{ entries: Dirent[]; eof: boolean }> {
  const vp = live(fp);
  if (vp.type !== VType.VDIR) throw kerr('ENOTDIR');
  return vn_locked(vp, LK_SHARED, l, () => VOP_READDIR(vp, cookie, l));
}

export function vn_closem(l: Lwp, fp: File): MaybePromise<void> {
  const vp = live(fp);
  fp.closed = true;
  let r: MaybePromise<void>;
  try {
    r = vn_locking(vp, LK_SHARED, l, () => vop_close(vp, fp.flags, l));
  } catch (e) {
    return andThen(vrele(vp), () => { throw e; });
  }
  if (r instanceof Promise) return r.then(() => vrele(vp), e => andThen(vrele(vp), () => { throw e; }));
  return vrele(vp);
}

export function vn_close(l: Lwp, fp: File): Promise<void> {
  return promise(() => vn_closem(l, fp));
}

/** Access wanted for open(2) flags. */
export function openAccmode(flags: number): number {
  const acc = flags & O_ACCMODE;
  return (acc === O_RDONLY || acc === O_RDWR ? VREAD : 0) | (acc === O_WRONLY || acc === O_RDWR ? VWRITE : 0);
}
