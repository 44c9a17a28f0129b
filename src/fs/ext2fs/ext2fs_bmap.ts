// Logical to physical blocks (NetBSD ext2fs_bmap.c, Linux extents.c for
// reading extent trees): direct and indirect blocks, and ext4 extent trees,
// every pointer and tree node checked. Allocation and truncation of block
// pointer files for the writer.
import { brelse, getblk, kerr, mount_bwrite } from '../../kern/index.js';
import { NDADDR, NIADDR } from './ext2fs.js';
import { ext2fs_blkalloc, ext2fs_blkallocrun, ext2fs_blkfree } from './ext2fs_alloc.js';
import type { E2node, Extent } from './ext2fs_inode.js';

/** Where a logical block is: 0 for a hole (and an unwritten extent), which reads as zeroes. */
export async function ext2fs_bmap(ip: E2node, lbn: number): Promise<number> {
  return (await ext2fs_bmaprun(ip, lbn)).pbn;
}

/** Where a logical block is, and for a hole the first logical block past it that may be mapped. */
export async function ext2fs_bmaprun(ip: E2node, lbn: number): Promise<{ pbn: number; next: number }> {
  return ip.extents ? extentBmap(ip, lbn) : indirBmap(ip, lbn);
}

/** `len` logical blocks from `lbn` at physical blocks `pbn` onwards; pbn 0: a hole (or unwritten), zeroes. */
export interface BlockRun { lbn: number; pbn: number; len: number }

/**
 * The mapping of logical blocks [lbn, lbn + count) as runs, in file order:
 * physically contiguous blocks are one run, a hole is one run. An indirect
 * block is read once for all the pointers it holds in the range, an
 * extent once for all its blocks.
 */
export async function ext2fs_bmapruns(ip: E2node, lbn: number, count: number): Promise<BlockRun[]> {
  const runs: BlockRun[] = [];
  const end = lbn + count;
  const add = (pbn: number, len: number): void => {
    const last = runs[runs.length - 1];
    if (last && (last.pbn === 0 ? pbn === 0 : pbn !== 0 && last.pbn + last.len === pbn)) last.len += len;
    else runs.push({ lbn: last ? last.lbn + last.len : lbn, pbn, len });
  };
  for (let at = lbn; at < end;) at = ip.extents ? await extentRun(ip, at, end, add) : await indirRun(ip, at, end, add);
  return runs;
}

// ---- extent trees ----

const EXT4_EXT_MAGIC = 0xf30a;
const EXT_MAX_DEPTH = 5;
const EXT_INIT_MAX_LEN = 32768;

async function extentBmap(ip: E2node, lbn: number): Promise<{ pbn: number; next: number }> {
  let e = ip.lastExtent;
  if (!e || lbn < e.lblk || lbn >= e.lblk + e.len) {
    const found = await extentFind(ip, lbn);
    if ('hole' in found) return { pbn: 0, next: found.hole };
    e = ip.lastExtent = found;
  }
  return e.uninit ? { pbn: 0, next: e.lblk + e.len } : { pbn: e.pblk + (lbn - e.lblk), next: lbn + 1 };
}

/** Map from lbn (before end) through its extent or hole; the next block to map. */
async function extentRun(ip: E2node, lbn: number, end: number, add: (pbn: number, len: number) => void): Promise<number> {
  let e = ip.lastExtent;
  if (!e || lbn < e.lblk || lbn >= e.lblk + e.len) {
    const found = await extentFind(ip, lbn);
    if ('hole' in found) {
      const to = Math.min(end, found.hole);
      add(0, to - lbn);
      return to;
    }
    e = ip.lastExtent = found;
  }
  const to = Math.min(end, e.lblk + e.len);
  add(e.uninit ? 0 : e.pblk + (lbn - e.lblk), to - lbn);
  return to;
}

/** The leaf extent holding lbn, or a hole up to the next extent. */
async function extentFind(ip: E2node, lbn: number): Promise<Extent | { hole: number }> {
  const ump = ip.ump;
  const bad = (what: string) => ump.corrupt(`inode ${ip.ino}: extent tree: ${what}`);
  let node = ip.di.iblock;
  let expectDepth = -1;
  let limit = Infinity;
  const held: { release(): void }[] = [];
  try {
    for (let level = 0; ; level++) {
      const dv = new DataView(node.buffer, node.byteOffset, node.byteLength);
      if (dv.getUint16(0, true) !== EXT4_EXT_MAGIC) throw bad('bad node magic');
      const n = dv.getUint16(2, true), max = dv.getUint16(4, true), depth = dv.getUint16(6, true);
      if (max === 0 || 12 + max * 12 > node.length || n > max) throw bad(`node with ${n} of ${max} entries`);
      if (level === 0 ? depth > EXT_MAX_DEPTH : depth !== expectDepth) throw bad(`depth ${depth} at level ${level}`);
      // Entries in increasing logical order; the last one at or before lbn.
      let pick = -1;
      let prev = -1;
      for (let i = 0; i < n; i++) {
        const lb = dv.getUint32(12 + i * 12, true);
        if (lb <= prev) throw bad('entries out of order');
        prev = lb;
        if (lb <= lbn) pick = i;
        else { limit = Math.min(limit, lb); break; }
      }
      if (depth === 0) {
        if (pick < 0) return { hole: limit };
        const o = 12 + pick * 12;
        const lblk = dv.getUint32(o, true);
        let len = dv.getUint16(o + 4, true);
        const uninit = len > EXT_INIT_MAX_LEN;
        if (uninit) len -= EXT_INIT_MAX_LEN;
        const pblk = dv.getUint16(o + 6, true) * 2 ** 32 + dv.getUint32(o + 8, true);
        if (len === 0 || lblk + len > limit) throw bad(`extent of ${len} blocks at ${lblk} overlaps the next`);
        if (!ump.validBlock(pblk, len)) throw bad(`extent at block ${pblk}+${len} is outside the file system`);
        if (lbn >= lblk + len) return { hole: limit };
        return { lblk, len, pblk, uninit };
      }
      if (pick < 0) return { hole: limit };
      const o = 12 + pick * 12;
      const child = dv.getUint16(o + 8, true) * 2 ** 32 + dv.getUint32(o + 4, true);
      if (!ump.validBlock(child)) throw bad(`index block ${child} is outside the file system`);
      const bp = await ump.bread(child);
      held.push({ release: () => brelse(bp) });
      node = bp.data;
      expectDepth = depth - 1;
    }
  } finally {
    for (const h of held) h.release();
  }
}

// ---- block pointers ----

/** The path to lbn through the indirect blocks: [slot in i_block, index at each level]. */
function indirPath(apb: number, lbn: number): { slot: number; idx: number[] } | null {
  if (lbn < NDADDR) return { slot: lbn, idx: [] };
  let base = NDADDR, span = apb;
  for (let level = 1; level <= NIADDR; level++, span *= apb) {
    if (lbn < base + span) {
      const idx: number[] = [];
      let rel = lbn - base;
      for (let l = level - 1; l >= 0; l--) {
        const per = apb ** l;
        idx.push(Math.floor(rel / per));
        rel %= per;
      }
      return { slot: NDADDR + level - 1, idx };
    }
    base += span;
  }
  return null;
}

/** The most blocks a block pointer file can have. */
export function indirMaxBlocks(bsize: number): number {
  const apb = bsize / 4;
  return NDADDR + apb + apb ** 2 + apb ** 3;
}

async function indirBmap(ip: E2node, lbn: number): Promise<{ pbn: number; next: number }> {
  const ump = ip.ump, apb = ump.bsize / 4;
  const path = indirPath(apb, lbn);
  if (!path) return { pbn: 0, next: Infinity };
  // The subtree under the current pointer: its first logical block and its span.
  let span = apb ** path.idx.length;
  let start = lbn - path.idx.reduce((rel, i, k) => rel + i * apb ** (path.idx.length - 1 - k), 0);
  let pbn = ip.di.blockAt(path.slot);
  for (const i of path.idx) {
    if (pbn === 0) return { pbn: 0, next: start + span };
    if (!ump.validBlock(pbn)) throw ump.corrupt(`inode ${ip.ino}: indirect block ${pbn} is outside the file system`);
    const bp = await ump.bread(pbn);
    pbn = new DataView(bp.data.buffer, bp.data.byteOffset).getUint32(i * 4, true);
    brelse(bp);
    span /= apb;
    start += i * span;
  }
  if (pbn !== 0 && !ump.validBlock(pbn)) throw ump.corrupt(`inode ${ip.ino}: block ${pbn} (logical ${lbn}) is outside the file system`);
  return { pbn, next: lbn + 1 };
}

/**
 * Map from lbn (before end): a direct block, or every pointer of lbn's
 * last-level indirect block up to end, or a hole to the end of the subtree
 * that is missing; the next block to map.
 */
async function indirRun(ip: E2node, lbn: number, end: number, add: (pbn: number, len: number) => void): Promise<number> {
  const ump = ip.ump, apb = ump.bsize / 4;
  const path = indirPath(apb, lbn);
  if (!path) {
    add(0, end - lbn);
    return end;
  }
  const check = (pbn: number, l: number): number => {
    if (pbn !== 0 && !ump.validBlock(pbn)) throw ump.corrupt(`inode ${ip.ino}: block ${pbn} (logical ${l}) is outside the file system`);
    return pbn;
  };
  let pbn = ip.di.blockAt(path.slot);
  if (path.idx.length === 0) {
    add(check(pbn, lbn), 1);
    return lbn + 1;
  }
  let span = apb ** path.idx.length;
  let start = lbn - path.idx.reduce((rel, i, k) => rel + i * apb ** (path.idx.length - 1 - k), 0);
  for (let level = 0; ; level++) {
    if (pbn === 0) {
      const to = Math.min(end, start + span);
      add(0, to - lbn);
      return to;
    }
    if (!ump.validBlock(pbn)) throw ump.corrupt(`inode ${ip.ino}: indirect block ${pbn} is outside the file system`);
    const i = path.idx[level];
    const bp = await ump.bread(pbn);
    const dv = new DataView(bp.data.buffer, bp.data.byteOffset, bp.data.byteLength);
    if (level < path.idx.length - 1) {
      pbn = dv.getUint32(i * 4, true);
      brelse(bp);
      span /= apb;
      start += i * span;
      continue;
    }
    // The last level: its pointers are the data blocks.
    let at = lbn;
    try {
      for (let j = i; j < apb && at < end; j++, at++) add(check(dv.getUint32(j * 4, true), at), 1);
    } finally {
      brelse(bp);
    }
    return at;
  }
}

/** A new zeroed metadata block (an indirect block) near goal. */
async function newIndirect(ip: E2node, goal: number): Promise<number> {
  const ump = ip.ump;
  const nb = await ext2fs_blkalloc(ump, ip.ino, goal);
  ip.addBlocks(1);
  const bp = await getblk(ump.dev, nb * ump.bsize, ump.bsize, ump.meta);
  bp.data.fill(0);
  await mount_bwrite(ump.mp, bp);
  return nb;
}

/**
 * The block for lbn, allocated (with the indirect blocks on its way) if it
 * is a hole. `fresh` says the data block is new, so the caller need not read it.
 */
export async function ext2fs_balloc(ip: E2node, lbn: number, goal: number): Promise<{ pbn: number; fresh: boolean }> {
  return (await ext2fs_ballocrun(ip, lbn, 1, goal))[0];
}

/** A file's block for a write: where it is, and whether it is new (the caller need not read it). */
export interface AllocatedBlock { pbn: number; fresh: boolean }

/**
 * The blocks for lbn, lbn + 1, ... (up to count of them, at least one, not
 * past the direct blocks or the last-level indirect block lbn is in),
 * holes allocated as contiguous runs from goal on (with the indirect
 * blocks on their way): the pointers of one indirect block are read and
 * written once for all of them. A volume that fills up gives fewer blocks,
 * or ENOSPC when there is none.
 */
export async function ext2fs_ballocrun(ip: E2node, lbn: number, count: number, goal: number): Promise<AllocatedBlock[]> {
  const ump = ip.ump;
  const path = indirPath(ump.bsize / 4, lbn);
  if (!path) throw kerr('EFBIG');
  const out: AllocatedBlock[] = [];
  const bad = (pbn: number) => ump.corrupt(`inode ${ip.ino}: block ${pbn} is outside the file system`);
  if (!path.idx.length) {
    const end = Math.min(NDADDR, lbn + count);
    try {
      for (let l = lbn; l < end;) {
        const p = ip.di.blockAt(l);
        if (p) {
          if (!ump.validBlock(p)) throw bad(p);
          out.push({ pbn: p, fresh: false });
          goal = p + 1;
          l++;
          continue;
        }
        let holes = 1;
        while (l + holes < end && ip.di.blockAt(l + holes) === 0) holes++;
        const { pbn, n } = await ext2fs_blkallocrun(ump, ip.ino, goal, holes);
        for (let k = 0; k < n; k++) {
          ip.di.setBlockAt(l + k, pbn + k);
          out.push({ pbn: pbn + k, fresh: true });
        }
        ip.addBlocks(n);
        goal = pbn + n;
        l += n;
      }
    } catch (e) {
      if (!(out.length && (e as { code?: string }).code === 'ENOSPC')) throw e;
    }
    return out;
  }
  let pbn = ip.di.blockAt(path.slot);
  if (pbn === 0) {
    pbn = await newIndirect(ip, goal);
    ip.di.setBlockAt(path.slot, pbn);
    ip.dirty = true;
  } else if (!ump.validBlock(pbn)) {
    throw bad(pbn);
  }
  const leafLevel = path.idx.length - 1;
  for (let level = 0; level < leafLevel; level++) {
    const i = path.idx[level];
    const bp = await ump.bread(pbn);
    const dv = new DataView(bp.data.buffer, bp.data.byteOffset, bp.data.byteLength);
    let next = dv.getUint32(i * 4, true);
    if (next === 0) {
      try {
        next = await newIndirect(ip, goal);
      } catch (e) {
        brelse(bp);
        throw e;
      }
      dv.setUint32(i * 4, next, true);
      await mount_bwrite(ump.mp, bp);
    } else {
      brelse(bp);
      if (!ump.validBlock(next)) throw bad(next);
    }
    pbn = next;
  }
  // The last-level indirect block: its pointers from lbn's on are the data blocks.
  const apb = ump.bsize / 4, end = Math.min(apb, path.idx[leafLevel] + count);
  const bp = await ump.bread(pbn);
  const dv = new DataView(bp.data.buffer, bp.data.byteOffset, bp.data.byteLength);
  let changed = false, failure: unknown = null;
  for (let j = path.idx[leafLevel]; j < end;) {
    const p = dv.getUint32(j * 4, true);
    if (p) {
      if (!ump.validBlock(p)) { failure = bad(p); break; }
      out.push({ pbn: p, fresh: false });
      goal = p + 1;
      j++;
      continue;
    }
    let holes = 1;
    while (j + holes < end && dv.getUint32((j + holes) * 4, true) === 0) holes++;
    let got: { pbn: number; n: number };
    try {
      got = await ext2fs_blkallocrun(ump, ip.ino, goal, holes);
    } catch (e) {
      if (!(out.length && (e as { code?: string }).code === 'ENOSPC')) failure = e;
      break;
    }
    for (let k = 0; k < got.n; k++) {
      dv.setUint32((j + k) * 4, got.pbn + k, true);
      out.push({ pbn: got.pbn + k, fresh: true });
    }
    ip.addBlocks(got.n);
    changed = true;
    goal = got.pbn + got.n;
    j += got.n;
  }
  if (changed) await mount_bwrite(ump.mp, bp);
  else brelse(bp);
  if (failure) throw failure;
  return out;
}

/**
 * Make logical block lbn a hole again if it is pbn, and free pbn: a write
 * that failed gives back the blocks it had put into the file's holes, which
 * would otherwise read as whatever the disk held there (data is read from
 * the device, not from the cache).
 */
export async function ext2fs_bunalloc(ip: E2node, lbn: number, pbn: number): Promise<void> {
  const ump = ip.ump;
  const path = indirPath(ump.bsize / 4, lbn);
  if (!path) return;
  if (!path.idx.length) {
    if (ip.di.blockAt(lbn) !== pbn) return;
    ip.di.setBlockAt(lbn, 0);
  } else {
    let b = ip.di.blockAt(path.slot);
    for (let level = 0; b && level < path.idx.length; level++) {
      if (!ump.validBlock(b)) throw ump.corrupt(`inode ${ip.ino}: indirect block ${b} is outside the file system`);
      const bp = await ump.bread(b);
      const dv = new DataView(bp.data.buffer, bp.data.byteOffset, bp.data.byteLength);
      const at = path.idx[level] * 4;
      if (level < path.idx.length - 1) {
        b = dv.getUint32(at, true);
        brelse(bp);
        continue;
      }
      if (dv.getUint32(at, true) !== pbn) {
        brelse(bp);
        return;
      }
      dv.setUint32(at, 0, true);
      await mount_bwrite(ump.mp, bp);
    }
    if (!b) return;
  }
  await freeData(ip, pbn, false);
  ip.dirty = true;
}

/**
 * Free the blocks from logical block `keep` on (NetBSD ext2fs_truncate's
 * ext2fs_indirtrunc), and the indirect blocks left with nothing in them.
 */
export async function ext2fs_indirtrunc(ip: E2node, keep: number): Promise<void> {
  const ump = ip.ump, apb = ump.bsize / 4;
  for (let i = Math.min(keep, NDADDR); i < NDADDR; i++) {
    const b = ip.di.blockAt(i);
    if (b) {
      ip.di.setBlockAt(i, 0);
      await freeData(ip, b);
    }
  }
  let base = NDADDR, span = apb;
  for (let level = 1; level <= NIADDR; level++, span *= apb) {
    const slot = NDADDR + level - 1, b = ip.di.blockAt(slot);
    if (b && keep < base + span && await truncTree(ip, b, level, base, keep)) {
      ip.di.setBlockAt(slot, 0);
    }
    base += span;
  }
  ip.dirty = true;
}

/**
 * Free block b of the file: metadata (a directory's block, an indirect
 * block) may still have a delayed write in the cache, so the data writer
 * must not write around the cache there (ump.dirtyFreed).
 */
async function freeData(ip: E2node, b: number, meta = ip.isDir): Promise<void> {
  if (!ip.ump.validBlock(b)) throw ip.ump.corrupt(`inode ${ip.ino}: block ${b} is outside the file system`);
  await ext2fs_blkfree(ip.ump, b);
  if (meta) ip.ump.dirtyFreed.add(b);
  ip.addBlocks(-1);
}

/** Truncate the subtree of indirect block b (level 1: it points to data); true when b itself was freed. */
async function truncTree(ip: E2node, b: number, level: number, base: number, keep: number): Promise<boolean> {
  const ump = ip.ump, apb = ump.bsize / 4, per = apb ** (level - 1);
  if (!ump.validBlock(b)) throw ump.corrupt(`inode ${ip.ino}: indirect block ${b} is outside the file system`);
  const bp = await ump.bread(b);
  const dv = new DataView(bp.data.buffer, bp.data.byteOffset);
  // Copy the pointers: the buffer may be evicted while children are freed.
  const ptrs: number[] = [];
  for (let i = 0; i < apb; i++) ptrs.push(dv.getUint32(i * 4, true));
  brelse(bp);
  let changed = false;
  for (let i = 0; i < apb; i++) {
    const child = ptrs[i], cbase = base + i * per;
    if (!child || cbase + per <= keep) continue;
    if (level === 1) await freeData(ip, child);
    else if (!await truncTree(ip, child, level - 1, cbase, keep)) continue;
    ptrs[i] = 0;
    changed = true;
  }
  if (keep <= base) {
    await freeData(ip, b, true);
    return true;
  }
  if (changed) {
    const wb = await ump.bread(b);
    const wdv = new DataView(wb.data.buffer, wb.data.byteOffset);
    ptrs.forEach((p, i) => wdv.setUint32(i * 4, p, true));
    await mount_bwrite(ump.mp, wb);
  }
  return false;
}
