// The mount's private data, and logical block addressing: a block of a
// partition (by partition reference number, the index in the logical
// volume's map table) -> a sector of the medium, through a type 1 map, a
// sparable partition's sparing table, a virtual partition's VAT or a
// metadata partition's metadata file. Everything read goes through the
// buffer cache one logical block at a time and is range-checked first.
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
}

/** Vnode keys: an ICB's partition reference and block, in one safe integer. */
export const udf_key = (part: number, lb: number): number => part * 0x1_0000_0000 + lb;
export const udf_key_part = (key: number): number => Math.floor(key / 0x1_0000_0000);
export const udf_key_lb = (key: number): number => key % 0x1_0000_0000;

/** Sector -> its bytes (a copy), read through the buffer cache. */
export async function udf_bread(ump: UdfMount, sector: number, where: string): Promise<Uint8Array> {
  const off = sector * ump.bsize;
  if (!Number.isSafeInteger(off) || sector < 0 || off + ump.bsize > ump.dev.size) {
    udf_corrupt(`${where}: sector ${sector} is outside the medium (${Math.floor(ump.dev.size / ump.bsize)} sectors)`);
  }
  const bp = await bread(ump.dev, off, ump.bsize);
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
  const t = udf_tag(b, lb, where);
  if (!t) udf_corrupt(`${where}: no descriptor at block ${lb}`);
  if (!idents.includes(t.ident)) udf_corrupt(`${where}: descriptor ${t.ident} at block ${lb}, expected ${idents.join(' or ')}`);
  return { b, ident: t.ident };
}
