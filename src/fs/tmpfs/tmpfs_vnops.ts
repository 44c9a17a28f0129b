// tmpfs vnode operations (NetBSD's tmpfs_vnops.c). The kernel has done the
// namespace permission checks and the setattr ownership rules; these apply
// the change, keep link counts and time stamps as POSIX asks, and enforce
// the mount's limits and the name rules.
import {
  IO_APPEND, kerr, nanotime, vcache_getm, VType,
  type Dirent, type Lwp, type MaybePromise, type Mount, type Vattr, type VattrCreate, type VattrSet, type Vnode,
  type VnodeOps,
} from '../../kern/index.js';
import {
  TMPFS_COOKIE_DOT, TMPFS_COOKIE_DOTDOT, TMPFS_FILESIZE_BITS, TMPFS_LINK_MAX, TMPFS_NAME_MAX,
  TMPFS_PAGE_SIZE, type TmpfsMount, type TmpfsNode,
} from './tmpfs.js';
import {
  TM_ATIME, TM_CTIME, TM_MTIME, tmpfs_alloc_node, tmpfs_check_target, tmpfs_checkname, tmpfs_dir_attach,
  tmpfs_dir_detach, tmpfs_dir_lookup, tmpfs_dir_size, tmpfs_free_node, tmpfs_init_owner, tmpfs_loan_pages, tmpfs_read_pages,
  tmpfs_truncate, tmpfs_update, tmpfs_write_pages,
} from './tmpfs_subr.js';

// Every operation answers at once: nothing here waits for I/O, so the
// kernel's callers take the answer without a microtask.

/** A cached or new vnode at once; one being loaded or reclaimed later. */
const vget = (mp: Mount, id: number): MaybePromise<Vnode> => vcache_getm(mp, id);

/** Entries one VOP_READDIR returns at most: large directories are read in several calls. */
const READDIR_BATCH = 128;

const tmpfs = (vp: Vnode): TmpfsMount => vp.mount.priv<TmpfsMount>();
const node = (vp: Vnode): TmpfsNode => vp.node<TmpfsNode>();

/** A directory that may get a new entry: still linked, not at LINK_MAX when it gains a subdirectory. */
function checkNewEntry(dnode: TmpfsNode, name: string, isDir: boolean): void {
  if (dnode.nlink === 0) throw kerr('ENOENT', 'directory was removed');
  tmpfs_checkname(name);
  if (tmpfs_dir_lookup(dnode, name)) throw kerr('EEXIST');
  if (isDir && dnode.nlink >= TMPFS_LINK_MAX) throw kerr('EMLINK');
}

/** Make a node of any type under dvp and return its vnode. */
function makeNode(dvp: Vnode, name: string, va: VattrCreate, l: Lwp, target?: string): MaybePromise<Vnode> {
  const tm = tmpfs(dvp), dnode = node(dvp);
  checkNewEntry(dnode, name, va.type === VType.VDIR);
  if (target !== undefined) tmpfs_check_target(target);
  const { uid, gid, mode } = tmpfs_init_owner(dnode, va.type, va.mode, l.cred);
  const nnode = tmpfs_alloc_node(tm, { uid, gid, mode, type: va.type, rdev: va.rdev, target, parent: dnode });
  if (nnode.dir) nnode.nlink = 1; // its own `.`; the entry in dnode adds the other
  tmpfs_dir_attach(dnode, name, nnode);
  tmpfs_update(dnode, TM_MTIME | TM_CTIME, nnode.ctime);
  return vget(dvp.mount, nnode.id);
}

function checkType(vp: Vnode, va: VattrCreate, allowed: VType[]): void {
  if (!allowed.includes(va.type)) throw kerr('EINVAL', `${vp}: cannot create type ${VType[va.type]} here`);
}

export const tmpfs_vnodeops: VnodeOps = {
  lookup(dvp, name, _l) {
    const dnode = node(dvp);
    if (dnode.nlink === 0) throw kerr('ENOENT', 'directory was removed');
    if (name === '..') return vget(dvp.mount, dnode.dir!.parent.id);
    const de = tmpfs_dir_lookup(dnode, name);
    // Absent: null, no exception (every create looks its name up first).
    return de ? vget(dvp.mount, de.node.id) : null;
  },

  create(dvp, name, va, l) {
    checkType(dvp, va, [VType.VREG, VType.VBLK, VType.VCHR, VType.VFIFO, VType.VSOCK]);
    return makeNode(dvp, name, va, l);
  },

  mkdir(dvp, name, va, l) {
    checkType(dvp, va, [VType.VDIR]);
    return makeNode(dvp, name, va, l);
  },

  symlink(dvp, name, va, target, l) {
    checkType(dvp, va, [VType.VLNK]);
    return makeNode(dvp, name, va, l, target);
  },

  link(dvp, vp, name, _l) {
    const dnode = node(dvp), fnode = node(vp);
    if (vp.type === VType.VDIR) throw kerr('EPERM', 'hard link to a directory');
    checkNewEntry(dnode, name, false);
    if (fnode.nlink === 0) throw kerr('ENOENT', 'file was removed');
    if (fnode.nlink >= TMPFS_LINK_MAX) throw kerr('EMLINK');
    tmpfs_dir_attach(dnode, name, fnode);
    const now = nanotime();
    tmpfs_update(fnode, TM_CTIME, now);
    tmpfs_update(dnode, TM_MTIME | TM_CTIME, now);
  },

  remove(dvp, vp, name, _l) {
    const dnode = node(dvp), fnode = node(vp);
    if (vp.type === VType.VDIR) throw kerr('EISDIR');
    if (tmpfs_dir_lookup(dnode, name)?.node !== fnode) throw kerr('ENOENT');
    tmpfs_dir_detach(dnode, name, fnode);
    const now = nanotime();
    tmpfs_update(fnode, TM_CTIME, now);
    tmpfs_update(dnode, TM_MTIME | TM_CTIME, now);
  },

  rmdir(dvp, vp, name, _l) {
    const dnode = node(dvp), cnode = node(vp);
    if (vp.type !== VType.VDIR) throw kerr('ENOTDIR');
    if (tmpfs_dir_lookup(dnode, name)?.node !== cnode) throw kerr('ENOENT');
    if (cnode.dir!.entries.size > 0) throw kerr('ENOTEMPTY');
    tmpfs_dir_detach(dnode, name, cnode);
    cnode.nlink = 0; // its own `.` goes with it
    const now = nanotime();
    tmpfs_update(cnode, TM_CTIME, now);
    tmpfs_update(dnode, TM_MTIME | TM_CTIME, now);
  },

  rename(fdvp, fvp, fname, tdvp, tvp, tname, _l) {
    const fdnode = node(fdvp), fnode = node(fvp), tdnode = node(tdvp);
    const tnode = tvp ? node(tvp) : null;
    const isDir = fnode.type === VType.VDIR;
    if (tmpfs_dir_lookup(fdnode, fname)?.node !== fnode) throw kerr('ENOENT');
    if (tdnode.nlink === 0) throw kerr('ENOENT', 'target directory was removed');
    tmpfs_checkname(tname);
    if (tmpfs_dir_lookup(tdnode, tname)?.node !== (tnode ?? undefined)) throw kerr('EEXIST');
    if (tnode) {
      if (isDir && tnode.type !== VType.VDIR) throw kerr('ENOTDIR');
      if (!isDir && tnode.type === VType.VDIR) throw kerr('EISDIR');
      if (tnode.dir && tnode.dir.entries.size > 0) throw kerr('ENOTEMPTY');
    } else if (isDir && fdnode !== tdnode && tdnode.nlink >= TMPFS_LINK_MAX) {
      throw kerr('EMLINK');
    }
    const now = nanotime();
    if (tnode) {
      tmpfs_dir_detach(tdnode, tname, tnode);
      if (tnode.dir) tnode.nlink = 0;
      tmpfs_update(tnode, TM_CTIME, now);
    }
    tmpfs_dir_detach(fdnode, fname, fnode);
    tmpfs_dir_attach(tdnode, tname, fnode);
    tmpfs_update(fnode, TM_CTIME, now);
    tmpfs_update(fdnode, TM_MTIME | TM_CTIME, now);
    tmpfs_update(tdnode, TM_MTIME | TM_CTIME, now);
  },

  open(_vp, _flags, _l) {},
  close(_vp, _flags, _l) {},

  getattr(vp, _l): Vattr {
    const n = node(vp);
    return {
      type: n.type, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, fileid: n.id,
      size: n.dir ? tmpfs_dir_size(n) : n.size,
      bytes: n.pages ? n.pages.size * TMPFS_PAGE_SIZE : 0,
      blocksize: TMPFS_PAGE_SIZE,
      atime: n.atime, mtime: n.mtime, ctime: n.ctime, birthtime: n.birthtime,
      rdev: n.rdev, gen: 0,
    };
  },

  setattr(vp, va: VattrSet, _l) {
    const n = node(vp);
    const now = nanotime();
    if (va.size !== undefined) {
      if (n.type === VType.VDIR) throw kerr('EISDIR');
      if (n.type !== VType.VREG) throw kerr('EINVAL');
      tmpfs_truncate(tmpfs(vp), n, va.size);
      tmpfs_update(n, TM_MTIME, now);
    }
    if (va.mode !== undefined) n.mode = va.mode & 0o7777;
    if (va.uid !== undefined) n.uid = va.uid;
    if (va.gid !== undefined) n.gid = va.gid;
    if (va.atime) n.atime = va.atime;
    if (va.mtime) n.mtime = va.mtime;
    if (va.birthtime) n.birthtime = va.birthtime;
    tmpfs_update(n, TM_CTIME, now);
  },

  read(vp, buf, offset, _ioflag, _l) {
    const n = node(vp);
    if (vp.type === VType.VDIR) throw kerr('EISDIR');
    if (vp.type !== VType.VREG) throw kerr('EINVAL');
    const got = tmpfs_read_pages(n, buf, offset);
    tmpfs_update(n, TM_ATIME);
    return got;
  },

  loan(vp, offset, size, _l) {
    const n = node(vp);
    if (vp.type !== VType.VREG) return null;
    const lent = tmpfs_loan_pages(n, offset, size);
    tmpfs_update(n, TM_ATIME);
    return lent;
  },

  write(vp, buf, offset, ioflag, _l) {
    const n = node(vp);
    if (vp.type === VType.VDIR) throw kerr('EISDIR');
    if (vp.type !== VType.VREG) throw kerr('EINVAL');
    if (ioflag & IO_APPEND) offset = n.size;
    if (buf.length === 0) return 0;
    tmpfs_write_pages(tmpfs(vp), n, buf, offset);
    tmpfs_update(n, TM_MTIME | TM_CTIME);
    return buf.length;
  },

  readdir(vp, cookie, _l) {
    const n = node(vp);
    const d = n.dir;
    if (!d) throw kerr('ENOTDIR');
    const entries: Dirent[] = [];
    if (cookie < TMPFS_COOKIE_DOT) entries.push({ name: '.', fileid: n.id, type: VType.VDIR, cookie: TMPFS_COOKIE_DOT });
    if (cookie < TMPFS_COOKIE_DOTDOT) {
      entries.push({ name: '..', fileid: d.parent.id, type: VType.VDIR, cookie: TMPFS_COOKIE_DOTDOT });
    }
    // A removed directory lists only `.` and `..` (it has no entries anyway).
    for (const de of d.entries.values()) {
      if (de.cookie <= cookie) continue;
      if (entries.length >= READDIR_BATCH) {
        tmpfs_update(n, TM_ATIME);
        return { entries, eof: false };
      }
      entries.push({ name: de.name, fileid: de.node.id, type: de.node.type, cookie: de.cookie });
    }
    tmpfs_update(n, TM_ATIME);
    return { entries, eof: true };
  },

  readlink(vp, _l) {
    const n = node(vp);
    if (n.target === null) throw kerr('EINVAL', 'not a symbolic link');
    tmpfs_update(n, TM_ATIME);
    return n.target;
  },

  fsync(_vp, _flags, _l) {},

  inactive(vp, _l) {
    return vp.node<TmpfsNode | null>()?.nlink === 0;
  },

  reclaim(vp, _l) {
    const n = vp.node<TmpfsNode | null>();
    if (n && n.nlink === 0) tmpfs_free_node(tmpfs(vp), n);
    vp.data = null;
  },

  pathconf(_vp, name) {
    switch (name) {
      case 'name_max': return TMPFS_NAME_MAX;
      case 'link_max': return TMPFS_LINK_MAX;
      case 'filesize_bits': return TMPFS_FILESIZE_BITS;
    }
  },
};
