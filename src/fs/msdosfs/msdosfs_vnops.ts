// Vnode operations (NetBSD msdosfs_vnops.c): what the kernel asks of a FAT
// file or directory.
import {
  bread, bread_cluster, brelse, bwrite, bwrite_cluster, getblk, IO_APPEND, IO_SYNC, kerr, log, mount_bwrite, nanotime, O_ACCMODE,
  O_RDONLY, vcache_get, vcache_rekey, vcheckerror, vflushbuf, VType, type Buf, type Cred, type Dirent, type MaybePromise,
  type Timespec, type Vattr, type VattrCreate, type VattrSet, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import { Denode } from './denode.js';
import {
  ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READONLY, DIRENT_SIZE, direntry_encode, type Direntry,
} from './direntry.js';
import { dos2unixtime, LFN_MAX, unix2dostime, vfat_checkname } from './msdosfs_conv.js';
import {
  dir_contents, dir_create, dir_findoff, dir_lookup, dir_parentkey, dir_remove, dir_scan, dir_set_dotdot,
  isDotName, shortname_displayAt, type DirSlot,
} from './msdosfs_lookup.js';
import { ROOT_KEY, type Msdosfsmount } from './msdosfsmount.js';

/** showexec: the extensions that keep execute permission (as Linux's is_exec). */
const EXEC_EXT = new Set(['EXE', 'COM', 'BAT']);

/** Largest FAT file: the size field is 32 bits. */
export const MSDOSFS_FILESIZE_MAX = 0xffffffff;
const READDIR_BATCH = 256;

const VTODE = (vp: Vnode): Denode => vp.node<Denode>();

function writable(vp: Vnode): void {
  if (vp.mount.readOnly) throw kerr('EROFS');
}

function now(dmp: Msdosfsmount): { date: number; time: number; tenth: number } {
  return unix2dostime(nanotime(), dmp.args.gmtoff);
}

/** A new short entry (name and NT case are chosen by dir_create). */
function newEntry(dmp: Msdosfsmount, attr: number, cluster: number): Direntry {
  const t = now(dmp);
  return {
    name: new Uint8Array(11), attr, ntcase: 0, crtTenth: t.tenth, crtTime: t.time, crtDate: t.date,
    accDate: t.date, mTime: t.time, mDate: t.date, cluster, size: 0,
  };
}

/** The directory changed: its mtime, as Linux keeps it. */
async function dirModified(ddep: Denode): Promise<void> {
  ddep.touchModified();
  await ddep.update();
}

/** The file's entry is gone: a removed file keeps its clusters until reclaim, under a key no entry can have. */
function orphan(vp: Vnode): void {
  const dep = VTODE(vp);
  dep.entryOff = -1;
  dep.nlink = 0;
  dep.dirty = false;
  vcache_rekey(vp, dep.dmp.newOrphanKey());
}

async function entryOf(ddep: Denode, dep: Denode): Promise<DirSlot> {
  const e = await dir_findoff(ddep, dep.entryOff);
  if (!e) {
    log(`msdosfs: ${dep.dmp.dev.path}: ${dep.describe()} vanished from its directory`);
    throw kerr('EIO', 'directory entry vanished');
  }
  return e;
}

/** Clusters one device transfer covers at most (held buffers are never evicted). */
const IO_WINDOW = 32;

interface Piece { ci: number; within: number; len: number; done: number }

/** The cluster pieces of the file's bytes [offset, offset + n), in file order, a window at a time. */
function* windows(cs: number, offset: number, n: number): Generator<Piece[]> {
  for (let done = 0; done < n;) {
    const pieces: Piece[] = [];
    for (; done < n && pieces.length < IO_WINDOW;) {
      const pos = offset + done, within = pos % cs, len = Math.min(cs - within, n - done);
      pieces.push({ ci: Math.floor(pos / cs), within, len, done });
      done += len;
    }
    yield pieces;
  }
}

/** Copy the pieces out of their clusters' buffers and release them. */
function copyOut(bufs: Buf[], pieces: Piece[], buf: Uint8Array): void {
  pieces.forEach(({ within, len, done }, i) => {
    buf.set(bufs[i].data.subarray(within, within + len), done);
    brelse(bufs[i]);
  });
}

/**
 * Read the file's bytes [offset, offset + n) into buf through the buffer
 * cache: cached clusters at once (no Promise when all are), the missing ones
 * with one device read per physically contiguous run.
 */
function readClusters(vp: Vnode, dep: Denode, ch: readonly number[], buf: Uint8Array, offset: number, n: number): MaybePromise<void> {
  const dmp = dep.dmp, cs = dmp.bpb.clusterSize;
  const todo = windows(cs, offset, n);
  for (let w = todo.next(); !w.done; w = todo.next()) {
    const pieces = w.value;
    const got = bread_cluster(dmp.dev, pieces.map(p => ({ offset: dmp.cntobyte(ch[p.ci]), size: cs })), vp);
    if (got instanceof Promise) {
      return (async () => {
        copyOut(await got, pieces, buf);
        for (let v = todo.next(); !v.done; v = todo.next()) {
          const ps = v.value;
          copyOut(await bread_cluster(dmp.dev, ps.map(p => ({ offset: dmp.cntobyte(ch[p.ci]), size: cs })), vp), ps, buf);
        }
      })();
    }
    copyOut(got, pieces, buf);
  }
}

/**
 * Write the request's pieces (disjoint, in file order) into their clusters'
 * buffers, then through to the device, each run of physically adjacent
 * clusters with one write (bwrite_cluster): the buffers stay cached and
 * clean. Clusters from chain index `had` on are new (unread, zero outside
 * the piece). A failure is returned at once (the buffers are invalidated).
 */
async function writePieces(vp: Vnode, dep: Denode, ch: readonly number[], had: number, buf: Uint8Array,
  pieces: Piece[]): Promise<void> {
  const dmp = dep.dmp, cs = dmp.bpb.clusterSize;
  const got = await Promise.allSettled(pieces.map(({ ci, len }) => {
    const boff = dmp.cntobyte(ch[ci]);
    return len === cs || ci >= had ? getblk(dmp.dev, boff, cs, vp) : bread(dmp.dev, boff, cs, vp);
  }));
  const bufs: Buf[] = [];
  for (const r of got) if (r.status === 'fulfilled') bufs.push(r.value);
  const failed = got.find(r => r.status === 'rejected');
  if (failed) {
    bufs.forEach(brelse);
    throw (failed as PromiseRejectedResult).reason;
  }
  pieces.forEach(({ ci, within, len, done }, i) => {
    const d = bufs[i].data;
    if (ci >= had && len < cs) d.fill(0);
    d.set(buf.subarray(done, done + len), within);
  });
  await bwrite_cluster(bufs);
}

/** After a failed write: keep the clusters the file had and those up to `end` (0: none), size to match. */
async function writeFailed(dep: Denode, had: number, end: number): Promise<void> {
  const dmp = dep.dmp, cs = dmp.bpb.clusterSize;
  dep.truncateClusters(Math.max(had, Math.ceil(end / cs)));
  if (end > dep.de.size) dep.de.size = end;
  dep.touchModified();
  try {
    await dep.update();
    await dmp.fat.flush();
  } catch (e) {
    log(`msdosfs: ${dmp.dev.path}: ${dep.describe()}: after a failed write: ${String(e)}`);
  }
}

/** Write zeroes over [from, to) of the file's existing clusters. */
async function zeroRange(vp: Vnode, dep: Denode, from: number, to: number): Promise<void> {
  const dmp = dep.dmp, cs = dmp.bpb.clusterSize;
  const ch = dep.chain();
  to = Math.min(to, ch.length * cs);
  for (let pos = from; pos < to;) {
    const ci = Math.floor(pos / cs), within = pos % cs, len = Math.min(cs - within, to - pos);
    const bp = within === 0 && len === cs
      ? await getblk(dmp.dev, dmp.cntobyte(ch[ci]), cs, vp)
      : await bread(dmp.dev, dmp.cntobyte(ch[ci]), cs, vp);
    bp.data.fill(0, within, within + len);
    await mount_bwrite(dmp.mp, bp);
    pos += len;
  }
}

/** Set the file's size: free clusters past it, or add zeroed ones. */
async function truncate(vp: Vnode, dep: Denode, size: number): Promise<void> {
  if (size > MSDOSFS_FILESIZE_MAX) throw kerr('EFBIG');
  const dmp = dep.dmp, cs = dmp.bpb.clusterSize;
  const cur = dep.de.size;
  const have = dep.chain().length;
  const want = Math.ceil(size / cs);
  if (size < cur) {
    dep.truncateClusters(want);
  } else if (size > cur) {
    await zeroRange(vp, dep, cur, size);
    if (want > have) await dep.extend(want - have, vp);
  }
  dep.de.size = size;
  dep.touchModified();
}

function timeToDos(dmp: Msdosfsmount, t: Timespec): { date: number; time: number; tenth: number } {
  return unix2dostime(t, dmp.args.gmtoff);
}

export const msdosfs_vnodeops: VnodeOps = {
  async lookup(dvp: Vnode, name: string): Promise<Vnode> {
    const ddep = VTODE(dvp);
    if (name === '..') return vcache_get(dvp.mount, await dir_parentkey(ddep));
    const off = await dir_lookup(ddep, name);
    if (off === null) throw kerr('ENOENT');
    return vcache_get(dvp.mount, off);
  },

  async create(dvp: Vnode, name: string, va: VattrCreate): Promise<Vnode> {
    // FAT stores regular files and directories only.
    if (va.type !== VType.VREG) throw kerr('EPERM', 'FAT cannot store device, FIFO or socket files');
    writable(dvp);
    const ddep = VTODE(dvp), dmp = ddep.dmp;
    const off = await dir_create(ddep, vfat_checkname(name), newEntry(dmp, ATTR_ARCHIVE, 0));
    await dirModified(ddep);
    await dmp.fat.flush(dmp.args.dirsync);
    return vcache_get(dvp.mount, off);
  },

  async mkdir(dvp: Vnode, name: string): Promise<Vnode> {
    writable(dvp);
    const ddep = VTODE(dvp), dmp = ddep.dmp, fat = dmp.fat;
    const lname = vfat_checkname(name);
    const [cl] = fat.alloc(1, fat.nextFree);
    let off: number;
    try {
      const bp = await getblk(dmp.dev, dmp.cntobyte(cl), dmp.bpb.clusterSize, dmp.meta);
      bp.data.fill(0);
      const dot = newEntry(dmp, ATTR_DIRECTORY, cl);
      direntry_encode(bp.data, 0, { ...dot, name: new TextEncoder().encode('.          ') });
      direntry_encode(bp.data, DIRENT_SIZE, {
        ...dot, name: new TextEncoder().encode('..         '), cluster: ddep.isRoot ? 0 : ddep.de.cluster,
      });
      await dmp.dirWrite(bp);
      off = await dir_create(ddep, lname, newEntry(dmp, ATTR_DIRECTORY, cl));
    } catch (e) {
      fat.free([cl]);
      await fat.flush();
      throw e;
    }
    ddep.nlink++;
    await dirModified(ddep);
    await fat.flush(dmp.args.dirsync);
    return vcache_get(dvp.mount, off);
  },

  async symlink(): Promise<Vnode> {
    throw kerr('EPERM', 'FAT cannot store symbolic links');
  },

  async link(): Promise<void> {
    throw kerr('EPERM', 'FAT cannot store hard links');
  },

  async remove(dvp: Vnode, vp: Vnode): Promise<void> {
    writable(dvp);
    const ddep = VTODE(dvp), dep = VTODE(vp);
    if (dep.isDir) throw kerr('EISDIR');
    await dir_remove(ddep, await entryOf(ddep, dep));
    orphan(vp);
    await dirModified(ddep);
  },

  async rmdir(dvp: Vnode, vp: Vnode): Promise<void> {
    writable(dvp);
    const ddep = VTODE(dvp), dep = VTODE(vp);
    if (!dep.isDir) throw kerr('ENOTDIR');
    if (dep.isRoot) throw kerr('EBUSY');
    if ((await dir_contents(dep)).entries > 0) throw kerr('ENOTEMPTY');
    await dir_remove(ddep, await entryOf(ddep, dep));
    orphan(vp);
    ddep.nlink--;
    await dirModified(ddep);
  },

  async rename(fdvp: Vnode, fvp: Vnode, _fname: string, tdvp: Vnode, tvp: Vnode | null, tname: string): Promise<void> {
    writable(fdvp);
    const fddep = VTODE(fdvp), fdep = VTODE(fvp), tddep = VTODE(tdvp), dmp = fdep.dmp;
    const lname = vfat_checkname(tname);
    const fe = await entryOf(fddep, fdep);
    if (tvp) {
      const tdep = VTODE(tvp);
      if (tdep.isDir && (await dir_contents(tdep)).entries > 0) throw kerr('ENOTEMPTY');
      await dir_remove(tddep, await entryOf(tddep, tdep));
      orphan(tvp);
      if (tdep.isDir) tddep.nlink--;
    }
    // Its own name in other case (the kernel passes no target): the new
    // spelling may take over the old entry's short name.
    const recase = !tvp && fddep === tddep && await dir_lookup(tddep, lname) === fdep.entryOff;
    // The new entry first, then the old one goes: the file is never without a name.
    const off = await dir_create(tddep, lname, { ...fdep.de }, recase ? fe : undefined);
    await dir_remove(fddep, fe);
    fdep.entryOff = off;
    fdep.dirty = false;
    vcache_rekey(fvp, off);
    if (fdep.isDir && fddep !== tddep) {
      await dir_set_dotdot(fdep, tddep.isRoot ? 0 : tddep.de.cluster);
      fddep.nlink--;
      tddep.nlink++;
    }
    await dirModified(fddep);
    if (tddep !== fddep) await dirModified(tddep);
    await dmp.fat.flush(dmp.args.dirsync);
  },

  async open(): Promise<void> {},

  async close(vp: Vnode, flags: number): Promise<void> {
    const dep = VTODE(vp), dmp = dep.dmp;
    if ((flags & O_ACCMODE) === O_RDONLY) return;
    // A write-back of the file's data that failed since is reported here, as Linux's close does.
    vcheckerror(vp);
    // flush: a file written through this descriptor goes to the medium now, not at the next sync.
    if (!dmp.args.flush || dep.isDir || vp.mount.readOnly) return;
    await dep.update();
    await dmp.fat.flush();
    await vflushbuf(vp);
    await vflushbuf(dmp.meta);
  },

  utimesAllowed(vp: Vnode, cred: Cred): boolean {
    // Linux's fat_allow_set_time: allow_utime's group bit for members of the group, its other bit for the rest.
    const a = VTODE(vp).dmp.args;
    if (cred.uid === a.uid) return false;
    return ((cred.groupmember(a.gid) ? a.allowUtime >> 3 : a.allowUtime) & 0o2) !== 0;
  },

  async getattr(vp: Vnode): Promise<Vattr> {
    const dep = VTODE(vp), dmp = dep.dmp, a = dmp.args, de = dep.de;
    let mode = dep.isDir ? a.dirmask : a.mask;
    // As Linux: the read-only attribute takes away write permission from files (directories too with rodir).
    if ((!dep.isDir || a.rodir) && (de.attr & ATTR_READONLY)) mode &= ~0o222;
    if (a.showexec && !dep.isDir && !EXEC_EXT.has(String.fromCharCode(...de.name.subarray(8, 11)))) mode &= ~0o111;
    const cs = dmp.bpb.clusterSize;
    let bytes: number;
    try { bytes = dep.allocated(); } catch { bytes = Math.ceil(de.size / cs) * cs; }
    const mtime = dos2unixtime(de.mDate, de.mTime, 0, a.gmtoff);
    const atime = de.accDate ? dos2unixtime(de.accDate, 0, 0, a.gmtoff) : mtime;
    const birthtime = de.crtDate ? dos2unixtime(de.crtDate, de.crtTime, de.crtTenth, a.gmtoff) : mtime;
    return {
      type: vp.type, mode, nlink: dep.nlink, uid: a.uid, gid: a.gid, fileid: vp.key,
      size: dep.isDir ? bytes : de.size, bytes, blocksize: cs,
      atime, mtime, ctime: mtime, birthtime, rdev: 0, gen: 0,
    };
  },

  async setattr(vp: Vnode, va: VattrSet): Promise<void> {
    writable(vp);
    const dep = VTODE(vp), dmp = dep.dmp, a = dmp.args;
    // Owners are a mount option: only "no change" can be stored (as Linux vfat).
    // With quiet, such a change succeeds and changes nothing (as Linux).
    if (((va.uid !== undefined && va.uid !== a.uid) || (va.gid !== undefined && va.gid !== a.gid)) && !a.quiet) {
      throw kerr('EPERM', 'FAT files have no owner');
    }
    if (dep.isRoot) return; // no entry to keep anything in
    if (va.size !== undefined) {
      await truncate(vp, dep, va.size);
      await dmp.fat.flush();
    }
    if (va.mode !== undefined && (!dep.isDir || a.rodir)) {
      const ro = (va.mode & 0o222) === 0;
      const attr = ro ? dep.de.attr | ATTR_READONLY : dep.de.attr & ~ATTR_READONLY;
      if (attr !== dep.de.attr) {
        dep.de.attr = attr;
        dep.dirty = true;
      }
    }
    if (va.mtime) {
      const t = timeToDos(dmp, va.mtime);
      dep.de.mDate = t.date;
      dep.de.mTime = t.time;
      dep.dirty = true;
    }
    if (va.atime) {
      dep.de.accDate = timeToDos(dmp, va.atime).date;
      dep.dirty = true;
    }
    if (va.birthtime) {
      const t = timeToDos(dmp, va.birthtime);
      dep.de.crtDate = t.date;
      dep.de.crtTime = t.time;
      dep.de.crtTenth = t.tenth;
      dep.dirty = true;
    }
    await dep.update();
  },

  read(vp: Vnode, buf: Uint8Array, offset: number): MaybePromise<number> {
    const dep = VTODE(vp), dmp = dep.dmp, cs = dmp.bpb.clusterSize;
    if (dep.isDir) throw kerr('EISDIR');
    const size = dep.de.size;
    if (offset >= size || buf.length === 0) return 0;
    const n = Math.min(buf.length, size - offset);
    const ch = dep.chain();
    // A size beyond the clusters: what they hold, else EIO.
    if (offset >= ch.length * cs) {
      log(`msdosfs: ${dmp.dev.path}: ${dep.describe()}: size ${size} is beyond its ${ch.length} cluster(s)`);
      throw kerr('EIO', 'file size beyond its clusters');
    }
    const got = Math.min(n, ch.length * cs - offset);
    const r = readClusters(vp, dep, ch, buf, offset, got);
    return r instanceof Promise ? r.then(() => got) : got;
  },

  async write(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number): Promise<number> {
    writable(vp);
    const dep = VTODE(vp), dmp = dep.dmp, cs = dmp.bpb.clusterSize;
    if (dep.isDir) throw kerr('EISDIR');
    if (ioflag & IO_APPEND) offset = dep.de.size;
    if (buf.length === 0) return 0;
    if (offset + buf.length > MSDOSFS_FILESIZE_MAX) throw kerr('EFBIG');
    const ch = dep.chain();
    // A write that does not fit is cut to what the free clusters hold (a
    // short write); the next one gets ENOSPC.
    const fits = (ch.length + dmp.fat.freeCount) * cs - offset;
    if (fits <= 0) throw kerr('ENOSPC');
    if (buf.length > fits) buf = buf.subarray(0, fits);
    const end = offset + buf.length;
    if (offset > dep.de.size) await zeroRange(vp, dep, dep.de.size, offset);
    const had = ch.length;
    const need = Math.ceil(end / cs) - had;
    if (need > 0) await dep.extend(need, vp, Math.floor(offset / cs));
    let written = 0;
    try {
      for (const pieces of windows(cs, offset, buf.length)) {
        await writePieces(vp, dep, ch, had, buf, pieces);
        const last = pieces[pieces.length - 1];
        written = last.done + last.len;
      }
    } catch (e) {
      // The device refused (its host file system full, or failing): the error
      // goes back now, nothing retries. What was written stays (a short
      // write); clusters this write added beyond it go back to the free pool,
      // so the entry never claims more than its chain holds.
      await writeFailed(dep, had, written ? offset + written : 0);
      if (written === 0) throw e;
      log(`msdosfs: ${dmp.dev.path}: ${dep.describe()}: short write: ${String(e)}`);
      return written;
    }
    if (end > dep.de.size) dep.de.size = end;
    dep.touchModified();
    await dep.update();
    await dmp.fat.flush();
    if (ioflag & IO_SYNC) await vflushbuf(dmp.meta);
    return buf.length;
  },

  async readdir(vp: Vnode, cookie: number): Promise<{ entries: Dirent[]; eof: boolean }> {
    const dep = VTODE(vp), dmp = dep.dmp;
    const entries: Dirent[] = [];
    // Cookies: 1 after `.`, 2 after `..`, slot + 4 after the entry in that slot.
    if (cookie === 0) entries.push({ name: '.', fileid: vp.key, type: VType.VDIR, cookie: 1 });
    if (cookie <= 1) {
      const up = await dir_parentkey(dep).catch(() => ROOT_KEY);
      entries.push({ name: '..', fileid: up, type: VType.VDIR, cookie: 2 });
    }
    let full = false;
    const mode = dmp.args.shortname, cp = dmp.args.codepage;
    // Names from the entries' bytes: no decoded entry per name.
    await dir_scan(dep, null, {
      from: Math.max(0, cookie - 3),
      onName: (d, o, slot, off, longName) => {
        if (isDotName(d, o)) return false;
        if (entries.length >= READDIR_BATCH) { full = true; return true; }
        entries.push({
          name: longName ?? shortname_displayAt(d, o, d[o + 12], mode, cp),
          fileid: off,
          type: d[o + 11] & ATTR_DIRECTORY ? VType.VDIR : VType.VREG,
          cookie: slot + 4,
        });
        return false;
      },
    });
    return { entries, eof: !full };
  },

  async readlink(): Promise<string> {
    throw kerr('EINVAL', 'not a symbolic link');
  },

  async fsync(vp: Vnode): Promise<void> {
    const dep = VTODE(vp), dmp = dep.dmp;
    await dep.update();
    await dmp.fat.flush();
    await vflushbuf(vp);
    await vflushbuf(dmp.meta);
    await dmp.dev.flush();
  },

  async inactive(vp: Vnode): Promise<boolean> {
    const dep = VTODE(vp);
    if (!vp.mount.readOnly) await dep.update();
    return dep.nlink === 0;
  },

  async reclaim(vp: Vnode): Promise<void> {
    const dep = VTODE(vp);
    if (dep.nlink === 0 && !dep.freed && !vp.mount.readOnly) {
      dep.freed = true;
      try {
        dep.dmp.fat.free(dep.chain());
        await dep.dmp.fat.flush();
      } catch (e) {
        log(`msdosfs: ${dep.dmp.dev.path}: clusters of a removed file not freed: ${String(e)}`);
      }
    }
    vp.data = null;
  },

  pathconf(_vp: Vnode, name: 'name_max' | 'link_max' | 'filesize_bits'): number {
    return name === 'name_max' ? LFN_MAX : name === 'link_max' ? 1 : 33;
  },
};

