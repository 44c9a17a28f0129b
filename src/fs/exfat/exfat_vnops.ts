// Vnode operations: what the kernel asks of an exFAT file or directory.
import {
  bincore, bread, brelse, bwrite, getblk, IO_APPEND, IO_SYNC, kerr, log, mount_bwrite, nanotime, vcache_get, vcache_rekey, vflushbuf,
  VType, type Dirent, type Vattr, type VattrCreate, type VattrSet, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import {
  ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READONLY, EntrySet, NAME_MAX, name_check, SF_NOFATCHAIN, set_make, set_rename,
  TS_ACCESS, TS_CREATE, TS_MODIFY, ts_get, ts_set,
} from './exfat.js';
import { dir_add, dir_index, dir_lookup, dir_remove, dir_scan } from './exfat_dir.js';
import { ExNode } from './exfat_node.js';
import { string_of } from './exfat_upcase.js';
import type { Exfatmount } from './exfatmount.js';

const VTOX = (vp: Vnode): ExNode => vp.node<ExNode>();
const READDIR_BATCH = 256;
/** Block transfers in flight at once for one request (held buffers are never evicted). */
const IO_WINDOW = 32;
/** Largest file: offsets stay exact JavaScript integers. */
export const EXFAT_FILESIZE_MAX = Number.MAX_SAFE_INTEGER;

function writable(vp: Vnode): void {
  if (vp.mount.readOnly) throw kerr('EROFS');
}

/** The directory changed: its mtime, as Linux keeps it. */
async function dirModified(dn: ExNode): Promise<void> {
  dn.touchModified();
  await dn.update();
}

/** The file's entry is gone: it keeps its clusters until reclaim, under a key no entry can have. */
function orphan(vp: Vnode): void {
  const xn = VTOX(vp), emp = xn.emp;
  emp.parentOf.delete(xn.key);
  xn.offs = [];
  xn.nlink = 0;
  xn.dirty = false;
  vcache_rekey(vp, emp.newOrphanKey());
  xn.key = vp.key;
}

/** A new entry set for name with every time set to now. */
function newSet(emp: Exfatmount, name: string, attr: number): { set: EntrySet; units: Uint16Array } {
  const units = name_check(name);
  const set = set_make(units, emp.upcase.hash(units), attr);
  const t = nanotime();
  for (const slot of [TS_CREATE, TS_MODIFY, TS_ACCESS]) ts_set(set, slot, t, emp.args.timeOffset);
  return { set, units };
}

/**
 * Add name to directory dvp (EEXIST if taken); the new file's vnode. init
 * fills in the set (and may allocate); undo gives that back when the entry
 * could not be made.
 */
async function makeEntry(dvp: Vnode, name: string, attr: number,
  init?: (set: EntrySet) => Promise<void>, undo?: () => void): Promise<Vnode> {
  const dn = VTOX(dvp), emp = dn.emp;
  const { set, units } = newSet(emp, name, attr);
  if (await dir_lookup(dn, name) !== null) throw kerr('EEXIST');
  let offs: number[];
  try {
    await init?.(set);
    offs = await dir_add(dn, set, units);
  } catch (e) {
    undo?.();
    await emp.alloc.flush();
    throw e;
  }
  emp.parentOf.set(offs[0], dvp.key);
  await dirModified(dn);
  await emp.alloc.flush();
  return vcache_get(dvp.mount, offs[0]);
}


/**
 * Read the file's bytes [offset, offset + n) into buf: a block the buffer
 * cache holds (clean, or a delayed write not yet on the device) is copied
 * from there; every run of blocks it does not hold, adjacent on the device,
 * is read straight into buf with one read (the data would only pass
 * through the cache on its way, a copy and a fresh block each). Coherent:
 * what the cache does not hold is on the device (writeData writes through;
 * a write that fails stays cached as a delayed write), and writes to the
 * file wait for the vnode's exclusive lock, which a read holds shared.
 */
async function readData(vp: Vnode, xn: ExNode, buf: Uint8Array, offset: number, n: number): Promise<void> {
  const emp = xn.emp, bsize = emp.bsize;
  const reads: Promise<void>[] = [];
  // The run of uncached bytes being gathered: its device offset, place in buf and length.
  let runDev = 0, runAt = 0, runLen = 0;
  const endRun = () => {
    if (runLen > 0) reads.push(emp.dev.read(buf.subarray(runAt, runAt + runLen), runDev));
    runLen = 0;
  };
  for (let done = 0; done < n;) {
    const pos = offset + done, within = pos % bsize, len = Math.min(bsize - within, n - done);
    const blk = xn.devOff(pos - within);
    if (bincore(emp.dev, blk, bsize)) {
      endRun();
      reads.push(copyBlock(vp, blk, within, buf.subarray(done, done + len)));
    } else if (runLen > 0 && runDev + runLen === blk + within) {
      runLen += len;
    } else {
      endRun();
      runDev = blk + within;
      runAt = done;
      runLen = len;
    }
    done += len;
  }
  endRun();
  for (const r of await Promise.allSettled(reads)) if (r.status === 'rejected') throw r.reason;
}

/** out.length bytes of the cached block at blk, from within. */
async function copyBlock(vp: Vnode, blk: number, within: number, out: Uint8Array): Promise<void> {
  const emp = VTOX(vp).emp;
  const bp = await bread(emp.dev, blk, emp.bsize, vp);
  out.set(bp.data.subarray(within, within + out.length));
  brelse(bp);
}

/**
 * Write buf at the file's offset into its (allocated) clusters, a window of
 * blocks at a time, every run of blocks adjacent on the device with one
 * device write. A whole block the buffer cache does not hold is written
 * from buf as it lies; a block written in part (the rest is read first), or
 * one the cache holds (which must not go stale), goes through its buffer,
 * left cached and clean (a cache full of small dirty buffers is slow to
 * drain). A buffer that was already dirty or being written stays a delayed
 * write, so an older write-back cannot win; so does every block of the
 * window when a device write fails (the failure comes back from their
 * write-back).
 */
async function writeData(vp: Vnode, xn: ExNode, buf: Uint8Array, offset: number, sync: boolean): Promise<void> {
  const emp = xn.emp, bsize = emp.bsize;
  for (let done = 0; done < buf.length;) {
    const pieces: { blk: number; within: number; len: number; done: number }[] = [];
    for (; done < buf.length && pieces.length < IO_WINDOW;) {
      const pos = offset + done, within = pos % bsize, len = Math.min(bsize - within, buf.length - done);
      pieces.push({ blk: xn.devOff(pos - within), within, len, done });
      done += len;
    }
    const got = await Promise.allSettled(pieces.map(p =>
      p.len < bsize ? bread(emp.dev, p.blk, bsize, vp)
        : bincore(emp.dev, p.blk, bsize) ? getblk(emp.dev, p.blk, bsize, vp) : Promise.resolve(null)));
    const bufs = got.map(r => r.status === 'fulfilled' ? r.value : null);
    const failed = got.find(r => r.status === 'rejected');
    if (failed) {
      for (const bp of bufs) if (bp) brelse(bp);
      throw (failed as PromiseRejectedResult).reason;
    }
    pieces.forEach((p, i) => bufs[i]?.data.set(buf.subarray(p.done, p.done + p.len), p.within));
    let ok = true;
    for (let i = 0; i < pieces.length;) {
      // A run: adjacent on the device, and all from buf or all through buffers.
      const direct = bufs[i] === null;
      let j = i + 1;
      while (j < pieces.length && pieces[j].blk === pieces[j - 1].blk + bsize && (bufs[j] === null) === direct) j++;
      let run: Uint8Array;
      if (direct) {
        run = buf.subarray(pieces[i].done, pieces[i].done + (j - i) * bsize);
      } else {
        run = new Uint8Array((j - i) * bsize);
        for (let k = i; k < j; k++) run.set(bufs[k]!.data, (k - i) * bsize);
      }
      try {
        await emp.dev.write(run, pieces[i].blk);
      } catch (e) {
        log(`exfat: ${emp.dev.path}: ${xn.describe()}: write failed: ${String(e)}`);
        ok = false;
      }
      i = j;
    }
    if (!ok) {
      // What went straight from buf is kept as buffers too: the delayed writes below hold it.
      for (let i = 0; i < pieces.length; i++) {
        if (bufs[i]) continue;
        const bp = await getblk(emp.dev, pieces[i].blk, bsize, vp);
        bp.data.set(buf.subarray(pieces[i].done, pieces[i].done + bsize));
        bufs[i] = bp;
      }
    }
    await Promise.all(bufs.map(async (bp) => {
      if (!bp) return;
      if (ok && !bp.dirty && !bp.writing) brelse(bp);
      else if (sync) await bwrite(bp);
      else await mount_bwrite(emp.mp, bp);
    }));
  }
}

/** Zeroes over [from, to) of the file's clusters: bytes past ValidDataLength hold whatever was there. */
async function zeroRange(vp: Vnode, xn: ExNode, from: number, to: number): Promise<void> {
  const zeros = new Uint8Array(Math.min(to - from, 1 << 20));
  for (let pos = from; pos < to; pos += zeros.length) {
    const n = Math.min(zeros.length, to - pos);
    await writeData(vp, xn, zeros.subarray(0, n), pos, false);
  }
}

/**
 * Set the file's size: clusters past it freed, or added and zeroed. The
 * format would let added bytes lie past ValidDataLength unwritten, but
 * readers that ignore it (exfat-fuse) would then show what the clusters
 * held before: they are written, and ValidDataLength follows the size.
 */
async function truncate(vp: Vnode, xn: ExNode, size: number): Promise<void> {
  const cs = xn.emp.cs;
  if (size > EXFAT_FILESIZE_MAX) throw kerr('EFBIG');
  const want = Math.ceil(size / cs);
  if (want < xn.nclus) xn.truncateClusters(want);
  else await xn.extend(want - xn.nclus);
  if (size > xn.vdl) await zeroRange(vp, xn, xn.vdl, size);
  xn.size = size;
  xn.vdl = size;
  xn.touchModified();
}

export const exfat_vnodeops: VnodeOps = {
  async lookup(dvp: Vnode, name: string): Promise<Vnode> {
    const dn = VTOX(dvp);
    if (name === '..') return vcache_get(dvp.mount, dn.parentKey);
    if (name.length > NAME_MAX) throw kerr('ENAMETOOLONG');
    const key = await dir_lookup(dn, name);
    if (key === null) throw kerr('ENOENT');
    dn.emp.parentOf.set(key, dvp.key);
    return vcache_get(dvp.mount, key);
  },

  async create(dvp: Vnode, name: string, va: VattrCreate): Promise<Vnode> {
    if (va.type !== VType.VREG) throw kerr('EPERM', 'exFAT cannot store device, FIFO or socket files');
    writable(dvp);
    return makeEntry(dvp, name, ATTR_ARCHIVE | ((va.mode & 0o222) === 0 ? ATTR_READONLY : 0));
  },

  async mkdir(dvp: Vnode, name: string): Promise<Vnode> {
    writable(dvp);
    const emp = VTOX(dvp).emp;
    let cl = 0;
    return makeEntry(dvp, name, ATTR_DIRECTORY, async (set) => {
      // One zeroed cluster: an empty directory.
      [{ start: cl }] = emp.alloc.alloc(1);
      for (let off = emp.clusterOff(cl); off < emp.clusterOff(cl + 1); off += emp.bsize) {
        const bp = await getblk(emp.dev, off, emp.bsize, emp.meta);
        bp.data.fill(0);
        await mount_bwrite(emp.mp, bp);
      }
      set.firstCluster = cl;
      set.dataLength = set.validDataLength = emp.cs;
      set.flags |= SF_NOFATCHAIN;
    }, () => { if (cl) emp.alloc.free([{ start: cl, len: 1 }], false); });
  },

  async symlink(): Promise<Vnode> {
    throw kerr('EPERM', 'exFAT cannot store symbolic links');
  },

  async link(): Promise<void> {
    throw kerr('EPERM', 'exFAT cannot store hard links');
  },

  async remove(dvp: Vnode, vp: Vnode): Promise<void> {
    writable(dvp);
    const dn = VTOX(dvp), xn = VTOX(vp);
    if (xn.isDir) throw kerr('EISDIR');
    await dir_remove(dn, xn);
    orphan(vp);
    await dirModified(dn);
  },

  async rmdir(dvp: Vnode, vp: Vnode): Promise<void> {
    writable(dvp);
    const dn = VTOX(dvp), xn = VTOX(vp);
    if (!xn.isDir) throw kerr('ENOTDIR');
    if (xn.isRoot) throw kerr('EBUSY');
    if ((await dir_index(xn)).names.size > 0) throw kerr('ENOTEMPTY');
    await dir_remove(dn, xn);
    orphan(vp);
    await dirModified(dn);
  },

  async rename(fdvp: Vnode, fvp: Vnode, _fname: string, tdvp: Vnode, tvp: Vnode | null, tname: string): Promise<void> {
    writable(fdvp);
    const fdn = VTOX(fdvp), xn = VTOX(fvp), tdn = VTOX(tdvp), emp = xn.emp;
    const units = name_check(tname);
    if (tvp) {
      const tn = VTOX(tvp);
      if (tn.isDir && (await dir_index(tn)).names.size > 0) throw kerr('ENOTEMPTY');
      await dir_remove(tdn, tn);
      orphan(tvp);
    }
    // The same File and Stream entries (and benign extras) with the new name.
    await xn.update();
    const set = set_rename(xn.set!, units, emp.upcase.hash(units));
    // The new entry first, then the old one goes: the file is never without a name.
    const offs = await dir_add(tdn, set, units);
    await dir_remove(fdn, xn);
    const oldKey = xn.key;
    emp.parentOf.delete(oldKey);
    emp.parentOf.set(offs[0], tdvp.key);
    xn.set = set;
    xn.offs = offs;
    xn.parentKey = tdvp.key;
    vcache_rekey(fvp, offs[0]);
    xn.key = offs[0];
    if (xn.isDir) {
      // Its files' directory is known by its file id, which changed.
      for (const [k, p] of emp.parentOf) if (p === oldKey) emp.parentOf.set(k, xn.key);
      for (const v of fvp.mount.vnodes.values()) {
        const n = v.data as ExNode | null;
        if (n && n.parentKey === oldKey) n.parentKey = xn.key;
      }
    }
    await dirModified(fdn);
    if (tdn !== fdn) await dirModified(tdn);
    await emp.alloc.flush();
  },

  async open(): Promise<void> {},
  async close(): Promise<void> {},

  async getattr(vp: Vnode): Promise<Vattr> {
    const xn = VTOX(vp), emp = xn.emp, a = emp.args, s = xn.set;
    // Directories count their subdirectories in nlink, as Linux shows them (a damaged one: 2).
    if (xn.isDir && xn.nlink) await dir_index(xn).catch(() => null);
    let mode = xn.isDir ? a.dmode : a.fmode;
    // As Linux: the read-only attribute takes away write permission.
    if (!xn.isDir && (xn.attr & ATTR_READONLY)) mode &= ~0o222;
    const off = a.timeOffset;
    const zero = { sec: 0, nsec: 0 };
    const mtime = s ? ts_get(s, TS_MODIFY, off) : zero;
    return {
      type: vp.type, mode, nlink: xn.isDir && xn.nlink ? 2 + (xn.dir?.subdirs ?? 0) : xn.nlink, uid: a.uid, gid: a.gid, fileid: vp.key,
      size: xn.size, bytes: xn.nclus * emp.cs, blocksize: emp.bsize,
      atime: s ? ts_get(s, TS_ACCESS, off) : zero, mtime, ctime: mtime,
      birthtime: s ? ts_get(s, TS_CREATE, off) : zero, rdev: 0, gen: 0,
    };
  },

  async setattr(vp: Vnode, va: VattrSet): Promise<void> {
    writable(vp);
    const xn = VTOX(vp), emp = xn.emp, a = emp.args, s = xn.set;
    // Owners are a mount option: only "no change" can be stored (as Linux's exfat).
    if ((va.uid !== undefined && va.uid !== a.uid) || (va.gid !== undefined && va.gid !== a.gid)) {
      throw kerr('EPERM', 'exFAT files have no owner');
    }
    if (!s) return; // the root has no entry to keep anything in
    if (va.size !== undefined) {
      if (xn.isDir) throw kerr('EISDIR');
      await truncate(vp, xn, va.size);
      await emp.alloc.flush();
    }
    if (va.mode !== undefined && !xn.isDir) {
      const attr = (va.mode & 0o222) === 0 ? s.attr | ATTR_READONLY : s.attr & ~ATTR_READONLY;
      if (attr !== s.attr) { s.attr = attr; xn.dirty = true; }
    }
    const off = a.timeOffset;
    if (va.mtime) { ts_set(s, TS_MODIFY, va.mtime, off); xn.dirty = true; }
    if (va.atime) { ts_set(s, TS_ACCESS, va.atime, off); xn.dirty = true; }
    if (va.birthtime) { ts_set(s, TS_CREATE, va.birthtime, off); xn.dirty = true; }
    await xn.update();
  },

  async read(vp: Vnode, buf: Uint8Array, offset: number): Promise<number> {
    const xn = VTOX(vp), emp = xn.emp;
    if (xn.isDir) throw kerr('EISDIR');
    if (offset >= xn.size || buf.length === 0) return 0;
    const n = Math.min(buf.length, xn.size - offset);
    // Past ValidDataLength a file reads as zeros, whatever its clusters hold.
    const valid = Math.max(0, Math.min(n, xn.vdl - offset));
    buf.fill(0, valid, n);
    await readData(vp, xn, buf, offset, valid);
    return n;
  },

  async write(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number): Promise<number> {
    writable(vp);
    const xn = VTOX(vp), emp = xn.emp, cs = emp.cs;
    if (xn.isDir) throw kerr('EISDIR');
    if (ioflag & IO_APPEND) offset = xn.size;
    if (buf.length === 0) return 0;
    if (offset + buf.length > EXFAT_FILESIZE_MAX) throw kerr('EFBIG');
    // A write that does not fit is cut to what the free clusters hold (a
    // short write); the next one gets ENOSPC.
    const fits = (xn.nclus + emp.alloc.freeCount) * cs - offset;
    if (fits <= 0) throw kerr('ENOSPC');
    if (buf.length > fits) buf = buf.subarray(0, fits);
    const end = offset + buf.length;
    const need = Math.ceil(end / cs) - xn.nclus;
    if (need > 0) await xn.extend(need);
    if (offset > xn.vdl) await zeroRange(vp, xn, xn.vdl, offset);
    await writeData(vp, xn, buf, offset, (ioflag & IO_SYNC) !== 0);
    xn.size = Math.max(xn.size, end);
    xn.vdl = Math.max(xn.vdl, end);
    xn.touchModified();
    await xn.update();
    await emp.alloc.flush();
    if (ioflag & IO_SYNC) await vflushbuf(emp.meta);
    return buf.length;
  },

  async readdir(vp: Vnode, cookie: number): Promise<{ entries: Dirent[]; eof: boolean }> {
    const xn = VTOX(vp);
    const entries: Dirent[] = [];
    // Cookies: 1 after `.`, 2 after `..`, slot + 2 for the slot after an entry set.
    if (cookie === 0) entries.push({ name: '.', fileid: vp.key, type: VType.VDIR, cookie: 1 });
    if (cookie <= 1) entries.push({ name: '..', fileid: xn.parentKey, type: VType.VDIR, cookie: 2 });
    let full = false;
    await dir_scan(xn, (e) => {
      if (entries.length >= READDIR_BATCH) { full = true; return true; }
      entries.push({
        name: string_of(e.name), fileid: e.key,
        type: e.set.attr & ATTR_DIRECTORY ? VType.VDIR : VType.VREG,
        cookie: e.slot + e.set.count + 2,
      });
      return false;
    }, { from: Math.max(0, cookie - 2) });
    return { entries, eof: !full };
  },

  async readlink(): Promise<string> {
    throw kerr('EINVAL', 'not a symbolic link');
  },

  async fsync(vp: Vnode): Promise<void> {
    const xn = VTOX(vp), emp = xn.emp;
    if (!vp.mount.readOnly) {
      await xn.update();
      await emp.alloc.flush();
    }
    await vflushbuf(vp);
    await vflushbuf(emp.meta);
    await emp.dev.flush();
  },

  async inactive(vp: Vnode): Promise<boolean> {
    const xn = VTOX(vp);
    if (!vp.mount.readOnly) await xn.update();
    return xn.nlink === 0;
  },

  async reclaim(vp: Vnode): Promise<void> {
    const xn = VTOX(vp);
    if (xn.nlink === 0 && !xn.freed && !vp.mount.readOnly) {
      xn.freed = true;
      try {
        xn.truncateClusters(0);
        await xn.emp.alloc.flush();
      } catch (e) {
        log(`exfat: ${xn.emp.dev.path}: clusters of a removed file not freed: ${String(e)}`);
      }
    }
    vp.data = null;
  },

  pathconf(_vp: Vnode, name: 'name_max' | 'link_max' | 'filesize_bits'): number {
    return name === 'name_max' ? NAME_MAX : name === 'link_max' ? 1 : 64;
  },
};
