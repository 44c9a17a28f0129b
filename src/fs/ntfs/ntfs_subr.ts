// The mount's private data and what reads the volume (NetBSD's ntfs_subr.c):
// bytes through the buffer cache, MFT records by number through $MFT's own
// runlist, a file's attributes gathered from its base record and, through
// its attribute list, its extension records; attribute data (resident,
// non-resident, sparse, LZNT1-compressed); and the $I30 index B+tree.
import { blkdev_readall, bread, breadm, brelse, kerr, log, type BlockDevice, type BlockPiece, type Buf, type MaybePromise } from '../../kern/index.js';
import {
  applyFixups, ATTR_COMPRESSED, ATTR_ENCRYPTED, AT_ATTRIBUTE_LIST, AT_DATA, AT_INDEX_ALLOCATION, AT_INDEX_ROOT,
  corrupt, INDEX_ENTRY_NODE, MFT_RECORD_IN_USE, parseAttributes, parseIndexEntries, parseRecordHeader, u16, u32, u64,
  type AttrHeader, type BootSector, type IndexEntry, type RecordHeader, type Run,
} from './ntfs.js';
import { lznt1_decompress } from './ntfs_compress.js';

export interface NtfsMount {
  dev: BlockDevice;
  boot: BootSector;
  clusterSize: number;
  totalClusters: number;
  recordSize: number;
  /** $MFT's unnamed $DATA: where every record is. */
  mft: NtfsAttr;
  /** $UpCase: the upper case of each UTF-16 code unit. */
  upcase: Uint16Array;
  uid: number;
  gid: number;
  fmode: number;
  dmode: number;
  showSysFiles: boolean;
  label: string;
}

/** An attribute with all its extents joined: one runlist over VCN 0..end. */
export interface NtfsAttr {
  type: number;
  name: string;
  flags: number;
  value?: Uint8Array;
  runs: Run[];
  compressionUnit: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressedSize: number;
}

/** Bytes go through the buffer cache in blocks of this size, aligned on the device. */
const BLOCK = 16 * 1024;
/** More blocks than this per read are fetched in windows, not all at once. */
const READ_WINDOW = 8;
/** Bounds: a file's extension records, its attribute list, a directory's depth, a symlink. */
const MAX_EXTENT_RECORDS = 4096;
const MAX_ATTRLIST = 4 << 20;
const MAX_INDEX_DEPTH = 32;

/**
 * `out.length` bytes of the device at byte `offset`: at once (undefined)
 * when they lie in one block the buffer cache holds (an MFT record, an index
 * block), else a Promise.
 */
export function ntfs_bread(nmp: NtfsMount, offset: number, out: Uint8Array): Promise<void> | undefined {
  const dev = nmp.dev;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + out.length > dev.size) {
    corrupt(`${out.length} bytes at ${offset} are outside the device (${dev.size} bytes)`);
  }
  const base = offset - (offset % BLOCK);
  if (offset + out.length > base + BLOCK) return breadWindows(dev, offset, out);
  const got = breadm(dev, base, Math.min(BLOCK, dev.size - base));
  if (got instanceof Promise) return got.then(bp => copyOut(bp, offset - base, out));
  copyOut(got, offset - base, out);
  return undefined;
}

function copyOut(bp: Buf, at: number, out: Uint8Array): void {
  out.set(bp.data.subarray(at, at + out.length));
  brelse(bp);
}

/** Bytes over several blocks: up to READ_WINDOW blocks read at a time. */
async function breadWindows(dev: BlockDevice, offset: number, out: Uint8Array): Promise<void> {
  const pieces: [number, number, number, number][] = [];
  for (let done = 0; done < out.length;) {
    const pos = offset + done;
    const base = pos - (pos % BLOCK);
    const n = Math.min(out.length - done, base + BLOCK - pos);
    pieces.push([base, pos - base, n, done]);
    done += n;
  }
  for (let i = 0; i < pieces.length; i += READ_WINDOW) {
    await Promise.all(pieces.slice(i, i + READ_WINDOW).map(async ([base, at, n, to]) => {
      const bp = await bread(dev, base, Math.min(BLOCK, dev.size - base));
      out.set(bp.data.subarray(at, at + n), to);
      brelse(bp);
    }));
  }
}

/** Index of the run holding vcn, or -1. */
function findRun(runs: Run[], vcn: number): number {
  let lo = 0, hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid];
    if (vcn < r.vcn) hi = mid - 1;
    else if (vcn >= r.vcn + r.len) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/**
 * Where the byte at pos of an attribute lies: the device offset (-1 in a
 * sparse run) and how many of the next bytes, up to max, lie on from there.
 */
function runAt(nmp: NtfsMount, runs: Run[], pos: number, max: number, where: string): { dev: number; n: number } {
  const cs = nmp.clusterSize;
  const vcn = Math.floor(pos / cs);
  const i = findRun(runs, vcn);
  if (i < 0) corrupt(`${where}: VCN ${vcn} is not mapped`);
  const r = runs[i];
  return { dev: r.lcn < 0 ? -1 : r.lcn * cs + (pos - r.vcn * cs), n: Math.min(max, (r.vcn + r.len) * cs - pos) };
}

/**
 * Stream bytes [offset, offset + out.length) as the runs map them, through
 * the buffer cache; sparse runs are zeros. At once (undefined) while the
 * blocks are cached, then a Promise of the rest.
 */
function readRuns(nmp: NtfsMount, runs: Run[], offset: number, out: Uint8Array, where: string): Promise<void> | undefined {
  for (let done = 0; done < out.length;) {
    const { dev, n } = runAt(nmp, runs, offset + done, out.length - done, where);
    if (dev < 0) {
      out.fill(0, done, done + n);
    } else {
      const reading = ntfs_bread(nmp, dev, out.subarray(done, done + n));
      const next = done + n;
      if (reading) return reading.then(() => readRuns(nmp, runs, offset + next, out.subarray(next), where));
    }
    done += n;
  }
  return undefined;
}

/**
 * The same bytes read from the device straight into out, each piece a read
 * of its own, all at once: a file's data (it would only pass through the
 * buffer cache, a copy and fresh memory for each block on its way).
 */
async function readRunsDirect(nmp: NtfsMount, runs: Run[], offset: number, out: Uint8Array, where: string): Promise<void> {
  const reads: BlockPiece[] = [];
  for (let done = 0; done < out.length;) {
    const { dev, n } = runAt(nmp, runs, offset + done, out.length - done, where);
    if (dev < 0) {
      out.fill(0, done, done + n);
    } else {
      if (dev + n > nmp.dev.size) corrupt(`${n} bytes at ${dev} are outside the device (${nmp.dev.size} bytes)`);
      reads.push({ buf: out.subarray(done, done + n), offset: dev });
    }
    done += n;
  }
  await blkdev_readall(nmp.dev, reads);
}

export interface MftRecord { rec: Uint8Array; h: RecordHeader }

/** One MFT record, fixups applied, read through $MFT's runlist: at once when its block is cached. */
export function ntfs_readrecord(nmp: NtfsMount, ino: number): MaybePromise<MftRecord> {
  const where = `MFT record ${ino}`;
  const off = ino * nmp.recordSize;
  if (!Number.isSafeInteger(off) || off + nmp.recordSize > nmp.mft.initializedSize) {
    corrupt(`${where} is past the end of $MFT (${nmp.mft.initializedSize} bytes)`);
  }
  const rec = new Uint8Array(nmp.recordSize);
  const reading = readRuns(nmp, nmp.mft.runs, off, rec, where);
  return reading ? reading.then(() => fixedRecord(rec, where)) : fixedRecord(rec, where);
}

function fixedRecord(rec: Uint8Array, where: string): MftRecord {
  applyFixups(rec, 'FILE', where);
  return { rec, h: parseRecordHeader(rec, where) };
}

/**
 * Join attribute extents: resident attributes stand alone; non-resident
 * extents of one (type, name) are put in VCN order and must follow each
 * other without a gap; the sizes are those of the extent at VCN 0.
 */
function joinExtents(parts: AttrHeader[], clusterSize: number, where: string): NtfsAttr[] {
  const out: NtfsAttr[] = [];
  const groups = new Map<string, AttrHeader[]>();
  for (const a of parts) {
    if (a.value) {
      out.push({ ...a, runs: [] });
      continue;
    }
    const k = `${a.type}:${a.name}`;
    const g = groups.get(k);
    if (g) g.push(a);
    else groups.set(k, [a]);
  }
  for (const g of groups.values()) {
    g.sort((x, y) => x.lowestVcn - y.lowestVcn);
    const first = g[0];
    const w = `${where}, attribute ${first.type.toString(16)}h '${first.name}'`;
    if (first.lowestVcn !== 0) corrupt(`${w}: no extent starts at VCN 0`);
    const runs: Run[] = [];
    let next = 0;
    for (const e of g) {
      if (e.lowestVcn !== next) corrupt(`${w}: extent at VCN ${e.lowestVcn} does not follow VCN ${next - 1}`);
      for (const r of e.runs) runs.push(r);
      next = e.highestVcn + 1;
    }
    const attr: NtfsAttr = { ...first, runs };
    if (attr.allocatedSize > next * clusterSize) corrupt(`${w}: allocated size ${attr.allocatedSize} is more than its ${next} clusters`);
    out.push(attr);
  }
  return out;
}

/** Parse one record's attributes. */
function recordAttrs(nmp: NtfsMount, rec: Uint8Array, h: RecordHeader, where: string): AttrHeader[] {
  return parseAttributes(rec, h, nmp.totalClusters, where);
}

export interface LoadedRecord {
  h: RecordHeader;
  attrs: NtfsAttr[];
}

/**
 * A file's attributes: those of its base record and, when it has an
 * attribute list, those of the extension records the list names (each must
 * name this file as its base).
 */
export function ntfs_loadattrs(nmp: NtfsMount, ino: number): MaybePromise<LoadedRecord> {
  const r = ntfs_readrecord(nmp, ino);
  return r instanceof Promise ? r.then(x => baseAttrs(nmp, ino, x)) : baseAttrs(nmp, ino, r);
}

/** A base record's attributes: at once, unless an attribute list names extension records to read. */
function baseAttrs(nmp: NtfsMount, ino: number, { rec, h }: MftRecord): MaybePromise<LoadedRecord> {
  const where = `MFT record ${ino}`;
  // Reached through a directory entry (or a file id this mount handed out): a free or extension record is damage.
  if (!(h.flags & MFT_RECORD_IN_USE)) corrupt(`${where} is not in use`);
  if (h.base !== 0) corrupt(`${where} is an extension record of ${h.base}, not a file`);
  const parts = recordAttrs(nmp, rec, h, where);
  const al = parts.find(a => a.type === AT_ATTRIBUTE_LIST);
  if (!al) return { h, attrs: joinExtents(parts, nmp.clusterSize, where) };
  return withExtensions(nmp, ino, h, parts, al, where);
}

async function withExtensions(nmp: NtfsMount, ino: number, h: RecordHeader, parts: AttrHeader[], al: AttrHeader, where: string): Promise<LoadedRecord> {
  const list = await attrListValue(nmp, al, where);
  const others = new Set<number>();
  for (let p = 0; p + 0x1a <= list.length;) {
    const len = u16(list, p + 4);
    if (len < 0x1a || len & 7 || p + len > list.length) corrupt(`${where}: attribute list entry at ${p} has length ${len}`);
    const ref = u32(list, p + 0x10) + u16(list, p + 0x14) * 0x100000000;
    if (ref !== ino) others.add(ref);
    if (others.size > MAX_EXTENT_RECORDS) corrupt(`${where}: attribute list names more than ${MAX_EXTENT_RECORDS} records`);
    p += len;
  }
  for (const x of others) {
    const w = `${where}, extension record ${x}`;
    let r: MftRecord;
    try {
      r = await ntfs_readrecord(nmp, x);
    } catch (e) {
      log(`ntfs: ${w}: ${String(e)}`);
      throw kerr('EIO', `${w} unreadable`);
    }
    if (!(r.h.flags & MFT_RECORD_IN_USE) || r.h.base !== ino) corrupt(`${w}: not an extension record of this file`);
    for (const a of recordAttrs(nmp, r.rec, r.h, w)) parts.push(a);
  }
  return { h, attrs: joinExtents(parts.filter(a => a.type !== AT_ATTRIBUTE_LIST), nmp.clusterSize, where) };
}

async function attrListValue(nmp: NtfsMount, al: AttrHeader, where: string): Promise<Uint8Array> {
  if (al.value) return al.value;
  if (al.dataSize > MAX_ATTRLIST) corrupt(`${where}: attribute list of ${al.dataSize} bytes`);
  const out = new Uint8Array(al.dataSize);
  await readRuns(nmp, al.runs, 0, out.subarray(0, Math.min(al.dataSize, al.initializedSize)), `${where}, attribute list`);
  return out;
}

export function findAttr(attrs: NtfsAttr[], type: number, name = ''): NtfsAttr | undefined {
  return attrs.find(a => a.type === type && a.name === name);
}

/** One decompressed compression unit, kept for the next read of the same file. */
export interface CuCache { index: number; data: Uint8Array }

/**
 * Read attribute data [offset, offset + out.length), clipped at its data
 * size; bytes past the initialized size are zeros. Returns the bytes read.
 * direct: a file's plain data, read past the buffer cache.
 */
export async function ntfs_readattr(nmp: NtfsMount, a: NtfsAttr, offset: number, out: Uint8Array, where: string,
  cache?: { cu?: CuCache }, direct = false): Promise<number> {
  const n = Math.max(0, Math.min(out.length, a.dataSize - offset));
  if (n === 0) return 0;
  if (a.value) {
    out.set(a.value.subarray(offset, offset + n));
    return n;
  }
  if (a.flags & ATTR_ENCRYPTED) {
    log(`ntfs: ${where}: encrypted data cannot be read`);
    throw kerr('EACCES', `${where}: encrypted`);
  }
  if (a.flags & ATTR_COMPRESSED && a.compressionUnit) {
    await readCompressed(nmp, a, offset, out.subarray(0, n), where, cache);
  } else {
    const init = Math.max(0, Math.min(n, a.initializedSize - offset));
    if (direct) await readRunsDirect(nmp, a.runs, offset, out.subarray(0, init), where);
    else await readRuns(nmp, a.runs, offset, out.subarray(0, init), where);
    out.fill(0, init, n);
  }
  return n;
}

async function readCompressed(nmp: NtfsMount, a: NtfsAttr, offset: number, out: Uint8Array, where: string,
  cache?: { cu?: CuCache }): Promise<void> {
  const cuClusters = 2 ** a.compressionUnit;
  const cuBytes = cuClusters * nmp.clusterSize;
  if (cuBytes > 1 << 22) corrupt(`${where}: compression unit of ${cuBytes} bytes`);
  for (let done = 0; done < out.length;) {
    const pos = offset + done;
    const index = Math.floor(pos / cuBytes);
    let data = cache?.cu?.index === index ? cache.cu.data : null;
    if (!data) {
      data = await readUnit(nmp, a, index, cuClusters, cuBytes, where);
      if (cache) cache.cu = { index, data };
    }
    const at = pos - index * cuBytes;
    const k = Math.min(out.length - done, cuBytes - at);
    out.set(data.subarray(at, at + k), done);
    done += k;
  }
  // Past the initialized size reads as zeros, compressed or not.
  const init = a.initializedSize - offset;
  if (init < out.length) out.fill(0, Math.max(0, init));
}

/**
 * Compression unit `index`: all its clusters allocated means stored as is;
 * none means zeros; some allocated and the rest sparse means LZNT1 data in
 * the allocated ones.
 */
async function readUnit(nmp: NtfsMount, a: NtfsAttr, index: number, cuClusters: number, cuBytes: number, where: string): Promise<Uint8Array> {
  const vcn0 = index * cuClusters;
  const data = new Uint8Array(cuBytes);
  const pieces: Run[] = [];
  let allocated = 0;
  for (let v = vcn0; v < vcn0 + cuClusters;) {
    const i = findRun(a.runs, v);
    if (i < 0) {
      // A unit past the last run (the data size ends inside it) reads as zeros from there.
      break;
    }
    const r = a.runs[i];
    const len = Math.min(r.vcn + r.len, vcn0 + cuClusters) - v;
    if (r.lcn >= 0) {
      pieces.push({ vcn: v, lcn: r.lcn + (v - r.vcn), len });
      allocated += len;
    }
    v += len;
  }
  if (allocated === 0) return data;
  const w = `${where}, compression unit ${index}`;
  if (allocated === cuClusters) {
    await readRuns(nmp, a.runs, vcn0 * nmp.clusterSize, data, w);
    return data;
  }
  const raw = new Uint8Array(allocated * nmp.clusterSize);
  let p = 0;
  for (const r of pieces) {
    await ntfs_bread(nmp, r.lcn * nmp.clusterSize, raw.subarray(p, p + r.len * nmp.clusterSize));
    p += r.len * nmp.clusterSize;
  }
  lznt1_decompress(raw, data, w);
  return data;
}

/** A directory's $I30 index: root entries, and the allocation holding its blocks. */
export interface DirIndex {
  root: Uint8Array;
  alloc?: NtfsAttr;
  blockSize: number;
  /** Bytes per VCN of the allocation: the cluster size, or 512 for blocks smaller than a cluster. */
  vcnSize: number;
}

export function ntfs_dirindex(nmp: NtfsMount, attrs: NtfsAttr[], where: string): DirIndex | null {
  const root = findAttr(attrs, AT_INDEX_ROOT, '$I30');
  if (!root) return null;
  const v = root.value;
  if (!v) corrupt(`${where}: $INDEX_ROOT is not resident`);
  if (v.length < 0x20) corrupt(`${where}: $INDEX_ROOT of ${v.length} bytes`);
  if (u32(v, 0) !== 0x30) corrupt(`${where}: $I30 indexes attribute ${u32(v, 0).toString(16)}h, not $FILE_NAME`);
  const blockSize = u32(v, 8);
  if (blockSize < 512 || blockSize > 65536 || blockSize & (blockSize - 1)) corrupt(`${where}: index block size ${blockSize}`);
  const vcnSize = blockSize >= nmp.clusterSize ? nmp.clusterSize : 512;
  return { root: v, alloc: findAttr(attrs, AT_INDEX_ALLOCATION, '$I30'), blockSize, vcnSize };
}

async function readIndexBlock(nmp: NtfsMount, ix: DirIndex, vcn: number, where: string): Promise<Uint8Array> {
  const w = `${where}, index block at VCN ${vcn}`;
  if (!ix.alloc) corrupt(`${w}: the directory has no $INDEX_ALLOCATION`);
  const off = vcn * ix.vcnSize;
  if (!Number.isSafeInteger(off) || off + ix.blockSize > ix.alloc.dataSize) corrupt(`${w}: past the end of the index allocation`);
  const b = new Uint8Array(ix.blockSize);
  if (await ntfs_readattr(nmp, ix.alloc, off, b, w) !== ix.blockSize) corrupt(`${w}: short read`);
  applyFixups(b, 'INDX', w);
  if (u64(b, 0x10, w) !== vcn) corrupt(`${w}: block says it is at VCN ${u64(b, 0x10, w)}`);
  return b;
}

/**
 * Every entry of a directory's index in B+tree order (a node's child before
 * the entry that follows it). Each block is visited at most once and the
 * depth is bounded, so a looping or deep tree is EIO, not a hang.
 */
export async function ntfs_indexentries(nmp: NtfsMount, ix: DirIndex, where: string): Promise<IndexEntry[]> {
  const out: IndexEntry[] = [];
  const seen = new Set<number>();
  const walk = async (entries: IndexEntry[], depth: number): Promise<void> => {
    for (const e of entries) {
      if (e.flags & INDEX_ENTRY_NODE) {
        if (depth >= MAX_INDEX_DEPTH) corrupt(`${where}: index deeper than ${MAX_INDEX_DEPTH} levels`);
        if (seen.has(e.child)) corrupt(`${where}: index block at VCN ${e.child} is reached twice`);
        seen.add(e.child);
        const b = await readIndexBlock(nmp, ix, e.child, where);
        await walk(parseIndexEntries(b, 0x18, `${where}, index block at VCN ${e.child}`), depth + 1);
      }
      if (e.key) out.push(e);
    }
  };
  await walk(parseIndexEntries(ix.root, 0x10, `${where}, index root`), 0);
  return out;
}

/** $UpCase's table: 65536 UTF-16 units. */
export async function ntfs_loadupcase(nmp: NtfsMount, attrs: NtfsAttr[]): Promise<Uint16Array> {
  const d = findAttr(attrs, AT_DATA);
  if (!d || d.dataSize !== 131072) corrupt(`$UpCase: data of ${d?.dataSize ?? 0} bytes, not 131072`);
  const b = new Uint8Array(131072);
  await ntfs_readattr(nmp, d, 0, b, '$UpCase');
  const t = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = b[2 * i] | (b[2 * i + 1] << 8);
  return t;
}

/** A name folded through $UpCase, for case-insensitive comparison. */
export function ntfs_upcase(nmp: NtfsMount, s: string): string {
  let o = '';
  for (let i = 0; i < s.length; i++) o += String.fromCharCode(nmp.upcase[s.charCodeAt(i)]);
  return o;
}
