// Block and inode allocation (NetBSD ext2fs_alloc.c): bitmaps, with the free
// counts of the group descriptors and the superblock kept exact. Blocks go
// near the goal (the file's previous block, or its inode's group); a new
// directory's inode goes to a group with room, spreading directories;
// other inodes go to their parent's group. Each bitmap is searched and
// changed between one await and the next, so concurrent allocations never
// take the same bit.
import { brelse, kerr, mount_bwrite } from '../../kern/index.js';
import type { E2fsMount } from './ext2fsmount.js';

/** The first clear bit in [from, to), or -1. */
function findClear(map: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to;) {
    if ((i & 7) === 0 && i + 8 <= to && map[i >> 3] === 0xff) { i += 8; continue; }
    if (!(map[i >> 3] & (1 << (i & 7)))) return i;
    i++;
  }
  return -1;
}

export async function ext2fs_blkalloc(ump: E2fsMount, ino: number, goal: number): Promise<number> {
  return (await ext2fs_blkallocrun(ump, ino, goal, 1)).pbn;
}

/**
 * Up to max contiguous free blocks, the first one at or after goal where
 * there is one (else near the inode's group): one bitmap read and write for
 * all of them. At least one, or ENOSPC.
 */
export async function ext2fs_blkallocrun(ump: E2fsMount, ino: number, goal: number, max: number): Promise<{ pbn: number; n: number }> {
  const sb = ump.sb;
  if (sb.freeBlocks === 0) throw kerr('ENOSPC');
  if (!ump.validBlock(goal)) goal = sb.groupStart(Math.floor((ino - 1) / sb.ipg));
  let g = Math.min(sb.ngroups - 1, Math.floor((goal - sb.firstDataBlock) / sb.bpg));
  let start = goal - sb.groupStart(g);
  for (let k = 0; k <= sb.ngroups; k++, g = (g + 1) % sb.ngroups, start = 0) {
    const gd = ump.gds[g];
    if (gd.freeBlocks === 0) continue;
    const n = sb.groupBlocks(g);
    const bp = await ump.bread(gd.blockBitmap);
    const map = bp.data;
    let bit = findClear(map, start, n);
    if (bit < 0 && start > 0) bit = findClear(map, 0, start);
    if (bit < 0) {
      brelse(bp);
      ump.corrupt(`group ${g}: descriptor counts ${gd.freeBlocks} free blocks, its bitmap none`);
      continue;
    }
    const most = Math.min(max, gd.freeBlocks, sb.freeBlocks, n - bit);
    let got = 0;
    while (got < most && !(map[(bit + got) >> 3] & (1 << ((bit + got) & 7)))) {
      map[(bit + got) >> 3] |= 1 << ((bit + got) & 7);
      got++;
    }
    gd.freeBlocks -= got;
    sb.freeBlocks -= got;
    ump.gdChanged(g);
    await mount_bwrite(ump.mp, bp);
    return { pbn: sb.groupStart(g) + bit, n: got };
  }
  throw kerr('ENOSPC');
}

export async function ext2fs_blkfree(ump: E2fsMount, pbn: number): Promise<void> {
  const sb = ump.sb;
  const g = Math.floor((pbn - sb.firstDataBlock) / sb.bpg), bit = pbn - sb.groupStart(g);
  const gd = ump.gds[g];
  const bp = await ump.bread(gd.blockBitmap);
  if (!(bp.data[bit >> 3] & (1 << (bit & 7)))) {
    brelse(bp);
    throw ump.corrupt(`freeing free block ${pbn}`);
  }
  bp.data[bit >> 3] &= ~(1 << (bit & 7));
  gd.freeBlocks++;
  sb.freeBlocks++;
  ump.gdChanged(g);
  await mount_bwrite(ump.mp, bp);
}

/** The group a new directory's inode goes to: at least average free inodes, the most free blocks. */
function dirGroup(ump: E2fsMount): number {
  const sb = ump.sb, avg = sb.freeInodes / sb.ngroups;
  let best = -1;
  for (let k = 0; k < sb.ngroups; k++) {
    const g = (ump.nextDirGroup + k) % sb.ngroups, gd = ump.gds[g];
    if (gd.freeInodes === 0 || gd.freeInodes < avg) continue;
    if (best < 0 || gd.freeBlocks > ump.gds[best].freeBlocks) best = g;
  }
  if (best < 0) return 0;
  ump.nextDirGroup = (best + 1) % sb.ngroups;
  return best;
}

export async function ext2fs_ialloc(ump: E2fsMount, pino: number, isDir: boolean): Promise<number> {
  const sb = ump.sb;
  if (sb.freeInodes === 0) throw kerr('ENOSPC');
  let g = isDir ? dirGroup(ump) : Math.floor((pino - 1) / sb.ipg);
  for (let k = 0; k < sb.ngroups; k++, g = (g + 1) % sb.ngroups) {
    const gd = ump.gds[g];
    if (gd.freeInodes === 0) continue;
    // Past the last inode (a count not a multiple of the group's) nothing is usable.
    const n = Math.min(sb.ipg, sb.inodes - g * sb.ipg);
    const from = g === 0 ? sb.firstIno - 1 : 0;
    const bp = await ump.bread(gd.inodeBitmap);
    const bit = findClear(bp.data, from, n);
    if (bit < 0) {
      brelse(bp);
      ump.corrupt(`group ${g}: descriptor counts ${gd.freeInodes} free inodes, its bitmap none`);
      continue;
    }
    bp.data[bit >> 3] |= 1 << (bit & 7);
    gd.freeInodes--;
    sb.freeInodes--;
    if (isDir) gd.usedDirs++;
    ump.gdChanged(g);
    await mount_bwrite(ump.mp, bp);
    return g * sb.ipg + bit + 1;
  }
  throw kerr('ENOSPC');
}

export async function ext2fs_ifree(ump: E2fsMount, ino: number, isDir: boolean): Promise<void> {
  const sb = ump.sb;
  const g = Math.floor((ino - 1) / sb.ipg), bit = (ino - 1) % sb.ipg, gd = ump.gds[g];
  const bp = await ump.bread(gd.inodeBitmap);
  if (!(bp.data[bit >> 3] & (1 << (bit & 7)))) {
    brelse(bp);
    throw ump.corrupt(`freeing free inode ${ino}`);
  }
  bp.data[bit >> 3] &= ~(1 << (bit & 7));
  gd.freeInodes++;
  sb.freeInodes++;
  if (isDir && gd.usedDirs > 0) gd.usedDirs--;
  ump.gdChanged(g);
  await mount_bwrite(ump.mp, bp);
}
