// Vnode operations (udf_vnops.c): read-only, so every operation that would
// change the medium fails with EROFS.
import {
  genfs_rdonly_vnodeops, kerr, O_ACCMODE, O_RDONLY, O_TRUNC, VType,
  type Dirent, type Lwp, type Vattr, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import { udf_dirents, udf_entrytypes, udf_lookup, udf_lookupattr } from './udf_dir.js';
import { udf_readdata, udf_vattr, type UdfNode } from './udf_node.js';
import type { UdfMount } from './udf_subr.js';

/** Directory entries handed out per readdir call (more follow from the cookie). */
const READDIR_BATCH = 128;


async function udf_open(vp: Vnode, flags: number, _l: Lwp): Promise<void> {
  if ((vp.type === VType.VREG || vp.type === VType.VDIR || vp.type === VType.VLNK) &&
      ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC))) throw kerr('EROFS');
}

function udf_getattr(vp: Vnode, _l: Lwp): Vattr {
  return udf_vattr(vp.mount.priv<UdfMount>(), vp.node<UdfNode>());
}

async function udf_read(vp: Vnode, buf: Uint8Array, offset: number, _ioflag: number, _l: Lwp): Promise<number> {
  if (vp.type !== VType.VREG) throw kerr('EINVAL');
  return udf_readdata(vp.mount.priv<UdfMount>(), vp.node<UdfNode>(), buf, offset, true);
}

/** Cookies: 0 is `.`; 1 + a byte offset in the directory's data continues after the entry ending there. */
async function udf_readdir(vp: Vnode, cookie: number, _l: Lwp): Promise<{ entries: Dirent[]; eof: boolean }> {
  const n = vp.node<UdfNode>();
  if (vp.type !== VType.VDIR) throw kerr('ENOTDIR');
  const ump = vp.mount.priv<UdfMount>();
  const ents = await udf_dirents(ump, n);
  const entries: Dirent[] = [];
  if (cookie === 0) entries.push({ name: '.', fileid: n.key, type: VType.VDIR, cookie: 1 });
  const from = Math.max(0, cookie - 1);
  // Entries are in offset order: start at the first one past the cookie.
  let lo = 0, hi = ents.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ents[mid].next <= from) lo = mid + 1; else hi = mid;
  }
  const batch = ents.slice(lo, lo + READDIR_BATCH - entries.length);
  await udf_entrytypes(ump, batch);
  for (const e of batch) entries.push({ name: e.name, fileid: e.key, type: e.type, cookie: e.next + 1 });
  return { entries, eof: lo + batch.length >= ents.length };
}

async function udf_readlink(vp: Vnode, _l: Lwp): Promise<string> {
  if (vp.type !== VType.VLNK) throw kerr('EINVAL');
  return vp.node<UdfNode>().symlink!;
}

export const udf_vnodeops: VnodeOps = genfs_rdonly_vnodeops({
  lookup: udf_lookup,
  lookupattr: udf_lookupattr,
  open: udf_open,
  getattr: udf_getattr,
  read: udf_read,
  readdir: udf_readdir,
  readlink: udf_readlink,
});
