// ISO 9660: seeds from genisoimage (Rock Ridge + Joliet, and plain with
// deep nesting), and where the metadata lies: volume descriptors, path
// tables, directory extents of every tree, and the SUSP areas (Rock Ridge)
// inside directory records, including their continuation areas.
import path from 'node:path';
import type { Range, Region } from './mutate.js';
import { makeTree, run, type SeedSpec } from './seeds.js';
import type { FuzzTarget } from './targets.js';

const SECTOR = 2048;
/** Bounds for the region finder, in case a seed is odder than expected. */
const MAX_VDS = 32, MAX_DIRS = 256;

function isoSeed(name: string, flags: string[]): SeedSpec {
  return {
    name,
    build(out, work) {
      const tree = path.join(work, 'tree');
      makeTree(tree, flags.includes('-R'));
      run('genisoimage', ['-quiet', ...flags, '-V', 'FUZZ', '-o', out, tree]);
    },
  };
}

const le32 = (img: Uint8Array, p: number) => new DataView(img.buffer, img.byteOffset).getUint32(p, true);
const be32 = (img: Uint8Array, p: number) => new DataView(img.buffer, img.byteOffset).getUint32(p, false);

export function isoRegions(img: Uint8Array): Region[] {
  const inImage = (r: Range): Range => ({ start: Math.min(r.start, img.length), end: Math.min(r.end, img.length) });
  const vds: Range[] = [], pathTables: Range[] = [], roots: Range[] = [], dirs: Range[] = [], susp: Range[] = [];
  const seen = new Set<number>();

  // SUSP entries: note continuation areas (CE) as SUSP too.
  const suspArea = (start: number, end: number) => {
    susp.push({ start, end });
    for (let p = start; p + 4 <= end && img[p + 2] >= 4; p += img[p + 2]) {
      if (img[p] === 0x43 && img[p + 1] === 0x45 && p + 28 <= end) { // 'CE'
        const at = le32(img, p + 4) * SECTOR + le32(img, p + 12);
        susp.push(inImage({ start: at, end: at + le32(img, p + 20) }));
      }
    }
  };
  const walk = (extent: number, size: number, out: Range[]) => {
    if (seen.has(extent) || seen.size >= MAX_DIRS) return;
    seen.add(extent);
    const range = inImage({ start: extent * SECTOR, end: extent * SECTOR + size });
    out.push(range);
    for (let p = range.start; p < range.end;) {
      const len = img[p];
      if (len === 0) { p = (Math.floor(p / SECTOR) + 1) * SECTOR; continue; }
      const nameLen = img[p + 32];
      const su = p + 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0);
      if (su < p + len) suspArea(su, p + len);
      const special = nameLen === 1 && img[p + 33] <= 1; // '.' or '..'
      if ((img[p + 25] & 2) && !special) walk(le32(img, p + 2), le32(img, p + 10), dirs);
      p += len;
    }
  };

  for (let s = 16; s < 16 + MAX_VDS && (s + 1) * SECTOR <= img.length; s++) {
    const at = s * SECTOR;
    vds.push({ start: at, end: at + SECTOR });
    const type = img[at];
    if (type === 255) break;
    if (type !== 1 && type !== 2) continue;
    const size = le32(img, at + 132);
    pathTables.push(inImage({ start: le32(img, at + 140) * SECTOR, end: le32(img, at + 140) * SECTOR + size }));
    pathTables.push(inImage({ start: be32(img, at + 148) * SECTOR, end: be32(img, at + 148) * SECTOR + size }));
    walk(le32(img, at + 156 + 2), le32(img, at + 156 + 10), roots);
  }
  return [
    { name: 'volume-descriptors', weight: 3, ranges: vds },
    { name: 'path-tables', weight: 1.5, ranges: pathTables },
    { name: 'root-dir', weight: 2, ranges: roots },
    { name: 'dirs', weight: 3, ranges: dirs },
    { name: 'susp', weight: 3, ranges: susp },
  ];
}

export const cd9660: FuzzTarget = {
  fs: 'cd9660',
  mountType: 'cd9660',
  readWrite: false,
  seeds: [isoSeed('rr-joliet', ['-R', '-J']), isoSeed('plain', ['-D'])],
  regions: isoRegions,
};
