// The vnode cache: one vnode per (mount, file id), references, inactive
// when the last reference goes, reclaim when a file is gone or when more
// than maxvnodes sit unused (least recently used first).
import { kerr } from './errno.js';
import { kernel_lwp } from './lwp.js';
import { panic } from './panic.js';
import { LK_EXCLUSIVE } from './lock.js';
import { rumpuser_getenv } from '../rumpuser/index.js';
import type { Mount } from './vfs.js';
import { Vnode, VnodeState, type VnodeOps } from './vnode.js';
import { vop_inactive, vop_reclaim, VOP_INACTIVE } from './vnode_if.js';
import type { MaybePromise } from './vnode_types.js';
import type { Lwp } from './lwp.js';

/** Unreferenced vnodes, oldest first (Map keeps insertion order). */
const freelist = new Map<Vnode, true>();
let maxvnodes = Number(rumpuser_getenv('RUMP_NVNODES') ?? 1024) || 1024;
const loading = new WeakMap<Vnode, Promise<void>>();

export function vcache_setmax(n: number): void {
  maxvnodes = Math.max(1, n);
}

export function vcache_stats(): { free: number; max: number } {
  return { free: freelist.size, max: maxvnodes };
}

/** The cached, active vnode for key, referenced; null when it must be waited for or loaded. */
export function vcache_tryget(mp: Mount, key: number): Vnode | null {
  const vp = mp.vnodes.get(key);
  if (!vp || vp.state !== VnodeState.ACTIVE) return null;
  vref(vp);
  return vp;
}

/** The vnode for key, referenced (loaded by the driver's loadvnode if not cached). */
export function vcache_get(mp: Mount, key: number): Promise<Vnode> {
  const vp = vcache_tryget(mp, key);
  return vp ? Promise.resolve(vp) : vcache_load(mp, key);
}

/**
 * vcache_get as it comes: the vnode at once when cached, or when nobody else
 * is loading or reclaiming it and the driver's loadvnode answers at once
 * (tmpfs: every new file's vnode); else a Promise.
 */
export function vcache_getm(mp: Mount, key: number): MaybePromise<Vnode> {
  const vp = vcache_tryget(mp, key);
  if (vp) return vp;
  if (mp.vnodes.has(key) || mp.unmounting) return vcache_load(mp, key);
  return vcache_new(mp, key);
}

async function vcache_load(mp: Mount, key: number): Promise<Vnode> {
  for (;;) {
    const vp = mp.vnodes.get(key);
    if (vp) {
      if (vp.state === VnodeState.RECLAIMING) { await vp.reclaimed; continue; }
      if (vp.state === VnodeState.LOADING) {
        try { await loading.get(vp); } catch { continue; }
      }
      if (vp.state !== VnodeState.ACTIVE) continue;
      vref(vp);
      return vp;
    }
    if (mp.unmounting) throw kerr('EBUSY', 'unmount in progress');
    return vcache_new(mp, key);
  }
}

/** A new vnode for key (none cached), loaded by the driver: at once if it answers at once. */
function vcache_new(mp: Mount, key: number): MaybePromise<Vnode> {
  const nvp = new Vnode(mp, key);
  mp.vnodes.set(key, nvp);
  const failed = (e: unknown): never => {
    mp.vnodes.delete(key);
    nvp.state = VnodeState.RECLAIMED;
    throw e;
  };
  let p: MaybePromise<void>;
  try {
    p = mp.op.loadvnode(mp, nvp, key);
  } catch (e) {
    return failed(e);
  }
  if (!(p instanceof Promise)) {
    nvp.state = VnodeState.ACTIVE;
    return nvp;
  }
  loading.set(nvp, p);
  // Waiters took the promise while LOADING; kept, it would cost every cached vnode a promise.
  return p.then(() => {
    loading.delete(nvp);
    nvp.state = VnodeState.ACTIVE;
    return nvp;
  }, e => {
    loading.delete(nvp);
    return failed(e);
  });
}

/** The file's key changed (msdosfs: its directory entry moved). */
export function vcache_rekey(vp: Vnode, newKey: number): void {
  const mp = vp.mount;
  if (mp.vnodes.has(newKey) && mp.vnodes.get(newKey) !== vp) panic(`vcache_rekey: key ${newKey} in use`);
  if (mp.vnodes.get(vp.key) === vp) mp.vnodes.delete(vp.key);
  vp.key = newKey;
  mp.vnodes.set(newKey, vp);
}

export function vref(vp: Vnode): void {
  if (vp.usecount++ === 0) freelist.delete(vp);
}

/**
 * Drop a reference; the last one makes the vnode inactive (and maybe
 * reclaims it). Only that last one waits: the others are done at once.
 */
export function vrele(vp: Vnode): void | Promise<void> {
  // Not KASSERT: its message would be made on every call.
  if (vp.usecount <= 0) panic(`vrele: ${vp} has no references`);
  if (--vp.usecount > 0 || vp.state !== VnodeState.ACTIVE) return;
  return vrele_last(vp);
}

/** The last reference went: VOP_INACTIVE, then the free list (or reclaim). At once when nothing waits. */
function vrele_last(vp: Vnode): void | Promise<void> {
  const l = kernel_lwp();
  if (!vp.lock.tryLock(l, LK_EXCLUSIVE)) return vp.lock.lock(l, LK_EXCLUSIVE).then(() => vrele_locked(vp, l));
  return vrele_locked(vp, l);
}

/** vrele_last with vp locked by l: the lock goes once VOP_INACTIVE has answered. */
function vrele_locked(vp: Vnode, l: Lwp): void | Promise<void> {
  let recycle: MaybePromise<boolean>;
  try {
    recycle = vp.usecount === 0 && vp.state === VnodeState.ACTIVE ? vop_inactive(vp, l) : false;
  } catch (e) {
    vp.lock.unlock(l);
    throw e;
  }
  if (recycle instanceof Promise) {
    return recycle.then(r => { vp.lock.unlock(l); return vrele_free(vp, r); }, e => { vp.lock.unlock(l); throw e; });
  }
  vp.lock.unlock(l);
  return vrele_free(vp, recycle);
}

/** After VOP_INACTIVE: reclaim, or onto the free list (reclaiming the oldest past the limit). */
function vrele_free(vp: Vnode, recycle: boolean): void | Promise<void> {
  if (vp.usecount > 0 || vp.state !== VnodeState.ACTIVE) return;
  if (recycle || vp.mount.unmounting) return vreclaim(vp);
  freelist.set(vp, true);
  return trimFreelist();
}

function trimFreelist(): void | Promise<void> {
  while (freelist.size > maxvnodes) {
    const r = vreclaim(freelist.keys().next().value as Vnode);
    if (r) return r.then(trimFreelist);
  }
}

/** Reclaim vp: the driver forgets it and the cache drops it (at once when its lock is free and the driver answers at once). */
export function vreclaim(vp: Vnode): void | Promise<void> {
  if (vp.state !== VnodeState.ACTIVE) return vp.reclaimed ?? undefined;
  vp.state = VnodeState.RECLAIMING;
  freelist.delete(vp);
  const l = kernel_lwp();
  const done = () => {
    vp.lock.unlock(l);
    if (vp.mount.vnodes.get(vp.key) === vp) vp.mount.vnodes.delete(vp.key);
    vp.state = VnodeState.RECLAIMED;
  };
  // With the lock held: VOP_RECLAIM, then done, however it ends.
  const reclaim = (): void | Promise<void> => {
    let r: MaybePromise<void>;
    try {
      r = vop_reclaim(vp, l);
    } catch (e) {
      done();
      throw e;
    }
    if (r instanceof Promise) return r.finally(done);
    done();
  };
  const r = vp.lock.tryLock(l, LK_EXCLUSIVE) ? reclaim() : vp.lock.lock(l, LK_EXCLUSIVE).then(reclaim);
  if (r) vp.reclaimed = r;
  return r;
}

/**
 * Before unmount: reclaim every vnode of mp but `skip`. A vnode still in use
 * is EBUSY, or with force is reclaimed anyway and left dead (EIO for its holders).
 */
export async function vcache_flush(mp: Mount, skip: Vnode | null, force: boolean): Promise<void> {
  for (const vp of [...mp.vnodes.values()]) {
    if (vp === skip) continue;
    if (vp.state === VnodeState.LOADING) await loading.get(vp)?.catch(() => {});
    if (vp.usecount > 0 && !force) throw kerr('EBUSY', `${vp} is in use`);
  }
  for (const vp of [...mp.vnodes.values()]) {
    if (vp === skip) continue;
    const inUse = vp.usecount > 0;
    if (inUse) {
      // Its holders keep a reference; make sure inactive runs before reclaim.
      const l = kernel_lwp();
      await vp.lock.lock(l, LK_EXCLUSIVE);
      try { await VOP_INACTIVE(vp, l); } finally { vp.lock.unlock(l); }
    }
    await vreclaim(vp);
    if (inUse) vp.ops = deadfs_vnodeops;
  }
}

const dead = async (): Promise<never> => { throw kerr('EIO', 'file system was forcibly unmounted'); };
/** The operations of a vnode whose file system is gone (deadfs). */
export const deadfs_vnodeops: VnodeOps = {
  lookup: dead, create: dead, mkdir: dead, symlink: dead, link: dead, remove: dead, rmdir: dead,
  rename: dead, open: dead, close: async () => {}, getattr: dead, setattr: dead, read: dead,
  write: dead, readdir: dead, readlink: dead, fsync: async () => {},
  inactive: async () => false, reclaim: async () => {},
};
