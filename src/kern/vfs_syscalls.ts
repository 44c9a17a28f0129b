// The system-call layer: path-name operations shared by every client of the
// kernel (p2k for FUSE, ukfs for programs). Each call resolves names with
// namei, checks namespace permissions, takes the vnode locks vnode_if.ts
// declares in the protocol's order, calls the VOP and releases everything
// on every path, errors included.
import { kerr, isKernError } from './errno.js';
import { genfs_can_sticky, VEXEC, VWRITE } from './kauth.js';
import { LK_EXCLUSIVE, LK_SHARED } from './lock.js';
import type { Lwp } from './lwp.js';
import { namei, namei_done, type NameiResult } from './namei.js';
import { vfs_sync } from './vfs.js';
import { File, openAccmode, vn_access, vn_close, vn_locked, vn_readdir, vn_setattr } from './vfs_vnops.js';
import { vrele } from './vcache.js';
import type { Vnode } from './vnode.js';
import {
  VOP_CREATE, VOP_GETATTR, VOP_GETXATTR, VOP_LINK, VOP_LISTXATTR, VOP_LOOKUP, VOP_MKDIR, VOP_OPEN,
  VOP_READLINK, VOP_REMOVE, VOP_REMOVEXATTR, VOP_RENAME, VOP_RMDIR, VOP_SETXATTR, VOP_SYMLINK,
} from './vnode_if.js';
import {
  O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_TRUNC, VType,
  type Dirent, type Statvfs, type Vattr, type VattrSet,
} from './vnode_types.js';

/** Run fn on the vnode a path names (referenced, locked as asked). */
async function withVnode<T>(l: Lwp, path: string, follow: boolean, mode: typeof LK_SHARED | typeof LK_EXCLUSIVE,
  fn: (vp: Vnode) => Promise<T>): Promise<T> {
  const { vp } = await namei(l, path, { follow });
  try {
    return await vn_locked(vp!, mode, l, () => fn(vp!));
  } finally {
    await vrele(vp!);
  }
}

export function sys_stat(l: Lwp, path: string, follow = true): Promise<Vattr> {
  return withVnode(l, path, follow, LK_SHARED, vp => VOP_GETATTR(vp, l));
}

export function sys_access(l: Lwp, path: string, accmode: number): Promise<void> {
  return withVnode(l, path, true, LK_SHARED, vp => vn_access(vp, accmode, l));
}

export function sys_setattr(l: Lwp, path: string, va: VattrSet, follow = true): Promise<void> {
  return withVnode(l, path, follow, LK_EXCLUSIVE, vp => vn_setattr(vp, va, l));
}

export function sys_readlink(l: Lwp, path: string): Promise<string> {
  return withVnode(l, path, false, LK_SHARED, async vp => {
    if (vp.type !== VType.VLNK) throw kerr('EINVAL', 'not a symbolic link');
    return VOP_READLINK(vp, l);
  });
}

/** Create a new name: the directory locked exclusive, write and search permission on it. */
async function createName(l: Lwp, path: string, dirOnly: boolean,
  make: (dvp: Vnode, name: string) => Promise<Vnode>): Promise<void> {
  const nd = await namei(l, path, { follow: false, parent: true });
  try {
    if (!nd.dvp || nd.vp) throw kerr('EEXIST');
    if (nd.trailingSlash && !dirOnly) throw kerr('ENOENT');
    await vn_access(nd.dvp, VWRITE | VEXEC, l);
    await vrele(await make(nd.dvp, nd.name));
  } finally {
    await namei_done(l, nd);
  }
}

export function sys_mkdir(l: Lwp, path: string, mode: number): Promise<void> {
  return createName(l, path, true, (dvp, name) =>
    VOP_MKDIR(dvp, name, { type: VType.VDIR, mode: mode & ~l.umask & 0o7777 }, l));
}

/** mknod(2) for devices, FIFOs and sockets (regular files: sys_open with O_CREAT). */
export async function sys_mknod(l: Lwp, path: string, type: VType, mode: number, rdev = 0): Promise<void> {
  if (type === VType.VDIR || type === VType.VLNK || type === VType.VNON) throw kerr('EINVAL');
  if ((type === VType.VBLK || type === VType.VCHR) && !l.cred.isRoot()) throw kerr('EPERM');
  return createName(l, path, false, (dvp, name) =>
    VOP_CREATE(dvp, name, { type, mode: mode & ~l.umask & 0o7777, rdev }, l));
}

export function sys_symlink(l: Lwp, target: string, path: string): Promise<void> {
  return createName(l, path, false, (dvp, name) =>
    VOP_SYMLINK(dvp, name, { type: VType.VLNK, mode: 0o777 }, target, l));
}

export async function sys_link(l: Lwp, existing: string, path: string): Promise<void> {
  const { vp } = await namei(l, existing, { follow: false });
  try {
    if (vp!.type === VType.VDIR) throw kerr('EPERM', 'hard link to a directory');
    const nd = await namei(l, path, { follow: false, parent: true });
    try {
      if (!nd.dvp || nd.vp) throw kerr('EEXIST');
      if (nd.trailingSlash) throw kerr('ENOENT');
      if (nd.dvp.mount !== vp!.mount) throw kerr('EXDEV');
      await vn_access(nd.dvp, VWRITE | VEXEC, l);
      await vn_locked(vp!, LK_EXCLUSIVE, l, () => VOP_LINK(nd.dvp!, vp!, nd.name, l));
    } finally {
      await namei_done(l, nd);
    }
  } finally {
    await vrele(vp!);
  }
}

/** Write and search permission on the locked directory, and the sticky rule for vp. */
async function checkRemove(l: Lwp, dvp: Vnode, vp: Vnode): Promise<void> {
  await vn_access(dvp, VWRITE | VEXEC, l);
  const dva = await VOP_GETATTR(dvp, l);
  if (dva.mode & 0o1000) {
    const va = vp.lock.heldBy(l) ? await VOP_GETATTR(vp, l) : await vn_locked(vp, LK_SHARED, l, () => VOP_GETATTR(vp, l));
    genfs_can_sticky(l.cred, dva.mode, dva.uid, va.uid);
  }
}

export async function sys_unlink(l: Lwp, path: string): Promise<void> {
  const nd = await namei(l, path, { follow: false, parent: true });
  try {
    if (!nd.dvp) throw kerr('EISDIR');
    if (!nd.vp) throw kerr('ENOENT');
    if (nd.vp.type === VType.VDIR) throw kerr('EISDIR');
    await checkRemove(l, nd.dvp, nd.vp);
    await vn_locked(nd.vp, LK_EXCLUSIVE, l, () => VOP_REMOVE(nd.dvp!, nd.vp!, nd.name, l));
  } finally {
    await namei_done(l, nd);
  }
}

export async function sys_rmdir(l: Lwp, path: string): Promise<void> {
  const nd = await namei(l, path, { follow: false, parent: true });
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

/**
 * open(2). With O_CREAT a missing file is created (mode less the umask);
 * O_EXCL fails on an existing one; O_TRUNC empties a regular file.
 * Returns an open file holding a reference on the vnode.
 */
export async function sys_open(l: Lwp, path: string, flags: number, mode = 0o666): Promise<File> {
  let vp: Vnode;
  let created = false;
  if (flags & O_CREAT) {
    const nd = await namei(l, path, { follow: !(flags & (O_EXCL | O_NOFOLLOW)), parent: true });
    try {
      if (nd.vp) {
        if (flags & O_EXCL) throw kerr('EEXIST');
        vp = nd.vp;
        nd.vp = null;
      } else {
        if (nd.trailingSlash) throw kerr('EISDIR');
        await vn_access(nd.dvp!, VWRITE | VEXEC, l);
        vp = await VOP_CREATE(nd.dvp!, nd.name, { type: VType.VREG, mode: mode & ~l.umask & 0o7777 }, l);
        created = true;
      }
    } finally {
      await namei_done(l, nd);
    }
  } else {
    vp = (await namei(l, path, { follow: !(flags & O_NOFOLLOW) })).vp!;
  }
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

/** namei for rename: the directory referenced but not locked (rename orders its locks itself). */
async function renameLookup(l: Lwp, path: string): Promise<NameiResult> {
  const nd = await namei(l, path, { follow: false, parent: true });
  nd.dvp?.lock.unlock(l);
  return nd;
}

async function releaseUnlocked(nd: NameiResult): Promise<void> {
  if (nd.dvp) await vrele(nd.dvp);
  if (nd.vp) await vrele(nd.vp);
}

/**
 * rename(2). Holds the mount's rename lock, so the tree's shape cannot change
 * under it; locks the two directories ancestor first (else source first),
 * then the two files by file id; then checks the names still refer to the
 * same files (else starts again) before VOP_RENAME.
 */
export async function sys_rename(l: Lwp, from: string, to: string): Promise<void> {
  const mp = l.root!.mount;
  await mp.renameLock.lock(l, LK_EXCLUSIVE);
  try {
    for (;;) {
      const f = await renameLookup(l, from);
      let t: NameiResult | null = null;
      try {
        t = await renameLookup(l, to);
        if (!f.dvp || !t.dvp) throw kerr(f.vp === l.root || t.vp === l.root ? 'EBUSY' : 'EINVAL');
        if (!f.vp) throw kerr('ENOENT');
        const fvp = f.vp, fdvp = f.dvp, tdvp = t.dvp;
        const fdir = fvp.type === VType.VDIR;
        if (t.trailingSlash && !fdir) throw kerr('ENOTDIR');
        if (fvp.mount !== tdvp.mount) throw kerr('EXDEV');
        // A case-insensitive file system finds the file itself under its new
        // spelling: the rename changes the case of the name, not a link.
        const caseOnly = fvp === t.vp && fdvp === tdvp && f.name !== t.name && fvp.mount.op.caseInsensitive === true;
        if (fvp === t.vp && !caseOnly) return;
        const tvp = caseOnly ? null : t.vp;
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

/** Does name in the locked directory dvp still refer to vp (null: to nothing)? */
async function stillNames(l: Lwp, dvp: Vnode, name: string, vp: Vnode | null): Promise<boolean> {
  let cur: Vnode | null = null;
  try {
    cur = await VOP_LOOKUP(dvp, name, l);
  } catch (e) {
    if (isKernError(e) && e.code === 'ENOENT') return vp === null;
    throw e;
  }
  // Every vnode this rename holds is referenced by it, so this release never inactivates one.
  const same = cur === vp;
  await vrele(cur);
  return same;
}

export function sys_statvfs(l: Lwp): Promise<Statvfs> {
  const mp = l.root!.mount;
  return mp.op.statvfs(mp);
}

export function sys_sync(l: Lwp): Promise<void> {
  return vfs_sync(l.root!.mount);
}

export function sys_getxattr(l: Lwp, path: string, name: string, follow = true): Promise<Uint8Array> {
  return withVnode(l, path, follow, LK_SHARED, vp => VOP_GETXATTR(vp, name, l));
}

export function sys_listxattr(l: Lwp, path: string, follow = true): Promise<string[]> {
  return withVnode(l, path, follow, LK_SHARED, vp => VOP_LISTXATTR(vp, l));
}

export function sys_setxattr(l: Lwp, path: string, name: string, value: Uint8Array, flags: number, follow = true): Promise<void> {
  return withVnode(l, path, follow, LK_EXCLUSIVE, async vp => {
    await vn_access(vp, VWRITE, l);
    await VOP_SETXATTR(vp, name, value, flags, l);
  });
}

export function sys_removexattr(l: Lwp, path: string, name: string, follow = true): Promise<void> {
  return withVnode(l, path, follow, LK_EXCLUSIVE, async vp => {
    await vn_access(vp, VWRITE, l);
    await VOP_REMOVEXATTR(vp, name, l);
  });
}
