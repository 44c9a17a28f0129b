// ISO 9660 (ECMA-119) on-disk structures: volume descriptors, directory
// records and their dates. Parsers check every length against the bytes
// they were given and return null (or throw EIO) rather than read past them.
import { kerr, log, timegm, type Timespec } from '../../kern/index.js';

/** The logical sector: directory records never cross one. */
export const ISO_SECTOR = 2048;
/** The volume descriptor set starts at this sector of a session. */
export const ISO_VD_START = 16;
/** Bounds the walk over a volume descriptor set. */
export const ISO_VD_MAX = 64;

export const ISO_VD_BOOT = 0, ISO_VD_PRIMARY = 1, ISO_VD_SUPPLEMENTARY = 2, ISO_VD_END = 255;

/** Directory record flags (file flags byte). */
export const ISO_FLAG_HIDDEN = 0x01, ISO_FLAG_DIR = 0x02, ISO_FLAG_ASSOC = 0x04, ISO_FLAG_MULTI = 0x80;

/** A directory record is at least this long (33 bytes of fixed fields, then the name). */
export const ISO_DIRREC_MIN = 33;

/** Little-endian half of a both-endian 32-bit number (isonum_733). */
export function isonum_733(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** Little-endian half of a both-endian 16-bit number (isonum_723). */
export function isonum_723(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

export interface VolumeDescriptor {
  type: number;
  /** Joliet level 1-3 for a supplementary descriptor with a Joliet escape sequence, else 0. */
  joliet: number;
  volumeSpaceSize: number;
  logicalBlockSize: number;
  /** The root directory record (34 bytes). */
  root: Uint8Array;
  volumeId: string;
}

const CD001 = [0x43, 0x44, 0x30, 0x30, 0x31];

/** Is this sector a volume descriptor ("CD001", version 1)? */
export function isVolumeDescriptor(s: Uint8Array): boolean {
  return CD001.every((c, i) => s[1 + i] === c) && s[6] === 1;
}

/** Joliet level from the escape sequences of a supplementary descriptor (%/@, %/C, %/E). */
function jolietLevel(s: Uint8Array): number {
  for (let i = 88; i + 3 <= 120; i++) {
    if (s[i] === 0x25 && s[i + 1] === 0x2f) {
      const lvl = { 0x40: 1, 0x43: 2, 0x45: 3 }[s[i + 2]];
      if (lvl) return lvl;
    }
  }
  return 0;
}

/** Parse a primary or supplementary volume descriptor sector. */
export function parseVolumeDescriptor(s: Uint8Array): VolumeDescriptor {
  const type = s[0];
  return {
    type,
    joliet: type === ISO_VD_SUPPLEMENTARY ? jolietLevel(s) : 0,
    volumeSpaceSize: isonum_733(s, 80),
    logicalBlockSize: isonum_723(s, 128),
    root: s.slice(156, 156 + 34),
    volumeId: String.fromCharCode(...s.subarray(40, 72)).trimEnd(),
  };
}

/** A directory record's fields, checked against its own length. */
export interface DirRecord {
  /** Record length (byte 0). */
  length: number;
  /** Extended attribute record length, in logical blocks. */
  extAttrLen: number;
  /** First logical block of the extent. */
  extent: number;
  dataLength: number;
  date: Timespec;
  flags: number;
  /** The file identifier bytes. */
  name: Uint8Array;
  /** System use area (after the name and its padding byte). */
  systemUse: Uint8Array;
}

/**
 * Parse the record at rec[0..]; rec holds at least rec[0] bytes. EIO for a
 * record shorter than its fixed part or a name running past the record.
 */
export function parseDirRecord(rec: Uint8Array, where: string | (() => string)): DirRecord {
  const length = rec[0];
  if (length < ISO_DIRREC_MIN || length > rec.length) {
    const w = typeof where === 'string' ? where : where();
    log(`cd9660: ${w}: directory record length ${length} is invalid`);
    throw kerr('EIO', `${w}: bad directory record length ${length}`);
  }
  const nameLen = rec[32];
  if (ISO_DIRREC_MIN + nameLen > length) {
    const w = typeof where === 'string' ? where : where();
    log(`cd9660: ${w}: name length ${nameLen} runs past the record (${length} bytes)`);
    throw kerr('EIO', `${w}: bad name length ${nameLen}`);
  }
  const suStart = ISO_DIRREC_MIN + nameLen + (nameLen & 1 ? 0 : 1);
  return {
    length,
    extAttrLen: rec[1],
    extent: isonum_733(rec, 2),
    dataLength: isonum_733(rec, 10),
    date: isoDate7(rec, 18),
    flags: rec[25],
    name: rec.subarray(33, 33 + nameLen),
    systemUse: suStart < length ? rec.subarray(suStart, length) : new Uint8Array(0),
  };
}

/**
 * The record at b[p..] (b holds its b[p] bytes) checked as parseDirRecord checks it
 * (EIO for a record shorter than its fixed part or a name running past it),
 * without building anything: the walks read the fields they need with the
 * rec* accessors below, in place.
 */
export function checkDirRecord(b: Uint8Array, p: number, where: string | (() => string)): void {
  const len = b[p];
  // parseDirRecord says what is wrong (and throws).
  if (len < ISO_DIRREC_MIN || ISO_DIRREC_MIN + b[p + 32] > len) parseDirRecord(b.subarray(p, p + len), where);
}

/** Fields of the checked record at b[p..] (checkDirRecord), read in place. */
export const recFlags = (b: Uint8Array, p: number): number => b[p + 25];
export const recNameLen = (b: Uint8Array, p: number): number => b[p + 32];
export const recDataLength = (b: Uint8Array, p: number): number => isonum_733(b, p + 10);
/** The data's location in bytes: after the extended attribute record of extAttrLen sectors, if any. */
export const dataStart = (extent: number, extAttrLen: number): number => (extent + extAttrLen) * ISO_SECTOR;
/** dataStart of the record at b[p..]. */
export const recStart = (b: Uint8Array, p: number): number => dataStart(isonum_733(b, p + 2), b[p + 1]);
/** Where the system use area starts (after the name and its padding byte); it ends with the record. */
export const recSuStart = (b: Uint8Array, p: number): number => p + ISO_DIRREC_MIN + b[p + 32] + (b[p + 32] & 1 ? 0 : 1);
/** 0 for the `.` record, 1 for `..`, else null: a name of one byte, \0 or \1. */
const dotOf = (nameLen: number, first: number): 0 | 1 | null => (nameLen === 1 && first <= 1 ? (first as 0 | 1) : null);
/** dotOf the record at b[p..]. */
export const recDot = (b: Uint8Array, p: number): 0 | 1 | null => dotOf(b[p + 32], b[p + 33]);

/** Is this the `.` (\0) or `..` (\1) record? */
export function isDotRecord(r: DirRecord): 0 | 1 | null {
  return dotOf(r.name.length, r.name[0]);
}

/** timegm with Date.UTC's two-digit years (0-99 are 19xx). */
function utc(year: number, month: number, day: number, h: number, m: number, s: number): number {
  return timegm(year >= 0 && year <= 99 ? year + 1900 : year, month, day, h, m, s);
}

/** The 7-byte recording date of a directory record (and RRIP TF short form). */
export function isoDate7(b: Uint8Array, off: number): Timespec {
  const y = b[off], mo = b[off + 1], d = b[off + 2], h = b[off + 3], mi = b[off + 4], s = b[off + 5];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return { sec: 0, nsec: 0 };
  const tz = (b[off + 6] << 24) >> 24;
  return { sec: utc(1900 + y, mo, d, h, mi, s) - tz * 15 * 60, nsec: 0 };
}

/** The 17-byte "YYYYMMDDHHMMSScc" + offset date (volume descriptors, RRIP TF long form). */
export function isoDate17(b: Uint8Array, off: number): Timespec {
  const digits = (at: number, n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const c = b[off + at + i] - 0x30;
      if (c < 0 || c > 9) return -1;
      v = v * 10 + c;
    }
    return v;
  };
  const y = digits(0, 4), mo = digits(4, 2), d = digits(6, 2), h = digits(8, 2), mi = digits(10, 2),
    s = digits(12, 2), cs = digits(14, 2);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60 || cs < 0) {
    return { sec: 0, nsec: 0 };
  }
  const tz = (b[off + 16] << 24) >> 24;
  return { sec: utc(y, mo, d, h, mi, s) - tz * 15 * 60, nsec: cs * 10_000_000 };
}
