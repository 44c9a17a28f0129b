// ext2/3/4: seeds from mke2fs -d (ext2 with 1 KiB blocks, which the driver
// writes; ext4 with Debian's default features, read-only), and where the
// metadata lies, found by parsing the seed minimally: superblock, group
// descriptors, bitmaps, the used part of each inode table, extent tree
// roots and blocks, and directory blocks.
import path from 'node:path';
import type { Range, Region } from './mutate.js';
import { makeTree, run, type SeedSpec } from './seeds.js';
import type { FuzzTarget } from './targets.js';

function ext2Seed(name: string, type: string, sizeKiB: number, extra: string[]): SeedSpec {
  return {
    name,
    build(out, work) {
      const tree = path.join(work, 'tree');
      makeTree(tree, true);
      run('mke2fs', ['-q', '-F', '-t', type, ...extra, '-E', 'nodiscard', '-d', tree, out, `${sizeKiB}k`],
        { E2FSPROGS_FAKE_TIME: '1700000000' });
      // Index the directories too (the "many" one becomes a hashed directory); 1 = changed.
      try { run('e2fsck', ['-fyD', out]); } catch (e) {
        if ((e as { status?: number }).status !== 1) throw e;
      }
    },
  };
}

/** Bounds for the region finder, in case a seed is odder than expected. */
const MAX_GROUPS = 64, MAX_INODES = 4096;

export function ext2Regions(img: Uint8Array): Region[] {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const u16 = (p: number) => dv.getUint16(p, true), u32 = (p: number) => dv.getUint32(p, true);
  const sb = 1024;
  const bs = 1024 << u32(sb + 24);
  const blocks = u32(sb + 4), bpg = u32(sb + 32), ipg = u32(sb + 40);
  const first = u32(sb + 20), isz = u32(sb + 76) ? u16(sb + 88) : 128;
  const is64 = (u32(sb + 96) & 0x80) !== 0, dsz = is64 ? u16(sb + 254) : 32;
  const ngroups = Math.min(MAX_GROUPS, Math.ceil((blocks - first) / bpg));
  const blk = (b: number, n = 1): Range => ({ start: Math.min(b * bs, img.length), end: Math.min((b + n) * bs, img.length) });
  const gdStart = (first + 1) * bs;
  const bitmaps: Range[] = [], inodes: Range[] = [], iblocks: Range[] = [], extents: Range[] = [], dirs: Range[] = [];
  let seen = 0;
  for (let g = 0; g < ngroups; g++) {
    const d = gdStart + g * dsz;
    if (d + dsz > img.length) break;
    const bb = u32(d), ib = u32(d + 4), it = u32(d + 8), freeIno = u16(d + 14);
    bitmaps.push(blk(bb), blk(ib));
    const used = Math.max(0, Math.min(ipg - freeIno, ipg));
    inodes.push({ start: Math.min(it * bs, img.length), end: Math.min(it * bs + used * isz, img.length) });
    for (let i = 0; i < used && seen < MAX_INODES; i++, seen++) {
      const at = it * bs + i * isz;
      if (at + 128 > img.length) break;
      const mode = u16(at), flags = u32(at + 32);
      if (mode === 0) continue;
      iblocks.push({ start: at + 40, end: at + 100 });
      const isDir = (mode & 0xf000) === 0x4000;
      const out: number[] = [];
      if (flags & 0x80000) {
        // The extent tree: the root in the inode, index and leaf blocks below it (two levels at most here).
        const walk = (node: number, depth: number) => {
          const n = u16(node + 2), dep = u16(node + 6);
          if (u16(node) !== 0xf30a || depth > 2) return;
          for (let k = 0; k < Math.min(n, 340); k++) {
            const e = node + 12 + k * 12;
            if (e + 12 > img.length) break;
            if (dep === 0) {
              const len = u16(e + 4) & 0x7fff, start = u32(e + 8);
              for (let b = 0; b < Math.min(len, 8); b++) out.push(start + b);
            } else {
              const child = u32(e + 4);
              extents.push(blk(child));
              if (child * bs + bs <= img.length) walk(child * bs, depth + 1);
            }
          }
        };
        walk(at + 40, 0);
      } else {
        for (let k = 0; k < 12; k++) if (u32(at + 40 + 4 * k)) out.push(u32(at + 40 + 4 * k));
      }
      if (isDir) for (const b of out) if (b > first && b < blocks) dirs.push(blk(b));
    }
  }
  return [
    { name: 'superblock', weight: 3, ranges: [{ start: sb, end: sb + 1024 }] },
    { name: 'group-descriptors', weight: 2.5, ranges: [{ start: gdStart, end: Math.min(gdStart + ngroups * dsz, img.length) }] },
    { name: 'bitmaps', weight: 1, ranges: bitmaps },
    { name: 'inode-table', weight: 3, ranges: inodes },
    { name: 'block-map-extents', weight: 3, ranges: [...iblocks, ...extents] },
    { name: 'dir-blocks', weight: 3, ranges: dirs },
  ];
}

export const ext2fs: FuzzTarget = {
  fs: 'ext2fs',
  mountType: 'ext2fs',
  readWrite: true,
  seeds: [
    ext2Seed('ext2-1k', 'ext2', 2048, ['-b', '1024', '-I', '128']),
    ext2Seed('ext4-debian', 'ext4', 4096, ['-b', '1024', '-I', '256']),
  ],
  regions: ext2Regions,
};
