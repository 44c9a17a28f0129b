// Cluster allocation: the FAT (chains of fragmented files) and the allocation
// bitmap (which clusters are in use; the free count is counted from it).
// Both are held in memory, read once at mount; changes are synchronous in
// memory and marked per block, then written by flush() through the buffer
// cache. Files are kept as extents (runs of clusters): a NoFatChain file is
// one extent and has no FAT entries.
import { getblk, kerr, log, mount_bwrite, Mutex, type BlockDevice, type Mount } from '../../kern/index.js';
import { FAT_BAD, FAT_EOF, FIRST_CLUSTER } from './exfat.js';

export interface Extent { start: number; len: number }

const FLUSH_BLOCK = 4096;
const READ_CHUNK = 4 << 20;

/** Where a region held in memory lives on the device: runs of bytes. */
export interface Placement { devOff: number; len: number }

/** A region of the device held in memory, written back by changed block. */
class Region {
  readonly dirty = new Set<number>();
  constructor(readonly raw: Uint8Array, readonly where: Placement[], private readonly bsize: number) {}

  /** bsize divides every placement's length, so that a block never leaves its placement. */
  static async load(dev: BlockDevice, len: number, where: Placement[], bsize: number): Promise<Region> {
    const raw = new Uint8Array(len);
    let pos = 0;
    for (const p of where) {
      for (let o = 0; o < p.len && pos < len; o += READ_CHUNK) {
        const n = Math.min(READ_CHUNK, p.len - o, len - pos);
        await dev.read(raw.subarray(pos, pos + n), p.devOff + o);
        pos += n;
      }
    }
    return new Region(raw, where, bsize);
  }

  touch(off: number, len: number): void {
    for (let b = Math.floor(off / this.bsize); b <= Math.floor((off + len - 1) / this.bsize); b++) this.dirty.add(b);
  }

  /** The device offset of byte off. */
  private devOff(off: number): number {
    for (const p of this.where) {
      if (off < p.len) return p.devOff + off;
      off -= p.len;
    }
    return -1;
  }

  async flush(mp: Mount, dev: BlockDevice, owner: object): Promise<void> {
    const blocks = [...this.dirty].sort((a, b) => a - b);
    this.dirty.clear();
    for (let i = 0; i < blocks.length; i++) {
      const off = blocks[i] * this.bsize, len = Math.min(this.bsize, this.raw.length - off);
      try {
        const bp = await getblk(dev, this.devOff(off), len, owner);
        bp.data.set(this.raw.subarray(off, off + len));
        await mount_bwrite(mp, bp);
      } catch (e) {
        for (const b of blocks.slice(i)) this.dirty.add(b);
        throw e;
      }
    }
  }
}

/** Bad on-disk data: a log line, and EIO for the caller. */
export function corrupt(what: string): Error {
  log(`exfat: ${what}`);
  return kerr('EIO', what);
}

/**
 * The extents of the FAT chain from start: exactly `count` clusters, or
 * (count < 0) up to the end mark. Every link is checked: in range, not bad,
 * no cluster twice (a loop). EIO and a log line otherwise.
 */
export function fat_chain(get: (c: number) => number, clusterCount: number, start: number, count: number, what: string,
  fail: (what: string) => Error = corrupt): Extent[] {
  const out: Extent[] = [];
  if (count === 0) return out;
  const seen = new Set<number>();
  const max = count < 0 ? clusterCount : count;
  for (let c = start, n = 0; ; n++) {
    if (c < FIRST_CLUSTER || c > clusterCount + 1) throw fail(`${what}: chain reaches cluster 0x${c.toString(16)}, outside the heap`);
    if (seen.has(c)) throw fail(`${what}: chain loops at cluster ${c}`);
    seen.add(c);
    const last = out[out.length - 1];
    if (last && last.start + last.len === c) last.len++;
    else out.push({ start: c, len: 1 });
    if (n + 1 === count) return out;
    const v = get(c);
    if (v === FAT_EOF) {
      if (count > 0) throw fail(`${what}: chain ends after ${n + 1} of ${count} clusters`);
      return out;
    }
    if (v === FAT_BAD) throw fail(`${what}: chain reaches bad cluster ${c}`);
    if (n + 1 >= max) throw fail(`${what}: chain longer than the volume`);
    c = v;
  }
}

export class ExAlloc {
  freeCount = 0;
  /** Where the next search for free clusters starts. */
  private nextFree = FIRST_CLUSTER;
  readonly maxCluster: number;
  private readonly lock = new Mutex('exfat alloc');

  private constructor(readonly mp: Mount, readonly dev: BlockDevice, private readonly fat: Region,
    private readonly bitmap: Region, readonly clusterCount: number, private readonly meta: object) {
    this.maxCluster = clusterCount + 1;
  }

  /**
   * Read the FAT, then the bitmap at the clusters `bitmapAt` finds (it may
   * follow FAT chains); clusterSize bytes make up each of those.
   */
  static async load(mp: Mount, dev: BlockDevice, meta: object, fatOff: number, clusterCount: number, clusterSize: number,
    bitmapAt: (fatGet: (c: number) => number) => Promise<Placement[]>): Promise<ExAlloc> {
    const fatLen = (clusterCount + 2) * 4;
    const fat = await Region.load(dev, fatLen, [{ devOff: fatOff, len: fatLen }], FLUSH_BLOCK);
    const fv = new DataView(fat.raw.buffer);
    const where = await bitmapAt((c) => fv.getUint32(4 * c, true));
    const bitmap = await Region.load(dev, Math.ceil(clusterCount / 8), where, Math.min(FLUSH_BLOCK, clusterSize));
    const a = new ExAlloc(mp, dev, fat, bitmap, clusterCount, meta);
    a.freeCount = a.countFree();
    return a;
  }

  private countFree(): number {
    let used = 0;
    const b = this.bitmap.raw;
    for (let c = 0; c < this.clusterCount; c++) if (b[c >> 3] & (1 << (c & 7))) used++;
    return this.clusterCount - used;
  }

  valid(c: number): boolean { return c >= FIRST_CLUSTER && c <= this.maxCluster; }

  fatGet(c: number): number {
    const r = this.fat.raw, o = 4 * c;
    return (r[o] | (r[o + 1] << 8) | (r[o + 2] << 16) | (r[o + 3] << 24)) >>> 0;
  }

  private fatSet(c: number, v: number): void {
    const r = this.fat.raw, o = 4 * c;
    r[o] = v & 0xff; r[o + 1] = (v >>> 8) & 0xff; r[o + 2] = (v >>> 16) & 0xff; r[o + 3] = v >>> 24;
    this.fat.touch(o, 4);
  }

  inUse(c: number): boolean {
    const i = c - FIRST_CLUSTER;
    return (this.bitmap.raw[i >> 3] & (1 << (i & 7))) !== 0;
  }

  /** The first cluster of exts that the bitmap says is free, or 0: a file on free clusters would be handed out twice. */
  firstFree(exts: readonly Extent[]): number {
    for (const e of exts) for (let c = e.start; c < e.start + e.len; c++) if (!this.inUse(c)) return c;
    return 0;
  }

  private mark(c: number, used: boolean): void {
    const i = c - FIRST_CLUSTER, b = this.bitmap.raw;
    if (used) b[i >> 3] |= 1 << (i & 7);
    else b[i >> 3] &= ~(1 << (i & 7));
    this.bitmap.touch(i >> 3, 1);
  }

  /** The extents of the FAT chain from start (fat_chain). */
  chain(start: number, count: number, what: string): Extent[] {
    return fat_chain((c) => this.fatGet(c), this.clusterCount, start, count, what, (w) => this.report(w));
  }

  /** Contiguous clusters from start, checked to lie in the heap. */
  run(start: number, count: number, what: string): Extent[] {
    if (count === 0) return [];
    if (!this.valid(start) || start + count - 1 > this.maxCluster) {
      throw this.report(`${what}: clusters ${start}..${start + count - 1} are outside the heap`);
    }
    return [{ start, len: count }];
  }

  /** Corrupt metadata: set by the mount to apply its errors= policy. */
  report: (what: string) => Error = (what) => corrupt(`${this.dev.path}: ${what}`);

  /** Free clusters from c on, up to n: how many in a row. */
  private freeRun(c: number, n: number): number {
    let k = 0;
    while (k < n && c + k <= this.maxCluster && !this.inUse(c + k)) k++;
    return k;
  }

  /** Take exactly [at, at+n) if all free (to keep a file contiguous); false otherwise. */
  allocAt(at: number, n: number): boolean {
    if (n <= 0) return true;
    if (!this.valid(at) || this.freeRun(at, n) < n) return false;
    for (let c = at; c < at + n; c++) this.mark(c, true);
    this.freeCount -= n;
    this.nextFree = at + n > this.maxCluster ? FIRST_CLUSTER : at + n;
    return true;
  }

  /**
   * n clusters (all or nothing: ENOSPC): one run when the volume has one,
   * searched from hint, else the first free ones.
   */
  alloc(n: number, hint = this.nextFree): Extent[] {
    if (n <= 0) return [];
    if (n > this.freeCount) throw kerr('ENOSPC');
    const start = this.valid(hint) ? hint : FIRST_CLUSTER;
    // One contiguous run, if any (a pass over the bitmap, whole used bytes skipped).
    const b = this.bitmap.raw;
    for (let pass = 0, c = start; pass < this.clusterCount;) {
      const i = c - FIRST_CLUSTER;
      if ((i & 7) === 0 && b[i >> 3] === 0xff && c + 8 <= this.maxCluster + 1) { c += 8; pass += 8; continue; }
      if (!this.inUse(c)) {
        const k = this.freeRun(c, n);
        if (k === n) {
          this.allocAt(c, n);
          return [{ start: c, len: n }];
        }
        c += k; pass += k;
      } else { c++; pass++; }
      if (c > this.maxCluster) c = FIRST_CLUSTER;
    }
    const out: Extent[] = [];
    let got = 0;
    for (let c = FIRST_CLUSTER; c <= this.maxCluster && got < n; c++) {
      if (this.inUse(c)) continue;
      const last = out[out.length - 1];
      if (last && last.start + last.len === c) last.len++;
      else out.push({ start: c, len: 1 });
      got++;
    }
    if (got < n) {
      log(`exfat: ${this.dev.path}: free count ${this.freeCount} but only ${got} free clusters found`);
      this.freeCount = got;
      throw kerr('ENOSPC');
    }
    for (const e of out) for (let c = e.start; c < e.start + e.len; c++) this.mark(c, true);
    this.freeCount -= n;
    return out;
  }

  /** Give clusters back: bitmap bits cleared, and their FAT entries when they had any. */
  free(exts: readonly Extent[], chained: boolean): void {
    for (const e of exts) {
      for (let c = e.start; c < e.start + e.len; c++) {
        if (!this.valid(c)) continue;
        if (this.inUse(c)) { this.mark(c, false); this.freeCount++; }
        if (chained) this.fatSet(c, 0);
      }
    }
  }

  /** Write the FAT links of extents as one chain ending in EOF. */
  link(exts: readonly Extent[]): void {
    for (let i = 0; i < exts.length; i++) {
      const e = exts[i];
      for (let c = e.start; c < e.start + e.len - 1; c++) this.fatSet(c, c + 1);
      const last = e.start + e.len - 1;
      this.fatSet(last, i + 1 < exts.length ? exts[i + 1].start : FAT_EOF);
    }
  }

  /** Write changed FAT and bitmap blocks (delayed, or through with -o sync). */
  flush(): Promise<void> {
    return this.lock.with(async () => {
      await this.fat.flush(this.mp, this.dev, this.meta);
      await this.bitmap.flush(this.mp, this.dev, this.meta);
    });
  }
}
