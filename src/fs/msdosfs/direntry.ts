// On-disk directory entries (NetBSD direntry.h): the 32-byte short entry
// and the long-name (VFAT) entry.
export const DIRENT_SIZE = 32;

export const ATTR_READONLY = 0x01, ATTR_HIDDEN = 0x02, ATTR_SYSTEM = 0x04, ATTR_VOLUME = 0x08,
  ATTR_DIRECTORY = 0x10, ATTR_ARCHIVE = 0x20, ATTR_LFN = 0x0f;

/** First name byte: deleted entry; end of directory; 0x05 stands for a leading 0xE5. */
export const SLOT_DELETED = 0xe5, SLOT_EMPTY = 0x00, SLOT_E5 = 0x05;

/** NT reserved byte: base / extension stored in upper case but shown in lower case. */
export const CASE_LOWER_BASE = 0x08, CASE_LOWER_EXT = 0x10;

export const LFN_LAST = 0x40;
export const LFN_CHARS = 13;
const LFN_OFFS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** A short entry, decoded. */
export interface Direntry {
  name: Uint8Array; // 11 bytes, as on disk
  attr: number;
  ntcase: number;
  crtTenth: number;
  crtTime: number;
  crtDate: number;
  accDate: number;
  mTime: number;
  mDate: number;
  cluster: number;
  size: number;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);

export function direntry_decode(b: Uint8Array, off: number, fat32: boolean): Direntry {
  // Bytes read as they are (no DataView per entry: a directory scan decodes thousands).
  return {
    // A copy from Node's shared pool: a name of its own ArrayBuffer costs a cached file ~110 bytes more.
    name: Buffer.from(b.subarray(off, off + 11)),
    attr: b[off + 11],
    ntcase: b[off + 12],
    crtTenth: b[off + 13],
    crtTime: u16(b, off + 14),
    crtDate: u16(b, off + 16),
    accDate: u16(b, off + 18),
    mTime: u16(b, off + 22),
    mDate: u16(b, off + 24),
    // The high half is only meaningful on FAT32 (OS/2 EA handles elsewhere).
    cluster: (fat32 ? u16(b, off + 20) * 0x10000 : 0) + u16(b, off + 26),
    size: u16(b, off + 28) + u16(b, off + 30) * 0x10000,
  };
}

/** Write every field of e at b[off]. */
export function direntry_encode(b: Uint8Array, off: number, e: Direntry): void {
  const v = dv(b);
  b.set(e.name, off);
  b[off + 11] = e.attr;
  b[off + 12] = e.ntcase;
  b[off + 13] = e.crtTenth;
  v.setUint16(off + 14, e.crtTime, true);
  v.setUint16(off + 16, e.crtDate, true);
  v.setUint16(off + 18, e.accDate, true);
  v.setUint16(off + 20, Math.floor(e.cluster / 0x10000), true);
  v.setUint16(off + 22, e.mTime, true);
  v.setUint16(off + 24, e.mDate, true);
  v.setUint16(off + 26, e.cluster & 0xffff, true);
  v.setUint32(off + 28, e.size, true);
}

/** Checksum of a short name, stored in each of its long-name entries. */
export function winChksum(name: Uint8Array): number {
  return winChksumAt(name, 0);
}

/** winChksum of the 11-byte name at b[o], read in place. */
export function winChksumAt(b: Uint8Array, o: number): number {
  let s = 0;
  for (let i = 0; i < 11; i++) s = (((s & 1) << 7) | (s >> 1)) + b[o + i] & 0xff;
  return s;
}

/** Long-name entries of one name at most (20 x 13 = 260 units: 255 and the terminator fit). */
export const LFN_MAX_PIECES = 20;

/** The 13 UTF-16 units of the long-name entry at b[off], into units[at..at+13). */
export function lfn_units(b: Uint8Array, off: number, units: Uint16Array, at: number): void {
  for (let i = 0; i < LFN_CHARS; i++) units[at + i] = u16(b, off + LFN_OFFS[i]);
}

/** Long-name entry number `ord` (1-based) of the UTF-16 name, at b[off]. */
export function lfn_encode(b: Uint8Array, off: number, name: string, ord: number, last: boolean, chksum: number): void {
  const v = dv(b);
  b.fill(0, off, off + DIRENT_SIZE);
  b[off] = ord | (last ? LFN_LAST : 0);
  b[off + 11] = ATTR_LFN;
  b[off + 13] = chksum;
  const base = (ord - 1) * LFN_CHARS;
  LFN_OFFS.forEach((o, i) => {
    const k = base + i;
    v.setUint16(off + o, k < name.length ? name.charCodeAt(k) : k === name.length ? 0 : 0xffff, true);
  });
}

/** The long-name entries a name needs. */
export function lfn_count(name: string): number {
  return Math.ceil(name.length / LFN_CHARS);
}
