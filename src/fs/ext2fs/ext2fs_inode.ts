// The in-memory inode (NetBSD struct inode for ext2fs): the dinode, what
// it means for the vnode, and writing it back.
import { kerr, nanotime, VType, ifmtToVtype, S_IFMT } from '../../kern/index.js';
import { INCOMPAT } from './ext2fs.js';
import { Dinode, EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, type TimeField } from './ext2fs_dinode.js';
import type { E2fsMount } from './ext2fsmount.js';

/** One leaf extent: logical start, length, physical start, unwritten (reads as zeroes). */
export interface Extent { lblk: number; len: number; pblk: number; uninit: boolean }

export class E2node {
  /** The dinode differs from the disk. */
  dirty = false;
  /** The last extent a lookup found (files are mostly read in order). */
  lastExtent: Extent | null = null;
  /** The file is gone (links 0, blocks and inode freed). */
  freed = false;
  /**
   * A directory's names (bytes as a binary string) to their inode and the
   * directory block holding the entry (entries never move between blocks):
   * built by the first lookup, kept by every change (made under the
   * directory's exclusive lock); null until then.
   */
  names: Map<string, { ino: number; lbn: number }> | null = null;
  /** A directory's first block that may have room for a new entry (dir_enter searches from it). */
  roomFrom = 0;

  constructor(readonly ump: E2fsMount, readonly ino: number, readonly di: Dinode) {}

  get type(): VType { return ifmtToVtype(this.di.mode); }
  get isDir(): boolean { return (this.di.mode & S_IFMT) === 0o040000; }
  get size(): number { return this.di.size; }
  get extents(): boolean { return (this.di.flags & EXT4_EXTENTS_FL) !== 0; }
  get bsize(): number { return this.ump.bsize; }

  /** Checks on loading: what every later use relies on. */
  static async load(ump: E2fsMount, ino: number): Promise<E2node> {
    const di = await ump.readInode(ino);
    const ip = new E2node(ump, ino, di);
    const t = ifmtToVtype(di.mode);
    if (di.nlink === 0 || t === VType.VNON) throw ump.corrupt(`inode ${ino} is not in use (mode 0${di.mode.toString(8)}, ${di.nlink} links)`);
    if (di.flags & EXT4_INLINE_DATA_FL) throw ump.corrupt(`inode ${ino}: inline data`);
    if (ip.extents && !(ump.sb.incompat & INCOMPAT.extent)) throw ump.corrupt(`inode ${ino}: extents on a file system without them`);
    const size = di.size;
    if (!Number.isSafeInteger(size) || (t === VType.VDIR && size % ump.bsize !== 0) || (t === VType.VLNK && (size === 0 || size > 4096))) {
      throw ump.corrupt(`inode ${ino}: size ${size} for its type`);
    }
    return ip;
  }

  touch(...fields: TimeField[]): void {
    const t = nanotime();
    for (const f of fields) this.di.setTime(f, t);
    this.dirty = true;
  }

  /** 512-byte sectors the file holds on the medium. */
  get blocks512(): number { return this.di.blocks512(this.ump.sb.hugeFile, this.bsize); }
  addBlocks(n: number): void {
    this.di.setBlocks512(this.blocks512 + n * (this.bsize / 512));
    this.dirty = true;
  }

  async update(): Promise<void> {
    if (!this.dirty || this.freed || this.ump.mp.readOnly) return;
    this.dirty = false;
    await this.ump.writeInode(this.ino, this.di);
  }

  /** A fast symlink keeps its target in i_block (no data blocks, no extent tree). */
  get fastSymlink(): boolean {
    const xattrSectors = this.di.fileAcl ? this.bsize / 512 : 0;
    return this.type === VType.VLNK && !this.extents && this.blocks512 - xattrSectors === 0;
  }

  /** Refuse what the writer cannot keep valid for this file. */
  writable(): void {
    if (this.ump.mp.readOnly) throw kerr('EROFS');
    if (this.extents) throw kerr('EROFS', 'files with extents are read-only in this driver');
  }
}
