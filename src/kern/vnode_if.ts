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
import { kerr } from './errno.js';
import { LK_EXCLUSIVE, LockProtocolError } from './lock.js';
import type { Lwp } from './lwp.js';
import { panic } from './panic.js';
import { rumpuser_getenv } from '../rumpuser/index.js';
import type { Vnode } from './vnode.js';
import type { Dirent, Vattr, VattrCreate, VattrSet } from './vnode_types.js';

type Need = 'E' | 'L' | '-';

export const vnode_if = {
  lookup: ['L'],
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

function check(op: VopName, when: string, vps: readonly (Vnode | null)[], l: Lwp): void {
  const needs = vnode_if[op] as readonly Need[];
  for (let i = 0; i < needs.length; i++) {
    const vp = vps[i];
    if (!vp || needs[i] === '-') continue;
    const held = vp.lock.heldBy(l);
    if (held === 0 || (needs[i] === 'E' && held !== LK_EXCLUSIVE)) {
      throw new LockProtocolError(
        `VOP_${op.toUpperCase()}: ${vp} must be locked ${needs[i] === 'E' ? 'exclusive' : ''} by ${l} on ${when}, is ${held === 0 ? 'not locked by it' : 'shared'}`);
    }
  }
}

/** A new file's vnode comes back unlocked. */
function checkReturned(op: VopName, vp: Vnode, l: Lwp): Vnode {
  if (vp.lock.heldBy(l)) throw new LockProtocolError(`VOP_${op.toUpperCase()}: returned ${vp} locked`);
  return vp;
}

// RUMPFS_FAULT=panic:VOP_READ:3 panics on the third VOP_READ: proves that a
// driver crash is contained (tests, debugging).
const fault = (() => {
  const m = /^panic:VOP_([A-Z]+):(\d+)$/.exec(rumpuser_getenv('RUMPFS_FAULT') ?? '');
  return m ? { op: m[1].toLowerCase(), n: Number(m[2]), seen: 0 } : null;
})();

async function call<T>(op: VopName, vps: readonly (Vnode | null)[], l: Lwp, fn: () => Promise<T>): Promise<T> {
  check(op, 'entry', vps, l);
  if (fault && fault.op === op && ++fault.seen === fault.n) panic(`RUMPFS_FAULT: injected at VOP_${op.toUpperCase()} call ${fault.n}`);
  const r = await fn();
  check(op, 'exit', vps, l);
  return r;
}

export const VOP_LOOKUP = (dvp: Vnode, name: string, l: Lwp): Promise<Vnode> =>
  call('lookup', [dvp], l, () => dvp.ops.lookup(dvp, name, l));
export const VOP_CREATE = (dvp: Vnode, name: string, va: VattrCreate, l: Lwp): Promise<Vnode> =>
  call('create', [dvp], l, () => dvp.ops.create(dvp, name, va, l)).then(vp => checkReturned('create', vp, l));
export const VOP_MKDIR = (dvp: Vnode, name: string, va: VattrCreate, l: Lwp): Promise<Vnode> =>
  call('mkdir', [dvp], l, () => dvp.ops.mkdir(dvp, name, va, l)).then(vp => checkReturned('mkdir', vp, l));
export const VOP_SYMLINK = (dvp: Vnode, name: string, va: VattrCreate, target: string, l: Lwp): Promise<Vnode> =>
  call('symlink', [dvp], l, () => dvp.ops.symlink(dvp, name, va, target, l)).then(vp => checkReturned('symlink', vp, l));
export const VOP_LINK = (dvp: Vnode, vp: Vnode, name: string, l: Lwp): Promise<void> =>
  call('link', [dvp, vp], l, () => dvp.ops.link(dvp, vp, name, l));
export const VOP_REMOVE = (dvp: Vnode, vp: Vnode, name: string, l: Lwp): Promise<void> =>
  call('remove', [dvp, vp], l, () => dvp.ops.remove(dvp, vp, name, l));
export const VOP_RMDIR = (dvp: Vnode, vp: Vnode, name: string, l: Lwp): Promise<void> =>
  call('rmdir', [dvp, vp], l, () => dvp.ops.rmdir(dvp, vp, name, l));
export const VOP_RENAME = (fdvp: Vnode, fvp: Vnode, fname: string, tdvp: Vnode, tvp: Vnode | null, tname: string, l: Lwp): Promise<void> => {
  if (fdvp.mount.renameLock.heldBy(l) !== LK_EXCLUSIVE) throw new LockProtocolError('VOP_RENAME: the mount\'s rename lock is not held');
  return call('rename', [fdvp, fvp, tdvp, tvp], l, () => fdvp.ops.rename(fdvp, fvp, fname, tdvp, tvp, tname, l));
};
export const VOP_OPEN = (vp: Vnode, flags: number, l: Lwp): Promise<void> =>
  call('open', [vp], l, () => vp.ops.open(vp, flags, l));
export const VOP_CLOSE = (vp: Vnode, flags: number, l: Lwp): Promise<void> =>
  call('close', [vp], l, () => vp.ops.close(vp, flags, l));
export const VOP_GETATTR = (vp: Vnode, l: Lwp): Promise<Vattr> =>
  call('getattr', [vp], l, () => vp.ops.getattr(vp, l));
export const VOP_SETATTR = (vp: Vnode, va: VattrSet, l: Lwp): Promise<void> =>
  call('setattr', [vp], l, () => vp.ops.setattr(vp, va, l));
export const VOP_READ = (vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, l: Lwp): Promise<number> =>
  call('read', [vp], l, () => vp.ops.read(vp, buf, offset, ioflag, l));
export const VOP_WRITE = (vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, l: Lwp): Promise<number> =>
  call('write', [vp], l, () => vp.ops.write(vp, buf, offset, ioflag, l));
export const VOP_READDIR = (vp: Vnode, cookie: number, l: Lwp): Promise<{ entries: Dirent[]; eof: boolean }> =>
  call('readdir', [vp], l, () => vp.ops.readdir(vp, cookie, l));
export const VOP_READLINK = (vp: Vnode, l: Lwp): Promise<string> =>
  call('readlink', [vp], l, () => vp.ops.readlink(vp, l));
export const VOP_FSYNC = (vp: Vnode, flags: number, l: Lwp): Promise<void> =>
  call('fsync', [vp], l, () => vp.ops.fsync(vp, flags, l));
export const VOP_INACTIVE = (vp: Vnode, l: Lwp): Promise<boolean> =>
  call('inactive', [vp], l, () => vp.ops.inactive(vp, l));
export const VOP_RECLAIM = (vp: Vnode, l: Lwp): Promise<void> =>
  call('reclaim', [vp], l, () => vp.ops.reclaim(vp, l));

// Extended attributes are optional for a driver: ENOTSUP where absent.
export const VOP_GETXATTR = (vp: Vnode, name: string, l: Lwp): Promise<Uint8Array> =>
  call('getxattr', [vp], l, () => vp.ops.getxattr ? vp.ops.getxattr(vp, name, l) : Promise.reject(kerr('ENOTSUP')));
export const VOP_SETXATTR = (vp: Vnode, name: string, value: Uint8Array, flags: number, l: Lwp): Promise<void> =>
  call('setxattr', [vp], l, () => vp.ops.setxattr ? vp.ops.setxattr(vp, name, value, flags, l) : Promise.reject(kerr('ENOTSUP')));
export const VOP_LISTXATTR = (vp: Vnode, l: Lwp): Promise<string[]> =>
  call('listxattr', [vp], l, () => vp.ops.listxattr ? vp.ops.listxattr(vp, l) : Promise.resolve([]));
export const VOP_REMOVEXATTR = (vp: Vnode, name: string, l: Lwp): Promise<void> =>
  call('removexattr', [vp], l, () => vp.ops.removexattr ? vp.ops.removexattr(vp, name, l) : Promise.reject(kerr('ENOTSUP')));
