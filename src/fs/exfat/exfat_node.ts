// The in-memory node of a file or directory: its entry set (File, Stream
// Extension, File Name and any benign secondaries, as bytes), where those
// entries lie, its clusters as extents, and changing them: growing (kept
// NoFatChain while contiguous, given a FAT chain when not), shrinking, and
// writing the entry set back with a fresh checksum.
import { bread, getblk, mount_bwrite, nanotime, type Vnode } from '../../kern/index.js';
import type { Extent } from './exfat_alloc.js';
import {
  ATTR_ARCHIVE, ATTR_DIRECTORY, DENTRY_SIZE, DIR_MAX_BYTES, EntrySet, SF_ALLOC_POSSIBLE, SF_NOFATCHAIN, TS_ACCESS,
  TS_MODIFY, ts_set,
} from './exfat.js';
import type { DirIndex } from './exfat_dir.js';
import type { Exfatmount } from './exfatmount.js';

export class ExNode {
  /** Clusters, in file order. */
  ext: Extent[] = [];
  /** Cluster index at which each extent starts. */
  private cum: number[] = [];
  nclus = 0;
  /** One contiguous extent without FAT entries. */
  noFatChain = false;
  /** DataLength and ValidDataLength (a directory: both its allocation). */
  size = 0;
  vdl = 0;
  /** 0 once removed. */
  nlink = 1;
  /** The entry set differs from the disk. */
  dirty = false;
  /** Clusters already given back (reclaim after remove). */
  freed = false;
  /** A directory's names and free slots, built by the first lookup. */
  dir: DirIndex | null = null;

  constructor(readonly emp: Exfatmount, public key: number, public parentKey: number,
    /** null for the root, which has no entry. */
    public set: EntrySet | null,
    /** Device offsets of the set's entries. */
    public offs: number[]) {}

  get isRoot(): boolean { return this.set === null; }
  get attr(): number { return this.set ? this.set.attr : ATTR_DIRECTORY; }
  get isDir(): boolean { return (this.attr & ATTR_DIRECTORY) !== 0; }

  describe(): string {
    return this.isRoot ? 'root directory' : `entry at ${this.key}`;
  }

  setClusters(ext: Extent[], noFatChain: boolean): void {
    this.ext = ext;
    this.noFatChain = noFatChain && ext.length <= 1;
    this.cum = [];
    let n = 0;
    for (const e of ext) { this.cum.push(n); n += e.len; }
    this.nclus = n;
  }

  /** The cluster at index ci of the file (ci < nclus). */
  clusterAt(ci: number): number {
    let lo = 0, hi = this.ext.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.cum[mid] <= ci) lo = mid; else hi = mid - 1;
    }
    return this.ext[lo].start + (ci - this.cum[lo]);
  }

  /** Device offset of byte pos of the file's clusters. */
  devOff(pos: number): number {
    const cs = this.emp.cs;
    return this.emp.clusterOff(this.clusterAt(Math.floor(pos / cs))) + (pos % cs);
  }

  /**
   * Add n clusters: right after the last one when they are free (a
   * NoFatChain file stays so), else wherever the allocator finds them, and
   * the file gets a FAT chain. ENOSPC changes nothing. A directory's new
   * clusters are zeroed (its end of directory).
   */
  async extend(n: number): Promise<void> {
    const emp = this.emp, alloc = emp.alloc;
    if (n <= 0) return;
    if (this.isDir && (this.nclus + n) * emp.cs > DIR_MAX_BYTES) throw emp.error(`${this.describe()}: directory would pass 256 MiB`);
    const last = this.nclus ? this.clusterAt(this.nclus - 1) : 0;
    let added: Extent[];
    let ext: Extent[];
    if (last && alloc.allocAt(last + 1, n)) {
      added = [{ start: last + 1, len: n }];
      ext = this.ext.map(e => ({ ...e }));
      ext[ext.length - 1].len += n;
    } else {
      added = alloc.alloc(n, last ? last + 1 : undefined);
      ext = [...this.ext.map(e => ({ ...e })), ...added];
    }
    const contiguous = ext.length === 1;
    // The root has no stream entry to say NoFatChain: it is always chained.
    const wasChained = this.nclus > 0 && (this.isRoot || !this.noFatChain);
    const chained = this.isRoot || !contiguous || wasChained;
    // A chain grows at its end; a NoFatChain file that stops being contiguous gets links for all.
    if (wasChained) alloc.link([{ start: last, len: 1 }, ...added]);
    else if (chained) alloc.link(ext);
    this.setClusters(ext, !chained);
    if (this.isDir) {
      for (const e of added) {
        for (let off = emp.clusterOff(e.start); off < emp.clusterOff(e.start + e.len); off += emp.bsize) {
          const bp = await getblk(emp.dev, off, emp.bsize, emp.meta);
          bp.data.fill(0);
          await mount_bwrite(emp.mp, bp);
        }
      }
      this.size = this.vdl = this.nclus * emp.cs;
    }
    this.dirty = true;
  }

  /** Keep only the first `keep` clusters; the rest go back to the free pool. */
  truncateClusters(keep: number): void {
    if (keep >= this.nclus) return;
    const alloc = this.emp.alloc;
    const kept: Extent[] = [], gone: Extent[] = [];
    let n = 0;
    for (const e of this.ext) {
      const take = Math.max(0, Math.min(e.len, keep - n));
      if (take > 0) kept.push({ start: e.start, len: take });
      if (take < e.len) gone.push({ start: e.start + take, len: e.len - take });
      n += e.len;
    }
    const chained = !this.noFatChain;
    alloc.free(gone, chained);
    if (chained && kept.length) alloc.link(kept);
    this.setClusters(kept, this.noFatChain);
    this.dirty = true;
  }

  /** The file changed: mtime (and atime) now, archive bit, as Linux's exfat does. */
  touchModified(): void {
    const s = this.set;
    if (!s) return;
    const t = nanotime();
    ts_set(s, TS_MODIFY, t, this.emp.args.timeOffset);
    ts_set(s, TS_ACCESS, t, this.emp.args.timeOffset);
    if (!this.isDir) s.attr |= ATTR_ARCHIVE;
    this.dirty = true;
  }

  /** Put the node's fields into its entry set, seal it, and write it where it lies. */
  async update(): Promise<void> {
    const s = this.set;
    if (!this.dirty || !s || this.offs.length === 0) { this.dirty = false; return; }
    s.dataLength = this.size;
    s.validDataLength = this.vdl;
    s.firstCluster = this.nclus ? this.ext[0].start : 0;
    s.flags = SF_ALLOC_POSSIBLE | (this.noFatChain && this.nclus ? SF_NOFATCHAIN : 0);
    s.seal();
    this.dirty = false;
    await write_entries(this.emp, this.offs, (i) => s.b.subarray(i * DENTRY_SIZE, (i + 1) * DENTRY_SIZE));
  }

  static nodeOf(vp: Vnode): ExNode {
    return vp.node<ExNode>();
  }
}

/** Write 32-byte entries at device offsets (any order), one block at a time. */
export async function write_entries(emp: Exfatmount, offs: readonly number[], entry: (i: number) => Uint8Array): Promise<void> {
  for (let i = 0; i < offs.length;) {
    const blk = emp.blockOf(offs[i]);
    const bp = await bread(emp.dev, blk, emp.bsize, emp.meta);
    // Synchronous from here to the write: nobody sees the block half done.
    for (; i < offs.length && emp.blockOf(offs[i]) === blk; i++) bp.data.set(entry(i), offs[i] - blk);
    await mount_bwrite(emp.mp, bp);
  }
}
