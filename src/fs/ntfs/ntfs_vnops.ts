// Vnode operations (NetBSD's ntfs_vnops.c), read-only: every change is
// EROFS. Lookup is case-insensitive through $UpCase and keeps the names'
// case; readdir shows Win32 and POSIX names, never DOS 8.3 ones.
import {
  andThen, genfs_rdonly_vnodeops, isKernError, kerr, log, O_ACCMODE, O_RDONLY, O_TRUNC, vcache_get, vrele, VType,
  type Dirent, type Lwp, type MaybePromise, type Vattr, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import { ntfs_ino2key } from './ntfs.js';
import { ntfs_direntries, ntfs_findname, ntfs_loadnode, type DirEntry, type NtfsNode } from './ntfs_node.js';
import { ntfs_readattr, type NtfsMount } from './ntfs_subr.js';

/** Directory entries handed out per readdir call (more follow from the cookie). */
const READDIR_BATCH = 256;


/** An absent name is null, not a thrown ENOENT (vop_lookup_or_null): a create's or a stat's miss costs no exception. */
async function ntfs_lookup(dvp: Vnode, name: string, _l: Lwp): Promise<Vnode | null> {
  const nmp = dvp.mount.priv<NtfsMount>();
  const dir = dvp.node<NtfsNode>();
  if (dvp.type !== VType.VDIR) throw kerr('ENOTDIR');
  if (name === '..') return vcache_get(dvp.mount, dir.parent);
  const e = await ntfs_findname(nmp, dir, name);
  if (!e) return null;
  const vp = await vcache_get(dvp.mount, ntfs_ino2key(e.ino));
  try {
    checkSeq(dir, e, vp.node<NtfsNode>());
  } catch (err) {
    await vrele(vp);
    throw err;
  }
  return vp;
}

/** The entry's record must still be the file it named (the sequence number a reuse of the record changes). */
function checkSeq(dir: NtfsNode, e: DirEntry, n: NtfsNode): void {
  if (n.seq === e.seq || e.seq === 0) return;
  log(`ntfs: directory ${dir.ino}: entry '${e.name}' refers to record ${e.ino} sequence ${e.seq}, which is now ${n.seq}`);
  throw kerr('EIO', `stale directory entry '${e.name}'`);
}

/**
 * VOP_LOOKUPATTR: a file's attributes from its MFT record, without a vnode
 * (a cold `stat` of every file of a directory keeps none): at once when the
 * directory's entries are read and the record's block is cached. undefined
 * for a directory, or an entry whose type its node decides (reparse points,
 * system files): the caller looks the name up.
 */
function ntfs_lookupattr(dvp: Vnode, name: string, _l: Lwp): MaybePromise<Vattr | null | undefined> {
  if (dvp.type !== VType.VDIR || name === '..') return undefined;
  const nmp = dvp.mount.priv<NtfsMount>();
  const dir = dvp.node<NtfsNode>();
  return andThen(ntfs_findname(nmp, dir, name), e => {
    if (!e) return null;
    if (e.type !== VType.VREG) return undefined;
    return andThen(ntfs_loadnode(nmp, e.ino), n => {
      checkSeq(dir, e, n);
      return ntfs_vattr(nmp, n);
    });
  });
}

async function ntfs_open(vp: Vnode, flags: number, _l: Lwp): Promise<void> {
  if ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC)) throw kerr('EROFS');
}

function ntfs_getattr(vp: Vnode, _l: Lwp): Vattr {
  return ntfs_vattr(vp.mount.priv<NtfsMount>(), vp.node<NtfsNode>());
}

function ntfs_vattr(nmp: NtfsMount, n: NtfsNode): Vattr {
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
  return ntfs_readattr(vp.mount.priv<NtfsMount>(), n.data, offset, buf, `file ${n.ino}`, n.cache, true);
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
  lookupattr: ntfs_lookupattr,
  open: ntfs_open,
  getattr: ntfs_getattr,
  read: ntfs_read,
  readdir: ntfs_readdir,
  readlink: ntfs_readlink,
});
