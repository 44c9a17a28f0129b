// The boot sector and its BIOS Parameter Block (NetBSD bpb.h/bootsect.h):
// parsed and checked against the device before anything trusts it.
import { kerr } from '../../kern/index.js';

export type FatType = 12 | 16 | 32;

export interface Bpb {
  bytesPerSec: number;
  secPerClust: number;
  rsvdSecCnt: number;
  numFats: number;
  /** FAT12/16: entries of the fixed root directory; FAT32: 0. */
  rootEntCnt: number;
  totSec: number;
  /** Sectors per FAT. */
  fatSz: number;
  fatType: FatType;
  /** FAT32: first cluster of the root directory. */
  rootClus: number;
  /** FAT32: sector of the FSInfo block (0: none). */
  fsInfoSec: number;
  /** FAT32 BPB_ExtFlags: bit 7 = only one FAT active, bits 0-3 = which. */
  extFlags: number;
  // Derived, in bytes from the start of the device.
  clusterSize: number;
  fatOffset: number;
  fatBytes: number;
  rootOffset: number;
  rootBytes: number;
  dataOffset: number;
  /** Data clusters: numbered 2 .. clusterCount + 1. */
  clusterCount: number;
  /** Label from the boot sector ('' when NO NAME). */
  bpbLabel: string;
  /** Byte of the extended boot record's state flags (bit 0: dirty, as Linux and fsck.fat use it); -1 without one. */
  stateOff: number;
}

const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

function bad(why: string): never {
  throw kerr('EINVAL', `not a FAT file system: ${why}`);
}

/** Parse and check the boot sector (at least 512 bytes) of a device of devSize bytes. */
export function bpb_parse(bs: Uint8Array, devSize: number, decodeLabel: (b: Uint8Array) => string): Bpb {
  if (bs.length < 512) bad('boot sector too short');
  const dv = new DataView(bs.buffer, bs.byteOffset, bs.byteLength);
  if (bs[510] !== 0x55 || bs[511] !== 0xaa) bad('no boot sector signature 55 AA');
  if (bs[0] !== 0xeb && bs[0] !== 0xe9 && bs[0] !== 0xe8) bad(`boot sector jump byte ${bs[0].toString(16)}`);
  const bytesPerSec = dv.getUint16(11, true);
  const secPerClust = bs[13];
  const rsvdSecCnt = dv.getUint16(14, true);
  const numFats = bs[16];
  const rootEntCnt = dv.getUint16(17, true);
  const totSec16 = dv.getUint16(19, true);
  const media = bs[21];
  const fatSz16 = dv.getUint16(22, true);
  const totSec32 = dv.getUint32(32, true);
  if (!pow2(bytesPerSec) || bytesPerSec < 512 || bytesPerSec > 4096) bad(`bytes per sector ${bytesPerSec}`);
  if (!pow2(secPerClust)) bad(`sectors per cluster ${secPerClust}`);
  const clusterSize = bytesPerSec * secPerClust;
  if (clusterSize > 256 * 1024) bad(`cluster size ${clusterSize}`);
  if (rsvdSecCnt === 0) bad('no reserved sectors');
  if (numFats < 1 || numFats > 4) bad(`${numFats} FATs`);
  if (media !== 0xf0 && media < 0xf8) bad(`media byte ${media.toString(16)}`);
  const totSec = totSec16 !== 0 ? totSec16 : totSec32;
  if (totSec === 0) bad('zero sectors');
  if (totSec * bytesPerSec > devSize) bad(`${totSec} sectors of ${bytesPerSec} bytes do not fit the device (${devSize} bytes)`);
  // As Linux and dosfstools: a zero 16-bit FAT size means FAT32 (mkfs.fat
  // makes small FAT32 volumes with fewer clusters than Microsoft's minimum).
  const fat32 = fatSz16 === 0;
  const fatSz = fat32 ? dv.getUint32(36, true) : fatSz16;
  if (fatSz === 0) bad('zero FAT size');
  if (fat32 && rootEntCnt !== 0) bad('FAT32 with a fixed root directory');
  if (!fat32 && rootEntCnt === 0) bad('no root directory entries');
  const rootBytes = rootEntCnt * 32;
  if (rootBytes % bytesPerSec !== 0) bad(`root directory of ${rootEntCnt} entries is not whole sectors`);
  const rootSecs = rootBytes / bytesPerSec;
  const firstData = rsvdSecCnt + numFats * fatSz + rootSecs;
  if (firstData >= totSec) bad('no data area');
  const clusterCount = Math.floor((totSec - firstData) / secPerClust);
  if (clusterCount < 1) bad('no data clusters');
  let fatType: FatType;
  if (fat32) {
    fatType = 32;
    if (clusterCount > 0x0ffffff5) bad(`${clusterCount} clusters`);
  } else {
    // Microsoft's rule: the cluster count alone decides.
    fatType = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : bad(`${clusterCount} clusters with a 16-bit FAT size`);
  }
  const fatBytes = fatSz * bytesPerSec;
  if (Math.ceil(((clusterCount + 2) * fatType) / 8) > fatBytes) bad(`FAT of ${fatSz} sectors too small for ${clusterCount} clusters`);
  let rootClus = 0, fsInfoSec = 0, extFlags = 0;
  if (fat32) {
    extFlags = dv.getUint16(40, true);
    if (dv.getUint16(42, true) !== 0) bad(`FAT32 version ${dv.getUint16(42, true).toString(16)}`);
    rootClus = dv.getUint32(44, true);
    if (rootClus < 2 || rootClus > clusterCount + 1) bad(`root cluster ${rootClus} out of range`);
    fsInfoSec = dv.getUint16(48, true);
    if (fsInfoSec === 0xffff || fsInfoSec >= rsvdSecCnt) fsInfoSec = 0;
    if ((extFlags & 0x80) && (extFlags & 0xf) >= numFats) bad(`active FAT ${extFlags & 0xf} of ${numFats}`);
  }
  const sigOff = fat32 ? 66 : 38;
  let bpbLabel = '';
  const stateOff = bs[sigOff] === 0x29 || bs[sigOff] === 0x28 ? sigOff - 1 : -1;
  if (bs[sigOff] === 0x29) {
    bpbLabel = decodeLabel(bs.subarray(sigOff + 5, sigOff + 16));
    if (bpbLabel === 'NO NAME') bpbLabel = '';
  }
  return {
    bytesPerSec, secPerClust, rsvdSecCnt, numFats, rootEntCnt, totSec, fatSz, fatType, rootClus, fsInfoSec, extFlags,
    clusterSize,
    fatOffset: rsvdSecCnt * bytesPerSec,
    fatBytes,
    rootOffset: (rsvdSecCnt + numFats * fatSz) * bytesPerSec,
    rootBytes,
    dataOffset: firstData * bytesPerSec,
    clusterCount,
    bpbLabel,
    stateOff,
  };
}

/** The boot sector's dirty flag (state bit 0). */
export const BS_STATE_DIRTY = 0x01;

// FSInfo (FAT32): free cluster count and next-free hint, trusted by nobody.
export const FSI_LEADSIG = 0x41615252, FSI_STRUCSIG = 0x61417272, FSI_TRAILSIG = 0xaa550000;

export function fsinfo_valid(b: Uint8Array): boolean {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(0, true) === FSI_LEADSIG && dv.getUint32(484, true) === FSI_STRUCSIG &&
    dv.getUint32(508, true) === FSI_TRAILSIG;
}

export function fsinfo_set(b: Uint8Array, free: number, nextFree: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(488, free, true);
  dv.setUint32(492, nextFree, true);
}
