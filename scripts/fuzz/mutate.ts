// Mutators: a few byte-level edits per mutant, mostly aimed at the named
// metadata regions that a file system's region finder reports, a few
// anywhere in the image.
import { copyFile, open } from 'node:fs/promises';
import { mutantRng, type Rng } from './prng.js';

/** Half-open byte range [start, end) of the image. */
export interface Range { start: number; end: number }

/** A named part of the image's metadata (boot sector, FAT, directory extents, ...). */
export interface Region { name: string; weight: number; ranges: Range[] }

/** One edit: the bytes that end up at offset, and why. */
export interface Patch { region: string; op: string; offset: number; bytes: number[] }

/** Share of patches aimed at the whole image rather than a named region. */
const ANYWHERE_SHARE = 0.08;

const SPECIAL8 = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];
const SPECIAL16 = [0x0000, 0xffff, 0x7fff, 0x8000, 0x0001, 0xfffe];
const SPECIAL32 = [0x00000000, 0xffffffff, 0x7fffffff, 0x80000000, 0x00000001, 0xfffffffe];

function le(v: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(v / 2 ** (8 * i)) & 0xff);
}

type Op = { name: string; weight: number; width: (rng: Rng) => number; bytes: (rng: Rng, old: (i: number) => number, n: number) => number[] };

const ops: Op[] = [
  { name: 'bitflip', weight: 30, width: () => 1, bytes: (rng, old) => [old(0) ^ (1 << rng.int(8))] },
  { name: 'byte-random', weight: 14, width: () => 1, bytes: rng => [rng.int(256)] },
  { name: 'byte-special', weight: 16, width: () => 1, bytes: rng => [rng.pick(SPECIAL8)] },
  { name: 'le16-special', weight: 12, width: () => 2, bytes: rng => le(rng.pick(SPECIAL16), 2) },
  { name: 'le32-special', weight: 12, width: () => 4, bytes: rng => le(rng.pick(SPECIAL32), 4) },
  { name: 'be32-special', weight: 6, width: () => 4, bytes: rng => le(rng.pick(SPECIAL32), 4).reverse() },
  { name: 'run-random', weight: 6, width: rng => 2 + rng.int(15), bytes: (rng, _old, n) => Array.from({ length: n }, () => rng.int(256)) },
  { name: 'run-zero', weight: 4, width: rng => 2 + rng.int(31), bytes: (_rng, _old, n) => new Array<number>(n).fill(0) },
];

/** How many patches a mutant gets: mostly one or two, sometimes a handful. */
const PATCH_COUNTS = [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 6, 8];

/**
 * The patches of one mutant. `image` is the seed (read only); every patch
 * lies inside the ranges of the region it names ('anywhere': the image).
 */
export function mutate(image: Uint8Array, regions: readonly Region[], rng: Rng): Patch[] {
  const aimed = regions.filter(r => r.weight > 0 && r.ranges.some(x => x.end > x.start));
  const overlay = new Map<number, number>();
  const old = (off: number) => overlay.get(off) ?? image[off];
  const patches: Patch[] = [];
  for (let k = rng.pick(PATCH_COUNTS); k > 0; k--) {
    const region: Region = aimed.length === 0 || rng.next() < ANYWHERE_SHARE
      ? { name: 'anywhere', weight: 1, ranges: [{ start: 0, end: image.length }] }
      : rng.weighted(aimed, r => r.weight);
    const range = rng.weighted(region.ranges.filter(x => x.end > x.start), x => x.end - x.start);
    const op = rng.weighted(ops, o => o.weight);
    const len = range.end - range.start;
    const width = Math.min(op.width(rng), len);
    let offset = range.start + rng.int(len - width + 1);
    // Fields are mostly aligned to their width: aim there half of the time.
    if (width > 1 && width <= 4 && rng.next() < 0.5) offset = Math.max(range.start, offset - (offset % width));
    const bytes = op.bytes(rng, i => old(offset + i), width).slice(0, width);
    bytes.forEach((b, i) => overlay.set(offset + i, b));
    patches.push({ region: region.name, op: op.name, offset, bytes });
  }
  return patches;
}

/** The patches of mutant `index`, from its identity alone. */
export function mutantPatches(fs: string, seedName: string, image: Uint8Array, regions: readonly Region[], campaignSeed: number, index: number): Patch[] {
  return mutate(image, regions, mutantRng(fs, seedName, campaignSeed, index));
}

/** The mutant as a file: a copy of the seed with the patches written in order. */
export async function writeMutant(seedPath: string, patches: readonly Patch[], dest: string): Promise<void> {
  await copyFile(seedPath, dest);
  const fh = await open(dest, 'r+');
  try {
    for (const p of patches) await fh.write(Uint8Array.from(p.bytes), 0, p.bytes.length, p.offset);
  } finally {
    await fh.close();
  }
}
