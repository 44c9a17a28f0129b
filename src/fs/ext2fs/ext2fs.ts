// The on-disk format (NetBSD ext2fs.h, Linux ext4.h): the superblock, its
// feature flags, and the group descriptors. Multi-byte values are little
// endian. Parsing checks every value later code relies on; a bad one is
// EINVAL with a note saying which (the mount refuses).
import { kerr } from '../../kern/index.js';
import { crc32c, le32 } from './ext2fs_csum.js';

export const SBOFF = 1024;
export const SBSIZE = 1024;
export const E2FS_MAGIC = 0xef53;
export const ROOTINO = 2;
export const E2FS_OLD_FIRST_INO = 11;
export const NDADDR = 12;
export const NIADDR = 3;
/** Longest link count (EXT4_LINK_MAX); dir_nlink directories past it show 1. */
export const LINK_MAX = 65000;
export const MAXNAMLEN = 255;

/** s_state */
export const E2FS_ISCLEAN = 1, E2FS_ERRORS = 2;

export const COMPAT = {
  dir_prealloc: 0x1, imagic_inodes: 0x2, has_journal: 0x4, ext_attr: 0x8, resize_inode: 0x10,
  dir_index: 0x20, lazy_bg: 0x40, exclude_bitmap: 0x100, sparse_super2: 0x200, fast_commit: 0x400,
  stable_inodes: 0x800, orphan_file: 0x1000,
} as const;
export const RO_COMPAT = {
  sparse_super: 0x1, large_file: 0x2, btree_dir: 0x4, huge_file: 0x8, gdt_csum: 0x10, dir_nlink: 0x20,
  extra_isize: 0x40, has_snapshot: 0x80, quota: 0x100, bigalloc: 0x200, metadata_csum: 0x400,
  replica: 0x800, readonly: 0x1000, project: 0x2000, shared_blocks: 0x4000, verity: 0x8000,
  orphan_present: 0x10000,
} as const;
export const INCOMPAT = {
  compression: 0x1, filetype: 0x2, needs_recovery: 0x4, journal_dev: 0x8, meta_bg: 0x10, extent: 0x40,
  '64bit': 0x80, mmp: 0x100, flex_bg: 0x200, ea_inode: 0x400, dirdata: 0x1000, metadata_csum_seed: 0x2000,
  large_dir: 0x4000, inline_data: 0x8000, encrypt: 0x10000, casefold: 0x20000,
} as const;

/** What this driver reads. An image with any other incompatible feature is refused. */
export const INCOMPAT_READ = INCOMPAT.filetype | INCOMPAT.needs_recovery | INCOMPAT.meta_bg | INCOMPAT.extent |
  INCOMPAT['64bit'] | INCOMPAT.mmp | INCOMPAT.flex_bg | INCOMPAT.ea_inode | INCOMPAT.metadata_csum_seed |
  INCOMPAT.large_dir;
/** What this driver keeps valid when writing (extents would need extent allocation). */
export const INCOMPAT_WRITE = INCOMPAT.filetype | INCOMPAT.meta_bg | INCOMPAT['64bit'] | INCOMPAT.flex_bg;
/** Read-only compatible features whose structures the writer keeps valid. */
export const RO_COMPAT_WRITE = RO_COMPAT.sparse_super | RO_COMPAT.large_file | RO_COMPAT.huge_file |
  RO_COMPAT.dir_nlink | RO_COMPAT.extra_isize;
/** Compatible features whose structures the writer would have to maintain. */
export const COMPAT_NOWRITE = COMPAT.exclude_bitmap | COMPAT.orphan_file | COMPAT.fast_commit;

/** Names of the bits of `mask` set in `v` ('0x...' for those without one). */
export function featureNames(table: Record<string, number>, v: number): string[] {
  const out: string[] = [];
  for (let bit = 1; bit !== 0 && bit <= 0x80000000; bit = (bit << 1) >>> 0) {
    if (!(v & bit)) continue;
    const name = Object.entries(table).find(([, b]) => b === bit)?.[0];
    out.push(name ?? `0x${bit.toString(16)}`);
  }
  return out;
}

function bad(note: string): never {
  throw kerr('EINVAL', `not a usable ext2/3/4 file system: ${note}`);
}

/** The superblock: its raw bytes (written back as they are, with the fields we change) and what they mean. */
export class Superblock {
  readonly dv: DataView;
  readonly bsize: number;
  readonly blocks: number;
  readonly firstDataBlock: number;
  readonly bpg: number;
  readonly ipg: number;
  readonly inodes: number;
  readonly ngroups: number;
  readonly inodeSize: number;
  readonly firstIno: number;
  readonly descSize: number;
  readonly compat: number;
  readonly incompat: number;
  readonly roCompat: number;
  readonly rev: number;
  /** crc32c seed of metadata_csum (0 without it). */
  readonly csumSeed: number;

  constructor(readonly raw: Uint8Array, devSize: number) {
    const dv = this.dv = new DataView(raw.buffer, raw.byteOffset, SBSIZE);
    if (dv.getUint16(56, true) !== E2FS_MAGIC) bad('no ext2 magic number');
    const log = dv.getUint32(24, true);
    if (log > 6) bad(`block size 2^${10 + log}`);
    this.bsize = 1024 << log;
    this.rev = dv.getUint32(76, true);
    this.compat = dv.getUint32(92, true);
    this.incompat = this.rev ? dv.getUint32(96, true) : 0;
    this.roCompat = this.rev ? dv.getUint32(100, true) : 0;
    if (this.rev > 1) bad(`revision ${this.rev}`);
    const is64 = (this.incompat & INCOMPAT['64bit']) !== 0;
    this.blocks = dv.getUint32(4, true) + (is64 ? dv.getUint32(336, true) * 2 ** 32 : 0);
    this.firstDataBlock = dv.getUint32(20, true);
    this.bpg = dv.getUint32(32, true);
    this.ipg = dv.getUint32(40, true);
    this.inodes = dv.getUint32(0, true);
    if (this.firstDataBlock !== (this.bsize === 1024 ? 1 : 0)) bad(`first data block ${this.firstDataBlock} with ${this.bsize}-byte blocks`);
    if (this.roCompat & RO_COMPAT.bigalloc) {
      if (dv.getUint32(28, true) !== log) bad('bigalloc clusters are not supported');
    }
    if (this.bpg === 0 || this.bpg > 8 * this.bsize) bad(`${this.bpg} blocks per group`);
    if (this.ipg === 0 || this.ipg > 8 * this.bsize) bad(`${this.ipg} inodes per group`);
    if (this.blocks <= this.firstDataBlock + 1 || !Number.isSafeInteger(this.blocks * this.bsize)) bad(`${this.blocks} blocks`);
    if (this.blocks * this.bsize > devSize) {
      bad(`${this.blocks} blocks of ${this.bsize} bytes do not fit the device (${devSize} bytes)`);
    }
    this.ngroups = Math.ceil((this.blocks - this.firstDataBlock) / this.bpg);
    if (this.inodes === 0 || this.inodes > this.ngroups * this.ipg) bad(`${this.inodes} inodes in ${this.ngroups} groups of ${this.ipg}`);
    this.inodeSize = this.rev ? dv.getUint16(88, true) : 128;
    const isz = this.inodeSize;
    if (isz < 128 || isz > this.bsize || (isz & (isz - 1)) !== 0) bad(`inode size ${isz}`);
    this.firstIno = this.rev ? dv.getUint32(84, true) : E2FS_OLD_FIRST_INO;
    if (this.firstIno <= ROOTINO || this.firstIno > this.inodes) bad(`first inode ${this.firstIno}`);
    this.descSize = is64 ? dv.getUint16(254, true) : 32;
    if (this.descSize < 32 || this.descSize > this.bsize || (this.descSize & (this.descSize - 1)) !== 0 || (is64 && this.descSize < 64)) {
      bad(`group descriptor size ${this.descSize}`);
    }
    if (this.metadataCsum) {
      if (raw[373] !== 1) bad(`checksum type ${raw[373]}`);
      const want = dv.getUint32(1020, true);
      if (this.computeCsum() !== want) bad('superblock checksum does not match');
      this.csumSeed = this.incompat & INCOMPAT.metadata_csum_seed ? dv.getUint32(0x270, true) : crc32c(0xffffffff, raw.subarray(104, 120));
    } else {
      this.csumSeed = 0;
    }
  }

  get metadataCsum(): boolean { return (this.roCompat & RO_COMPAT.metadata_csum) !== 0; }
  get hasFiletype(): boolean { return (this.incompat & INCOMPAT.filetype) !== 0; }
  get hugeFile(): boolean { return (this.roCompat & RO_COMPAT.huge_file) !== 0; }
  /** Inodes per inode-table block. */
  get ipb(): number { return this.bsize / this.inodeSize; }
  get itableBlocks(): number { return Math.ceil(this.ipg / this.ipb); }
  get descPerBlock(): number { return this.bsize / this.descSize; }
  get label(): string { return new TextDecoder().decode(this.raw.subarray(120, 136)).replace(/\0.*$/s, ''); }

  computeCsum(): number { return crc32c(0xffffffff, this.raw.subarray(0, 1020)); }

  get freeBlocks(): number {
    return this.dv.getUint32(12, true) + (this.incompat & INCOMPAT['64bit'] ? this.dv.getUint32(344, true) * 2 ** 32 : 0);
  }
  set freeBlocks(n: number) {
    this.dv.setUint32(12, n >>> 0, true);
    if (this.incompat & INCOMPAT['64bit']) this.dv.setUint32(344, Math.floor(n / 2 ** 32), true);
  }
  get reservedBlocks(): number {
    return this.dv.getUint32(8, true) + (this.incompat & INCOMPAT['64bit'] ? this.dv.getUint32(340, true) * 2 ** 32 : 0);
  }
  get freeInodes(): number { return this.dv.getUint32(16, true); }
  set freeInodes(n: number) { this.dv.setUint32(16, n, true); }
  get state(): number { return this.dv.getUint16(58, true); }
  set state(s: number) { this.dv.setUint16(58, s, true); }
  get wantExtraIsize(): number { return this.dv.getUint16(350, true); }
  get firstMetaBg(): number { return this.dv.getUint32(260, true); }

  /** A rw mount: mount count, mount time, not clean until unmount. */
  markMounted(nowSec: number): void {
    this.dv.setUint16(52, (this.dv.getUint16(52, true) + 1) & 0xffff, true);
    this.dv.setUint32(44, nowSec >>> 0, true);
    this.state = this.state & ~E2FS_ISCLEAN;
  }

  /** Before writing the superblock back: write time and checksum. */
  seal(nowSec: number): void {
    this.dv.setUint32(48, nowSec >>> 0, true);
    if (this.metadataCsum) this.dv.setUint32(1020, this.computeCsum(), true);
  }

  /** Does group g carry a superblock backup (and so its descriptor copy)? */
  hasSuper(g: number): boolean {
    if (g <= 1 || !(this.roCompat & RO_COMPAT.sparse_super)) return true;
    if (!(g & 1)) return false;
    for (const p of [3, 5, 7]) {
      let n = p;
      while (n < g) n *= p;
      if (n === g) return true;
    }
    return false;
  }

  /** First block of group g. */
  groupStart(g: number): number { return this.firstDataBlock + g * this.bpg; }
  /** Blocks in group g (the last one may be short). */
  groupBlocks(g: number): number { return Math.min(this.bpg, this.blocks - this.groupStart(g)); }

  /** Where descriptor block i (0-based, descPerBlock descriptors each) lives. */
  descBlock(i: number): number {
    const metaBg = (this.incompat & INCOMPAT.meta_bg) !== 0;
    if (!metaBg || i < this.firstMetaBg) return this.firstDataBlock + 1 + i;
    // meta_bg: the descriptors of a meta group are in its first group's block after the superblock.
    const g = i * this.descPerBlock;
    return this.groupStart(g) + (this.hasSuper(g) ? 1 : 0);
  }
}

/** A group descriptor, read from (and written back into) its bytes in the descriptor table. */
export class GroupDesc {
  constructor(private readonly dv: DataView, private readonly is64: boolean) {}
  private get64(lo: number, hi: number): number {
    return this.dv.getUint32(lo, true) + (this.is64 ? this.dv.getUint32(hi, true) * 2 ** 32 : 0);
  }
  private get32(lo: number, hi: number): number {
    return this.dv.getUint16(lo, true) + (this.is64 ? this.dv.getUint16(hi, true) * 65536 : 0);
  }
  private set32(lo: number, hi: number, n: number): void {
    this.dv.setUint16(lo, n & 0xffff, true);
    if (this.is64) this.dv.setUint16(hi, n >>> 16, true);
  }
  get blockBitmap(): number { return this.get64(0, 32); }
  get inodeBitmap(): number { return this.get64(4, 36); }
  get inodeTable(): number { return this.get64(8, 40); }
  get freeBlocks(): number { return this.get32(12, 44); }
  set freeBlocks(n: number) { this.set32(12, 44, n); }
  get freeInodes(): number { return this.get32(14, 46); }
  set freeInodes(n: number) { this.set32(14, 46, n); }
  get usedDirs(): number { return this.get32(16, 48); }
  set usedDirs(n: number) { this.set32(16, 48, n); }
  get checksum(): number { return this.dv.getUint16(30, true); }
  set checksum(n: number) { this.dv.setUint16(30, n, true); }
}

/** metadata_csum checksum of group g's descriptor bytes (checksum field taken as zero). */
export function gdCsum(sb: Superblock, g: number, desc: Uint8Array): number {
  const copy = desc.slice();
  copy[30] = copy[31] = 0;
  return crc32c(crc32c(sb.csumSeed, le32(g)), copy) & 0xffff;
}
