// Operations on vnodes that callers share: permission checks, attribute
// changes with the ownership rules, and open files (struct file).
import { kerr } from './errno.js';
import { genfs_can_chmod, genfs_can_chown, genfs_can_utimes, genfs_killpriv_mode, vaccess, VWRITE, VREAD } from './kauth.js';
import { LK_EXCLUSIVE, LK_SHARED, type LockMode } from './lock.js';
import type { Lwp } from './lwp.js';
import { vrele } from './vcache.js';
import type { Vnode } from './vnode.js';
import {
  vop_getattr, VOP_CLOSE, VOP_FSYNC, VOP_GETATTR, VOP_GETXATTR, VOP_LISTXATTR, VOP_OPEN, VOP_READ, VOP_READDIR, VOP_READLINK,
  VOP_REMOVEXATTR, VOP_SETATTR, VOP_SETXATTR, VOP_WRITE,
} from './vnode_if.js';
import {
  FSYNC_WAIT, IO_APPEND, IO_SYNC, O_ACCMODE, O_APPEND, O_DIRECTORY, O_RDONLY, O_RDWR, O_SYNC, O_TRUNC, O_WRONLY,
  VType, type Dirent, type Vattr, type VattrSet,
} from './vnode_types.js';

/** Run fn with vp locked as asked; the lock goes on every path. */
export async function vn_locked<T>(vp: Vnode, mode: LockMode, l: Lwp, fn: () => Promise<T>): Promise<T> {
  await vp.lock.lock(l, mode);
  try { return await fn(); } finally { vp.lock.unlock(l); }
}

/** access(2) on a locked vnode: EROFS for writes on a read-only mount, then the mode bits. */
export async function vn_access(vp: Vnode, accmode: number, l: Lwp): Promise<void> {
  if ((accmode & VWRITE) && vp.mount.readOnly &&
      (vp.type === VType.VREG || vp.type === VType.VDIR || vp.type === VType.VLNK)) throw kerr('EROFS');
  const va = await VOP_GETATTR(vp, l);
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
export async function vn_killpriv(vp: Vnode, l: Lwp): Promise<void> {
  const { mode } = await VOP_GETATTR(vp, l);
  const kept = genfs_killpriv_mode(mode);
  if (kept !== mode) await VOP_SETATTR(vp, { mode: kept }, l);
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

/**
 * open(2) of a vnode the caller holds: checks the type and the access the
 * flags want (unless the caller just created it), truncates with O_TRUNC,
 * VOP_OPEN. The File takes over the caller's reference (released on failure).
 */
export async function vn_open(l: Lwp, vp: Vnode, flags: number, created = false): Promise<File> {
  try {
    if (vp.type === VType.VLNK) throw kerr('ELOOP');
    if ((flags & O_DIRECTORY) && vp.type !== VType.VDIR) throw kerr('ENOTDIR');
    const accmode = openAccmode(flags) | (flags & O_TRUNC ? VWRITE : 0);
    if (vp.type === VType.VDIR && (accmode & VWRITE)) throw kerr('EISDIR');
    const trunc = (flags & O_TRUNC) !== 0 && vp.type === VType.VREG && !created;
    await vn_locked(vp, trunc ? LK_EXCLUSIVE : LK_SHARED, l, async () => {
      if (!created) await vn_access(vp, accmode, l);
      if (trunc) await vn_setattr(vp, { size: 0 }, l, true);
      await VOP_OPEN(vp, flags, l);
    });
    return new File(vp, flags);
  } catch (e) {
    await vrele(vp);
    throw e;
  }
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

export async function vn_read(l: Lwp, fp: File, buf: Uint8Array, offset: number): Promise<number> {
  const vp = live(fp);
  if (!fp.readable) throw kerr('EBADF');
  if (vp.type === VType.VDIR) throw kerr('EISDIR');
  if (offset < 0) throw kerr('EINVAL');
  return vn_locked(vp, LK_SHARED, l, () => VOP_READ(vp, buf, offset, 0, l));
}

/**
 * write(2). killpriv: clear setuid/setgid first (default: when the caller is
 * not root; FUSE says per request, since with write-back caching the
 * kernel's writer is not the caller).
 */
export async function vn_write(l: Lwp, fp: File, buf: Uint8Array, offset: number, killpriv = !l.cred.isRoot()): Promise<number> {
  const vp = live(fp);
  if (!fp.writable) throw kerr('EBADF');
  if (offset < 0) throw kerr('EINVAL');
  const ioflag = (fp.flags & O_APPEND ? IO_APPEND : 0) |
    ((fp.flags & O_SYNC) === O_SYNC ? IO_SYNC : 0);
  return vn_locked(vp, LK_EXCLUSIVE, l, async () => {
    if (killpriv && vp.type === VType.VREG) await vn_killpriv(vp, l);
    return VOP_WRITE(vp, buf, offset, ioflag, l);
  });
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

export async function vn_close(l: Lwp, fp: File): Promise<void> {
  const vp = live(fp);
  fp.closed = true;
  try {
    await vn_locked(vp, LK_SHARED, l, () => VOP_CLOSE(vp, fp.flags, l));
  } finally {
    await vrele(vp);
  }
}

/** Access wanted for open(2) flags. */
export function openAccmode(flags: number): number {
  const acc = flags & O_ACCMODE;
  return (acc === O_RDONLY || acc === O_RDWR ? VREAD : 0) | (acc === O_WRONLY || acc === O_RDWR ? VWRITE : 0);
}
