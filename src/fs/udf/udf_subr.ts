// The mount's private data, and logical block addressing: a block of a
// partition (by partition reference number, the index in the logical
// volume's map table) -> a sector of the medium, through a type 1 map, a
// sparable partition's sparing table, a virtual partition's VAT or a
// metadata partition's metadata file. What is read is range-checked first
// and goes through the buffer cache one logical block at a time, but for
// file entries, which are parsed into nodes and not kept (udf_withblock,
// udf_scanblocks).
import { bread, brelse, type BlockDevice } from '../../kern/index.js';
import { udf_corrupt, udf_tag, type AllocDesc } from './ecma167.js';

export type PartKind = 'phys' | 'sparable' | 'virtual' | 'meta';

export interface UdfPart {
  kind: PartKind;
  /** Partition number (the PD's), shared by a virtual/sparable/metadata map and its physical one. */
  number: number;
  /** First sector and length in blocks (from the PD). */
  start: number;
  length: number;
  /** sparable: packet length in blocks and remapped packets (packet's first lb -> sector). */
  packetLen?: number;
  spared?: Map<number, number>;
  /** virtual and meta: the reference of the type 1 map they live in. */
  phys?: number;
  /** virtual: the VAT (virtual block -> block of the physical partition). */
  vat?: Uint32Array;
  /** meta: the metadata file's extents in the physical partition, and its size. */
  metaExtents?: AllocDesc[];
}

export interface UdfMount {
  dev: BlockDevice;
  /** Logical block (= sector) size in bytes. */
  bsize: number;
  parts: UdfPart[];
  /** The root directory's ICB. */
  root: { part: number; lb: number };
  label: string;
  uid?: number;
  gid?: number;
  mode?: number;
  dmode?: number;
  unhide: boolean;
  /** Blocks for file entries, which are parsed into nodes and not kept (udf_withblock). */
  spareBlocks: Uint8Array[];
}

/** Vnode keys: an ICB's partition reference and block, in one safe integer. */
export const udf_key = (part: number, lb: number): number => part * 0x1_0000_0000 + lb;
export const udf_key_part = (key: number): number => Math.floor(key / 0x1_0000_0000);
export const udf_key_lb = (key: number): number => key % 0x1_0000_0000;

/** The byte offset of a sector, which must lie on the medium. */
function sectorOffset(ump: UdfMount, sector: number, where: string): number {
  const off = sector * ump.bsize;
  if (!Number.isSafeInteger(off) || sector < 0 || off + ump.bsize > ump.dev.size) {
    udf_corrupt(`${where}: sector ${sector} is outside the medium (${Math.floor(ump.dev.size / ump.bsize)} sectors)`);
  }
  return off;
}

/** Sector -> its bytes (a copy), read through the buffer cache. */
export async function udf_bread(ump: UdfMount, sector: number, where: string): Promise<Uint8Array> {
  const bp = await bread(ump.dev, sectorOffset(ump, sector, where), ump.bsize);
  const b = bp.data.slice();
  brelse(bp);
  return b;
}

function partOf(ump: UdfMount, part: number, where: string): UdfPart {
  const p = ump.parts[part];
  if (!p) udf_corrupt(`${where}: partition reference ${part} (the volume has ${ump.parts.length})`);
  return p;
}

function physBlock(p: UdfPart, lb: number, where: string): number {
  if (lb >= p.length) udf_corrupt(`${where}: block ${lb} is past the end of partition ${p.number} (${p.length} blocks)`);
  if (p.spared) {
    const off = lb % p.packetLen!;
    const m = p.spared.get(lb - off);
    if (m !== undefined) return m + off;
  }
  return p.start + lb;
}

/** The sector holding block lb of partition reference part. */
export function udf_translate(ump: UdfMount, part: number, lb: number, where: string): number {
  const p = partOf(ump, part, where);
  switch (p.kind) {
    case 'phys': case 'sparable':
      return physBlock(p, lb, where);
    case 'virtual': {
      if (lb >= p.vat!.length) udf_corrupt(`${where}: virtual block ${lb} is past the VAT (${p.vat!.length} entries)`);
      const v = p.vat![lb];
      if (v === 0xffffffff) udf_corrupt(`${where}: virtual block ${lb} is not in use`);
      return physBlock(partOf(ump, p.phys!, where), v, where);
    }
    case 'meta': {
      let at = lb * ump.bsize;
      for (const e of p.metaExtents!) {
        if (at < e.length) {
          if (e.type !== 0) udf_corrupt(`${where}: metadata block ${lb} is not recorded`);
          return physBlock(partOf(ump, p.phys!, where), e.lb + Math.floor(at / ump.bsize), where);
        }
        at -= e.length;
      }
      udf_corrupt(`${where}: metadata block ${lb} is past the metadata file`);
    }
  }
}

/** The first sector of blocks lb..lb+n-1 when they lie in a row on the medium, else null. */
export function udf_contig(ump: UdfMount, part: number, lb: number, n: number, where: string): number | null {
  const p = partOf(ump, part, where);
  if (p.kind !== 'phys' && p.kind !== 'sparable') return null;
  if (lb + n > p.length) udf_corrupt(`${where}: blocks ${lb}+${n} run past the end of partition ${p.number} (${p.length} blocks)`);
  if (p.spared?.size) {
    const pl = p.packetLen!;
    for (let k = lb - (lb % pl); k < lb + n; k += pl) if (p.spared.has(k)) return null;
  }
  return p.start + lb;
}

/** Block lb of partition reference part. */
export async function udf_readblock(ump: UdfMount, part: number, lb: number, where: string): Promise<Uint8Array> {
  return udf_bread(ump, udf_translate(ump, part, lb, where), where);
}

/** Block lb of part holding a descriptor of one of the wanted kinds, its tag checked (location = lb). */
export async function udf_readtagged(ump: UdfMount, part: number, lb: number, where: string, ...idents: number[]): Promise<{ b: Uint8Array; ident: number }> {
  const b = await udf_readblock(ump, part, lb, where);
  return { b, ident: udf_tagged(b, lb, where, idents) };
}

/** The ident of the tag of block lb's bytes b, checked to be one of idents. */
export function udf_tagged(b: Uint8Array, lb: number, where: string, idents: readonly number[]): number {
  const t = udf_tag(b, lb, where);
  if (!t) udf_corrupt(`${where}: no descriptor at block ${lb}`);
  if (!idents.includes(t.ident)) udf_corrupt(`${where}: descriptor ${t.ident} at block ${lb}, expected ${idents.join(' or ')}`);
  return t.ident;
}

/** Sectors between two wanted ones that a scan reads through rather than start another device read. */
const SCAN_GAP = 8;
/** Sectors in one device read of a scan, at most. */
const SCAN_RUN = 64;

/**
 * fn(i, b) for each block blocks[i], with its bytes b in place in a scratch
 * buffer, read past the buffer cache: sorted, each run of them (gaps of up
 * to SCAN_GAP sectors read through) in one device read. For what is looked
 * at once and not kept: a directory's file entries for their types (one
 * cached read each was most of a cold listing's time, and 2 KiB of cache per
 * file for a byte of it). A block that cannot be translated or read is
 * skipped: its own read reports it when it is needed.
 */
export async function udf_scanblocks(ump: UdfMount, blocks: readonly { part: number; lb: number }[], fn: (i: number, b: Uint8Array) => void): Promise<void> {
  const bs = ump.bsize, sectors = Math.floor(ump.dev.size / bs);
  const at: { sector: number; i: number }[] = [];
  blocks.forEach(({ part, lb }, i) => {
    try {
      const sector = udf_translate(ump, part, lb, 'scan');
      if (sector < sectors) at.push({ sector, i });
    } catch {
      // Reported by the block's own read.
    }
  });
  if (at.length === 0) return;
  at.sort((a, b) => a.sector - b.sector);
  // No run is longer than SCAN_RUN sectors, nor than all of them span.
  const scratch = new Uint8Array(Math.min(SCAN_RUN, at[at.length - 1].sector - at[0].sector + 1) * bs);
  for (let k = 0; k < at.length;) {
    const first = at[k].sector;
    let j = k + 1;
    while (j < at.length && at[j].sector - at[j - 1].sector <= SCAN_GAP && at[j].sector - first < SCAN_RUN) j++;
    const run = scratch.subarray(0, (at[j - 1].sector - first + 1) * bs);
    const from = k;
    k = j;
    try {
      await ump.dev.read(run, first * bs);
    } catch {
      continue; // Left to each block's own read.
    }
    for (let m = from; m < j; m++) {
      const o = (at[m].sector - first) * bs;
      fn(at[m].i, run.subarray(o, o + bs));
    }
  }
}

/** Spare blocks a mount keeps for file entries (more only while more load at once). */
const SPARE_BLOCKS = 8;

/**
 * fn on the bytes of block lb of part, read into a block of the mount's own
 * past the buffer cache, given back once fn is done: a file entry is parsed
 * into its node, which keeps what it needs; caching its block too, and a
 * copy per load, cost 4 KiB of fresh memory per file looked up (ls -l of
 * 10,000 files after a listing: 0.76 -> 0.64 s).
 */
export async function udf_withblock<T>(ump: UdfMount, part: number, lb: number, where: string, fn: (b: Uint8Array) => Promise<T>): Promise<T> {
  const off = sectorOffset(ump, udf_translate(ump, part, lb, where), where);
  let b = ump.spareBlocks.pop();
  if (b?.length !== ump.bsize) b = new Uint8Array(ump.bsize);
  try {
    await ump.dev.read(b, off);
    return await fn(b);
  } finally {
    if (ump.spareBlocks.length < SPARE_BLOCKS) ump.spareBlocks.push(b);
  }
}
