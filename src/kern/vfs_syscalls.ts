// The system-call layer: name operations shared by every client of the
// kernel. Two ways in, one body each: by path (ukfs: namei from the root)
// and by directory vnode and name (p2k: FUSE names a directory it already
// holds, so no path is walked). Each call checks namespace permissions, takes
// the vnode locks vnode_if.ts declares in the protocol's order, calls the VOP
// and releases everything on every path, errors included.
import { kerr, isKernError } from './errno.js';
import { genfs_can_sticky, VEXEC, VWRITE } from './kauth.js';
import { LK_EXCLUSIVE, LK_SHARED } from './lock.js';
import type { Lwp } from './lwp.js';
import { NAME_MAX, namei, namei_done, type NameiResult } from './namei.js';
import { vfs_sync } from './vfs.js';
import {
  File, vn_access, vn_close, vn_getxattr, vn_listxattr, vn_locked, vn_locking, vn_open, vn_openm, vn_readdir, vn_readlink,
  vn_removexattr, vn_setattr, vn_setxattr, vn_stat,
} from './vfs_vnops.js';
import { vref, vrele } from './vcache.js';
import type { Vnode } from './vnode.js';
import {
  andThen, vop_create, vop_getattr, vop_lookup_or_null, vop_lookupattr, vop_remove, VOP_CREATE, VOP_LINK, VOP_LOOKUP, VOP_LOOKUP_OR_NULL,
  VOP_MKDIR, VOP_RENAME, VOP_RMDIR, VOP_SYMLINK,
} from './vnode_if.js';
import { O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, VType, type Dirent, type MaybePromise, type Statvfs, type Vattr, type VattrSet } from './vnode_types.js';

// Resolving: a path (namei), or one name in a directory vnode

const encoder = new TextEncoder();

/** One path component as FUSE hands it over: checked as namei checks each of its own. */
function checkName(dvp: Vnode, name: string): void {
  if (name.length === 0) throw kerr('ENOENT', 'empty name');
  if (name.includes('/')) throw kerr('EINVAL', 'a name with a slash');
  if (name.length * 3 > NAME_MAX && encoder.encode(name).length > NAME_MAX) throw kerr('ENAMETOOLONG', name.slice(0, 32) + '...');
  if (dvp.type !== VType.VDIR) throw kerr('ENOTDIR');
}

/**
 * lookup: name in dvp (referenced by the caller), with search permission;
 * `.` is dvp and `..` never leaves l.root. The vnode comes back referenced.
 * As it comes: a value when nothing waited (see vfs_vnops.ts).
 */
export function vn_lookupat(l: Lwp, dvp: Vnode, name: string): MaybePromise<Vnode> {
  return andThen(vn_lookupat_or_null(l, dvp, name), vp => {
    if (vp === null) throw kerr('ENOENT');
    return vp;
  });
}

/** vn_lookupat, with null for an absent name (no exception where the driver throws none). */
export function vn_lookupat_or_null(l: Lwp, dvp: Vnode, name: string): MaybePromise<Vnode | null> {
  checkName(dvp, name);
  return vn_locking(dvp, LK_SHARED, l, () => andThen(vn_access(dvp, VEXEC, l), () => {
    if (name === '.' || (name === '..' && dvp === l.root)) {
      vref(dvp);
      return dvp;
    }
    return vop_lookup_or_null(dvp, name, l);
  }));
}

/**
 * lookup for a caller that takes attributes where the driver has them
 * without a vnode (VOP_LOOKUPATTR): name's attributes, else its vnode
 * (referenced), null when absent; under one lock and one search-permission
 * check either way. `.` and `..` always as vn_lookupat_or_null.
 */
export function vn_lookupattr(l: Lwp, dvp: Vnode, name: string): MaybePromise<Vattr | Vnode | null> {
  if (!dvp.ops.lookupattr || name === '.' || name === '..') return vn_lookupat_or_null(l, dvp, name);
  checkName(dvp, name);
  return vn_locking(dvp, LK_SHARED, l, () => andThen(vn_access(dvp, VEXEC, l), () => andThen(vop_lookupattr(dvp, name, l),
    va => va === undefined ? vop_lookup_or_null(dvp, name, l) : va)));
}

/**
 * Several lookups in dvp under one lock and one search-permission check
 * (READDIRPLUS looks up a whole reply's names): each vnode referenced, or
 * null where the name is gone (or null was asked).
 */
export function vn_lookupmany(l: Lwp, dvp: Vnode, names: readonly (string | null)[]): Promise<(Vnode | null)[]> {
  if (dvp.type !== VType.VDIR) return Promise.reject(kerr('ENOTDIR'));
  return vn_locked(dvp, LK_SHARED, l, async () => {
    await vn_access(dvp, VEXEC, l);
    const found: (Vnode | null)[] = [];
    try {
      for (const name of names) {
        if (name === null || name === '.' || name === '..') { found.push(null); continue; }
        const r = vop_lookup_or_null(dvp, name, l);
        found.push(r instanceof Promise ? await r : r);
      }
    } catch (e) {
      for (const vp of found) if (vp) await vrele(vp);
      throw e;
    }
    return found;
  });
}

/** namei's parent mode for one name in dvp: the same result, dvp now referenced and locked exclusive. */
function parentAt(l: Lwp, dvp: Vnode, name: string): MaybePromise<NameiResult> {
  checkName(dvp, name);
  if (name === '.' || name === '..') return andThen(vn_lookupat(l, dvp, name), vp => ({ dvp: null, vp, name, trailingSlash: false }));
  vref(dvp);
  if (dvp.lock.tryLock(l, LK_EXCLUSIVE)) return parentLocked(l, dvp, name);
  return dvp.lock.lock(l, LK_EXCLUSIVE).then(() => parentLocked(l, dvp, name));
}

// parentAt's steps as functions of their own, not closures made per call (an unlink's largest allocation).
function parentLocked(l: Lwp, dvp: Vnode, name: string): MaybePromise<NameiResult> {
  let r: MaybePromise<Vnode | null>;
  try {
    const a = vn_access(dvp, VEXEC, l);
    r = a instanceof Promise ? a.then(() => vop_lookup_or_null(dvp, name, l)) : vop_lookup_or_null(dvp, name, l);
  } catch (e) {
    return parentFailed(l, dvp, e);
  }
  if (r instanceof Promise) return r.then(vp => ({ dvp, vp, name, trailingSlash: false }), e => parentFailed(l, dvp, e));
  return { dvp, vp: r, name, trailingSlash: false };
}

function parentFailed(l: Lwp, dvp: Vnode, e: unknown): MaybePromise<never> {
  dvp.lock.unlock(l);
  return andThen(vrele(dvp), () => { throw e; });
}

const parentPath = (l: Lwp, path: string) => namei(l, path, { follow: false, parent: true });

/** Run fn on the vnode a path names (referenced while fn runs). */
async function withPath<T>(l: Lwp, path: string, follow: boolean, fn: (vp: Vnode) => Promise<T>): Promise<T> {
  const { vp } = await namei(l, path, { follow });
  try {
    return await fn(vp!);
  } finally {
    await vrele(vp!);
  }
}

// Attributes, by path (the vnode forms are in vfs_vnops)

export function sys_stat(l: Lwp, path: string, follow = true): Promise<Vattr> {
  return withPath(l, path, follow, async vp => vn_stat(l, vp));
}

export function sys_access(l: Lwp, path: string, accmode: number): Promise<void> {
  return withPath(l, path, true, vp => vn_locked(vp, LK_SHARED, l, () => vn_access(vp, accmode, l)));
}

export function sys_setattr(l: Lwp, path: string, va: VattrSet, follow = true): Promise<void> {
  return withPath(l, path, follow, vp => vn_locked(vp, LK_EXCLUSIVE, l, () => vn_setattr(vp, va, l)));
}

export function sys_readlink(l: Lwp, path: string): Promise<string> {
  return withPath(l, path, false, vp => vn_readlink(l, vp));
}

// New names

/**
 * Create a new name: the directory locked exclusive, write and search
 * permission on it. Takes over nd; the new vnode comes back referenced.
 */
async function createIn(l: Lwp, nd: NameiResult, dirOnly: boolean,
  make: (dvp: Vnode, name: string) => Promise<Vnode>): Promise<Vnode> {
  try {
    if (!nd.dvp || nd.vp) throw kerr('EEXIST');
    if (nd.trailingSlash && !dirOnly) throw kerr('ENOENT');
    await vn_access(nd.dvp, VWRITE | VEXEC, l);
    return await make(nd.dvp, nd.name);
  } finally {
    await namei_done(l, nd);
  }
}

const mkdirOp = (l: Lwp, mode: number) => (dvp: Vnode, name: string) =>
  VOP_MKDIR(dvp, name, { type: VType.VDIR, mode: mode & ~l.umask & 0o7777 }, l);

function mknodOp(l: Lwp, type: VType, mode: number, rdev: number) {
  if (type === VType.VDIR || type === VType.VLNK || type === VType.VNON) throw kerr('EINVAL');
  if ((type === VType.VBLK || type === VType.VCHR) && !l.cred.isRoot()) throw kerr('EPERM');
  return (dvp: Vnode, name: string) => VOP_CREATE(dvp, name, { type, mode: mode & ~l.umask & 0o7777, rdev }, l);
}

const symlinkOp = (l: Lwp, target: string) => (dvp: Vnode, name: string) =>
  VOP_SYMLINK(dvp, name, { type: VType.VLNK, mode: 0o777 }, target, l);

export async function sys_mkdir(l: Lwp, path: string, mode: number): Promise<void> {
  await vrele(await createIn(l, await parentPath(l, path), true, mkdirOp(l, mode)));
}

export async function vn_mkdirat(l: Lwp, dvp: Vnode, name: string, mode: number): Promise<Vnode> {
  return createIn(l, await parentAt(l, dvp, name), true, mkdirOp(l, mode));
}

/** mknod(2) for devices, FIFOs and sockets (regular files: sys_open with O_CREAT). */
export async function sys_mknod(l: Lwp, path: string, type: VType, mode: number, rdev = 0): Promise<void> {
  const op = mknodOp(l, type, mode, rdev);
  await vrele(await createIn(l, await parentPath(l, path), false, op));
}

export async function vn_mknodat(l: Lwp, dvp: Vnode, name: string, type: VType, mode: number, rdev = 0): Promise<Vnode> {
  const op = mknodOp(l, type, mode, rdev);
  return createIn(l, await parentAt(l, dvp, name), false, op);
}

export async function sys_symlink(l: Lwp, target: string, path: string): Promise<void> {
  await vrele(await createIn(l, await parentPath(l, path), false, symlinkOp(l, target)));
}

export async function vn_symlinkat(l: Lwp, target: string, dvp: Vnode, name: string): Promise<Vnode> {
  return createIn(l, await parentAt(l, dvp, name), false, symlinkOp(l, target));
}

function checkLinkable(vp: Vnode): void {
  if (vp.type === VType.VDIR) throw kerr('EPERM', 'hard link to a directory');
}

/** link(2): a new name nd for vp (held by the caller, checkLinkable). Takes over nd. */
async function linkIn(l: Lwp, vp: Vnode, nd: NameiResult): Promise<void> {
  try {
    if (!nd.dvp || nd.vp) throw kerr('EEXIST');
    if (nd.trailingSlash) throw kerr('ENOENT');
    if (nd.dvp.mount !== vp.mount) throw kerr('EXDEV');
    await vn_access(nd.dvp, VWRITE | VEXEC, l);
    await vn_locked(vp, LK_EXCLUSIVE, l, () => VOP_LINK(nd.dvp!, vp, nd.name, l));
  } finally {
    await namei_done(l, nd);
  }
}

export async function sys_link(l: Lwp, existing: string, path: string): Promise<void> {
  await withPath(l, existing, false, async vp => {
    checkLinkable(vp);
    return linkIn(l, vp, await parentPath(l, path));
  });
}

export async function vn_linkat(l: Lwp, vp: Vnode, dvp: Vnode, name: string): Promise<void> {
  checkLinkable(vp);
  return linkIn(l, vp, await parentAt(l, dvp, name));
}

// Removing names

/** Write and search permission on the locked directory, and the sticky rule for vp. */
function checkRemove(l: Lwp, dvp: Vnode, vp: Vnode): MaybePromise<void> {
  const a = vn_access(dvp, VWRITE | VEXEC, l);
  if (a instanceof Promise) return a.then(() => checkSticky(l, dvp, vp));
  return checkSticky(l, dvp, vp);
}

/** A sticky directory's entry goes only by its owner, the directory's, or root. */
function checkSticky(l: Lwp, dvp: Vnode, vp: Vnode): MaybePromise<void> {
  return andThen(vop_getattr(dvp, l), dva => {
    if (!(dva.mode & 0o1000)) return;
    const va = vp.lock.heldBy(l) ? vop_getattr(vp, l) : vn_locking(vp, LK_SHARED, l, () => vop_getattr(vp, l));
    return andThen(va, a => genfs_can_sticky(l.cred, dva.mode, dva.uid, a.uid));
  });
}

/** Run fn with what namei resolved; nd is released after, on every path (as it comes). */
function withNd<T>(l: Lwp, nd: NameiResult, fn: () => MaybePromise<T>): MaybePromise<T> {
  let r: MaybePromise<T>;
  try {
    r = fn();
  } catch (e) {
    return andThen(namei_done(l, nd), () => { throw e; });
  }
  if (r instanceof Promise) return r.then(v => andThen(namei_done(l, nd), () => v), e => andThen(namei_done(l, nd), () => { throw e; }));
  return andThen(namei_done(l, nd), () => r as T);
}

function unlinkIn(l: Lwp, nd: NameiResult): MaybePromise<void> {
  return withNd(l, nd, () => {
    if (!nd.dvp) throw kerr('EISDIR');
    if (!nd.vp) throw kerr('ENOENT');
    if (nd.vp.type === VType.VDIR) throw kerr('EISDIR');
    const dvp = nd.dvp, vp = nd.vp;
    return andThen(checkRemove(l, dvp, vp), () => vn_locking(vp, LK_EXCLUSIVE, l, () => vop_remove(dvp, vp, nd.name, l)));
  });
}

export async function sys_unlink(l: Lwp, path: string): Promise<void> {
  return unlinkIn(l, await parentPath(l, path));
}

/** unlink of name in dvp, as it comes (FUSE's UNLINK). */
export function vn_unlinkat(l: Lwp, dvp: Vnode, name: string): MaybePromise<void> {
  return andThen(parentAt(l, dvp, name), nd => unlinkIn(l, nd));
}

async function rmdirIn(l: Lwp, nd: NameiResult): Promise<void> {
  try {
    if (!nd.dvp) throw kerr(nd.name === '..' ? 'ENOTEMPTY' : nd.vp === l.root ? 'EBUSY' : 'EINVAL');
    if (!nd.vp) throw kerr('ENOENT');
    if (nd.vp.type !== VType.VDIR) throw kerr('ENOTDIR');
    if (nd.vp === l.root) throw kerr('EBUSY');
    await checkRemove(l, nd.dvp, nd.vp);
    await vn_locked(nd.vp, LK_EXCLUSIVE, l, () => VOP_RMDIR(nd.dvp!, nd.vp!, nd.name, l));
  } finally {
    await namei_done(l, nd);
  }
}

export async function sys_rmdir(l: Lwp, path: string): Promise<void> {
  return rmdirIn(l, await parentPath(l, path));
}

export async function vn_rmdirat(l: Lwp, dvp: Vnode, name: string): Promise<void> {
  return rmdirIn(l, await parentAt(l, dvp, name));
}

// Opening

/**
 * open(2) with O_CREAT on a resolved name: the existing file (EEXIST with
 * O_EXCL) or a new one (mode less the umask). Takes over nd.
 */
function createFileIn(l: Lwp, nd: NameiResult, flags: number, mode: number): MaybePromise<File> {
  let created = false;
  const got = withNd(l, nd, (): MaybePromise<Vnode> => {
    if (nd.vp) {
      if (flags & O_EXCL) throw kerr('EEXIST');
      const vp = nd.vp;
      nd.vp = null;
      return vp;
    }
    if (!nd.dvp) throw kerr('EISDIR');
    if (nd.trailingSlash) throw kerr('EISDIR');
    const dvp = nd.dvp;
    return andThen(vn_access(dvp, VWRITE | VEXEC, l), () => andThen(
      vop_create(dvp, nd.name, { type: VType.VREG, mode: mode & ~l.umask & 0o7777 }, l),
      vp => { created = true; return vp; }));
  });
  return andThen(got, vp => vn_openm(l, vp, flags, created));
}

/**
 * open(2). With O_CREAT a missing file is created (mode less the umask);
 * O_EXCL fails on an existing one; O_TRUNC empties a regular file.
 * Returns an open file holding a reference on the vnode.
 */
export async function sys_open(l: Lwp, path: string, flags: number, mode = 0o666): Promise<File> {
  if (flags & O_CREAT) {
    return createFileIn(l, await namei(l, path, { follow: !(flags & (O_EXCL | O_NOFOLLOW)), parent: true }), flags, mode);
  }
  const { vp } = await namei(l, path, { follow: !(flags & O_NOFOLLOW) });
  return vn_open(l, vp!, flags);
}

/** open(2) with O_CREAT of name in dvp (FUSE's CREATE), as it comes. */
export function vn_createat(l: Lwp, dvp: Vnode, name: string, flags: number, mode: number): MaybePromise<File> {
  return andThen(parentAt(l, dvp, name), nd => createFileIn(l, nd, flags | O_CREAT, mode));
}

/** Every entry of a directory, `.` and `..` included. */
export async function sys_readdir(l: Lwp, path: string): Promise<Dirent[]> {
  const fp = await sys_open(l, path, O_DIRECTORY);
  try {
    const all: Dirent[] = [];
    for (let cookie = 0; ;) {
      const { entries, eof } = await vn_readdir(l, fp, cookie);
      all.push(...entries);
      if (eof || entries.length === 0) return all;
      cookie = entries[entries.length - 1].cookie;
    }
  } finally {
    await vn_close(l, fp);
  }
}

// Renaming

/** More `..` steps than any tree reachable by names can have: a corrupt image's loop. */
const MAX_DEPTH = 65536;

/** Is a an ancestor of b, or b itself? Walks `..` up from b to the root. */
async function isAncestor(l: Lwp, a: Vnode, b: Vnode): Promise<boolean> {
  let vp = b;
  let held = false;
  try {
    for (let depth = 0; ; depth++) {
      if (depth > MAX_DEPTH) throw kerr('EIO', 'the directory tree loops');
      if (vp === a) return true;
      if (vp === l.root) return false;
      const up: Vnode = await vn_locked(vp, LK_SHARED, l, () => VOP_LOOKUP(vp, '..', l));
      if (held) await vrele(vp);
      if (up === vp) { await vrele(up); held = false; return false; }
      vp = up;
      held = true;
    }
  } finally {
    if (held) await vrele(vp);
  }
}

/** A resolved name for rename: the directory referenced but not locked (rename orders its locks itself). */
type RenameResolve = () => Promise<NameiResult>;

function unlockedParent(resolve: () => MaybePromise<NameiResult>, l: Lwp): RenameResolve {
  return async () => {
    const nd = await resolve();
    nd.dvp?.lock.unlock(l);
    return nd;
  };
}

async function releaseUnlocked(nd: NameiResult): Promise<void> {
  if (nd.dvp) await vrele(nd.dvp);
  if (nd.vp) await vrele(nd.vp);
}

/**
 * rename(2). Holds the mount's rename lock, so the tree's shape cannot change
 * under it; locks the two directories ancestor first (else source first),
 * then the two files by file id; then checks the names still refer to the
 * same files (else starts again) before VOP_RENAME. noReplace: EEXIST when
 * the target exists (renameat2's RENAME_NOREPLACE).
 */
async function renameIn(l: Lwp, from: RenameResolve, to: RenameResolve, noReplace: boolean): Promise<void> {
  const mp = l.root!.mount;
  await mp.renameLock.lock(l, LK_EXCLUSIVE);
  try {
    for (;;) {
      const f = await from();
      let t: NameiResult | null = null;
      try {
        t = await to();
        if (!f.dvp || !t.dvp) throw kerr(f.vp === l.root || t.vp === l.root ? 'EBUSY' : 'EINVAL');
        if (!f.vp) throw kerr('ENOENT');
        const fvp = f.vp, fdvp = f.dvp, tdvp = t.dvp;
        let tvp = t.vp;
        const fdir = fvp.type === VType.VDIR;
        if (t.trailingSlash && !fdir) throw kerr('ENOTDIR');
        if (fvp.mount !== tdvp.mount) throw kerr('EXDEV');
        if (fvp === tvp) {
          // Another link to the same file: nothing to do (POSIX). Its own name in other case: a case-only rename.
          if (!(mp.op.caseInsensitive && fdvp === tdvp && f.name !== t.name)) return;
          tvp = null;
        }
        if (tvp && noReplace) throw kerr('EEXIST');
        if (tvp && fdir && tvp.type !== VType.VDIR) throw kerr('ENOTDIR');
        if (tvp && !fdir && tvp.type === VType.VDIR) throw kerr('EISDIR');
        if (fdir && await isAncestor(l, fvp, tdvp)) throw kerr('EINVAL', 'into its own subtree');
        if (tvp && await isAncestor(l, tvp, fdvp)) throw kerr('ENOTEMPTY');
        const dirs = fdvp === tdvp ? [fdvp] : await isAncestor(l, tdvp, fdvp) ? [tdvp, fdvp] : [fdvp, tdvp];
        const files = (tvp ? [fvp, tvp] : [fvp]).sort((a, b) => a.key - b.key);
        const locked: Vnode[] = [];
        try {
          for (const vp of [...dirs, ...files]) { await vp.lock.lock(l, LK_EXCLUSIVE); locked.push(vp); }
          if (!(await stillNames(l, fdvp, f.name, fvp) && await stillNames(l, tdvp, t.name, t.vp))) continue;
          await checkRemove(l, fdvp, fvp);
          if (tvp) await checkRemove(l, tdvp, tvp);
          else await vn_access(tdvp, VWRITE | VEXEC, l);
          if (fdir && fdvp !== tdvp) await vn_access(fvp, VWRITE, l);
          await VOP_RENAME(fdvp, fvp, f.name, tdvp, tvp, t.name, l);
          return;
        } finally {
          for (const vp of locked.reverse()) vp.lock.unlock(l);
        }
      } finally {
        await releaseUnlocked(f);
        if (t) await releaseUnlocked(t);
      }
    }
  } finally {
    mp.renameLock.unlock(l);
  }
}

export function sys_rename(l: Lwp, from: string, to: string): Promise<void> {
  return renameIn(l, unlockedParent(() => parentPath(l, from), l), unlockedParent(() => parentPath(l, to), l), false);
}

export function vn_renameat(l: Lwp, fdvp: Vnode, fname: string, tdvp: Vnode, tname: string, noReplace = false): Promise<void> {
  return renameIn(l, unlockedParent(() => parentAt(l, fdvp, fname), l), unlockedParent(() => parentAt(l, tdvp, tname), l), noReplace);
}

/** Does name in the locked directory dvp still refer to vp (null: to nothing)? */
async function stillNames(l: Lwp, dvp: Vnode, name: string, vp: Vnode | null): Promise<boolean> {
  const cur = await VOP_LOOKUP_OR_NULL(dvp, name, l);
  if (cur === null) return vp === null;
  // Every vnode this rename holds is referenced by it, so this release never inactivates one.
  const same = cur === vp;
  await vrele(cur);
  return same;
}

// The mount

export function sys_statvfs(l: Lwp): Promise<Statvfs> {
  const mp = l.root!.mount;
  return mp.op.statvfs(mp);
}

export function sys_sync(l: Lwp): Promise<void> {
  return vfs_sync(l.root!.mount);
}

// Extended attributes, by path

export function sys_getxattr(l: Lwp, path: string, name: string, follow = true): Promise<Uint8Array> {
  return withPath(l, path, follow, vp => vn_getxattr(l, vp, name));
}

export function sys_listxattr(l: Lwp, path: string, follow = true): Promise<string[]> {
  return withPath(l, path, follow, vp => vn_listxattr(l, vp));
}

export function sys_setxattr(l: Lwp, path: string, name: string, value: Uint8Array, flags: number, follow = true): Promise<void> {
  return withPath(l, path, follow, vp => vn_setxattr(l, vp, name, value, flags));
}

export function sys_removexattr(l: Lwp, path: string, name: string, follow = true): Promise<void> {
  return withPath(l, path, follow, vp => vn_removexattr(l, vp, name));
}
