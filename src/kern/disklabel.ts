// Partition tables: MBR (primary, extended and logical partitions) and GPT.
// Numbering follows Linux (sdb1..4 primary, logical from 5; GPT entry i is
// partition i+1), so `partition=N` means what it means to the host.
// Every on-disk value is checked before it is used: a corrupt table is EIO,
// or the bad entry is left out with a reason (logged and in `warnings`).
import type { BlockDevice } from './blkdev.js';
import { kerr } from './errno.js';
import { log } from './panic.js';

export interface Partition {
  index: number;
  /** Bytes from the start of the device. */
  offset: number;
  size: number;
  /** '0x0c' for MBR; a short name ('efi', 'linux', ...) or the type GUID for GPT. */
  type: string;
  /** GPT partition name. */
  name?: string;
}

export interface PartitionTable {
  scheme: 'mbr' | 'gpt' | 'none';
  partitions: Partition[];
  /** Entries left out or tables not used, and why. */
  warnings: string[];
}

/** Bound on EBRs followed, as Linux's limit on partitions per disk. */
const MAX_LOGICAL = 256;
/** Bound on a GPT entry array we are willing to read (spec minimum is 16 KiB). */
const MAX_GPT_ARRAY = 4 << 20;

const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
const GPT_PROTECTIVE = 0xee;

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
/** 64-bit little-endian; values past 2^53 cannot be a real LBA, so they become Infinity (and fail range checks). */
function u64(b: Uint8Array, o: number): number {
  const hi = u32(b, o + 4);
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + u32(b, o);
}

export async function readPartitions(dev: BlockDevice): Promise<PartitionTable> {
  const ss = dev.sectorSize;
  const warnings: string[] = [];
  const warn = (why: string) => { warnings.push(why); log(`${dev.path}: ${why}`); };
  if (dev.size < ss) return { scheme: 'none', partitions: [], warnings };
  const sector0 = await readSector(dev, 0);
  if (sector0[510] !== 0x55 || sector0[511] !== 0xaa) return { scheme: 'none', partitions: [], warnings };
  const entries = [0, 1, 2, 3].map((i) => mbrEntry(sector0, 446 + 16 * i));
  // A FAT boot sector also ends in 55aa; its code in the table area shows as
  // boot indicators other than 0 and 0x80 (Linux's test).
  if (entries.some((e) => e.boot !== 0 && e.boot !== 0x80)) return { scheme: 'none', partitions: [], warnings };
  if (entries.some((e) => e.type === GPT_PROTECTIVE)) {
    return { scheme: 'gpt', partitions: await readGpt(dev, warn), warnings };
  }
  return { scheme: 'mbr', partitions: await readMbr(dev, entries, warn), warnings };
}

async function readSector(dev: BlockDevice, lba: number, count = 1): Promise<Uint8Array> {
  const buf = new Uint8Array(dev.sectorSize * count);
  await dev.read(buf, lba * dev.sectorSize);
  return buf;
}

interface MbrEntry { boot: number; type: number; start: number; count: number }

function mbrEntry(b: Uint8Array, o: number): MbrEntry {
  return { boot: b[o], type: b[o + 4], start: u32(b, o + 8), count: u32(b, o + 12) };
}

const hex2 = (t: number) => `0x${t.toString(16).padStart(2, '0')}`;

/** Whether sectors start..start+count-1 lie within lo..hi-1; if not, say so. */
function inside(warn: (why: string) => void, index: number, start: number, count: number, lo: number, hi: number, where: string): boolean {
  if (start >= lo && start + count <= hi) return true;
  warn(`partition ${index} (sectors ${start}+${count}) lies outside ${where} (sectors ${lo}..${hi - 1}); ignored`);
  return false;
}

async function readMbr(dev: BlockDevice, primaries: MbrEntry[], warn: (why: string) => void): Promise<Partition[]> {
  const ss = dev.sectorSize;
  const sectors = Math.floor(dev.size / ss);
  const parts: Partition[] = [];
  const extended: MbrEntry[] = [];
  primaries.forEach((e, i) => {
    if (e.type === 0 || e.count === 0) return;
    if (!inside(warn, i + 1, e.start, e.count, 1, sectors, 'the disk')) return;
    parts.push({ index: i + 1, offset: e.start * ss, size: e.count * ss, type: hex2(e.type) });
    if (EXTENDED_TYPES.has(e.type)) extended.push(e);
  });
  let next = 5;
  for (const ext of extended) {
    next = await readLogicals(dev, ext, next, parts, warn);
  }
  return parts;
}

/**
 * Follow the EBR chain of one extended partition. Logical entries are relative
 * to their EBR, links to the extended partition's start; every EBR must lie
 * inside the extended partition and is visited once (a looping chain stops).
 */
async function readLogicals(
  dev: BlockDevice, ext: MbrEntry, next: number, parts: Partition[], warn: (why: string) => void,
): Promise<number> {
  const ss = dev.sectorSize;
  const extEnd = ext.start + ext.count;
  const seen = new Set<number>();
  let ebr = ext.start;
  for (;;) {
    if (seen.size === MAX_LOGICAL) { warn(`extended partition: more than ${MAX_LOGICAL} EBRs; stopped`); break; }
    if (seen.has(ebr)) { warn(`extended partition: EBR chain loops back to sector ${ebr}; stopped`); break; }
    seen.add(ebr);
    const b = await readSector(dev, ebr);
    if (b[510] !== 0x55 || b[511] !== 0xaa) { warn(`extended partition: no signature in EBR at sector ${ebr}; stopped`); break; }
    let link: number | undefined;
    for (let i = 0; i < 4; i++) {
      const e = mbrEntry(b, 446 + 16 * i);
      if (e.type === 0 || e.count === 0) continue;
      if (EXTENDED_TYPES.has(e.type)) {
        link ??= ext.start + e.start;
        continue;
      }
      const index = next++;
      const start = ebr + e.start;
      if (inside(warn, index, start, e.count, ebr + 1, extEnd, 'its extended partition')) {
        parts.push({ index, offset: start * ss, size: e.count * ss, type: hex2(e.type) });
      }
    }
    if (link === undefined) break;
    if (link < ext.start || link >= extEnd) { warn(`extended partition: EBR link to sector ${link} lies outside it; stopped`); break; }
    ebr = link;
  }
  return next;
}

// ---- GPT ----

interface GptHeader { entriesLba: number; count: number; entrySize: number; arrayCrc: number; firstUsable: number; lastUsable: number }

/** Primary header at LBA 1; if it or its entry array is bad, the backup at the last LBA. */
async function readGpt(dev: BlockDevice, warn: (why: string) => void): Promise<Partition[]> {
  const sectors = Math.floor(dev.size / dev.sectorSize);
  const reasons: string[] = [];
  for (const [which, lba] of [['primary', 1], ['backup', sectors - 1]] as const) {
    const table = lba < 1 ? 'disk too small' : await readGptAt(dev, lba, sectors, warn);
    if (typeof table !== 'string') {
      for (const r of reasons) warn(`GPT: primary table unusable (${r}); using the backup`);
      return table;
    }
    reasons.push(`${which} header at LBA ${lba}: ${table}`);
  }
  throw kerr('EIO', `${dev.path}: protective MBR but no valid GPT (${reasons.join('; ')})${await otherSectorSizeHint(dev)}`);
}

/** The partitions of the GPT whose header is at lba, or why it is unusable. */
async function readGptAt(dev: BlockDevice, lba: number, sectors: number, warn: (why: string) => void): Promise<Partition[] | string> {
  const h = await readGptHeader(dev, lba, sectors);
  if (typeof h === 'string') return h;
  const bytes = h.count * h.entrySize;
  const array = await readSector(dev, h.entriesLba, Math.ceil(bytes / dev.sectorSize));
  if (crc32(array.subarray(0, bytes)) !== h.arrayCrc) return 'partition entry array CRC mismatch';
  return gptEntries(array, h, dev.sectorSize, sectors, warn);
}

/** A header, or why it is unusable. */
async function readGptHeader(dev: BlockDevice, lba: number, sectors: number): Promise<GptHeader | string> {
  const b = await readSector(dev, lba);
  if (String.fromCharCode(...b.subarray(0, 8)) !== 'EFI PART') return 'no "EFI PART" signature';
  const hsize = u32(b, 12);
  if (hsize < 92 || hsize > b.length) return `header size ${hsize} out of range`;
  const hdr = b.slice(0, hsize);
  hdr.fill(0, 16, 20);
  if (crc32(hdr) !== u32(b, 16)) return 'header CRC mismatch';
  if (u64(b, 24) !== lba) return `header claims to be at LBA ${u64(b, 24)}`;
  const h: GptHeader = {
    firstUsable: u64(b, 40), lastUsable: u64(b, 48), entriesLba: u64(b, 72),
    count: u32(b, 80), entrySize: u32(b, 84), arrayCrc: u32(b, 88),
  };
  if (h.firstUsable > h.lastUsable || h.lastUsable >= sectors) return `usable LBAs ${h.firstUsable}..${h.lastUsable} outside the disk`;
  if (h.entrySize < 128 || h.entrySize % 8 !== 0) return `entry size ${h.entrySize} invalid`;
  const bytes = h.count * h.entrySize;
  if (bytes > MAX_GPT_ARRAY) return `entry array of ${bytes} bytes too large`;
  const arraySectors = Math.ceil(bytes / dev.sectorSize);
  if (h.entriesLba < 1 || h.entriesLba + arraySectors > sectors) return `entry array at LBA ${h.entriesLba} outside the disk`;
  return h;
}

function gptEntries(array: Uint8Array, h: GptHeader, ss: number, sectors: number, warn: (why: string) => void): Partition[] {
  const parts: Partition[] = [];
  for (let i = 0; i < h.count; i++) {
    const e = array.subarray(i * h.entrySize, (i + 1) * h.entrySize);
    if (e.subarray(0, 16).every((x) => x === 0)) continue;
    const first = u64(e, 32);
    const last = u64(e, 40);
    if (first < 1 || first > last || last >= sectors) {
      warn(`GPT partition ${i + 1} (LBA ${first}..${last}) lies outside the disk; ignored`);
      continue;
    }
    const name = utf16z(e.subarray(56, 128));
    parts.push({
      index: i + 1, offset: first * ss, size: (last - first + 1) * ss,
      type: gptTypeName(guid(e, 0)), ...(name ? { name } : {}),
    });
  }
  return parts;
}

/** UTF-16LE up to the first NUL. */
function utf16z(b: Uint8Array): string {
  let s = '';
  for (let o = 0; o + 1 < b.length; o += 2) {
    const c = u16(b, o);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** GUID text: the first three fields are stored little-endian. */
function guid(b: Uint8Array, o: number): string {
  const h = (from: number, to: number) => Array.from(b.subarray(o + from, o + to), (x) => x.toString(16).padStart(2, '0')).join('');
  const le = (from: number, to: number) => Array.from(b.subarray(o + from, o + to)).reverse().map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${h(8, 10)}-${h(10, 16)}`;
}

const GPT_TYPES: Record<string, string> = {
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'efi',
  '21686148-6449-6e6f-744e-656564454649': 'bios-boot',
  'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7': 'msdata',
  '0fc63daf-8483-4772-8e79-3d69d8477de4': 'linux',
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'linux-swap',
  'e6d6d379-f507-44c2-a23c-238f2a3df928': 'linux-lvm',
  'a19d880f-05fc-4d3b-a006-743f0f84911e': 'linux-raid',
};

/** A short name for well-known types, else the type GUID. */
function gptTypeName(g: string): string {
  return GPT_TYPES[g] ?? g;
}

/** A GPT written for the other common sector size is a likely cause; say so. */
async function otherSectorSizeHint(dev: BlockDevice): Promise<string> {
  const other = dev.sectorSize === 512 ? 4096 : 512;
  if (dev.size < other + 8) return '';
  const b = new Uint8Array(8);
  await dev.read(b, other);
  return String.fromCharCode(...b) === 'EFI PART' ? `; a GPT header for ${other}-byte sectors exists: open with sectorSize ${other}` : '';
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib and the UEFI spec). */
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
