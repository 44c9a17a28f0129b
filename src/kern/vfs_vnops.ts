// Operations on vnodes that callers share: permission checks, attribute
// changes with the ownership rules, and open files (struct file).
import { kerr } from './errno.js';
import { genfs_can_chmod, genfs_can_chown, genfs_can_utimes, vaccess, VWRITE, VREAD } from './kauth.js';
import { LK_EXCLUSIVE, LK_SHARED, type LockMode } from './lock.js';
import type { Lwp } from './lwp.js';
import { vrele } from './vcache.js';
import type { Vnode } from './vnode.js';
import {
  VOP_CLOSE, VOP_FSYNC, VOP_GETATTR, VOP_READ, VOP_READDIR, VOP_SETATTR, VOP_WRITE,
} from './vnode_if.js';
import {
  FSYNC_WAIT, IO_APPEND, IO_SYNC, O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_SYNC, O_WRONLY,
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
  }
  await VOP_SETATTR(vp, set, l);
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

export async function vn_write(l: Lwp, fp: File, buf: Uint8Array, offset: number): Promise<number> {
  const vp = live(fp);
  if (!fp.writable) throw kerr('EBADF');
  if (offset < 0) throw kerr('EINVAL');
  const ioflag = (fp.flags & O_APPEND ? IO_APPEND : 0) |
    ((fp.flags & O_SYNC) === O_SYNC ? IO_SYNC : 0);
  return vn_locked(vp, LK_EXCLUSIVE, l, () => VOP_WRITE(vp, buf, offset, ioflag, l));
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
