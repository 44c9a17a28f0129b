// On-disk structures of ECMA-167 (3rd edition) as UDF 1.02 to 2.60 profiles
// them: descriptor tags with their checks, the address types (lb_addr,
// short_ad, long_ad, ext_ad), timestamps, regids, and the descriptors this
// read-only driver uses. Parsers take a block's bytes and range-check what
// they return; a failed check is EIO with a log line (udf_corrupt).
import { kerr, log, timegm, type Timespec } from '../../kern/index.js';

/** Tag identifiers (ECMA-167 3/7.2.1, 4/7.2.1). */
export const TAG_PVD = 1, TAG_AVDP = 2, TAG_VDP = 3, TAG_IUVD = 4, TAG_PD = 5, TAG_LVD = 6,
  TAG_USD = 7, TAG_TD = 8, TAG_LVID = 9;
export const TAG_FSD = 256, TAG_FID = 257, TAG_AED = 258, TAG_IE = 259, TAG_TE = 260, TAG_FE = 261,
  TAG_EAHD = 262, TAG_EFE = 266;
/** A file entry's tag: FE or EFE. */
export const FILE_ENTRY_TAGS = [TAG_FE, TAG_EFE];

/** ICB file types (4/14.6.6). */
export const FT_DIR = 4, FT_REG = 5, FT_BLK = 6, FT_CHR = 7, FT_FIFO = 9, FT_SOCK = 10,
  FT_SYMLINK = 12, FT_VAT20 = 248, FT_REALTIME = 249, FT_META = 250, FT_META_MIRROR = 251;

/** ICB tag flags (4/14.6.8): allocation descriptor kind and the set-id/sticky bits. */
export const ICB_AD_MASK = 7, ICB_AD_SHORT = 0, ICB_AD_LONG = 1, ICB_AD_EXT = 2, ICB_AD_INICB = 3;
export const ICB_SETUID = 0x40, ICB_SETGID = 0x80, ICB_STICKY = 0x100;

/** File characteristics of a FID (4/14.4.3). */
export const FID_HIDDEN = 1, FID_DIR = 2, FID_DELETED = 4, FID_PARENT = 8, FID_METADATA = 16;

/** Extent types: the top two bits of an allocation descriptor's length (4/14.14.1.1). */
export const EXT_RECORDED = 0, EXT_ALLOCATED = 1, EXT_SPARSE = 2, EXT_NEXT = 3;

export function udf_corrupt(what: string): never {
  log(`udf: ${what}`);
  throw kerr('EIO', what);
}

// Fields as byte arithmetic, not a DataView made per field: listing 10,000
// files reads over 100,000 fields, and each view was an object to collect.
// Out of range is the RangeError a DataView gives.
function inRange(b: Uint8Array, o: number, n: number): void {
  if (!(o >= 0 && o + n <= b.length)) throw new RangeError(`Offset ${o} is outside the bounds of ${b.length} bytes`);
}
export function u16(b: Uint8Array, o: number): number {
  inRange(b, o, 2);
  return b[o] | (b[o + 1] << 8);
}
export function u32(b: Uint8Array, o: number): number {
  inRange(b, o, 4);
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
/** A 64-bit length; one past 2^53 is corrupt. */
export function u64(b: Uint8Array, o: number, what: string): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(o, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) udf_corrupt(`${what}: ${v} is out of range`);
  return Number(v);
}

// CRC-ITU-T (x^16 + x^12 + x^5 + 1, initial 0), as ECMA-167 1/7.2.6 computes descriptor CRCs.
const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function udf_crc(b: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < b.length; i++) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[(crc >> 8) ^ b[i]];
  return crc;
}

function allZero(b: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[i] !== 0) return false;
  return true;
}

export interface Tag { ident: number; version: number; serial: number; crcLength: number; location: number }

function tagChecksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < 16; i++) if (i !== 4) s += b[i];
  return s & 0xff;
}

/**
 * The tag at the start of b, checked (3/7.2): checksum, version 2 or 3, the
 * CRC over the bytes it covers (they must be in b), and, when `location` is
 * given, the location it claims. Returns null when the bytes are not a tag
 * at all (zeros, or a checksum mismatch), so callers can tell "no descriptor here"
 * from a damaged one; every other failure is EIO.
 */
export function udf_tag(b: Uint8Array, location: number | null, where: string): Tag | null {
  if (b.length < 16 || allZero(b, 16)) return null;
  if (tagChecksum(b) !== b[4]) return null;
  const t: Tag = { ident: u16(b, 0), version: u16(b, 2), serial: u16(b, 6), crcLength: u16(b, 10), location: u32(b, 12) };
  if (t.version !== 2 && t.version !== 3) udf_corrupt(`${where}: descriptor version ${t.version}`);
  if (16 + t.crcLength > b.length) udf_corrupt(`${where}: CRC length ${t.crcLength} runs past the descriptor`);
  if (udf_crc(b.subarray(16, 16 + t.crcLength)) !== u16(b, 8)) udf_corrupt(`${where}: descriptor CRC mismatch (tag ${t.ident})`);
  if (location !== null && t.location !== location) udf_corrupt(`${where}: tag says location ${t.location}, found at ${location}`);
  return t;
}

/** A tag of one of the wanted kinds, or EIO. */
export function udf_tag_want(b: Uint8Array, location: number | null, where: string, ...idents: number[]): Tag {
  const t = udf_tag(b, location, where);
  if (!t) udf_corrupt(`${where}: no descriptor tag`);
  if (!idents.includes(t.ident)) udf_corrupt(`${where}: descriptor ${t.ident}, expected ${idents.join(' or ')}`);
  return t;
}

/** extent_ad (3/7.1): a run of sectors. */
export interface ExtentAd { length: number; location: number }
export const extent_ad = (b: Uint8Array, o: number): ExtentAd => ({ length: u32(b, o), location: u32(b, o + 4) });

/** An allocation descriptor, whichever of short/long/ext it came from. */
export interface AllocDesc {
  type: number;
  /** Bytes (30 bits). */
  length: number;
  /** Logical block in partition `part`. */
  lb: number;
  part: number;
}

/** lb_addr / long_ad (4/7.1, 4/14.14.2). */
export function long_ad(b: Uint8Array, o: number): AllocDesc {
  const l = u32(b, o);
  return { type: l >>> 30, length: l & 0x3fffffff, lb: u32(b, o + 4), part: u16(b, o + 8) };
}

export function short_ad(b: Uint8Array, o: number, part: number): AllocDesc {
  const l = u32(b, o);
  return { type: l >>> 30, length: l & 0x3fffffff, lb: u32(b, o + 4), part };
}

/** ext_ad (4/14.14.3): length, recorded length, information length, lb_addr. */
export function ext_ad(b: Uint8Array, o: number): AllocDesc {
  const l = u32(b, o);
  return { type: l >>> 30, length: l & 0x3fffffff, lb: u32(b, o + 12), part: u16(b, o + 16) };
}

export const AD_SIZE = { [ICB_AD_SHORT]: 8, [ICB_AD_LONG]: 16, [ICB_AD_EXT]: 20 } as Record<number, number>;

/** regid (1/7.4): the identifier, NULs trimmed, and its suffix. */
export interface Regid { ident: string; suffix: Uint8Array }
export function regid(b: Uint8Array, o: number): Regid {
  return { ident: String.fromCharCode(...b.subarray(o + 1, o + 24)).replace(/\0+$/, ''), suffix: b.subarray(o + 24, o + 32) };
}

/**
 * timestamp (1/7.3) -> time since the epoch. Type 1 is local time with an
 * offset in minutes (-2047: none given, taken as UTC). An all-zero stamp is
 * "not recorded" (the epoch); other out-of-range fields are corrupt.
 */
export function udf_timestamp(b: Uint8Array, o: number, where: string): Timespec {
  let zero = true;
  for (let i = 0; i < 12; i++) if (b[o + i]) zero = false;
  if (zero) return { sec: 0, nsec: 0 };
  const tt = u16(b, o);
  let tz = tt & 0xfff;
  if (tz & 0x800) tz -= 0x1000;
  if (tz === -2047) tz = 0;
  const year = (u16(b, o + 2) << 16) >> 16;
  const mon = b[o + 4], day = b[o + 5], hour = b[o + 6], min = b[o + 7], sec = b[o + 8], cs = b[o + 9], hus = b[o + 10], us = b[o + 11];
  if (tz < -1440 || tz > 1440 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60 ||
      cs > 99 || hus > 99 || us > 99) {
    udf_corrupt(`${where}: timestamp ${year}-${mon}-${day} ${hour}:${min}:${sec} (tz ${tz}) is out of range`);
  }
  // timegm, not Date.UTC: that takes years 0-99 as 19xx.
  return { sec: timegm(year, mon, day, hour, min, sec) - tz * 60, nsec: cs * 10_000_000 + hus * 100_000 + us * 1000 };
}

/** UDF permissions (4/14.9.5: other, group, owner, 5 bits each) and ICB flags -> st_mode bits. */
export function udf_perm_to_mode(perm: number, icbFlags: number): number {
  let m = (perm & 0o7) | ((perm >>> 2) & 0o70) | ((perm >>> 4) & 0o700);
  if (icbFlags & ICB_SETUID) m |= 0o4000;
  if (icbFlags & ICB_SETGID) m |= 0o2000;
  if (icbFlags & ICB_STICKY) m |= 0o1000;
  return m;
}

/** The ICB tag (4/14.6) at offset 16 of a file entry. */
export interface IcbTag { strategy: number; fileType: number; flags: number }
export function icbtag(b: Uint8Array, o = 16): IcbTag {
  return { strategy: u16(b, o + 4), fileType: b[o + 11], flags: u16(b, o + 18) };
}
