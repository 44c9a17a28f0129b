// NTFS on-disk structures (NetBSD's ntfs.h, Linux's layout.h): the boot
// sector, multi-sector protected records (MFT records, index blocks) and
// their update sequence fixups, attribute headers, mapping pairs (runlists),
// $FILE_NAME keys, index entries and times. Every parser checks each offset
// and length against the bytes it was given: bad data is EIO plus a log
// line, never a read past the buffer.
import { kerr, log, type Timespec } from '../../kern/index.js';

export const NTFS_OEM = 'NTFS    ';

/** System files (record numbers); records below FIRST_USER are the file system's own. */
export const NTFS_MFTINO = 0, NTFS_VOLUMEINO = 3, NTFS_ROOTINO = 5, NTFS_UPCASEINO = 10, NTFS_FIRST_USER = 16;

/**
 * Vnode keys (file ids) are record numbers, but for $MFT's own record 0:
 * readdir(3) drops entries whose d_ino is 0, so $MFT gets 2^32 - 1, a
 * record number only an MFT of 4 TiB could reach (and file ids cross FUSE
 * as 32 bits today).
 */
const MFT_KEY = 0xffffffff;
export const ntfs_ino2key = (ino: number): number => ino === NTFS_MFTINO ? MFT_KEY : ino;
export const ntfs_key2ino = (key: number): number => key === MFT_KEY ? NTFS_MFTINO : key;

/** Attribute types. */
export const AT_STANDARD_INFORMATION = 0x10, AT_ATTRIBUTE_LIST = 0x20, AT_FILE_NAME = 0x30,
  AT_VOLUME_INFORMATION = 0x70, AT_DATA = 0x80, AT_INDEX_ROOT = 0x90,
  AT_INDEX_ALLOCATION = 0xa0, AT_REPARSE_POINT = 0xc0, AT_END = 0xffffffff;

/** Attribute header flags. */
export const ATTR_COMPRESSED = 0x0001, ATTR_ENCRYPTED = 0x4000, ATTR_SPARSE = 0x8000;

/** MFT record flags. */
export const MFT_RECORD_IN_USE = 0x0001, MFT_RECORD_IS_DIRECTORY = 0x0002;

/** $FILE_NAME namespaces: DOS-only 8.3 names are hidden. */
export const FILE_NAME_POSIX = 0, FILE_NAME_WIN32 = 1, FILE_NAME_DOS = 2, FILE_NAME_WIN32_AND_DOS = 3;

/** File attribute bits ($STANDARD_INFORMATION, $FILE_NAME); the last: a $FILE_NAME of a directory. */
export const FILE_ATTR_SYSTEM = 0x0004, FILE_ATTR_REPARSE_POINT = 0x0400, FILE_ATTR_I30_INDEX_PRESENT = 0x10000000;

/** Reparse tags shown as symbolic links: junctions, Windows symlinks, WSL symlinks. */
export const IO_REPARSE_TAG_MOUNT_POINT = 0xa0000003, IO_REPARSE_TAG_SYMLINK = 0xa000000c, IO_REPARSE_TAG_LX_SYMLINK = 0xa000001d;

/** Index entry flags. */
export const INDEX_ENTRY_NODE = 0x01, INDEX_ENTRY_END = 0x02;

/** $Volume's VOLUME_INFORMATION flag for a volume not cleanly unmounted. */
export const VOLUME_IS_DIRTY = 0x0001;

/** Update sequence strides are always 512 bytes, whatever the sector size. */
export const NTFS_BLOCK_SIZE = 512;

export function corrupt(what: string): never {
  log(`ntfs: ${what}`);
  throw kerr('EIO', what);
}

export const u16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
export const u32 = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
/** A 64-bit field as a number; above 2^53 is taken as damage. */
export function u64(b: Uint8Array, o: number, what: string): number {
  const lo = u32(b, o), hi = u32(b, o + 4);
  if (hi >= 0x200000) corrupt(`${what}: value ${hi.toString(16)}${lo.toString(16).padStart(8, '0')}h is out of range`);
  return hi * 0x100000000 + lo;
}
/** A file reference: MFT record number (48 bits) and sequence number. */
export function mref(b: Uint8Array, o: number): { ino: number; seq: number } {
  return { ino: u32(b, o) + u16(b, o + 4) * 0x100000000, seq: u16(b, o + 6) };
}

export function utf16(b: Uint8Array, o: number, chars: number): string {
  let s = '';
  for (let i = 0; i < chars; i++) s += String.fromCharCode(u16(b, o + 2 * i));
  return s;
}

const EPOCH_DIFF = 116444736000000000n;
/** NTFS time: 100 ns units since 1601-01-01 UTC. */
export function ntfsTime(b: Uint8Array, o: number): Timespec {
  // t = hi * 2^32 + lo, 2^32 = 429 * 10^7 + 4967296: seconds and the rest by
  // numbers, exactly while hi * 4967296 + lo stays below 2^53 (until the year
  // ~25,000), not by BigInt (every directory entry has four of these).
  const lo = u32(b, o), hi = u32(b, o + 4);
  if (hi < EXACT_HI) {
    const m = hi * 4967296 + lo;
    const rest = m % 10_000_000;
    return { sec: hi * 429 + (m - rest) / 10_000_000 - EPOCH_DIFF_SEC, nsec: rest * 100 };
  }
  const d = (BigInt(lo) | (BigInt(hi) << 32n)) - EPOCH_DIFF;
  let sec = d / 10_000_000n, rem = d % 10_000_000n;
  if (rem < 0n) { rem += 10_000_000n; sec -= 1n; }
  return { sec: Number(sec), nsec: Number(rem) * 100 };
}

/** The high word below which ntfsTime's arithmetic on numbers is exact. */
const EXACT_HI = Math.floor((Number.MAX_SAFE_INTEGER - 0xffffffff) / 4967296);
const EPOCH_DIFF_SEC = 11644473600;

export interface BootSector {
  bytesPerSector: number;
  clusterSize: number;
  totalSectors: number;
  mftLcn: number;
  mftRecordSize: number;
  indexBlockSize: number;
  serial: string;
}

/** Sizes given as clusters, or as 2^-v bytes when the signed byte is negative. */
function sizeField(v: number, clusterSize: number): number {
  const s = (v << 24) >> 24;
  return s > 0 ? s * clusterSize : s < 0 && s >= -31 ? 2 ** -s : 0;
}

/** Parse and check the boot sector; null if it is not NTFS at all. */
export function parseBootSector(b: Uint8Array): BootSector | null {
  if (String.fromCharCode(...b.subarray(3, 11)) !== NTFS_OEM) return null;
  const bad = (what: string): never => { throw kerr('EINVAL', `not a usable NTFS boot sector: ${what}`); };
  const bps = u16(b, 11);
  if (bps < 256 || bps > 4096 || (bps & (bps - 1))) bad(`bytes per sector ${bps}`);
  const spcRaw = b[13];
  const spc = spcRaw <= 0x80 ? spcRaw : 2 ** (256 - spcRaw);
  if (spc === 0 || (spc & (spc - 1))) bad(`sectors per cluster ${spcRaw}`);
  const clusterSize = bps * spc;
  if (clusterSize > 2 << 20) bad(`cluster size ${clusterSize}`);
  if (b[510] !== 0x55 || b[511] !== 0xaa) bad('no 55 AA signature');
  const totalLo = u32(b, 0x28), totalHi = u32(b, 0x2c);
  const mftLo = u32(b, 0x30), mftHi = u32(b, 0x34);
  if (totalHi >= 0x200000 || mftHi >= 0x200000) bad('sector or cluster numbers out of range');
  const mftRecordSize = sizeField(b[0x40], clusterSize);
  const indexBlockSize = sizeField(b[0x44], clusterSize);
  for (const [n, v] of [['MFT record', mftRecordSize], ['index block', indexBlockSize]] as const) {
    if (v < NTFS_BLOCK_SIZE || v > 65536 || (v & (v - 1))) bad(`${n} size ${v}`);
  }
  const serial = [...b.subarray(0x48, 0x50)].reverse().map(x => x.toString(16).padStart(2, '0')).join('');
  return {
    bytesPerSector: bps, clusterSize, totalSectors: totalHi * 0x100000000 + totalLo,
    mftLcn: mftHi * 0x100000000 + mftLo, mftRecordSize, indexBlockSize, serial,
  };
}

/**
 * Apply the update sequence fixups of a multi-sector protected record in
 * place: the last two bytes of every 512-byte stride must hold the update
 * sequence number (else the record was torn or damaged); the array gives the
 * bytes that belong there.
 */
export function applyFixups(rec: Uint8Array, magic: string, where: string): void {
  if (String.fromCharCode(rec[0], rec[1], rec[2], rec[3]) !== magic) corrupt(`${where}: no ${magic} signature`);
  const usaOfs = u16(rec, 4), usaCount = u16(rec, 6);
  const strides = rec.length / NTFS_BLOCK_SIZE;
  if (usaCount !== strides + 1 || usaOfs & 1 || usaOfs < 8 || usaOfs + 2 * usaCount > NTFS_BLOCK_SIZE - 2) {
    corrupt(`${where}: update sequence array (offset ${usaOfs}, ${usaCount} entries) does not fit a ${rec.length}-byte record`);
  }
  const usn = u16(rec, usaOfs);
  for (let i = 1; i <= strides; i++) {
    const end = i * NTFS_BLOCK_SIZE - 2;
    if (u16(rec, end) !== usn) corrupt(`${where}: update sequence mismatch in sector ${i - 1} (torn or damaged record)`);
    rec[end] = rec[usaOfs + 2 * i];
    rec[end + 1] = rec[usaOfs + 2 * i + 1];
  }
}

export interface RecordHeader {
  seq: number;
  linkCount: number;
  attrsOffset: number;
  flags: number;
  bytesInUse: number;
  base: number;
}

/** The header of an MFT record whose fixups are applied. */
export function parseRecordHeader(rec: Uint8Array, where: string): RecordHeader {
  const attrsOffset = u16(rec, 0x14);
  const bytesInUse = u32(rec, 0x18);
  if (u32(rec, 0x1c) !== rec.length) corrupt(`${where}: allocated size ${u32(rec, 0x1c)} is not the record size ${rec.length}`);
  if (bytesInUse > rec.length || attrsOffset < 0x2a || attrsOffset & 7 || attrsOffset + 8 > bytesInUse) {
    corrupt(`${where}: attributes at ${attrsOffset}, ${bytesInUse} bytes in use, do not fit`);
  }
  return {
    seq: u16(rec, 0x10), linkCount: u16(rec, 0x12), attrsOffset, flags: u16(rec, 0x16), bytesInUse,
    base: mref(rec, 0x20).ino,
  };
}

/** One run of a runlist: vcn..vcn+len map to lcn.. (lcn -1: sparse, reads as zeros). */
export interface Run { vcn: number; lcn: number; len: number }

export interface AttrHeader {
  type: number;
  name: string;
  flags: number;
  instance: number;
  /** Resident attributes: the value. */
  value?: Uint8Array;
  /** Non-resident attributes: */
  lowestVcn: number;
  highestVcn: number;
  runs: Run[];
  /** Compression unit, in clusters as a power of two (0: none). */
  compressionUnit: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressedSize: number;
}

/** VCNs stay below 2^48: byte offsets then fit a double exactly for any cluster size. */
const MAX_VCN = 2 ** 48;
/** The most runs one attribute extent may decode to: mapping pairs are at most a record long. */
const MAX_RUNS_PER_EXTENT = 65536;

/**
 * Decode mapping pairs: each a header byte (low nibble: length bytes, high
 * nibble: offset bytes), an unsigned run length and a signed LCN delta from
 * the previous run; no offset bytes is a sparse run. Runs must cover exactly
 * lowestVcn..highestVcn and lie inside the volume.
 */
export function decodeMappingPairs(b: Uint8Array, start: number, lowestVcn: number, highestVcn: number,
  totalClusters: number, where: string): Run[] {
  const runs: Run[] = [];
  let p = start, vcn = lowestVcn, lcn = 0;
  while (p < b.length && b[p] !== 0) {
    const h = b[p++];
    const ls = h & 0x0f, os = h >> 4;
    if (ls === 0 || ls > 8 || os > 8 || p + ls + os > b.length) corrupt(`${where}: mapping pair header ${h.toString(16)}h is invalid`);
    let len = 0;
    for (let i = ls - 1; i >= 0; i--) len = len * 256 + b[p + i];
    p += ls;
    // A hole may be larger than the volume; allocated clusters never are.
    if (len === 0 || len > (os === 0 ? MAX_VCN : totalClusters) || vcn + len > MAX_VCN) corrupt(`${where}: run of ${len} clusters at VCN ${vcn}`);
    if (os === 0) {
      runs.push({ vcn, lcn: -1, len });
    } else {
      let d = (b[p + os - 1] << 24) >> 24;
      for (let i = os - 2; i >= 0; i--) d = d * 256 + b[p + i];
      lcn += d;
      if (lcn < 0 || lcn + len > totalClusters) corrupt(`${where}: run at cluster ${lcn} (${len} clusters) is outside the volume (${totalClusters})`);
      runs.push({ vcn, lcn, len });
    }
    p += os;
    vcn += len;
    if (runs.length > MAX_RUNS_PER_EXTENT) corrupt(`${where}: too many runs`);
  }
  if (p >= b.length) corrupt(`${where}: mapping pairs are not terminated`);
  // An empty extent (no clusters) has highest VCN -1.
  if (vcn !== highestVcn + 1) corrupt(`${where}: runs cover VCN ${lowestVcn}..${vcn - 1}, header says ..${highestVcn}`);
  return runs;
}

/**
 * The attributes of an MFT record (fixups applied), up to the end marker.
 * Each one's length and inner offsets are checked against the record.
 */
export function parseAttributes(rec: Uint8Array, h: RecordHeader, totalClusters: number, where: string): AttrHeader[] {
  const out: AttrHeader[] = [];
  let p = h.attrsOffset;
  for (;;) {
    if (p + 4 > h.bytesInUse) corrupt(`${where}: attributes run past the bytes in use without an end marker`);
    const type = u32(rec, p);
    if (type === AT_END) break;
    const w = `${where}, attribute ${type.toString(16)}h at ${p}`;
    if (p + 0x18 > h.bytesInUse) corrupt(`${w}: header runs past the record`);
    const len = u32(rec, p + 4);
    if (len < 0x18 || len & 7 || p + len > h.bytesInUse) corrupt(`${w}: length ${len} is invalid`);
    const a = rec.subarray(p, p + len);
    const nonResident = a[8], nameLen = a[9], nameOfs = u16(a, 10);
    if (nameLen && nameOfs + 2 * nameLen > len) corrupt(`${w}: name runs past the attribute`);
    const attr: AttrHeader = {
      type, name: utf16(a, nameOfs, nameLen), flags: u16(a, 12), instance: u16(a, 14),
      lowestVcn: 0, highestVcn: -1, runs: [], compressionUnit: 0,
      allocatedSize: 0, dataSize: 0, initializedSize: 0, compressedSize: 0,
    };
    if (nonResident === 0) {
      const vlen = u32(a, 0x10), vofs = u16(a, 0x14);
      if (vofs + vlen > len) corrupt(`${w}: resident value (${vlen} bytes at ${vofs}) runs past the attribute`);
      attr.value = a.subarray(vofs, vofs + vlen);
      attr.dataSize = attr.initializedSize = attr.allocatedSize = vlen;
    } else if (nonResident === 1) {
      if (len < 0x40) corrupt(`${w}: non-resident header too short`);
      attr.lowestVcn = u64(a, 0x10, w);
      const hi = u32(a, 0x18), hiHi = u32(a, 0x1c);
      // Highest VCN -1: an extent without clusters.
      attr.highestVcn = hi === 0xffffffff && hiHi === 0xffffffff ? -1 : u64(a, 0x18, w);
      const mpOfs = u16(a, 0x20);
      attr.compressionUnit = a[0x22];
      attr.allocatedSize = u64(a, 0x28, w);
      attr.dataSize = u64(a, 0x30, w);
      attr.initializedSize = u64(a, 0x38, w);
      if (attr.compressionUnit > 16) corrupt(`${w}: compression unit 2^${attr.compressionUnit} clusters`);
      if ((attr.flags & (ATTR_COMPRESSED | ATTR_SPARSE)) && attr.lowestVcn === 0 && len >= 0x48) attr.compressedSize = u64(a, 0x40, w);
      if (mpOfs < 0x40 || mpOfs >= len) corrupt(`${w}: mapping pairs offset ${mpOfs}`);
      if (attr.highestVcn < attr.lowestVcn - 1) corrupt(`${w}: VCN range ${attr.lowestVcn}..${attr.highestVcn}`);
      if (attr.initializedSize > attr.dataSize || (attr.lowestVcn === 0 && attr.dataSize > attr.allocatedSize)) {
        corrupt(`${w}: sizes (allocated ${attr.allocatedSize}, data ${attr.dataSize}, initialized ${attr.initializedSize}) are inconsistent`);
      }
      attr.runs = decodeMappingPairs(a, mpOfs, attr.lowestVcn, attr.highestVcn, totalClusters, w);
    } else {
      corrupt(`${w}: non-resident flag ${nonResident}`);
    }
    out.push(attr);
    p += len;
  }
  return out;
}

/**
 * What the driver reads of a $FILE_NAME. Its times and sizes are not read:
 * a file's are in its $STANDARD_INFORMATION and $DATA (Windows updates the
 * copies in $FILE_NAME lazily), and a directory listing parses one per entry.
 */
export interface FileName {
  parent: number;
  parentSeq: number;
  fileAttributes: number;
  namespace: number;
  name: string;
}

/** A $FILE_NAME value (the key of every $I30 index entry). */
export function parseFileName(v: Uint8Array, where: string): FileName {
  if (v.length < 0x42) corrupt(`${where}: $FILE_NAME of ${v.length} bytes is too short`);
  const len = v[0x40];
  if (0x42 + 2 * len > v.length || len === 0) corrupt(`${where}: $FILE_NAME name of ${len} characters does not fit`);
  const ns = v[0x41];
  if (ns > 3) corrupt(`${where}: $FILE_NAME namespace ${ns}`);
  const parent = mref(v, 0);
  return { parent: parent.ino, parentSeq: parent.seq, fileAttributes: u32(v, 0x38), namespace: ns, name: utf16(v, 0x42, len) };
}

export interface IndexEntry {
  ino: number;
  seq: number;
  flags: number;
  /** The $FILE_NAME key (absent in the end entry). */
  key?: FileName;
  /** VCN of the child block, when flags has INDEX_ENTRY_NODE. */
  child: number;
}

/**
 * The entries of an index node: `b` holds the index header at `hdr`
 * (offsets in it are relative to hdr). The last entry has INDEX_ENTRY_END.
 */
export function parseIndexEntries(b: Uint8Array, hdr: number, where: string): IndexEntry[] {
  if (hdr + 16 > b.length) corrupt(`${where}: index header runs past its block`);
  const first = u32(b, hdr), used = u32(b, hdr + 4);
  const end = hdr + used;
  if (first < 16 || first & 7 || end > b.length || hdr + first >= end) corrupt(`${where}: index header (entries at ${first}, ${used} bytes) is invalid`);
  const entries: IndexEntry[] = [];
  for (let p = hdr + first; ;) {
    if (p + 16 > end) corrupt(`${where}: index entries run past the node without an end entry`);
    const len = u16(b, p + 8), keyLen = u16(b, p + 10), eflags = u32(b, p + 12);
    if (len < 16 || len & 7 || p + len > end) corrupt(`${where}: index entry at ${p - hdr} has length ${len}`);
    const ref = mref(b, p);
    const e: IndexEntry = { ino: ref.ino, seq: ref.seq, flags: eflags, child: -1 };
    if (eflags & INDEX_ENTRY_NODE) {
      if (len < 24 + (eflags & INDEX_ENTRY_END ? 0 : keyLen)) corrupt(`${where}: index entry at ${p - hdr} has no room for its child VCN`);
      e.child = u64(b, p + len - 8, where);
    }
    if (!(eflags & INDEX_ENTRY_END)) {
      if (16 + keyLen > len) corrupt(`${where}: index key of ${keyLen} bytes runs past its entry`);
      e.key = parseFileName(b.subarray(p + 16, p + 16 + keyLen), where);
    }
    entries.push(e);
    if (eflags & INDEX_ENTRY_END) break;
    p += len;
  }
  return entries;
}
