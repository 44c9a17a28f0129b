// Vnode operations (NetBSD ext2fs_vnops.c, ext2fs_readwrite.c,
// ext2fs_inode.c): what the kernel asks of an ext2/3/4 file or directory.
import {
  blkdev_readall, brelse, bwrite_cluster, getblk, IO_APPEND, IO_SYNC, kerr, log, makedev, mount_bwrite, nanotime, O_ACCMODE, O_RDONLY,
  O_TRUNC, vcache_get, vflushbuf, vtypeToIfmt, VType, major, minor,
  type BlockPiece, type Dirent, type Lwp, type Vattr, type VattrCreate, type VattrSet, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import { LINK_MAX, MAXNAMLEN, RO_COMPAT } from './ext2fs.js';
import { ext2fs_blkfree, ext2fs_ialloc, ext2fs_ifree } from './ext2fs_alloc.js';
import { ext2fs_ballocrun, ext2fs_bmap, ext2fs_bmapruns, ext2fs_bunalloc, ext2fs_indirtrunc, indirMaxBlocks } from './ext2fs_bmap.js';
import { Dinode } from './ext2fs_dinode.js';
import { E2node } from './ext2fs_inode.js';
import {
  dir_enter, dir_init, dir_isempty, dir_lookup, dir_remove, dir_rewrite, dir_scan, ftToVtype, nameBytes, nameString,
} from './ext2fs_lookup.js';
import type { E2fsMount } from './ext2fsmount.js';

const VTOI = (vp: Vnode): E2node => vp.node<E2node>();
const READDIR_BATCH = 256;
/** Data blocks read at once by one request. */
const IO_WINDOW = 32;
/** Targets shorter than this live in i_block (a fast symlink). */
const MAXSYMLINKLEN = 60;
const EXT2_EA_MAGIC = 0xea020000;

function checkName(name: string): Uint8Array {
  const b = nameBytes(name);
  if (b.length > MAXNAMLEN) throw kerr('ENAMETOOLONG');
  return b;
}

function writable(vp: Vnode): void {
  if (vp.mount.readOnly) throw kerr('EROFS');
  VTOI(vp).writable();
}

/** The largest size this file can reach. */
function maxSize(ump: E2fsMount): number {
  const byBlocks = indirMaxBlocks(ump.bsize) * ump.bsize;
  return ump.sb.roCompat & RO_COMPAT.large_file ? byBlocks : Math.min(byBlocks, 2 ** 31 - 1);
}

/** Device numbers in i_block: the old 16-bit encoding where it fits, else the new one (Linux's). */
function setRdev(di: Dinode, rdev: number): void {
  const ma = major(rdev), mi = minor(rdev);
  if (ma < 256 && mi < 256) {
    di.setBlockAt(0, (ma << 8) | mi);
    di.setBlockAt(1, 0);
  } else {
    di.setBlockAt(0, 0);
    di.setBlockAt(1, makedev(ma, mi));
    di.setBlockAt(2, 0);
  }
}

function getRdev(di: Dinode): number {
  const old = di.blockAt(0);
  if (old) return makedev((old >>> 8) & 0xff, old & 0xff);
  return di.blockAt(1);
}

/** A new inode: owner from the caller (group from a setgid parent), times now. */
async function newInode(dp: E2node, va: VattrCreate, l: Lwp): Promise<E2node> {
  const ump = dp.ump, sb = ump.sb, isDir = va.type === VType.VDIR;
  const sgid = (dp.di.mode & 0o2000) !== 0;
  let mode = va.mode & 0o7777;
  const gid = sgid ? dp.di.gid : l.cred.gid;
  if (isDir && sgid) mode |= 0o2000;
  else if ((mode & 0o2000) && !l.cred.isRoot() && !l.cred.groupmember(gid)) mode &= ~0o2000;
  const ino = await ext2fs_ialloc(ump, dp.ino, isDir);
  const di = new Dinode(new Uint8Array(sb.inodeSize));
  if (sb.inodeSize > 128) di.extraIsize = Math.min(sb.wantExtraIsize || 32, sb.inodeSize - 128) & ~3;
  di.mode = vtypeToIfmt(va.type) | mode;
  di.uid = l.cred.uid;
  di.gid = gid;
  di.nlink = isDir ? 2 : 1;
  di.gen = (Math.random() * 2 ** 32) >>> 0;
  const t = nanotime();
  for (const f of ['atime', 'ctime', 'mtime', 'crtime'] as const) di.setTime(f, t);
  if (va.type === VType.VCHR || va.type === VType.VBLK) setRdev(di, va.rdev ?? 0);
  const ip = new E2node(ump, ino, di);
  ip.dirty = true;
  return ip;
}

/** Give back a new inode whose directory entry could not be made. */
async function abandon(ip: E2node): Promise<void> {
  try {
    await freeFile(ip);
  } catch (e) {
    log(`ext2fs: ${ip.ump.path}: inode ${ip.ino} not freed: ${String(e)}`);
  }
}

/** Links 0: free the file's blocks, its extended attribute block reference, and the inode. */
async function freeFile(ip: E2node): Promise<void> {
  const ump = ip.ump, di = ip.di;
  if (ip.type === VType.VREG || ip.type === VType.VDIR || (ip.type === VType.VLNK && !ip.fastSymlink)) {
    await ext2fs_indirtrunc(ip, 0);
  }
  const acl = di.fileAcl;
  if (acl) {
    di.fileAcl = 0;
    if (ump.validBlock(acl)) {
      const bp = await ump.bread(acl);
      const dv = new DataView(bp.data.buffer, bp.data.byteOffset);
      const refs = dv.getUint32(4, true);
      if (dv.getUint32(0, true) === EXT2_EA_MAGIC && refs > 1) {
        dv.setUint32(4, refs - 1, true);
        await mount_bwrite(ump.mp, bp);
      } else {
        brelse(bp);
        await ext2fs_blkfree(ump, acl);
        ump.dirtyFreed.add(acl);
      }
      ip.addBlocks(-1);
    }
  }
  di.nlink = 0;
  di.size = 0;
  di.dtime = nanotime().sec;
  ip.dirty = true;
  await ump.writeInode(ip.ino, di);
  ip.dirty = false;
  ip.freed = true;
  await ext2fs_ifree(ump, ip.ino, ip.isDir);
}

/** Blocks mapped at once by one request (1 MiB of 4 KiB blocks). */
const READ_WINDOW = 256;

/**
 * Read the file's bytes [offset, offset + buf.length) below its size, holes
 * as zeroes: a window of blocks is mapped at once into physically
 * contiguous runs, and each run is read from the device straight into buf
 * with one read, around the buffer cache. That is coherent because file
 * data is on the device once the operation that wrote it returns: it is
 * written to the device at once (writePieces, truncate's partial block),
 * never left as a delayed write, and a block new to a file is written
 * before the write that allocated it returns, under the vnode's exclusive
 * lock, so no read of the file sees it mapped before. (A read-only mount
 * has no dirty buffer at all.) The host's page cache reads ahead of a
 * sequential reader.
 */
async function readData(ip: E2node, buf: Uint8Array, offset: number): Promise<number> {
  const size = ip.size, bs = ip.bsize, ump = ip.ump;
  if (offset >= size || buf.length === 0) return 0;
  const n = Math.min(buf.length, size - offset), stop = offset + n;
  const first = Math.floor(offset / bs), end = Math.ceil(stop / bs);
  for (let w = first; w < end; w += READ_WINDOW) {
    const runs = await ext2fs_bmapruns(ip, w, Math.min(end, w + READ_WINDOW) - w);
    const reads: BlockPiece[] = [];
    for (const r of runs) {
      // The run's bytes within the request, as offsets in the file.
      const from = Math.max(offset, r.lbn * bs), to = Math.min(stop, (r.lbn + r.len) * bs);
      if (r.pbn === 0) buf.fill(0, from - offset, to - offset);
      else reads.push({ buf: buf.subarray(from - offset, to - offset), offset: r.pbn * bs + (from - r.lbn * bs) });
    }
    if (reads.length) await blkdev_readall(ump.dev, reads);
  }
  return n;
}

interface Piece { pbn: number; fresh: boolean; within: number; len: number; at: number }

/**
 * Write the pieces (block, offset in it, length, offset in buf) to the
 * device around the buffer cache, each run of physically adjacent blocks
 * with one write: whole blocks straight from buf, a run with a partial
 * block through a copy (the rest of an existing block read from the
 * device, of a new one zeroes). Around the cache is coherent because no
 * data is read through it (readData reads around it too, and so do the
 * partial blocks here and in truncate): a cached buffer of a data block is
 * never used again, except for blocks freed as metadata (directory,
 * indirect, attribute blocks), whose buffer may still be a delayed write
 * that would land over the data: those (ump.dirtyFreed) are written
 * through the cache (writeCached), which overwrites that buffer.
 */
async function writePieces(ip: E2node, buf: Uint8Array, pieces: Piece[], owner: object): Promise<void> {
  const ump = ip.ump, bs = ip.bsize;
  if (ump.dirtyFreed.size && pieces.some(p => ump.dirtyFreed.has(p.pbn))) return writeCached(ip, buf, pieces, owner);
  for (let i = 0; i < pieces.length;) {
    let j = i + 1;
    while (j < pieces.length && pieces[j].pbn === pieces[j - 1].pbn + 1) j++;
    let whole = true;
    for (let k = i; k < j; k++) if (pieces[k].len !== bs) whole = false;
    let data: Uint8Array;
    if (whole) {
      data = buf.subarray(pieces[i].at, pieces[i].at + (j - i) * bs);
    } else {
      data = new Uint8Array((j - i) * bs);
      for (let k = i; k < j; k++) {
        const p = pieces[k], slot = data.subarray((k - i) * bs, (k - i + 1) * bs);
        if (p.len < bs && !p.fresh) await ump.dev.read(slot, p.pbn * bs);
        slot.set(buf.subarray(p.at, p.at + p.len), p.within);
      }
    }
    await ump.dev.write(data, pieces[i].pbn * bs);
    i = j;
  }
}

/**
 * writePieces through the buffer cache: the pieces go into their blocks'
 * buffers (whole and new blocks not read first), then each run of adjacent
 * blocks to the device with one write (bwrite_cluster, which waits for any
 * older write-back of them; the buffers stay cached and clean, or are
 * dropped if the write fails). Either way no delayed write of theirs is
 * left, so they leave ump.dirtyFreed.
 */
async function writeCached(ip: E2node, buf: Uint8Array, pieces: Piece[], owner: object): Promise<void> {
  const ump = ip.ump, bs = ip.bsize;
  const got = await Promise.allSettled(pieces.map(p =>
    p.len === bs || p.fresh ? getblk(ump.dev, p.pbn * bs, bs, owner) : ump.bread(p.pbn, owner)));
  const bufs = got.flatMap(r => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = got.find(r => r.status === 'rejected');
  if (failed) {
    bufs.forEach(brelse);
    throw (failed as PromiseRejectedResult).reason;
  }
  pieces.forEach((p, i) => {
    if (p.fresh && p.len < bs) bufs[i].data.fill(0);
    bufs[i].data.set(buf.subarray(p.at, p.at + p.len), p.within);
  });
  try {
    await bwrite_cluster(bufs);
  } finally {
    for (const p of pieces) ump.dirtyFreed.delete(p.pbn);
  }
}

/**
 * Write buf at offset, a window of blocks at a time: the window's holes are
 * allocated as contiguous runs following the file's previous block, then
 * written with one device write per run. A volume that fills up mid-way
 * gives a short write (ENOSPC if nothing was written); so does a device
 * write that fails after some windows were written (else its error), the
 * blocks the failed window added freed again (its holes stay holes).
 */
async function writeData(ip: E2node, buf: Uint8Array, offset: number, owner: object): Promise<number> {
  const ump = ip.ump, bs = ip.bsize;
  if (offset + buf.length > maxSize(ump)) throw kerr('EFBIG');
  const last = Math.floor((offset + buf.length - 1) / bs);
  let done = 0, goal = 0;
  while (done < buf.length) {
    const pos = offset + done, lbn = Math.floor(pos / bs);
    if (!goal && lbn > 0) {
      const prev = await ext2fs_bmap(ip, lbn - 1);
      if (prev) goal = prev + 1;
    }
    let blocks;
    try {
      blocks = await ext2fs_ballocrun(ip, lbn, Math.min(IO_WINDOW, last - lbn + 1), goal);
    } catch (e) {
      if (done > 0 && (e as { code?: string }).code === 'ENOSPC') break;
      throw e;
    }
    const pieces: Piece[] = [];
    let at = done;
    blocks.forEach((b, k) => {
      const within = k === 0 ? pos % bs : 0, len = Math.min(bs - within, buf.length - at);
      pieces.push({ pbn: b.pbn, fresh: b.fresh, within, len, at });
      at += len;
    });
    goal = blocks[blocks.length - 1].pbn + 1;
    try {
      await writePieces(ip, buf, pieces, owner);
    } catch (e) {
      // The blocks this window put into the file's holes hold what the disk held there: holes again.
      const inside = Math.ceil(ip.size / bs);
      for (let k = 0; k < blocks.length && lbn + k < inside; k++) {
        if (!blocks[k].fresh) continue;
        try {
          await ext2fs_bunalloc(ip, lbn + k, blocks[k].pbn);
        } catch (e2) {
          log(`ext2fs: ${ump.path}: inode ${ip.ino}: block ${lbn + k} of a failed write not given back: ${String(e2)}`);
        }
      }
      // Blocks past the end of the file hold nothing: give them back.
      if (lbn + blocks.length > inside) {
        try {
          await ext2fs_indirtrunc(ip, Math.ceil(ip.size / bs));
        } catch (e2) {
          log(`ext2fs: ${ump.path}: inode ${ip.ino}: blocks past its end not freed: ${String(e2)}`);
        }
      }
      if (done > 0) break;
      throw e;
    }
    done = at;
    if (offset + done > ip.size) ip.di.size = offset + done;
    ip.dirty = true;
  }
  return done;
}

/** Set the size: blocks past it freed, the kept last block's tail zeroed; growing leaves a hole. */
async function truncate(ip: E2node, size: number, owner: object): Promise<void> {
  const ump = ip.ump, bs = ip.bsize;
  if (size > maxSize(ump)) throw kerr('EFBIG');
  if (size < ip.size) {
    await ext2fs_indirtrunc(ip, Math.ceil(size / bs));
    if (size % bs) {
      const pbn = await ext2fs_bmap(ip, Math.floor(size / bs));
      if (pbn) {
        // Around the cache, as all file data (writePieces).
        const blk = new Uint8Array(bs);
        await ump.dev.read(blk, pbn * bs);
        blk.fill(0, size % bs);
        await writePieces(ip, blk, [{ pbn, fresh: false, within: 0, len: bs, at: 0 }], owner);
      }
    }
  }
  ip.di.size = size;
  ip.touch('mtime', 'ctime');
}

/** Directory link counts, as dir_nlink keeps them: past the limit, 1 stands for "many". */
function dirLinkAdd(dp: E2node): void {
  const n = dp.di.nlink;
  if (n === 1) return;
  if (n + 1 >= LINK_MAX) {
    if (!(dp.ump.sb.roCompat & RO_COMPAT.dir_nlink)) throw kerr('EMLINK');
    dp.di.nlink = 1;
  } else dp.di.nlink = n + 1;
  dp.dirty = true;
}
function dirLinkDrop(dp: E2node): void {
  if (dp.di.nlink > 2) dp.di.nlink--;
  dp.dirty = true;
}

async function ext2fs_lookup(dvp: Vnode, name: string): Promise<Vnode> {
  const dp = VTOI(dvp);
  if (!dp.isDir) throw kerr('ENOTDIR');
  const ino = await dir_lookup(dp, checkName(name));
  if (ino === null) throw kerr('ENOENT');
  return vcache_get(dvp.mount, ino);
}

/** Make a file of any type in dvp: the inode, its first contents (init), then the entry. */
async function makeEntry(dvp: Vnode, name: string, va: VattrCreate, l: Lwp, init?: (ip: E2node) => Promise<void>): Promise<Vnode> {
  writable(dvp);
  const dp = VTOI(dvp), nb = checkName(name);
  if (va.type === VType.VDIR) dirLinkAdd(dp);
  const ip = await newInode(dp, va, l);
  try {
    if (init) await init(ip);
    await ip.ump.writeInode(ip.ino, ip.di);
    ip.dirty = false;
    await dir_enter(dp, nb, ip.ino, va.type);
  } catch (e) {
    if (va.type === VType.VDIR) dirLinkDrop(dp);
    await abandon(ip);
    throw e;
  }
  await dp.update();
  await ip.ump.flushMeta();
  return vcache_get(dvp.mount, ip.ino);
}

async function ext2fs_getattr(vp: Vnode): Promise<Vattr> {
  const ip = VTOI(vp), di = ip.di;
  return {
    type: ip.type, mode: di.mode & 0o7777, nlink: di.nlink, uid: di.uid, gid: di.gid, fileid: ip.ino,
    size: di.size, bytes: ip.blocks512 * 512, blocksize: ip.bsize,
    atime: di.getTime('atime'), mtime: di.getTime('mtime'), ctime: di.getTime('ctime'), birthtime: di.getTime('crtime'),
    rdev: ip.type === VType.VCHR || ip.type === VType.VBLK ? getRdev(di) : 0, gen: di.gen,
  };
}

async function ext2fs_setattr(vp: Vnode, va: VattrSet): Promise<void> {
  writable(vp);
  const ip = VTOI(vp), di = ip.di;
  if (va.size !== undefined) {
    if (ip.type !== VType.VREG) throw kerr(ip.isDir ? 'EISDIR' : 'EINVAL');
    await truncate(ip, va.size, vp);
  }
  if (va.mode !== undefined) di.mode = (di.mode & 0o170000) | (va.mode & 0o7777);
  if (va.uid !== undefined) di.uid = va.uid;
  if (va.gid !== undefined) di.gid = va.gid;
  if (va.atime) di.setTime('atime', va.atime);
  if (va.mtime) di.setTime('mtime', va.mtime);
  if (va.birthtime) di.setTime('crtime', va.birthtime);
  ip.touch('ctime');
  await ip.update();
  await ip.ump.flushMeta();
}

async function ext2fs_read(vp: Vnode, buf: Uint8Array, offset: number): Promise<number> {
  const ip = VTOI(vp);
  if (ip.isDir) throw kerr('EISDIR');
  if (ip.type !== VType.VREG) throw kerr('EINVAL');
  return readData(ip, buf, offset);
}

async function ext2fs_write(vp: Vnode, buf: Uint8Array, offset: number, ioflag: number, _l: Lwp): Promise<number> {
  writable(vp);
  const ip = VTOI(vp);
  if (ip.isDir) throw kerr('EISDIR');
  if (ip.type !== VType.VREG) throw kerr('EINVAL');
  if (ioflag & IO_APPEND) offset = ip.size;
  if (buf.length === 0) return 0;
  const n = await writeData(ip, buf, offset, vp);
  ip.touch('mtime', 'ctime');
  await ip.update();
  await ip.ump.flushMeta();
  if (ioflag & IO_SYNC) {
    await vflushbuf(ip.ump.meta);
    await ip.ump.dev.flush();
  }
  return n;
}

async function ext2fs_readdir(vp: Vnode, cookie: number): Promise<{ entries: Dirent[]; eof: boolean }> {
  const ip = VTOI(vp), ump = ip.ump;
  if (!ip.isDir) throw kerr('ENOTDIR');
  const got: { name: Uint8Array; ino: number; ftype: number; cookie: number }[] = [];
  const full = await dir_scan(ip, cookie, (e) => {
    if (got.length >= READDIR_BATCH) return true;
    got.push({ name: e.name.slice(), ino: e.ino, ftype: e.ftype, cookie: e.off + e.reclen });
    return false;
  });
  const entries: Dirent[] = [];
  for (const g of got) {
    let type = ftToVtype(g.ftype);
    // Without the filetype feature the type is in the inode.
    if (!ump.sb.hasFiletype) type = new E2node(ump, g.ino, await ump.readInode(g.ino)).type;
    entries.push({ name: nameString(g.name), fileid: g.ino, type, cookie: g.cookie });
  }
  return { entries, eof: !full };
}

async function ext2fs_readlink(vp: Vnode): Promise<string> {
  const ip = VTOI(vp);
  if (ip.type !== VType.VLNK) throw kerr('EINVAL');
  const size = ip.size;
  if (ip.fastSymlink) {
    if (size >= MAXSYMLINKLEN) throw ip.ump.corrupt(`inode ${ip.ino}: fast symlink of ${size} bytes`);
    return nameString(ip.di.iblock.subarray(0, size));
  }
  const buf = new Uint8Array(size);
  const n = await readData(ip, buf, 0);
  return nameString(buf.subarray(0, n));
}

export const ext2fs_vnodeops: VnodeOps = {
  lookup: ext2fs_lookup,

  create(dvp, name, va, l) {
    if (va.type === VType.VDIR || va.type === VType.VLNK || va.type === VType.VNON) return Promise.reject(kerr('EINVAL'));
    return makeEntry(dvp, name, va, l);
  },

  mkdir(dvp, name, va, l) {
    return makeEntry(dvp, name, { ...va, type: VType.VDIR }, l, (ip) => dir_init(ip, VTOI(dvp).ino));
  },

  symlink(dvp, name, va, target, l) {
    const tb = nameBytes(target);
    if (tb.length === 0) return Promise.reject(kerr('ENOENT'));
    if (tb.length >= 4096) return Promise.reject(kerr('ENAMETOOLONG'));
    return makeEntry(dvp, name, { ...va, type: VType.VLNK, mode: 0o777 }, l, async (ip) => {
      if (tb.length < MAXSYMLINKLEN) {
        ip.di.iblock.set(tb);
        ip.di.size = tb.length;
      } else if (await writeData(ip, tb, 0, ip.ump.meta) !== tb.length) {
        throw kerr('ENOSPC');
      }
    });
  },

  async link(dvp, vp, name) {
    writable(dvp);
    const dp = VTOI(dvp), ip = VTOI(vp);
    if (ip.isDir) throw kerr('EPERM');
    if (ip.di.nlink >= LINK_MAX) throw kerr('EMLINK');
    const nb = checkName(name);
    ip.di.nlink++;
    ip.touch('ctime');
    await ip.update();
    try {
      await dir_enter(dp, nb, ip.ino, ip.type);
    } catch (e) {
      ip.di.nlink--;
      await ip.update();
      throw e;
    }
    await dp.update();
    await ip.ump.flushMeta();
  },

  async remove(dvp, vp, name) {
    writable(dvp);
    const dp = VTOI(dvp), ip = VTOI(vp);
    if (ip.isDir) throw kerr('EISDIR');
    await dir_remove(dp, checkName(name));
    ip.di.nlink = Math.max(0, ip.di.nlink - 1);
    ip.touch('ctime');
    await ip.update();
    await dp.update();
    await ip.ump.flushMeta();
  },

  async rmdir(dvp, vp, name) {
    writable(dvp);
    const dp = VTOI(dvp), ip = VTOI(vp);
    if (!ip.isDir) throw kerr('ENOTDIR');
    if (ip.ino === 2) throw kerr('EBUSY');
    if (!await dir_isempty(ip)) throw kerr('ENOTEMPTY');
    await dir_remove(dp, checkName(name));
    dirLinkDrop(dp);
    ip.di.nlink = 0;
    ip.touch('ctime');
    await ip.update();
    await dp.update();
    await ip.ump.flushMeta();
  },

  async rename(fdvp, fvp, fname, tdvp, tvp, tname) {
    writable(fdvp);
    const fdp = VTOI(fdvp), ip = VTOI(fvp), tdp = VTOI(tdvp);
    const tnb = checkName(tname), fnb = checkName(fname);
    const moveDir = ip.isDir && fdp !== tdp;
    if (tvp) {
      const tip = VTOI(tvp);
      if (tip.isDir && !await dir_isempty(tip)) throw kerr('ENOTEMPTY');
      // The entry changes in place: tname names one file or the other, never none.
      await dir_rewrite(tdp, tnb, ip.ino, ip.type);
      if (tip.isDir) {
        tip.di.nlink = 0;
        dirLinkDrop(tdp);
      } else {
        tip.di.nlink = Math.max(0, tip.di.nlink - 1);
      }
      tip.touch('ctime');
      await tip.update();
    } else {
      if (moveDir) dirLinkAdd(tdp);
      await dir_enter(tdp, tnb, ip.ino, ip.type);
    }
    if (moveDir && tvp) dirLinkAdd(tdp);
    await dir_remove(fdp, fnb);
    if (moveDir) {
      await dir_rewrite(ip, nameBytes('..'), tdp.ino, VType.VDIR);
      dirLinkDrop(fdp);
    }
    ip.touch('ctime');
    await ip.update();
    await fdp.update();
    if (tdp !== fdp) await tdp.update();
    await ip.ump.flushMeta();
  },

  async open(vp, flags) {
    if (vp.mount.readOnly && (vp.type === VType.VREG || vp.type === VType.VDIR || vp.type === VType.VLNK) &&
        ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC))) throw kerr('EROFS');
  },
  async close() {},
  getattr: ext2fs_getattr,
  setattr: ext2fs_setattr,
  read: ext2fs_read,
  write: ext2fs_write,
  readdir: ext2fs_readdir,
  readlink: ext2fs_readlink,

  async fsync(vp) {
    const ip = VTOI(vp), ump = ip.ump;
    if (vp.mount.readOnly) return;
    await ip.update();
    await ump.flushMeta();
    await vflushbuf(vp);
    await vflushbuf(ump.meta);
    await ump.dev.flush();
  },

  async inactive(vp) {
    const ip = VTOI(vp);
    if (vp.mount.readOnly || ip.freed) return false;
    if (ip.di.nlink === 0) {
      await freeFile(ip);
      await ip.ump.flushMeta();
      return true;
    }
    await ip.update();
    return false;
  },

  async reclaim(vp) {
    const ip = VTOI(vp);
    if (!vp.mount.readOnly && !ip.freed) {
      try {
        await ip.update();
      } catch (e) {
        log(`ext2fs: ${ip.ump.path}: inode ${ip.ino} not written back: ${String(e)}`);
      }
    }
    vp.data = null;
  },

  pathconf(vp, name) {
    return name === 'name_max' ? MAXNAMLEN : name === 'link_max' ? LINK_MAX : VTOI(vp).extents ? 44 : 42;
  },
};

/** The vnode's type and operations for a loaded inode. */
export function ext2fs_vinit(vp: Vnode, ip: E2node): void {
  vp.type = ip.type;
  vp.ops = ext2fs_vnodeops;
  vp.data = ip;
}
