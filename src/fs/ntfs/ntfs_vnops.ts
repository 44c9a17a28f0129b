// Vnode operations (NetBSD's ntfs_vnops.c), read-only: every change is
// EROFS. Lookup is case-insensitive through $UpCase and keeps the names'
// case; readdir shows Win32 and POSIX names, never DOS 8.3 ones.
import {
  genfs_rdonly_vnodeops, isKernError, kerr, log, O_ACCMODE, O_RDONLY, O_TRUNC, vcache_get, vrele, VType,
  type Dirent, type Lwp, type Vattr, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import { ntfs_ino2key } from './ntfs.js';
import { ntfs_direntries, ntfs_findname, type NtfsNode } from './ntfs_node.js';
import { ntfs_readattr, type NtfsMount } from './ntfs_subr.js';

/** Directory entries handed out per readdir call (more follow from the cookie). */
const READDIR_BATCH = 256;


async function ntfs_lookup(dvp: Vnode, name: string, _l: Lwp): Promise<Vnode> {
  const nmp = dvp.mount.priv<NtfsMount>();
  const dir = dvp.node<NtfsNode>();
  if (dvp.type !== VType.VDIR) throw kerr('ENOTDIR');
  if (name === '..') return vcache_get(dvp.mount, dir.parent);
  const e = await ntfs_findname(nmp, dir, name);
  const vp = await vcache_get(dvp.mount, ntfs_ino2key(e.ino));
  const n = vp.node<NtfsNode>();
  if (n.seq !== e.seq && e.seq !== 0) {
    await vrele(vp);
    log(`ntfs: directory ${dir.ino}: entry '${e.name}' refers to record ${e.ino} sequence ${e.seq}, which is now ${n.seq}`);
    throw kerr('EIO', `stale directory entry '${e.name}'`);
  }
  return vp;
}

async function ntfs_open(vp: Vnode, flags: number, _l: Lwp): Promise<void> {
  if ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC)) throw kerr('EROFS');
}

async function ntfs_getattr(vp: Vnode, _l: Lwp): Promise<Vattr> {
  const n = vp.node<NtfsNode>();
  const nmp = vp.mount.priv<NtfsMount>();
  return {
    type: n.type, mode: n.type === VType.VDIR ? nmp.dmode : n.type === VType.VLNK ? 0o777 : nmp.fmode,
    nlink: n.nlink, uid: nmp.uid, gid: nmp.gid, fileid: ntfs_ino2key(n.ino), size: n.size, bytes: n.bytes,
    blocksize: nmp.clusterSize, atime: n.atime, mtime: n.mtime, ctime: n.ctime, birthtime: n.birthtime,
    rdev: 0, gen: n.seq,
  };
}

async function ntfs_read(vp: Vnode, buf: Uint8Array, offset: number, _ioflag: number, _l: Lwp): Promise<number> {
  if (vp.type === VType.VDIR) throw kerr('EISDIR');
  if (vp.type !== VType.VREG) throw kerr('EINVAL');
  const n = vp.node<NtfsNode>();
  if (n.foreignTag !== undefined) {
    log(`ntfs: file ${n.ino}: reparse point with tag ${n.foreignTag.toString(16)}h (dedup, cloud or WOF file): its data is not in the file; not read`);
    throw kerr('EOPNOTSUPP', `reparse point ${n.foreignTag.toString(16)}h`);
  }
  if (!n.data) return 0;
  return ntfs_readattr(vp.mount.priv<NtfsMount>(), n.data, offset, buf, `file ${n.ino}`, n.cache);
}

/** Cookies: 1 after `.`, 2 after `..`, 3 + i after entry i. */
async function ntfs_readdir(vp: Vnode, cookie: number, _l: Lwp): Promise<{ entries: Dirent[]; eof: boolean }> {
  if (vp.type !== VType.VDIR) throw kerr('ENOTDIR');
  const n = vp.node<NtfsNode>();
  const entries: Dirent[] = [];
  if (cookie === 0) entries.push({ name: '.', fileid: n.ino, type: VType.VDIR, cookie: 1 });
  if (cookie <= 1) entries.push({ name: '..', fileid: n.parent, type: VType.VDIR, cookie: 2 });
  const all = await ntfs_direntries(vp.mount.priv<NtfsMount>(), n);
  for (let i = Math.max(0, cookie - 2); i < all.length; i++) {
    const e = all[i];
    let type = e.type;
    if (type === VType.VNON) {
      // Reparse points and system files may be symlinks: their node says (a damaged one: DT_UNKNOWN).
      try {
        const cvp = await vcache_get(vp.mount, ntfs_ino2key(e.ino));
        type = e.type = cvp.type;
        await vrele(cvp);
      } catch (err) {
        if (!isKernError(err)) throw err;
      }
    }
    entries.push({ name: e.name, fileid: ntfs_ino2key(e.ino), type, cookie: i + 3 });
    if (entries.length >= READDIR_BATCH) return { entries, eof: i + 1 >= all.length };
  }
  return { entries, eof: true };
}

async function ntfs_readlink(vp: Vnode, _l: Lwp): Promise<string> {
  if (vp.type !== VType.VLNK) throw kerr('EINVAL');
  return vp.node<NtfsNode>().symlink!;
}

export const ntfs_vnodeops: VnodeOps = genfs_rdonly_vnodeops({
  lookup: ntfs_lookup,
  open: ntfs_open,
  getattr: ntfs_getattr,
  read: ntfs_read,
  readdir: ntfs_readdir,
  readlink: ntfs_readlink,
});
