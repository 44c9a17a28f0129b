// struct vnode and the operations a driver implements (vnode_if.src's
// VOPs). Callers use the VOP_* wrappers in vnode_if.ts, never vp.ops directly.
import { RwLock, type LockMode } from './lock.js';
import type { Cred } from './kauth.js';
import type { Lwp } from './lwp.js';
import type { Mount } from './vfs.js';
import type { Dirent, MaybePromise, VType, Vattr, VattrCreate, VattrSet } from './vnode_types.js';

/**
 * A driver's vnode operations. Vnodes passed in are referenced and locked as
 * declared in vnode_if.ts; vnodes returned are referenced and unlocked.
 * Namespace permission checks (search, write on the directory, sticky bit)
 * are done by the kernel before create/remove/rename/link; drivers check
 * what only they know (read-only media, ENOTEMPTY, name rules, limits).
 */
export interface VnodeOps {
  /**
   * Find `name` in directory dvp; `..` included, `.` never asked. Absent:
   * null (no exception: the cheap answer to every create's first lookup) or ENOENT.
   */
  lookup(dvp: Vnode, name: string, l: Lwp): MaybePromise<Vnode | null>;
  /**
   * Optional, for media whose directory records hold every attribute (a
   * read-only disc): name's attributes, exactly as VOP_GETATTR of its vnode
   * would give them (fileid included), without loading the vnode: a FUSE
   * LOOKUP of a file answered with no vnode made, kept or released. Absent:
   * null (or ENOENT). undefined: not at hand, look the name up instead.
   */
  lookupattr?(dvp: Vnode, name: string, l: Lwp): MaybePromise<Vattr | null | undefined>;
  /** Create a regular file (va.type VREG), or a device/FIFO/socket (mknod). */
  create(dvp: Vnode, name: string, va: VattrCreate, l: Lwp): MaybePromise<Vnode>;
  mkdir(dvp: Vnode, name: string, va: VattrCreate, l: Lwp): MaybePromise<Vnode>;
  symlink(dvp: Vnode, name: string, va: VattrCreate, target: string, l: Lwp): MaybePromise<Vnode>;
  link(dvp: Vnode, vp: Vnode, name: string, l: Lwp): MaybePromise<void>;
  /** Remove the entry name -> vp (vp not a directory). */
  remove(dvp: Vnode, vp: Vnode, name: string, l: Lwp): MaybePromise<void>;
  /** Remove the empty directory name -> vp. ENOTEMPTY otherwise. */
  rmdir(dvp: Vnode, vp: Vnode, name: string, l: Lwp): MaybePromise<void>;
  /**
   * Move fdvp/fname (-> fvp) to tdvp/tname, replacing tvp when not null.
   * The kernel has checked: same mount, types compatible (dir over empty dir
   * is the driver's ENOTEMPTY to give), no move into fvp's own subtree,
   * fvp !== tvp, permissions.
   */
  rename(fdvp: Vnode, fvp: Vnode, fname: string, tdvp: Vnode, tvp: Vnode | null, tname: string, l: Lwp): MaybePromise<void>;
  /** open(2) flags (O_*); access was checked by the kernel. */
  open(vp: Vnode, flags: number, l: Lwp): MaybePromise<void>;
  close(vp: Vnode, flags: number, l: Lwp): MaybePromise<void>;
  getattr(vp: Vnode, l: Lwp): MaybePromise<Vattr>;
  /**
   * Apply the change. The kernel (vn_setattr) has already applied the
   * ownership rules; the driver refuses what its format cannot store.
   */
  setattr(vp: Vnode, va: VattrSet, l: Lwp): MaybePromise<void>;
  /** Read into buf from offset; returns bytes read (0 at end of file). */
  read(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, l: Lwp): MaybePromise<number>;
  /**
   * Optional, for data held in memory (NetBSD's page loan): the bytes from
   * offset, up to size (fewer only at end of file), as views of the
   * driver's own memory, without a copy; [] at or past the end. A loan is
   * given at once, read-only, and good until the borrower yields: it must
   * not be kept or written (vn_loanm says how). null: not lent, read instead.
   */
  loan?(vp: Vnode, offset: number, size: number, l: Lwp): Uint8Array[] | null;
  /** Write buf at offset (at end of file with IO_APPEND); returns bytes written. */
  write(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, l: Lwp): MaybePromise<number>;
  /**
   * Entries from cookie on (0: the start; `.` and `..` included), as many as
   * is convenient; each entry's cookie resumes after it. Cookies stay valid
   * across unrelated changes to the directory.
   */
  readdir(vp: Vnode, cookie: number, l: Lwp): MaybePromise<{ entries: Dirent[]; eof: boolean }>;
  readlink(vp: Vnode, l: Lwp): MaybePromise<string>;
  fsync(vp: Vnode, flags: number, l: Lwp): MaybePromise<void>;
  /** The last reference went. Return true to reclaim at once (no links left). */
  inactive(vp: Vnode, l: Lwp): MaybePromise<boolean>;
  /** Forget vp: free in-memory state (and the file, if inactive said so). */
  reclaim(vp: Vnode, l: Lwp): MaybePromise<void>;
  /** Optional: extended attributes (ENOTSUP when absent). */
  getxattr?(vp: Vnode, name: string, l: Lwp): MaybePromise<Uint8Array>;
  setxattr?(vp: Vnode, name: string, value: Uint8Array, flags: number, l: Lwp): MaybePromise<void>;
  listxattr?(vp: Vnode, l: Lwp): MaybePromise<string[]>;
  removexattr?(vp: Vnode, name: string, l: Lwp): MaybePromise<void>;
  /**
   * Optional: may cred set vp's times although the owner rule of
   * genfs_can_utimes refuses it? (FAT has no owners on disk: Linux's
   * allow_utime lets group or others do it.)
   */
  utimesAllowed?(vp: Vnode, cred: Cred): boolean;
  /** Optional: pathconf(2) values (_PC_NAME_MAX and friends). */
  pathconf?(vp: Vnode, name: 'name_max' | 'link_max' | 'filesize_bits'): number;
}

export const enum VnodeState { LOADING, ACTIVE, RECLAIMING, RECLAIMED }

export class Vnode {
  /** References: each holder calls vrele once when done. */
  usecount = 1;
  state = VnodeState.LOADING;
  type: VType = 0;
  /** Set by the driver's loadvnode. */
  ops!: VnodeOps;
  /** The driver's private node (tmpfs_node, denode, iso_node, ...). */
  data: unknown;
  readonly lock: RwLock;
  /** Position in the free list when usecount is 0 (for LRU reclaim). */
  freeSeq = 0;
  /** Resolved when the vnode has been reclaimed, while RECLAIMING. */
  reclaimed: Promise<void> | null = null;
  constructor(readonly mount: Mount, public key: number) {
    this.lock = new RwLock(this);
  }
  /** The driver's private node, typed by the driver. */
  node<T>(): T { return this.data as T; }
  toString(): string { return `vnode ${this.mount.stat.fstypename}:${this.key}`; }
}

/** Lock vp for l (NetBSD vn_lock): a free lock is taken at once, without a Promise. */
export function vn_lock(vp: Vnode, mode: LockMode, l: Lwp): void | Promise<void> {
  if (!vp.lock.tryLock(l, mode)) return vp.lock.lock(l, mode);
}
