// The mounted file system (NetBSD struct m_ext2fs / ufsmount): the
// superblock, the group descriptor table, and access to blocks and inodes
// with every address checked against the file system.
import {
  bread, brelse, kerr, log, MNT_RDONLY, mount_bwrite, nanotime, type BlockDevice, type Buf, type KernError, type Mount,
} from '../../kern/index.js';
import { E2FS_ERRORS, GroupDesc, gdCsum, INCOMPAT, Superblock } from './ext2fs.js';
import { Dinode } from './ext2fs_dinode.js';

export interface Ext2fsArgs {
  /** sb=N: the superblock copy at block N (of 1 KiB, as mount -o sb= counts). */
  sb?: number;
  /** errors=continue|remount-ro|panic: what to do on corruption (panic is treated as remount-ro). */
  errors?: 'continue' | 'remount-ro';
}

export class E2fsMount {
  /** The descriptor table, as on disk (ngroups * descSize bytes). */
  readonly gdRaw: Uint8Array;
  readonly gds: GroupDesc[] = [];
  /** Descriptor blocks (by index) changed since the last sync. */
  readonly gdDirty = new Set<number>();
  sbDirty = false;
  /** Owner of metadata buffers (vflushbuf target for fsync). */
  readonly meta = {};
  /** Where the superblock lives: its block, and its offset in that block. */
  readonly sbBlock: number;
  readonly sbWithin: number;
  /** Mounted read-write although the volume was not clean: leave it so at unmount, for e2fsck. */
  wasDirty = false;
  /**
   * Blocks freed as metadata (directory, indirect, attribute blocks) since
   * they were last written as file data: their buffer may still be a
   * delayed write, so file data is written to them through the cache.
   */
  readonly dirtyFreed = new Set<number>();
  /** Goal for the next new directory's inode group (spreads directories, as Orlov does). */
  nextDirGroup = 0;

  constructor(readonly mp: Mount, readonly dev: BlockDevice, readonly sb: Superblock, gdRaw: Uint8Array, readonly args: Ext2fsArgs, sbOffset: number) {
    this.gdRaw = gdRaw;
    const is64 = (sb.incompat & INCOMPAT['64bit']) !== 0;
    for (let g = 0; g < sb.ngroups; g++) {
      this.gds.push(new GroupDesc(new DataView(gdRaw.buffer, gdRaw.byteOffset + g * sb.descSize, sb.descSize), is64));
    }
    this.sbBlock = Math.floor(sbOffset / sb.bsize);
    this.sbWithin = sbOffset - this.sbBlock * sb.bsize;
  }

  get bsize(): number { return this.sb.bsize; }
  get path(): string { return this.dev.path; }

  /**
   * Corrupt on-disk data: a kernel log line, and EIO for the caller. A
   * read-write mount records the error in the superblock and, unless
   * errors=continue, takes no more writes (errors=remount-ro).
   */
  corrupt(what: string): KernError {
    log(`ext2fs: ${this.dev.path}: ${what}`);
    if (!this.mp.readOnly) {
      this.sb.state |= E2FS_ERRORS;
      this.sbDirty = true;
      if (this.args.errors !== 'continue') {
        log(`ext2fs: ${this.dev.path}: errors=remount-ro: read-only from now on`);
        this.mp.flags |= MNT_RDONLY;
      }
    }
    return kerr('EIO', what);
  }

  /** A block a file or directory may point to. */
  validBlock(pbn: number, n = 1): boolean {
    return Number.isSafeInteger(pbn) && pbn > this.sb.firstDataBlock && pbn + n <= this.sb.blocks;
  }

  async bread(pbn: number, owner: object = this.meta): Promise<Buf> {
    return bread(this.dev, pbn * this.bsize, this.bsize, owner);
  }

  /** Where inode ino is: its inode-table block and its offset in it. */
  private inodeLoc(ino: number): { blk: number; off: number } {
    const sb = this.sb;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodes) throw this.corrupt(`inode number ${ino} out of range`);
    const g = Math.floor((ino - 1) / sb.ipg), i = (ino - 1) % sb.ipg;
    return { blk: this.gds[g].inodeTable + Math.floor(i / sb.ipb), off: (i % sb.ipb) * sb.inodeSize };
  }

  /** A copy of inode ino's bytes, its checksum verified where the image keeps one. */
  async readInode(ino: number): Promise<Dinode> {
    const { blk, off } = this.inodeLoc(ino);
    const bp = await this.bread(blk);
    const di = new Dinode(bp.data.slice(off, off + this.sb.inodeSize));
    brelse(bp);
    if (di.raw.length > 128 && 128 + di.extraIsize > di.raw.length) throw this.corrupt(`inode ${ino}: extra size ${di.extraIsize}`);
    if (this.sb.metadataCsum) {
      const c = di.csum(this.sb.csumSeed, ino);
      if (c.stored !== c.computed && !di.raw.every(b => b === 0)) throw this.corrupt(`inode ${ino}: checksum does not match`);
    }
    return di;
  }

  async writeInode(ino: number, di: Dinode): Promise<void> {
    const { blk, off } = this.inodeLoc(ino);
    if (this.sb.metadataCsum) di.setCsum(this.sb.csumSeed, ino);
    const bp = await this.bread(blk);
    bp.data.set(di.raw, off);
    await mount_bwrite(this.mp, bp);
  }

  /** Group g's descriptor changed. */
  gdChanged(g: number): void {
    this.gdDirty.add(Math.floor(g / this.sb.descPerBlock));
    this.sbDirty = true;
  }

  /** Write the changed descriptor blocks and the superblock to the buffer cache. */
  async flushMeta(): Promise<void> {
    // What changed before a remount-ro is still written; a read-only mount changes nothing.
    if (this.dev.readOnly || (this.gdDirty.size === 0 && !this.sbDirty)) return;
    const sb = this.sb, dpb = sb.descPerBlock;
    for (const i of [...this.gdDirty].sort((a, b) => a - b)) {
      this.gdDirty.delete(i);
      const first = i * dpb, last = Math.min(sb.ngroups, first + dpb);
      if (sb.metadataCsum) {
        for (let g = first; g < last; g++) {
          this.gds[g].checksum = gdCsum(sb, g, this.gdRaw.subarray(g * sb.descSize, (g + 1) * sb.descSize));
        }
      }
      const bp = await this.bread(sb.descBlock(i));
      bp.data.set(this.gdRaw.subarray(first * sb.descSize, last * sb.descSize));
      await mount_bwrite(this.mp, bp);
    }
    if (!this.sbDirty) return;
    this.sbDirty = false;
    sb.seal(nanotime().sec);
    const bp = await this.bread(this.sbBlock);
    bp.data.set(sb.raw, this.sbWithin);
    await mount_bwrite(this.mp, bp);
  }
}
