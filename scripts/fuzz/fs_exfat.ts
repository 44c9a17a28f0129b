// exFAT: seeds from mkfs.exfat filled by exfat-fuse (an independent writer,
// on a loop device: as root it wants a block device), and where the
// metadata lies (found by parsing the seed's boot sector, FAT and
// directories minimally).
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Range, Region } from './mutate.js';
import { makeTree, run, type SeedSpec } from './seeds.js';
import type { FuzzTarget } from './targets.js';

/** Run fn with image mounted by exfat-fuse at dir; always unmounted and detached after. */
function withExfatFuse(image: string, dir: string, fn: () => void): void {
  mkdirSync(dir, { recursive: true });
  const loop = execFileSync('losetup', ['--find', '--show', image]).toString().trim();
  try {
    run('mount.exfat-fuse', [loop, dir]);
    try { fn(); } finally { if (spawnSync('fusermount', ['-u', dir]).status !== 0) spawnSync('umount', ['-l', dir]); }
  } finally {
    for (let i = 0; i < 50 && spawnSync('losetup', ['-d', loop]).status !== 0; i++) spawnSync('sleep', ['0.1']);
  }
}

function exfatSeed(clusterSize: number, sizeMiB: number): SeedSpec {
  return {
    name: `c${clusterSize}`,
    build(out, work) {
      const tree = path.join(work, 'tree');
      makeTree(tree, false);
      run('truncate', ['-s', `${sizeMiB}M`, out]);
      run('mkfs.exfat', ['-c', String(clusterSize), '-L', 'FUZZ', out]);
      const mnt = path.join(work, 'mnt');
      withExfatFuse(out, mnt, () => {
        run('cp', ['-r', `${tree}/.`, mnt]);
        // Appends in turn: interleaved clusters, so FAT chains.
        for (let i = 0; i < 12; i++) {
          appendFileSync(path.join(mnt, 'chain-a'), Buffer.alloc(clusterSize, 0x41 + i));
          appendFileSync(path.join(mnt, 'chain-b'), Buffer.alloc(clusterSize, 0x61 + i));
        }
      });
    },
  };
}

/** Most clusters one chain may take in the region finder (a corrupt seed could loop). */
const MAX_CHAIN = 64;

export function exfatRegions(img: Uint8Array): Region[] {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const ss = 1 << img[108], cs = ss << img[109];
  const fatStart = dv.getUint32(80, true) * ss, fatBytes = dv.getUint32(84, true) * ss;
  const heap = dv.getUint32(88, true) * ss, clusters = dv.getUint32(92, true);
  const clusterRange = (c: number, n = 1): Range => ({ start: heap + (c - 2) * cs, end: heap + (c - 2 + n) * cs });
  const valid = (c: number) => c >= 2 && c < clusters + 2;
  const chain = (first: number, noFatChain: boolean, bytes: number): Range[] => {
    const n = Math.min(Math.ceil(bytes / cs), MAX_CHAIN);
    if (!valid(first)) return [];
    if (noFatChain) return [clusterRange(first, Math.min(n, clusters + 2 - first))];
    const out: Range[] = [];
    for (let c = first; valid(c) && out.length < (bytes < 0 ? MAX_CHAIN : n); c = dv.getUint32(fatStart + 4 * c, true)) out.push(clusterRange(c));
    return out;
  };
  const root = chain(dv.getUint32(96, true), false, -1);
  const dirs: Range[] = [], bitmap: Range[] = [], upcase: Range[] = [];
  let maxCluster = dv.getUint32(96, true);
  const seen = new Set<number>();
  const visit = (ranges: Range[], isRoot: boolean) => {
    for (const r of ranges) {
      for (let p = r.start; p + 32 <= r.end; p += 32) {
        const t = img[p];
        if (t === 0) return;
        const first = dv.getUint32(p + 20, true), len = Number(dv.getBigUint64(p + 24, true));
        if (isRoot && t === 0x81) bitmap.push(...chain(first, false, len));
        else if (isRoot && t === 0x82) upcase.push(...chain(first, false, len));
        else if (t === 0x85 && p + 64 <= r.end && img[p + 32] === 0xc0) {
          const sp = p + 32;
          const c = dv.getUint32(sp + 20, true), n = Number(dv.getBigUint64(sp + 24, true));
          maxCluster = Math.max(maxCluster, c + Math.ceil(n / cs));
          if ((dv.getUint16(p + 4, true) & 0x10) && !seen.has(c)) {
            seen.add(c);
            const sub = chain(c, (img[sp + 1] & 2) !== 0, n);
            dirs.push(...sub);
            visit(sub, false);
          }
        }
      }
    }
  };
  visit(root, true);
  const usedFat = Math.min(fatBytes, Math.ceil((maxCluster + 64) * 4 / ss) * ss);
  return [
    { name: 'boot-sector', weight: 3, ranges: [{ start: 0, end: 120 }] },
    { name: 'boot-region', weight: 0.5, ranges: [{ start: 0, end: 12 * ss }] },
    { name: 'backup-boot', weight: 0.3, ranges: [{ start: 12 * ss, end: 24 * ss }] },
    { name: 'fat', weight: 3, ranges: [{ start: fatStart, end: fatStart + usedFat }] },
    { name: 'bitmap', weight: 1.5, ranges: bitmap.slice(0, 4) },
    { name: 'upcase', weight: 1, ranges: upcase },
    { name: 'root-dir', weight: 3, ranges: root },
    { name: 'dirs', weight: 3, ranges: dirs },
  ].filter(r => r.ranges.length > 0);
}

export const exfat: FuzzTarget = {
  fs: 'exfat',
  mountType: 'exfat',
  readWrite: true,
  seeds: [exfatSeed(512, 4), exfatSeed(4096, 8)],
  regions: exfatRegions,
};
