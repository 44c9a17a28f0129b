// The exFAT on-disk format (Microsoft's exFAT specification, 2019): the boot
// sector and its checksum, directory entry types and fields, the entry set
// checksum, the name hash, timestamps. Pure functions over bytes.
import { kerr, timegm, timespec2fattime, type Timespec } from '../../kern/index.js';

export const EXFAT_NAME = 'EXFAT   ';
/** Main boot region: boot sector, 8 extended boot sectors, OEM, reserved, checksum. */
export const BOOT_REGION_SECTORS = 12;
export const DENTRY_SIZE = 32;

/** FAT values. */
export const FAT_BAD = 0xfffffff7, FAT_EOF = 0xffffffff;
export const FIRST_CLUSTER = 2;

/** VolumeFlags bits. */
export const VOL_ACTIVEFAT = 1, VOL_DIRTY = 2;
/** Offset of VolumeFlags in the boot sector (outside the boot checksum). */
export const VOLFLAGS_OFF = 106;

/** Entry types (InUse | category | importance | code). */
export const T_BITMAP = 0x81, T_UPCASE = 0x82, T_LABEL = 0x83, T_FILE = 0x85,
  T_STREAM = 0xc0, T_NAME = 0xc1;
export const T_INUSE = 0x80, T_SECONDARY = 0x40, T_BENIGN = 0x20;

/** FileAttributes. */
export const ATTR_READONLY = 0x01, ATTR_DIRECTORY = 0x10, ATTR_ARCHIVE = 0x20;
/** GeneralSecondaryFlags of the stream extension. */
export const SF_ALLOC_POSSIBLE = 1, SF_NOFATCHAIN = 2;

export const NAME_MAX = 255;
/** UTF-16 units per File Name entry. */
export const NAME_PER_ENTRY = 15;
/** A directory may hold at most 256 MiB of entries. */
export const DIR_MAX_BYTES = 256 << 20;

export interface BootSector {
  sectorSize: number;
  clusterSize: number;
  /** Sectors. */
  volumeLength: number;
  /** Bytes from the start of the volume. */
  fatOffset: number;
  fatBytes: number;
  heapOffset: number;
  clusterCount: number;
  rootCluster: number;
  serial: number;
  volumeFlags: number;
  numFats: number;
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Parse and check a boot sector; a description of what is wrong otherwise. */
export function boot_parse(bs: Uint8Array, devSize: number): BootSector | string {
  const v = dv(bs);
  if (bs[0] !== 0xeb || bs[1] !== 0x76 || bs[2] !== 0x90) return 'bad jump instruction';
  if (String.fromCharCode(...bs.subarray(3, 11)) !== EXFAT_NAME) return 'no EXFAT name';
  if (bs[510] !== 0x55 || bs[511] !== 0xaa) return 'no boot signature';
  if (bs.subarray(11, 64).some(x => x !== 0)) return 'MustBeZero bytes are not zero';
  const bpss = bs[108], spcs = bs[109];
  if (bpss < 9 || bpss > 12) return `BytesPerSectorShift ${bpss}`;
  if (spcs > 25 - bpss) return `SectorsPerClusterShift ${spcs}`;
  const sectorSize = 1 << bpss, clusterSize = sectorSize * 2 ** spcs;
  const volumeLength = Number(v.getBigUint64(72, true));
  const fatOffset = v.getUint32(80, true), fatLength = v.getUint32(84, true);
  const heapOffset = v.getUint32(88, true), clusterCount = v.getUint32(92, true);
  const rootCluster = v.getUint32(96, true);
  const numFats = bs[110];
  if (bs[105] !== 1) return `file system revision ${bs[105]}.${bs[104]}`;
  if (numFats !== 1 && numFats !== 2) return `NumberOfFats ${numFats}`;
  if (fatOffset < 24) return `FatOffset ${fatOffset}`;
  if (fatLength * sectorSize < (clusterCount + 2) * 4) return `FatLength ${fatLength} too small for ${clusterCount} clusters`;
  if (heapOffset < fatOffset + fatLength * numFats) return `ClusterHeapOffset ${heapOffset} overlaps the FAT`;
  if (clusterCount < 1 || clusterCount > 0xfffffff5) return `ClusterCount ${clusterCount}`;
  if (heapOffset + clusterCount * 2 ** spcs > volumeLength) return `ClusterCount ${clusterCount} exceeds VolumeLength`;
  if (rootCluster < 2 || rootCluster > clusterCount + 1) return `FirstClusterOfRootDirectory ${rootCluster}`;
  const heapEnd = heapOffset * sectorSize + clusterCount * clusterSize;
  if (heapEnd > devSize) return `cluster heap ends at ${heapEnd}, past the device end (${devSize}): truncated image?`;
  return {
    sectorSize, clusterSize, volumeLength, fatOffset: fatOffset * sectorSize, fatBytes: fatLength * sectorSize,
    heapOffset: heapOffset * sectorSize, clusterCount, rootCluster, serial: v.getUint32(100, true),
    volumeFlags: v.getUint16(VOLFLAGS_OFF, true), numFats,
  };
}

/** The boot checksum over sectors 0..10 of a boot region (VolumeFlags and PercentInUse skipped). */
export function boot_checksum(region: Uint8Array, sectorSize: number): number {
  let c = 0;
  const n = 11 * sectorSize;
  for (let i = 0; i < n; i++) {
    if (i === 106 || i === 107 || i === 112) continue;
    c = (((c & 1) ? 0x80000000 : 0) + (c >>> 1) + region[i]) >>> 0;
  }
  return c;
}

/** Is sector 11 of the region the checksum, repeated? */
export function boot_region_valid(region: Uint8Array, sectorSize: number): boolean {
  const c = boot_checksum(region, sectorSize);
  const v = dv(region);
  for (let o = 11 * sectorSize; o < 12 * sectorSize; o += 4) if (v.getUint32(o, true) !== c) return false;
  return true;
}

/** The up-case table checksum (as the boot checksum, over every byte). */
export function table_checksum(b: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) c = (((c & 1) ? 0x80000000 : 0) + (c >>> 1) + b[i]) >>> 0;
  return c;
}

/** SetChecksum of an entry set (its own field, bytes 2..3, skipped). */
export function set_checksum(set: Uint8Array): number {
  let c = 0;
  for (let i = 0; i < set.length; i++) {
    if (i === 2 || i === 3) continue;
    c = (((c & 1) ? 0x8000 : 0) + (c >>> 1) + set[i]) & 0xffff;
  }
  return c;
}

/** NameHash over the up-cased name's UTF-16 units (low byte, then high). */
export function name_hash(up: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < up.length; i++) {
    const u = up[i];
    h = (((h & 1) ? 0x8000 : 0) + (h >>> 1) + (u & 0xff)) & 0xffff;
    h = (((h & 1) ? 0x8000 : 0) + (h >>> 1) + (u >>> 8)) & 0xffff;
  }
  return h;
}

// ---- the fields of a File directory entry set, read and written in place ----

/** Accessors over the bytes of an entry set: [0] File, [1] Stream Extension, [2..] File Name, then any benign secondaries. */
export class EntrySet {
  readonly v: DataView;
  constructor(readonly b: Uint8Array) { this.v = dv(b); }
  get count(): number { return this.b.length / DENTRY_SIZE; }
  get attr(): number { return this.v.getUint16(4, true); }
  set attr(a: number) { this.v.setUint16(4, a, true); }
  get flags(): number { return this.b[33]; }
  set flags(f: number) { this.b[33] = f; }
  get nameLength(): number { return this.b[35]; }
  get nameHash(): number { return this.v.getUint16(36, true); }
  get validDataLength(): number { return Number(this.v.getBigUint64(40, true)); }
  set validDataLength(n: number) { this.v.setBigUint64(40, BigInt(n), true); }
  get firstCluster(): number { return this.v.getUint32(52, true); }
  set firstCluster(c: number) { this.v.setUint32(52, c, true); }
  get dataLength(): number { return Number(this.v.getBigUint64(56, true)); }
  set dataLength(n: number) { this.v.setBigUint64(56, BigInt(n), true); }
  /** The name's UTF-16 units. */
  nameUnits(): Uint16Array {
    const n = this.nameLength, out = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const e = 2 + Math.floor(i / NAME_PER_ENTRY);
      out[i] = this.v.getUint16(e * DENTRY_SIZE + 2 + 2 * (i % NAME_PER_ENTRY), true);
    }
    return out;
  }
  /** Recompute SetChecksum; the set is ready to be written. */
  seal(): void { this.v.setUint16(2, set_checksum(this.b), true); }
  get checksum(): number { return this.v.getUint16(2, true); }
}

/** Timestamp slots of the File entry: [timestamp offset, 10 ms offset or -1, UTC offset byte]. */
export const TS_CREATE = [8, 20, 22] as const, TS_MODIFY = [12, 21, 23] as const, TS_ACCESS = [16, -1, 24] as const;
export type TsSlot = readonly [number, number, number];

/**
 * A timestamp as Unix time. Fields out of range are clamped (a time cannot
 * be wrong enough to refuse a file). Without a valid UTC offset the time is
 * local time at `defaultOffsetMin` minutes east of UTC.
 */
export function ts_get(s: EntrySet, slot: TsSlot, defaultOffsetMin: number): Timespec {
  const ts = s.v.getUint32(slot[0], true);
  const ms10 = slot[1] >= 0 ? Math.min(s.b[slot[1]], 199) : 0;
  const utc = s.b[slot[2]];
  if (ts === 0) return { sec: 0, nsec: 0 };
  const year = 1980 + (ts >>> 25), month = Math.min(Math.max((ts >>> 21) & 15, 1), 12);
  const day = Math.max((ts >>> 16) & 31, 1), hour = Math.min((ts >>> 11) & 31, 23);
  const min = Math.min((ts >>> 5) & 63, 59), sec2 = Math.min(ts & 31, 29);
  const offMin = utc & 0x80 ? ((utc & 0x7f) << 25 >> 25) * 15 : defaultOffsetMin;
  const ms = timegm(year, month, day, hour, min, sec2 * 2) * 1000 + ms10 * 10 - offMin * 60_000;
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: (ms - sec * 1000) * 1e6 };
}

/** Store t (clamped to 1980..2107) as local time at offsetMin east of UTC, with that offset recorded. */
export function ts_set(s: EntrySet, slot: TsSlot, t: Timespec, offsetMin: number): void {
  const f = timespec2fattime(t, offsetMin * 60);
  s.v.setUint32(slot[0], ((f.date << 16) | f.time) >>> 0, true);
  if (slot[1] >= 0) s.b[slot[1]] = f.centis;
  s.b[slot[2]] = 0x80 | ((offsetMin / 15) & 0x7f);
}

/** Characters exFAT names may not contain (besides controls below 0x20). */
const BAD_CHARS = new Set([0x22, 0x2a, 0x2f, 0x3a, 0x3c, 0x3e, 0x3f, 0x5c, 0x7c]);

/** The UTF-16 units of a name to store; EINVAL/ENAMETOOLONG when exFAT cannot. */
export function name_check(name: string): Uint16Array {
  if (name.length > NAME_MAX) throw kerr('ENAMETOOLONG');
  if (name === '' || name === '.' || name === '..') throw kerr('EINVAL', 'reserved name');
  const u = new Uint16Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || BAD_CHARS.has(c)) throw kerr('EINVAL', `exFAT names cannot contain ${JSON.stringify(name[i])}`);
    u[i] = c;
  }
  return u;
}

/** A new entry set: File, Stream Extension and File Name entries for the name, times zero. */
export function set_make(name: Uint16Array, upHash: number, attr: number): EntrySet {
  const nn = Math.ceil(name.length / NAME_PER_ENTRY);
  const s = new EntrySet(new Uint8Array((2 + nn) * DENTRY_SIZE));
  s.b[0] = T_FILE;
  s.b[1] = 1 + nn;
  s.attr = attr;
  s.b[32] = T_STREAM;
  s.flags = SF_ALLOC_POSSIBLE;
  s.b[35] = name.length;
  s.v.setUint16(36, upHash, true);
  for (let i = 0; i < nn; i++) s.b[(2 + i) * DENTRY_SIZE] = T_NAME;
  for (let i = 0; i < name.length; i++) {
    s.v.setUint16((2 + Math.floor(i / NAME_PER_ENTRY)) * DENTRY_SIZE + 2 + 2 * (i % NAME_PER_ENTRY), name[i], true);
  }
  return s;
}

/** The entry set `old` under a new name: its File and Stream fields and benign secondaries kept. */
export function set_rename(old: EntrySet, name: Uint16Array, upHash: number): EntrySet {
  const fresh = set_make(name, upHash, 0);
  const extras = old.b.subarray((2 + Math.ceil(old.nameLength / NAME_PER_ENTRY)) * DENTRY_SIZE);
  const s = new EntrySet(new Uint8Array(fresh.b.length + extras.length));
  s.b.set(fresh.b);
  s.b.set(old.b.subarray(0, 2 * DENTRY_SIZE));
  s.b[1] = s.count - 1;
  s.b[35] = name.length;
  s.v.setUint16(36, upHash, true);
  s.b.set(extras, fresh.b.length);
  return s;
}
