// The in-memory node of a file or directory (NetBSD denode.h,
// msdosfs_denode.c): its short entry, where that entry lives, its cluster
// chain (cached), growing and shrinking it, and writing the entry back.
import { bread, getblk, mount_bwrite, nanotime, type Vnode } from '../../kern/index.js';
import {
  ATTR_ARCHIVE, ATTR_DIRECTORY, direntry_decode, direntry_encode, type Direntry,
} from './direntry.js';
import { unix2dostime } from './msdosfs_conv.js';
import type { DirLayout } from './msdosfs_dircache.js';
import type { Msdosfsmount } from './msdosfsmount.js';

export class Denode {
  /** Device byte offset of its short entry; -1 for the root and for removed files. */
  entryOff: number;
  /** In-memory copy of the short entry (the root's is made up). */
  readonly de: Direntry;
  /** Links: 1 for files; 2 + subdirectories for directories; 0 once removed. */
  nlink = 1;
  /** The entry differs from the disk. */
  dirty = false;
  /** Clusters already given back (reclaim after remove). */
  freed = false;
  private chainCache: number[] | null = null;
  /**
   * A directory's names, folded (long and short forms), to the device offset
   * of their short entry: built by the first lookup, kept by dir_create and
   * dir_remove (callers hold the directory exclusively), null until then.
   */
  names: Map<string, number> | null = null;
  /** A directory's short names and free slots, kept as names is; null until dir_create scans. */
  layout: DirLayout | null = null;
  /** The names had a duplicate (corrupt media): a removal cannot be applied, only dropped. */
  namesDup = false;

  constructor(readonly dmp: Msdosfsmount, readonly isRoot: boolean, entryOff: number, de: Direntry) {
    this.entryOff = entryOff;
    this.de = de;
  }

  get isDir(): boolean { return this.isRoot || (this.de.attr & ATTR_DIRECTORY) !== 0; }

  /** FAT12/16 root: a fixed region, not clusters. */
  get fixedRoot(): boolean { return this.isRoot && !this.dmp.fat32; }

  /** The cluster chain, checked (EIO when corrupt). */
  chain(): number[] {
    this.chainCache ??= this.dmp.fat.chain(this.de.cluster, this.describe());
    return this.chainCache;
  }

  describe(): string {
    return this.isRoot ? 'root directory' : `entry at ${this.entryOff}`;
  }

  /** Directory blocks in order: sectors of a fixed root, else clusters. */
  dirBlocks(): { off: number; size: number }[] {
    const b = this.dmp.bpb;
    if (this.fixedRoot) {
      const out = [];
      for (let o = 0; o < b.rootBytes; o += b.bytesPerSec) out.push({ off: b.rootOffset + o, size: b.bytesPerSec });
      return out;
    }
    return this.chain().map(c => ({ off: this.dmp.cntobyte(c), size: b.clusterSize }));
  }

  /** Directory block i (as dirBlocks()[i], without listing them all). */
  dirBlock(i: number): { off: number; size: number } {
    const b = this.dmp.bpb;
    if (this.fixedRoot) return { off: b.rootOffset + i * b.bytesPerSec, size: b.bytesPerSec };
    return { off: this.dmp.cntobyte(this.chain()[i]), size: b.clusterSize };
  }

  /** Index of the directory slot at device offset off (-1: not in this directory). */
  dirSlotOf(off: number): number {
    const blk = this.dmp.blockOf(off);
    const i = this.fixedRoot ? (blk.off - this.dmp.bpb.rootOffset) / blk.size
      : this.chain().indexOf((blk.off - this.dmp.bpb.dataOffset) / blk.size + 2);
    return i < 0 ? -1 : i * (blk.size / 32) + (off - blk.off) / 32;
  }

  /** Bytes the node takes on the medium. */
  allocated(): number {
    if (this.fixedRoot) return this.dmp.bpb.rootBytes;
    return this.chain().length * this.dmp.bpb.clusterSize;
  }

  /**
   * Append n zeroed clusters (ENOSPC: nothing changes). Zeroed buffers are
   * owned by `owner` (the vnode for file data, the mount's metadata for
   * directories). Clusters from chain index `written` on are left to the
   * caller, which writes them at once.
   */
  async extend(n: number, owner: object, written = Infinity): Promise<number[]> {
    const fat = this.dmp.fat;
    const ch = this.chain();
    const last = ch.length ? ch[ch.length - 1] : 0;
    const got = fat.alloc(n, last ? last + 1 : fat.nextFree);
    if (last) fat.link(last, got[0]);
    else {
      this.de.cluster = got[0];
      this.dirty = true;
    }
    ch.push(...got);
    const cs = this.dmp.bpb.clusterSize;
    for (const c of got.slice(0, Math.max(0, written - (ch.length - got.length)))) {
      const bp = await getblk(this.dmp.dev, this.dmp.cntobyte(c), cs, owner);
      bp.data.fill(0);
      if (owner === this.dmp.meta) await this.dmp.dirWrite(bp);
      else await mount_bwrite(this.dmp.mp, bp);
    }
    return got;
  }

  /** Keep only the first `keep` clusters; the rest go back to the free pool. */
  truncateClusters(keep: number): void {
    const ch = this.chain();
    if (keep >= ch.length) return;
    const fat = this.dmp.fat;
    if (keep === 0) {
      this.de.cluster = 0;
      this.dirty = true;
    } else {
      fat.link(ch[keep - 1], fat.eof);
    }
    fat.free(ch.slice(keep));
    ch.length = keep;
  }

  /** Set mtime (and access date) to now, mark archive: the file changed. */
  touchModified(): void {
    const t = unix2dostime(nanotime(), this.dmp.args.gmtoff);
    this.de.mDate = t.date;
    this.de.mTime = t.time;
    this.de.accDate = t.date;
    if (!this.isDir) this.de.attr |= ATTR_ARCHIVE;
    this.dirty = true;
  }

  /** Write the entry back when it changed (not for the root or a removed file). */
  async update(): Promise<void> {
    if (!this.dirty) return;
    if (this.entryOff < 0) { this.dirty = false; return; }
    const blk = this.dmp.blockOf(this.entryOff);
    const bp = await bread(this.dmp.dev, blk.off, blk.size, this.dmp.meta);
    const at = this.entryOff - blk.off;
    // Only the fields a node owns: the name bytes and NT case stay as on disk.
    const cur = direntry_decode(bp.data, at, this.dmp.fat32);
    direntry_encode(bp.data, at, { ...this.de, name: cur.name, ntcase: cur.ntcase });
    this.dirty = false;
    await mount_bwrite(this.dmp.mp, bp);
  }

  /** The root directory's node (its entry is made up: no times, never written). */
  static root(dmp: Msdosfsmount): Denode {
    return Denode.dirAt(dmp, dmp.fat32 ? dmp.bpb.rootClus : 0);
  }

  /** A node for the directory at cluster cl (0: the root), for walking `..`; not cached. */
  static dirAt(dmp: Msdosfsmount, cl: number): Denode {
    const isRoot = cl === 0 || (dmp.fat32 && cl === dmp.bpb.rootClus);
    const de: Direntry = {
      name: new Uint8Array(11).fill(0x20), attr: ATTR_DIRECTORY, ntcase: 0, crtTenth: 0, crtTime: 0, crtDate: 0,
      accDate: 0, mTime: 0, mDate: 0, cluster: isRoot && dmp.fat32 ? dmp.bpb.rootClus : cl, size: 0,
    };
    return new Denode(dmp, isRoot, -1, de);
  }

  static nodeOf(vp: Vnode): Denode {
    return vp.node<Denode>();
  }
}
