// The on-disk inode (struct ext2fs_dinode / ext4_inode): kept as its raw
// bytes so fields this driver does not know survive a write, with accessors
// for the ones it uses. Times carry nanoseconds and epoch bits in the extra
// space of large inodes, where that space is there.
import type { Timespec } from '../../kern/index.js';
import { crc32c, le32 } from './ext2fs_csum.js';

/** i_flags */
export const EXT2_INDEX_FL = 0x1000, EXT4_HUGE_FILE_FL = 0x40000, EXT4_EXTENTS_FL = 0x80000,
  EXT4_INLINE_DATA_FL = 0x10000000;

const GOOD_OLD_SIZE = 128;
/** Offsets of the extra fields and of the time pairs (base, extra). */
const O = {
  mode: 0, uid: 2, size: 4, atime: 8, ctime: 12, mtime: 16, dtime: 20, gid: 24, nlink: 26, blocks: 28,
  flags: 32, block: 40, gen: 100, fileAcl: 104, sizeHigh: 108, blocksHigh: 116, fileAclHigh: 118,
  uidHigh: 120, gidHigh: 122, csumLo: 124, extraIsize: 128, csumHi: 130, ctimeExtra: 132,
  mtimeExtra: 136, atimeExtra: 140, crtime: 144, crtimeExtra: 148,
} as const;

export type TimeField = 'atime' | 'ctime' | 'mtime' | 'crtime';
const timeAt: Record<TimeField, [number, number]> = {
  atime: [O.atime, O.atimeExtra], ctime: [O.ctime, O.ctimeExtra], mtime: [O.mtime, O.mtimeExtra],
  crtime: [O.crtime, O.crtimeExtra],
};

export class Dinode {
  readonly dv: DataView;
  constructor(readonly raw: Uint8Array) {
    this.dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  private u16(o: number): number { return this.dv.getUint16(o, true); }
  private u32(o: number): number { return this.dv.getUint32(o, true); }

  /** Does an extra field [off, off + len) lie within i_extra_isize? */
  fits(off: number, len: number): boolean {
    return this.raw.length > GOOD_OLD_SIZE && GOOD_OLD_SIZE + this.extraIsize >= off + len;
  }

  get mode(): number { return this.u16(O.mode); }
  set mode(m: number) { this.dv.setUint16(O.mode, m, true); }
  get uid(): number { return this.u16(O.uid) + this.u16(O.uidHigh) * 65536; }
  set uid(n: number) { this.dv.setUint16(O.uid, n & 0xffff, true); this.dv.setUint16(O.uidHigh, n >>> 16, true); }
  get gid(): number { return this.u16(O.gid) + this.u16(O.gidHigh) * 65536; }
  set gid(n: number) { this.dv.setUint16(O.gid, n & 0xffff, true); this.dv.setUint16(O.gidHigh, n >>> 16, true); }
  get size(): number { return this.u32(O.size) + this.u32(O.sizeHigh) * 2 ** 32; }
  set size(n: number) { this.dv.setUint32(O.size, n >>> 0, true); this.dv.setUint32(O.sizeHigh, Math.floor(n / 2 ** 32), true); }
  get nlink(): number { return this.u16(O.nlink); }
  set nlink(n: number) { this.dv.setUint16(O.nlink, n, true); }
  get flags(): number { return this.u32(O.flags); }
  set flags(n: number) { this.dv.setUint32(O.flags, n >>> 0, true); }
  get gen(): number { return this.u32(O.gen); }
  set gen(n: number) { this.dv.setUint32(O.gen, n >>> 0, true); }
  get dtime(): number { return this.u32(O.dtime); }
  set dtime(n: number) { this.dv.setUint32(O.dtime, n >>> 0, true); }
  get fileAcl(): number { return this.u32(O.fileAcl) + this.u16(O.fileAclHigh) * 2 ** 32; }
  set fileAcl(n: number) { this.dv.setUint32(O.fileAcl, n >>> 0, true); this.dv.setUint16(O.fileAclHigh, Math.floor(n / 2 ** 32), true); }
  get extraIsize(): number { return this.raw.length > GOOD_OLD_SIZE ? this.u16(O.extraIsize) : 0; }
  set extraIsize(n: number) { this.dv.setUint16(O.extraIsize, n, true); }
  /** The 15 block words (i_block): block pointers, an extent tree root, a fast symlink, a device number. */
  get iblock(): Uint8Array { return this.raw.subarray(O.block, O.block + 60); }
  blockAt(i: number): number { return this.u32(O.block + 4 * i); }
  setBlockAt(i: number, n: number): void { this.dv.setUint32(O.block + 4 * i, n >>> 0, true); }

  /** i_blocks in 512-byte units (fs blocks with huge_file's per-inode flag). */
  blocks512(hugeFile: boolean, bsize: number): number {
    const n = this.u32(O.blocks) + (hugeFile ? this.u16(O.blocksHigh) * 2 ** 32 : 0);
    return hugeFile && (this.flags & EXT4_HUGE_FILE_FL) ? n * (bsize / 512) : n;
  }
  setBlocks512(n: number): void {
    this.flags = this.flags & ~EXT4_HUGE_FILE_FL;
    this.dv.setUint32(O.blocks, n >>> 0, true);
    this.dv.setUint16(O.blocksHigh, Math.floor(n / 2 ** 32), true);
  }

  getTime(f: TimeField): Timespec {
    const [base, extra] = timeAt[f];
    if (f === 'crtime' && !this.fits(base, 4)) return { sec: 0, nsec: 0 };
    let sec = this.dv.getInt32(base, true), nsec = 0;
    if (this.fits(extra, 4)) {
      const x = this.u32(extra);
      sec += (x & 3) * 2 ** 32;
      nsec = x >>> 2;
      if (nsec > 999_999_999) nsec = 0;
    }
    return { sec, nsec };
  }
  setTime(f: TimeField, t: Timespec): void {
    const [base, extra] = timeAt[f];
    if (f === 'crtime' && !this.fits(base, 4)) return;
    const lo = t.sec | 0;
    this.dv.setInt32(base, lo, true);
    if (this.fits(extra, 4)) {
      const epoch = ((t.sec - lo) / 2 ** 32) & 3;
      this.dv.setUint32(extra, ((t.nsec << 2) | epoch) >>> 0, true);
    }
  }

  /** metadata_csum: the inode's checksum as stored, and as computed (both 32 bits, or 16 when only the low half is kept). */
  csum(seed: number, ino: number): { stored: number; computed: number } {
    const hi = this.fits(O.csumHi, 2);
    const copy = this.raw.slice();
    copy[O.csumLo] = copy[O.csumLo + 1] = 0;
    if (hi) copy[O.csumHi] = copy[O.csumHi + 1] = 0;
    let c = crc32c(crc32c(crc32c(seed, le32(ino)), le32(this.gen)), copy);
    let stored = this.u16(O.csumLo);
    if (hi) stored |= this.u16(O.csumHi) << 16;
    else c &= 0xffff;
    return { stored: stored >>> 0, computed: c >>> 0 };
  }
  setCsum(seed: number, ino: number): void {
    const { computed } = this.csum(seed, ino);
    this.dv.setUint16(O.csumLo, computed & 0xffff, true);
    if (this.fits(O.csumHi, 2)) this.dv.setUint16(O.csumHi, computed >>> 16, true);
  }
}
