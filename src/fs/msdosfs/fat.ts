// The file allocation table (NetBSD msdosfs_fat.c): entries of FAT12/16/32,
// chains with loop and cross-link detection, allocation that keeps files
// contiguous, free count, FSInfo hint, the clean-shutdown bit, and writing
// changed blocks to every FAT copy through the buffer cache.
//
// The active FAT is held in memory (read once at mount, in big chunks), so
// lookups never wait; changes are synchronous in memory and marked per
// block, then written out by flush().
import {
  bwrite, getblk, kerr, log, Mutex, mount_bwrite, type BlockDevice, type Mount,
} from '../../kern/index.js';
import type { Bpb } from './bpb.js';

const FLUSH_BLOCK = 4096;
const READ_CHUNK = 4 << 20;
/** A FAT block of free entries, as scan() compares it. */
const FREE_BLOCK = new Uint8Array(4096);

export class Fat {
  private readonly raw: Uint8Array;
  private readonly bits: number;
  /** Highest valid cluster number. */
  readonly maxCluster: number;
  /** Values at or above this end a chain. */
  private readonly eofMin: number;
  private readonly badValue: number;
  readonly eof: number;
  freeCount = 0;
  nextFree = 2;
  /**
   * How many FAT entries point at each cluster (saturating): a chain's first
   * cluster has none, any other exactly one. More means a loop or a cross-link.
   */
  private readonly refs: Uint8Array;
  private readonly dirtyBlocks = new Set<number>();
  private readonly flushLock = new Mutex('msdosfs fat');
  /** Which copies are written: all when mirrored, else the active one. */
  private readonly copies: number[];
  /** FSInfo needs writing. */
  fsinfoDirty = false;

  private constructor(readonly mp: Mount, readonly dev: BlockDevice, readonly bpb: Bpb, raw: Uint8Array, private readonly meta: object) {
    this.raw = raw;
    this.bits = bpb.fatType;
    this.maxCluster = bpb.clusterCount + 1;
    this.refs = new Uint8Array(this.maxCluster + 1);
    this.eofMin = this.bits === 12 ? 0xff8 : this.bits === 16 ? 0xfff8 : 0x0ffffff8;
    this.badValue = this.eofMin - 1;
    this.eof = this.bits === 12 ? 0xfff : this.bits === 16 ? 0xffff : 0x0fffffff;
    const mirrored = bpb.fatType !== 32 || !(bpb.extFlags & 0x80);
    this.copies = mirrored ? [...Array(bpb.numFats).keys()] : [bpb.extFlags & 0xf];
  }

  /** Read the active FAT, count free clusters, find shared ones. */
  static async load(mp: Mount, dev: BlockDevice, bpb: Bpb, meta: object): Promise<Fat> {
    const active = bpb.fatType === 32 && (bpb.extFlags & 0x80) ? bpb.extFlags & 0xf : 0;
    const raw = new Uint8Array(bpb.fatBytes);
    const base = bpb.fatOffset + active * bpb.fatBytes;
    for (let off = 0; off < raw.length; off += READ_CHUNK) {
      await dev.read(raw.subarray(off, Math.min(off + READ_CHUNK, raw.length)), base + off);
    }
    const fat = new Fat(mp, dev, bpb, raw, meta);
    fat.scan();
    return fat;
  }

  private scan(): void {
    let free = 0, crossed = 0;
    const refs = this.refs, max = this.maxCluster;
    // The loop runs once, at mount, before V8 has compiled anything: FAT16
    // and FAT32 entries are read as whole words (cheaper interpreted), and a
    // block of free entries (most of a volume's FAT, usually) is passed by
    // one comparison in C instead of an entry at a time.
    const words = this.bits === 32 ? new Uint32Array(this.raw.buffer, this.raw.byteOffset, max + 1)
      : this.bits === 16 ? new Uint16Array(this.raw.buffer, this.raw.byteOffset, max + 1) : null;
    const mask = this.bits === 32 ? 0x0fffffff : 0xffff;
    const step = words ? FREE_BLOCK.length / words.BYTES_PER_ELEMENT : max + 1;
    for (let first = 0; first <= max; first += step) {
      const last = Math.min(first + step - 1, max);
      if (words && first >= 2 && last - first + 1 === step) {
        const at = first * words.BYTES_PER_ELEMENT;
        if (Buffer.compare(this.raw.subarray(at, at + FREE_BLOCK.length), FREE_BLOCK) === 0) {
          free += step;
          continue;
        }
      }
      for (let c = first < 2 ? 2 : first; c <= last; c++) {
        const v = words ? words[c] & mask : this.get(c);
        // Most used entries go on to the next cluster, which nothing pointed at
        // yet (a file written in one go): one test, one store (the first
        // scan of a volume holding a 256 MiB file, 5.1 -> 3.8 ms).
        if (v === c + 1 && refs[v] === 0) {
          refs[v] = 1;
        } else if (v === 0) {
          free++;
        } else if (v >= 2 && v <= max) {
          const r = refs[v];
          if (r === 1) crossed++;
          if (r < 255) refs[v] = r + 1;
        }
      }
    }
    this.freeCount = free;
    if (crossed) log(`msdosfs: ${this.dev.path}: ${crossed} cluster(s) are linked from more than one place (cross-linked or looping chains); files using them give EIO`);
  }

  /** FAT entry of cluster c (0..maxCluster), without the reserved FAT32 bits. */
  get(c: number): number {
    const r = this.raw;
    switch (this.bits) {
      case 12: {
        const o = c + (c >> 1);
        const v = r[o] | (r[o + 1] << 8);
        return c & 1 ? v >> 4 : v & 0xfff;
      }
      case 16: return r[2 * c] | (r[2 * c + 1] << 8);
      default: {
        const o = 4 * c;
        return (r[o] | (r[o + 1] << 8) | (r[o + 2] << 16) | (r[o + 3] << 24)) & 0x0fffffff;
      }
    }
  }

  set(c: number, v: number): void {
    if (c >= 2) {
      const old = this.get(c);
      if (this.validCluster(old) && this.refs[old] > 0) this.refs[old]--;
      if (this.validCluster(v) && this.refs[v] < 255) this.refs[v]++;
    }
    const r = this.raw;
    let o: number;
    switch (this.bits) {
      case 12:
        o = c + (c >> 1);
        if (c & 1) {
          r[o] = (r[o] & 0x0f) | ((v << 4) & 0xf0);
          r[o + 1] = (v >> 4) & 0xff;
        } else {
          r[o] = v & 0xff;
          r[o + 1] = (r[o + 1] & 0xf0) | ((v >> 8) & 0x0f);
        }
        this.touch(o, 2);
        return;
      case 16:
        o = 2 * c;
        r[o] = v & 0xff;
        r[o + 1] = (v >> 8) & 0xff;
        this.touch(o, 2);
        return;
      default:
        o = 4 * c;
        r[o] = v & 0xff;
        r[o + 1] = (v >> 8) & 0xff;
        r[o + 2] = (v >> 16) & 0xff;
        r[o + 3] = (r[o + 3] & 0xf0) | ((v >> 24) & 0x0f);
        this.touch(o, 4);
    }
  }

  private touch(off: number, len: number): void {
    this.dirtyBlocks.add(Math.floor(off / FLUSH_BLOCK));
    this.dirtyBlocks.add(Math.floor((off + len - 1) / FLUSH_BLOCK));
  }

  isEOF(v: number): boolean { return v >= this.eofMin; }

  validCluster(c: number): boolean { return c >= 2 && c <= this.maxCluster; }

  /**
   * The clusters of the chain starting at `start`, checked: every link in
   * range, no free or bad cluster inside, no loop, no cluster shared with
   * another chain. EIO (and a log line) otherwise.
   */
  chain(start: number, what: string): number[] {
    const out: number[] = [];
    if (start === 0) return out;
    if (this.validCluster(start) && this.refs[start] > 0) throw this.corrupt(`${what}: first cluster ${start} is also inside another chain`);
    let c = start;
    for (;;) {
      if (!this.validCluster(c)) throw this.corrupt(`${what}: cluster ${c} out of range`);
      if (this.refs[c] > 1) throw this.corrupt(`${what}: chain runs into cluster ${c}, which another chain also uses (or loops)`);
      if (out.length >= this.bpb.clusterCount) throw this.corrupt(`${what}: chain from ${start} loops`);
      out.push(c);
      const v = this.get(c);
      if (this.isEOF(v)) return out;
      if (v === 0) throw this.corrupt(`${what}: chain reaches free cluster ${c}`);
      if (v === this.badValue) throw this.corrupt(`${what}: chain reaches bad cluster ${c}`);
      c = v;
    }
  }

  private corrupt(what: string): Error {
    log(`msdosfs: ${this.dev.path}: ${what}`);
    return kerr('EIO', what);
  }

  /**
   * Allocate n clusters as one chain ending in EOF, contiguous when possible,
   * searching from `hint` (else the next-free hint). All or nothing: ENOSPC
   * leaves the FAT as it was.
   */
  alloc(n: number, hint: number): number[] {
    if (n <= 0) return [];
    if (n > this.freeCount) throw kerr('ENOSPC');
    const out: number[] = [];
    let c = this.validCluster(hint) ? hint : this.validCluster(this.nextFree) ? this.nextFree : 2;
    for (let scanned = 0; out.length < n && scanned < this.bpb.clusterCount; scanned++) {
      if (this.get(c) === 0) out.push(c);
      c = c >= this.maxCluster ? 2 : c + 1;
    }
    if (out.length < n) {
      // The free count was wrong: believe the FAT.
      log(`msdosfs: ${this.dev.path}: free count ${this.freeCount} but only ${out.length} free clusters found`);
      this.freeCount = out.length;
      throw kerr('ENOSPC');
    }
    for (let i = 0; i < n; i++) this.set(out[i], i + 1 < n ? out[i + 1] : this.eof);
    this.freeCount -= n;
    this.nextFree = out[n - 1] >= this.maxCluster ? 2 : out[n - 1] + 1;
    this.fsinfoDirty = true;
    return out;
  }

  /** Free clusters (a chain or its tail, already checked with chain()). */
  free(clusters: readonly number[]): void {
    for (const c of clusters) {
      if (this.get(c) === 0) continue;
      this.set(c, 0);
      this.freeCount++;
    }
    if (clusters.length) this.fsinfoDirty = true;
  }

  /** Link `from` to `to` (or end the chain at `from` when to is EOF). */
  link(from: number, to: number): void {
    this.set(from, to);
  }

  /** FAT[1]'s clean-shutdown bit (FAT16/32; FAT12 has none: always clean). */
  isClean(): boolean {
    if (this.bits === 12) return true;
    return (this.get(1) & this.cleanBit()) !== 0;
  }

  setClean(clean: boolean): void {
    if (this.bits === 12) return;
    const v = this.get(1);
    this.set(1, clean ? v | this.cleanBit() : v & ~this.cleanBit());
  }

  private cleanBit(): number { return this.bits === 16 ? 0x8000 : 0x08000000; }

  /** Write changed blocks to every FAT copy: through the buffer cache, or through now (sync). */
  flush(sync = false): Promise<void> {
    return this.flushLock.with(async () => {
      const blocks = [...this.dirtyBlocks].sort((a, b) => a - b);
      this.dirtyBlocks.clear();
      for (let i = 0; i < blocks.length; i++) {
        const off = blocks[i] * FLUSH_BLOCK;
        const len = Math.min(FLUSH_BLOCK, this.raw.length - off);
        try {
          // The copies of a block are written together.
          await Promise.all(this.copies.map(async copy => {
            const bp = await getblk(this.dev, this.bpb.fatOffset + copy * this.bpb.fatBytes + off, len, this.meta);
            bp.data.set(this.raw.subarray(off, off + len));
            if (sync) await bwrite(bp);
            else await mount_bwrite(this.mp, bp);
          }));
        } catch (e) {
          // Still to be written: the next flush tries again.
          for (const b of blocks.slice(i)) this.dirtyBlocks.add(b);
          throw e;
        }
      }
    });
  }
}
