// FAT12/16/32: seeds from mkfs.vfat + mcopy, and where the metadata lies
// (found by parsing the seed's BPB, FAT and directories minimally).
import path from 'node:path';
import type { Range, Region } from './mutate.js';
import { makeTree, run, type SeedSpec } from './seeds.js';
import type { FuzzTarget } from './targets.js';

function fatSeed(bits: 12 | 16 | 32, sizeKiB: number): SeedSpec {
  return {
    name: `fat${bits}`,
    build(out, work) {
      const tree = path.join(work, 'tree');
      makeTree(tree, false);
      run('mkfs.vfat', ['-F', String(bits), ...(bits === 32 ? ['-s', '1'] : []), '--invariant', '-n', `FUZZ${bits}`, '-C', out, String(sizeKiB)]);
      run('sh', ['-c', 'cd "$1" && mcopy -s -m -i "$2" -- * ::/', 'sh', tree, out], { MTOOLS_SKIP_CHECK: '1' });
    },
  };
}

/** Most clusters one directory may take in the region finder (a corrupt seed could loop). */
const MAX_CHAIN = 64;

export function fatRegions(img: Uint8Array): Region[] {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const bps = dv.getUint16(11, true);
  const spc = img[13];
  const rsvd = dv.getUint16(14, true);
  const nfats = img[16];
  const rootEntries = dv.getUint16(17, true);
  const fat32 = dv.getUint16(22, true) === 0;
  const fatSectors = fat32 ? dv.getUint32(36, true) : dv.getUint16(22, true);
  const totalSectors = dv.getUint16(19, true) || dv.getUint32(32, true);
  const fatStart = rsvd * bps;
  const fatBytes = fatSectors * bps;
  const rootStart = fatStart + nfats * fatBytes;
  const rootBytes = Math.ceil(rootEntries * 32 / bps) * bps;
  const dataStart = rootStart + rootBytes;
  const clusterBytes = spc * bps;
  const clusters = Math.floor((totalSectors * bps - dataStart) / clusterBytes);
  const bits = fat32 ? 32 : clusters < 4085 ? 12 : 16;

  const next = (c: number): number => {
    if (bits === 32) return dv.getUint32(fatStart + c * 4, true) & 0x0fffffff;
    if (bits === 16) return dv.getUint16(fatStart + c * 2, true);
    const v = dv.getUint16(fatStart + Math.floor(c * 3 / 2), true);
    return c & 1 ? v >> 4 : v & 0xfff;
  };
  const eoc = bits === 32 ? 0x0ffffff8 : bits === 16 ? 0xfff8 : 0xff8;
  const chain = (first: number): Range[] => {
    const out: Range[] = [];
    for (let c = first; c >= 2 && c < clusters + 2 && c < eoc && out.length < MAX_CHAIN; c = next(c)) {
      out.push({ start: dataStart + (c - 2) * clusterBytes, end: dataStart + (c - 1) * clusterBytes });
    }
    return out;
  };

  // Directories: walk from the root, following subdirectory entries.
  const root: Range[] = fat32 ? chain(dv.getUint32(44, true)) : [{ start: rootStart, end: dataStart }];
  const dirs: Range[] = [];
  const seen = new Set<number>();
  let maxCluster = 2;
  const visit = (ranges: Range[]) => {
    for (const r of ranges) {
      for (let p = r.start; p < r.end; p += 32) {
        if (img[p] === 0) return;
        const attr = img[p + 11];
        if (img[p] === 0xe5 || attr === 0x0f) continue;
        const first = (fat32 ? dv.getUint16(p + 20, true) * 0x10000 : 0) + dv.getUint16(p + 26, true);
        maxCluster = Math.max(maxCluster, first);
        if (!(attr & 0x10) || img[p] === 0x2e || seen.has(first)) continue;
        seen.add(first);
        const sub = chain(first);
        dirs.push(...sub);
        visit(sub);
      }
    }
  };
  visit(root);
  // The FAT entries in use (with margin), in every copy of the FAT.
  const usedFatBytes = Math.min(fatBytes, Math.ceil(((maxCluster + 64) * bits / 8) / bps) * bps);
  const fats = Array.from({ length: nfats }, (_, i) => ({ start: fatStart + i * fatBytes, end: fatStart + i * fatBytes + usedFatBytes }));

  const regions: Region[] = [
    { name: 'bpb', weight: 3, ranges: [{ start: 0, end: fat32 ? 90 : 62 }] },
    { name: 'boot-sector', weight: 0.5, ranges: [{ start: 0, end: bps }] },
    { name: 'fat', weight: 3, ranges: fats },
    { name: 'root-dir', weight: 3, ranges: root },
    { name: 'dirs', weight: 3, ranges: dirs },
  ];
  if (fat32) {
    const fsinfo = dv.getUint16(48, true) * bps;
    const backup = dv.getUint16(50, true) * bps;
    regions.push({ name: 'fsinfo', weight: 1, ranges: [{ start: fsinfo, end: fsinfo + bps }] });
    regions.push({ name: 'backup-boot', weight: 0.3, ranges: [{ start: backup, end: backup + bps }] });
  }
  return regions;
}

export const msdos: FuzzTarget = {
  fs: 'msdos',
  mountType: 'msdos',
  readWrite: true,
  seeds: [fatSeed(12, 1440), fatSeed(16, 16384), fatSeed(32, 34000)],
  regions: fatRegions,
};
