// newfs_ext2fs: an empty ext2 (revision 1) file system on an image file, as
// mke2fs -t ext2 -O ^resize_inode,^dir_index,^ext_attr lays it out: block
// groups of 8 x block-size blocks, sparse superblock backups (groups 0, 1
// and powers of 3, 5, 7) each followed by the group descriptor table, then
// per group a block bitmap, an inode bitmap and the inode table; the root
// directory (inode 2) and lost+found (inode 11). Features: filetype,
// sparse_super, large_file.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { NewfsError } from './newfs_msdos.js';

export interface Ext2Params {
  size: number;
  /** 1024, 2048 or 4096; default 1024 below 512 MiB, else 4096 (mke2fs's "small" and default). */
  blockSize?: number;
  /** Inodes wanted (rounded up to whole inode-table blocks per group); default one per 4 KiB. */
  inodes?: number;
  label?: string;
  /** Reserved for root, percent; default 5. */
  reservedPercent?: number;
  /** Timestamps; default now. */
  time?: number;
}

export interface Ext2Layout {
  blockSize: number; blocks: number; firstDataBlock: number; blocksPerGroup: number; groups: number;
  inodesPerGroup: number; inodeTableBlocks: number; gdtBlocks: number;
  /** Blocks left for files: all but the groups' metadata and the two directory blocks. */
  freeBlocksEstimate: number;
  /** As written (after newfs_ext2fs). */
  freeBlocks: number; freeInodes: number;
}

const INODE_SIZE = 128;
const ROOT_INO = 2, LPF_INO = 11, FIRST_INO = 11;
const INCOMPAT_FILETYPE = 0x2, RO_COMPAT_SPARSE_SUPER = 0x1, RO_COMPAT_LARGE_FILE = 0x2;

/** sparse_super: superblock backups in groups 0, 1 and powers of 3, 5 and 7. */
export function hasSuper(g: number): boolean {
  if (g <= 1) return true;
  for (const b of [3, 5, 7]) { let p = b; while (p < g) p *= b; if (p === g) return true; }
  return false;
}

export function ext2Layout(p: Ext2Params): Ext2Layout {
  const bs = p.blockSize ?? (p.size < 512 * 2 ** 20 ? 1024 : 4096);
  if (![1024, 2048, 4096].includes(bs)) throw new NewfsError(`block size ${bs}: 1024, 2048 or 4096`);
  const firstDataBlock = bs === 1024 ? 1 : 0;
  const bpg = 8 * bs;
  let blocks = Math.floor(p.size / bs);
  if (blocks > 2 ** 32 - 1) throw new NewfsError('too large for ext2 block numbers');
  let groups = Math.ceil((blocks - firstDataBlock) / bpg);
  const ipb = bs / INODE_SIZE;
  const wantInodes = Math.max(p.inodes ?? Math.floor(p.size / 4096), FIRST_INO + 5);
  let ipg = 0, itb = 0, gdt = 0;
  const overhead = (g: number) => (hasSuper(g) ? 1 + gdt : 0) + 2 + itb;
  for (let i = 0; i < 3; i++) {
    ipg = Math.min(Math.ceil(Math.ceil(wantInodes / groups) / ipb) * ipb, bs * 8);
    itb = (ipg * INODE_SIZE) / bs;
    gdt = Math.ceil((groups * 32) / bs);
    // mke2fs drops a last group too small to hold its own metadata and some data.
    const last = blocks - firstDataBlock - (groups - 1) * bpg;
    if (groups > 1 && last < overhead(groups - 1) + 50) { blocks -= last; groups--; }
  }
  if (groups < 1 || blocks - firstDataBlock < overhead(0) + 16) throw new NewfsError(`${p.size} bytes is too small for ext2`);
  let meta = 2;
  for (let g = 0; g < groups; g++) meta += overhead(g);
  return { blockSize: bs, blocks, firstDataBlock, blocksPerGroup: bpg, groups, inodesPerGroup: ipg, inodeTableBlocks: itb, gdtBlocks: gdt,
    freeBlocksEstimate: blocks - firstDataBlock - meta, freeBlocks: 0, freeInodes: 0 };
}

function setBit(b: Buffer, i: number): void { b[i >> 3] |= 1 << (i & 7); }

function dirent(buf: Buffer, off: number, ino: number, recLen: number, name: string): void {
  buf.writeUInt32LE(ino, off);
  buf.writeUInt16LE(recLen, off + 4);
  buf[off + 6] = name.length;
  buf[off + 7] = 2; // EXT2_FT_DIR
  buf.write(name, off + 8, 'latin1');
}

function dirInode(mode: number, links: number, block: number, bs: number, t: number): Buffer {
  const ino = Buffer.alloc(INODE_SIZE);
  ino.writeUInt16LE(0o040000 | mode, 0);
  ino.writeUInt32LE(bs, 4);
  for (const off of [8, 12, 16]) ino.writeUInt32LE(t, off);
  ino.writeUInt16LE(links, 26);
  ino.writeUInt32LE(bs / 512, 28);
  ino.writeUInt32LE(block, 40);
  return ino;
}

export async function newfs_ext2fs(path: string, p: Ext2Params): Promise<Ext2Layout> {
  const l = ext2Layout(p);
  const { blockSize: bs, groups, blocksPerGroup: bpg, inodesPerGroup: ipg, firstDataBlock: fdb } = l;
  const t = p.time ?? Math.floor(Date.now() / 1000);
  if (p.label !== undefined && Buffer.byteLength(p.label) > 16) throw new NewfsError(`volume label '${p.label}' is longer than 16 bytes`);
  const fh = await open(path, 'w');
  try {
    await fh.truncate(l.blocks * bs);
    const writeBlock = (b: Buffer, block: number) => fh.write(b, 0, b.length, block * bs);
    const gd = Buffer.alloc(l.gdtBlocks * bs);
    let freeBlocks = 0;
    const groupStart = (g: number) => fdb + g * bpg;
    // Group 0's data starts with the root's and lost+found's directory blocks.
    const g0Meta = groupStart(0) + (hasSuper(0) ? 1 + l.gdtBlocks : 0);
    const rootBlock = g0Meta + 2 + l.inodeTableBlocks, lpfBlock = rootBlock + 1;
    for (let g = 0; g < groups; g++) {
      const start = groupStart(g);
      const inGroup = Math.min(bpg, l.blocks - start);
      const meta = start + (hasSuper(g) ? 1 + l.gdtBlocks : 0);
      const bbm = Buffer.alloc(bs), ibm = Buffer.alloc(bs);
      let used = meta - start + 2 + l.inodeTableBlocks;
      if (g === 0) used += 2;
      for (let i = 0; i < used; i++) setBit(bbm, i);
      for (let i = inGroup; i < bs * 8; i++) setBit(bbm, i); // past the group's end
      for (let i = ipg; i < bs * 8; i++) setBit(ibm, i);
      let usedInodes = 0;
      if (g === 0) { for (let i = 0; i < FIRST_INO; i++) setBit(ibm, i); usedInodes = FIRST_INO; }
      await writeBlock(bbm, meta);
      await writeBlock(ibm, meta + 1);
      const free = inGroup - used;
      freeBlocks += free;
      const d = g * 32;
      gd.writeUInt32LE(meta, d);
      gd.writeUInt32LE(meta + 1, d + 4);
      gd.writeUInt32LE(meta + 2, d + 8);
      gd.writeUInt16LE(free, d + 12);
      gd.writeUInt16LE(ipg - usedInodes, d + 14);
      gd.writeUInt16LE(g === 0 ? 2 : 0, d + 16);
    }
    l.freeBlocks = freeBlocks;
    l.freeInodes = groups * ipg - FIRST_INO;

    const sb = Buffer.alloc(1024);
    sb.writeUInt32LE(groups * ipg, 0);
    sb.writeUInt32LE(l.blocks, 4);
    sb.writeUInt32LE(Math.floor((l.blocks * (p.reservedPercent ?? 5)) / 100), 8);
    sb.writeUInt32LE(l.freeBlocks, 12);
    sb.writeUInt32LE(l.freeInodes, 16);
    sb.writeUInt32LE(fdb, 20);
    sb.writeUInt32LE(Math.log2(bs / 1024), 24);
    sb.writeUInt32LE(Math.log2(bs / 1024), 28);
    sb.writeUInt32LE(bpg, 32);
    sb.writeUInt32LE(bpg, 36);
    sb.writeUInt32LE(ipg, 40);
    sb.writeUInt32LE(t, 48); // s_wtime
    sb.writeInt16LE(-1, 54); // s_max_mnt_count: no forced checks
    sb.writeUInt16LE(0xef53, 56);
    sb.writeUInt16LE(1, 58); // EXT2_VALID_FS
    sb.writeUInt16LE(1, 60); // errors: continue
    sb.writeUInt32LE(t, 64); // s_lastcheck
    sb.writeUInt32LE(1, 76); // EXT2_DYNAMIC_REV
    sb.writeUInt32LE(FIRST_INO, 84);
    sb.writeUInt16LE(INODE_SIZE, 88);
    sb.writeUInt32LE(INCOMPAT_FILETYPE, 96);
    sb.writeUInt32LE(RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE, 100);
    randomBytes(16).copy(sb, 104);
    if (p.label) sb.write(p.label, 120, 'utf8');
    sb.writeUInt32LE(t, 264); // s_mkfs_time
    for (let g = 0; g < groups; g++) {
      if (!hasSuper(g)) continue;
      sb.writeUInt16LE(g, 90); // s_block_group_nr
      const start = groupStart(g);
      // Group 0's superblock is at byte 1024 whatever the block size.
      await fh.write(sb, 0, 1024, g === 0 ? 1024 : start * bs);
      await fh.write(gd, 0, gd.length, (start + 1) * bs);
    }

    // Root (links: ., .., lost+found's ..) and lost+found.
    const itable = g0Meta + 2;
    await fh.write(dirInode(0o755, 3, rootBlock, bs, t), 0, INODE_SIZE, itable * bs + (ROOT_INO - 1) * INODE_SIZE);
    await fh.write(dirInode(0o700, 2, lpfBlock, bs, t), 0, INODE_SIZE, itable * bs + (LPF_INO - 1) * INODE_SIZE);
    const root = Buffer.alloc(bs);
    dirent(root, 0, ROOT_INO, 12, '.');
    dirent(root, 12, ROOT_INO, 12, '..');
    dirent(root, 24, LPF_INO, bs - 24, 'lost+found');
    await writeBlock(root, rootBlock);
    const lpf = Buffer.alloc(bs);
    dirent(lpf, 0, LPF_INO, 12, '.');
    dirent(lpf, 12, ROOT_INO, bs - 12, '..');
    await writeBlock(lpf, lpfBlock);
  } finally {
    await fh.close();
  }
  return l;
}
