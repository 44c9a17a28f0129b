// The vnode interface, as NetBSD's vnode_if.src: the lock each vnode
// argument must hold on entry and on exit of each operation, declared once
// here and checked by every VOP_* wrapper. A caller or driver that breaks the
// protocol gets a LockProtocolError at once, in tests and in servers alike.
//
//   E  locked exclusive by the calling lwp
//   L  locked by the calling lwp, shared or exclusive
//   -  not checked
// Vnodes returned by lookup/create/mkdir/symlink are referenced and not
// locked by the call (lookup may return a vnode the caller already holds).
// Locks are taken parent before child; rename also holds the mount's
// renameLock first (see vfs_syscalls.ts for the order it uses).
//
// A driver's operation may answer at once (a value) or later (a Promise).
// Each vop_* checks the protocol on entry and, for an answer given at once,
// on exit without a microtask in between, and gives the answer the way it
// came: callers on the kernel's hot paths (namei) take values as they are.
// VOP_* are the same calls as Promises, for callers that chain them.
//
// A driver's lookup may answer an absent name with null instead of throwing
// ENOENT: a negative lookup (every create asks one first) then costs no
// exception. vop_lookup turns null into ENOENT for the callers that want the
// error; vop_lookup_or_null gives null for both spellings of "absent".
import { isKernError, kerr } from './errno.js';
import { LK_EXCLUSIVE, LockProtocolError } from './lock.js';
import type { Lwp } from './lwp.js';
import { panic } from './panic.js';
import { rumpuser_getenv } from '../rumpuser/index.js';
import type { Vnode } from './vnode.js';
import type { Dirent, MaybePromise, Vattr, VattrCreate, VattrSet } from './vnode_types.js';

type Need = 'E' | 'L' | '-';

export const vnode_if = {
  lookup: ['L'],
  lookupattr: ['L'],
  create: ['E'],
  mkdir: ['E'],
  symlink: ['E'],
  link: ['E', 'E'],
  remove: ['E', 'E'],
  rmdir: ['E', 'E'],
  rename: ['E', 'E', 'E', 'E'],
  open: ['L'],
  close: ['L'],
  getattr: ['L'],
  setattr: ['E'],
  read: ['L'],
  loan: ['L'],
  write: ['E'],
  readdir: ['L'],
  readlink: ['L'],
  fsync: ['L'],
  inactive: ['E'],
  reclaim: ['E'],
  getxattr: ['L'],
  setxattr: ['E'],
  listxattr: ['L'],
  removexattr: ['E'],
} as const satisfies Record<string, readonly Need[]>;

export type VopName = keyof typeof vnode_if;

/** The lock vnode argument i of op needs, checked on entry or exit. */
function need(op: VopName, i: number, vp: Vnode | null | undefined, when: string, l: Lwp): void {
  const n = (vnode_if[op] as readonly Need[])[i];
  if (!vp || n === '-') return;
  const held = vp.lock.heldBy(l);
  if (held === 0 || (n === 'E' && held !== LK_EXCLUSIVE)) {
    throw new LockProtocolError(
      `VOP_${op.toUpperCase()}: ${vp} must be locked ${n === 'E' ? 'exclusive' : ''} by ${l} on ${when}, is ${held === 0 ? 'not locked by it' : 'shared'}`);
  }
}

// The vnode arguments are passed one by one (no array, no closure per call: a VOP is on every request's path).
function check(op: VopName, when: string, l: Lwp, a: Vnode, b?: Vnode | null, c?: Vnode | null, d?: Vnode | null): void {
  need(op, 0, a, when, l);
  if (b !== undefined) need(op, 1, b, when, l);
  if (c !== undefined) need(op, 2, c, when, l);
  if (d !== undefined) need(op, 3, d, when, l);
}

/** A new file's vnode comes back unlocked. */
function checkReturned(op: VopName, vp: Vnode, l: Lwp): Vnode {
  if (vp.lock.heldBy(l)) throw new LockProtocolError(`VOP_${op.toUpperCase()}: returned ${vp} locked`);
  return vp;
}

// RUMPFS_FAULT=panic:VOP_READ:3 panics on the third VOP_READ: proves that a
// driver crash is contained (tests, debugging). Once per mount: a server
// restarted after the crash runs without it, unless the spelling ends in
// :always (panic:VOP_READ:3:always), which panics in every server.
const fault = (() => {
  const m = /^panic:VOP_([A-Z]+):(\d+)(?::always)?$/.exec(rumpuser_getenv('RUMPFS_FAULT') ?? '');
  return m ? { op: m[1].toLowerCase(), n: Number(m[2]), seen: 0 } : null;
})();

/** Entry check (and the injected fault); the driver is called after it. */
function enter(op: VopName, l: Lwp, a: Vnode, b?: Vnode | null, c?: Vnode | null, d?: Vnode | null): void {
  check(op, 'entry', l, a, b, c, d);
  if (fault && fault.op === op && ++fault.seen === fault.n) panic(`RUMPFS_FAULT: injected at VOP_${op.toUpperCase()} call ${fault.n}`);
}

/** Exit check of the driver's answer r, given at once or later; a driver's synchronous throw passes by it. */
function leave<T>(op: VopName, l: Lwp, r: MaybePromise<T>, a: Vnode, b?: Vnode | null, c?: Vnode | null, d?: Vnode | null): MaybePromise<T> {
  if (r instanceof Promise) return leaveLater(op, l, r, a, b, c, d);
  check(op, 'exit', l, a, b, c, d);
  return r;
}

// Apart from leave: a closure's captured variables cost their function a context object per call, answered at once or not.
function leaveLater<T>(op: VopName, l: Lwp, r: Promise<T>, a: Vnode, b?: Vnode | null, c?: Vnode | null, d?: Vnode | null): Promise<T> {
  return r.then(v => { check(op, 'exit', l, a, b, c, d); return v; });
}

function returned(op: VopName, r: MaybePromise<Vnode>, l: Lwp): MaybePromise<Vnode> {
  return r instanceof Promise ? r.then(vp => checkReturned(op, vp, l)) : checkReturned(op, r, l);
}

/** The same call as a Promise: a throw (a protocol error included) becomes a rejection. */
function promised<A extends unknown[], T>(f: (...a: A) => MaybePromise<T>): (...a: A) => Promise<T> {
  return (...a: A) => {
    try {
      const r = f(...a);
      return r instanceof Promise ? r : Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

const enotsup = () => { throw kerr('ENOTSUP'); };

/** f of r's value: at once when r is a value, else when it settles. */
export function andThen<T, U>(r: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return r instanceof Promise ? r.then(f) : f(r);
}

const found = (vp: Vnode | null): Vnode => {
  if (vp === null) throw kerr('ENOENT');
  return vp;
};
const absent = (e: unknown): null => {
  if (isKernError(e) && e.code === 'ENOENT') return null;
  throw e;
};

/** The driver's lookup: its answer as it came (null or ENOENT for an absent name). */
function lookup1(dvp: Vnode, name: string, l: Lwp): MaybePromise<Vnode | null> {
  enter('lookup', l, dvp);
  return leave('lookup', l, dvp.ops.lookup(dvp, name, l), dvp);
}

/** name in dvp, referenced; ENOENT when absent. */
export const vop_lookup = (dvp: Vnode, name: string, l: Lwp): MaybePromise<Vnode> => andThen(lookup1(dvp, name, l), found);
/** op's answer for name, with ENOENT as null (a module-level op: no closure per lookup). */
function orNull<T>(op: (dvp: Vnode, name: string, l: Lwp) => MaybePromise<T>, dvp: Vnode, name: string, l: Lwp): MaybePromise<T | null> {
  let r: MaybePromise<T>;
  try {
    r = op(dvp, name, l);
  } catch (e) {
    return absent(e);
  }
  return r instanceof Promise ? r.catch(absent) : r;
}
/** name in dvp, referenced; null when absent (a driver's null or its ENOENT). */
export const vop_lookup_or_null = (dvp: Vnode, name: string, l: Lwp): MaybePromise<Vnode | null> => orNull(lookup1, dvp, name, l);

function lookupattr1(dvp: Vnode, name: string, l: Lwp): MaybePromise<Vattr | null | undefined> {
  enter('lookupattr', l, dvp);
  return leave('lookupattr', l, dvp.ops.lookupattr!(dvp, name, l), dvp);
}
/** name's attributes without its vnode; null when absent, undefined when the driver cannot tell them so. */
export function vop_lookupattr(dvp: Vnode, name: string, l: Lwp): MaybePromise<Vattr | null | undefined> {
  return dvp.ops.lookupattr ? orNull(lookupattr1, dvp, name, l) : undefined;
}
export function vop_create(dvp: Vnode, name: string, va: VattrCreate, l: Lwp): MaybePromise<Vnode> {
  enter('create', l, dvp);
  return returned('create', leave('create', l, dvp.ops.create(dvp, name, va, l), dvp), l);
}
export function vop_mkdir(dvp: Vnode, name: string, va: VattrCreate, l: Lwp): MaybePromise<Vnode> {
  enter('mkdir', l, dvp);
  return returned('mkdir', leave('mkdir', l, dvp.ops.mkdir(dvp, name, va, l), dvp), l);
}
export function vop_symlink(dvp: Vnode, name: string, va: VattrCreate, target: string, l: Lwp): MaybePromise<Vnode> {
  enter('symlink', l, dvp);
  return returned('symlink', leave('symlink', l, dvp.ops.symlink(dvp, name, va, target, l), dvp), l);
}
export function vop_link(dvp: Vnode, vp: Vnode, name: string, l: Lwp): MaybePromise<void> {
  enter('link', l, dvp, vp);
  return leave('link', l, dvp.ops.link(dvp, vp, name, l), dvp, vp);
}
export function vop_remove(dvp: Vnode, vp: Vnode, name: string, l: Lwp): MaybePromise<void> {
  enter('remove', l, dvp, vp);
  return leave('remove', l, dvp.ops.remove(dvp, vp, name, l), dvp, vp);
}
export function vop_rmdir(dvp: Vnode, vp: Vnode, name: string, l: Lwp): MaybePromise<void> {
  enter('rmdir', l, dvp, vp);
  return leave('rmdir', l, dvp.ops.rmdir(dvp, vp, name, l), dvp, vp);
}
/** The mount's rename lock is checked before anything: a caller's bug, thrown at once. */
export function vop_rename(fdvp: Vnode, fvp: Vnode, fname: string, tdvp: Vnode, tvp: Vnode | null, tname: string, l: Lwp): MaybePromise<void> {
  if (fdvp.mount.renameLock.heldBy(l) !== LK_EXCLUSIVE) throw new LockProtocolError('VOP_RENAME: the mount\'s rename lock is not held');
  enter('rename', l, fdvp, fvp, tdvp, tvp);
  return leave('rename', l, fdvp.ops.rename(fdvp, fvp, fname, tdvp, tvp, tname, l), fdvp, fvp, tdvp, tvp);
}
export function vop_open(vp: Vnode, flags: number, l: Lwp): MaybePromise<void> {
  enter('open', l, vp);
  return leave('open', l, vp.ops.open(vp, flags, l), vp);
}
export function vop_close(vp: Vnode, flags: number, l: Lwp): MaybePromise<void> {
  enter('close', l, vp);
  return leave('close', l, vp.ops.close(vp, flags, l), vp);
}
export function vop_getattr(vp: Vnode, l: Lwp): MaybePromise<Vattr> {
  enter('getattr', l, vp);
  return leave('getattr', l, vp.ops.getattr(vp, l), vp);
}
export function vop_setattr(vp: Vnode, va: VattrSet, l: Lwp): MaybePromise<void> {
  enter('setattr', l, vp);
  return leave('setattr', l, vp.ops.setattr(vp, va, l), vp);
}
export function vop_read(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, l: Lwp): MaybePromise<number> {
  enter('read', l, vp);
  return leave('read', l, vp.ops.read(vp, buf, offset, ioflag, l), vp);
}
/** A driver without loans answers null. */
export function vop_loan(vp: Vnode, offset: number, size: number, l: Lwp): Uint8Array[] | null {
  if (!vp.ops.loan) return null;
  enter('loan', l, vp);
  const lent = vp.ops.loan(vp, offset, size, l);
  check('loan', 'exit', l, vp);
  return lent;
}
export function vop_write(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, l: Lwp): MaybePromise<number> {
  enter('write', l, vp);
  return leave('write', l, vp.ops.write(vp, buf, offset, ioflag, l), vp);
}
export function vop_readdir(vp: Vnode, cookie: number, l: Lwp): MaybePromise<{ entries: Dirent[]; eof: boolean }> {
  enter('readdir', l, vp);
  return leave('readdir', l, vp.ops.readdir(vp, cookie, l), vp);
}
export function vop_readlink(vp: Vnode, l: Lwp): MaybePromise<string> {
  enter('readlink', l, vp);
  return leave('readlink', l, vp.ops.readlink(vp, l), vp);
}
export function vop_fsync(vp: Vnode, flags: number, l: Lwp): MaybePromise<void> {
  enter('fsync', l, vp);
  return leave('fsync', l, vp.ops.fsync(vp, flags, l), vp);
}
export function vop_inactive(vp: Vnode, l: Lwp): MaybePromise<boolean> {
  enter('inactive', l, vp);
  return leave('inactive', l, vp.ops.inactive(vp, l), vp);
}
export function vop_reclaim(vp: Vnode, l: Lwp): MaybePromise<void> {
  enter('reclaim', l, vp);
  return leave('reclaim', l, vp.ops.reclaim(vp, l), vp);
}
// Extended attributes are optional for a driver: ENOTSUP where absent.
export function vop_getxattr(vp: Vnode, name: string, l: Lwp): MaybePromise<Uint8Array> {
  enter('getxattr', l, vp);
  return leave('getxattr', l, vp.ops.getxattr ? vp.ops.getxattr(vp, name, l) : enotsup(), vp);
}
export function vop_setxattr(vp: Vnode, name: string, value: Uint8Array, flags: number, l: Lwp): MaybePromise<void> {
  enter('setxattr', l, vp);
  return leave('setxattr', l, vp.ops.setxattr ? vp.ops.setxattr(vp, name, value, flags, l) : enotsup(), vp);
}
export function vop_listxattr(vp: Vnode, l: Lwp): MaybePromise<string[]> {
  enter('listxattr', l, vp);
  return leave('listxattr', l, vp.ops.listxattr ? vp.ops.listxattr(vp, l) : [], vp);
}
export function vop_removexattr(vp: Vnode, name: string, l: Lwp): MaybePromise<void> {
  enter('removexattr', l, vp);
  return leave('removexattr', l, vp.ops.removexattr ? vp.ops.removexattr(vp, name, l) : enotsup(), vp);
}

export const VOP_LOOKUP = promised(vop_lookup);
export const VOP_LOOKUP_OR_NULL = promised(vop_lookup_or_null);
export const VOP_CREATE = promised(vop_create);
export const VOP_MKDIR = promised(vop_mkdir);
export const VOP_SYMLINK = promised(vop_symlink);
export const VOP_LINK = promised(vop_link);
export const VOP_REMOVE = promised(vop_remove);
export const VOP_RMDIR = promised(vop_rmdir);
const renamePromised = promised(vop_rename);
/** A missing rename lock is thrown at once, as before (not a rejection). */
export const VOP_RENAME = (fdvp: Vnode, fvp: Vnode, fname: string, tdvp: Vnode, tvp: Vnode | null, tname: string, l: Lwp): Promise<void> => {
  if (fdvp.mount.renameLock.heldBy(l) !== LK_EXCLUSIVE) throw new LockProtocolError('VOP_RENAME: the mount\'s rename lock is not held');
  return renamePromised(fdvp, fvp, fname, tdvp, tvp, tname, l);
};
export const VOP_OPEN = promised(vop_open);
export const VOP_CLOSE = promised(vop_close);
export const VOP_GETATTR = promised(vop_getattr);
export const VOP_SETATTR = promised(vop_setattr);
export const VOP_READ = promised(vop_read);
export const VOP_WRITE = promised(vop_write);
export const VOP_READDIR = promised(vop_readdir);
export const VOP_READLINK = promised(vop_readlink);
export const VOP_FSYNC = promised(vop_fsync);
export const VOP_INACTIVE = promised(vop_inactive);
export const VOP_RECLAIM = promised(vop_reclaim);
export const VOP_GETXATTR = promised(vop_getxattr);
export const VOP_SETXATTR = promised(vop_setxattr);
export const VOP_LISTXATTR = promised(vop_listxattr);
export const VOP_REMOVEXATTR = promised(vop_removexattr);
