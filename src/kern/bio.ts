// The buffer cache: one global cache of device blocks keyed by (device, byte
// offset), as a kernel's. A Buf returned by bread/getblk is held until
// brelse/bdwrite/bwrite; holders of one block share the same Buf object, and
// drivers serialise their changes with their own vnode locks (no B_BUSY
// sleeping here). Held buffers are never evicted; unheld ones are evicted LRU,
// dirty ones written back first. A syncer writes delayed writes after
// `syncdelay`. A failed write-back keeps the buffer dirty and is reported by
// the next bflush/vflushbuf of its device/owner; the syncer and eviction do
// not try it again (no retry loop against a full or failing device): only an
// explicit flush does. A cache hit is answered without waiting for anything.
//
// Cluster I/O (NetBSD's breadn and cluster write): bread_cluster reads each
// run of adjacent missing blocks with one device read, bwrite_cluster writes
// each run of adjacent blocks with one device write.
//
// Buffers of one device at different offsets must not overlap: keeping
// overlapping views coherent is the caller's (the driver's) responsibility.
import { rumpuser_clock_monotonic_ms, rumpuser_timer } from '../rumpuser/index.js';
import type { BlockDevice } from './blkdev.js';
import { kerr, KernError } from './errno.js';
import { log, panic } from './panic.js';
import type { MaybePromise } from './vnode_types.js';

export class Buf {
  data: Uint8Array;
  /** @internal holders (bread/getblk not yet released) */
  holds = 0;
  /** @internal in the cache (false once dropped) */
  cached = true;
  /** @internal the vnode (or other object) whose vflushbuf writes this */
  owner: object | undefined;
  /** @internal the device read filling data, while it runs */
  loading: Promise<void> | null = null;
  /** @internal the write-back in progress */
  writing: Promise<void> | null = null;
  /** @internal bumped by each modification, so a write-back knows what it wrote */
  gen = 0;
  /** @internal monotonic ms when it became dirty, or -1 when clean */
  dirtySince = -1;
  /** @internal its last write-back failed: only an explicit flush tries again */
  failed = false;

  constructor(readonly dev: BlockDevice, readonly offset: number, readonly size: number, zero: boolean) {
    this.data = blockMemory(size, zero);
  }

  get dirty(): boolean { return this.dirtySince >= 0; }
}

const cache = new Map<BlockDevice, Map<number, Buf>>();
/** Unheld buffers, least recently used first (a Set keeps insertion order). */
const lru = new Set<Buf>();
const dirtyBufs = new Set<Buf>();
/** Failed write-backs not yet reported to anyone. */
const devErrors = new Map<BlockDevice, KernError>();
const ownerErrors = new WeakMap<object, KernError>();

// Block memory is recycled: an ArrayBuffer nobody holds is freed only by a
// major GC, and V8 starts one for external memory only some 64 MiB past the
// last; so a stream of buffers through the cache (a large file written or
// read) would cost the cache's bytes plus up to 64 MiB of garbage. Arrays
// come back from dropped buffers nobody holds and from the cluster I/O
// helpers' own transfers; drivers copy out of a buffer before brelse.
const spareMemory = new Map<number, Uint8Array[]>();
let spareBytes = 0;
const SPARE_MAX = 1 << 20;

function blockMemory(size: number, zero: boolean): Uint8Array {
  const a = spareMemory.get(size)?.pop();
  if (!a) return new Uint8Array(size);
  spareBytes -= size;
  if (zero) a.fill(0);
  return a;
}

function recycle(a: Uint8Array): void {
  if (spareBytes + a.length > SPARE_MAX || a.byteOffset !== 0 || a.length !== a.buffer.byteLength) return;
  let l = spareMemory.get(a.length);
  if (!l) spareMemory.set(a.length, (l = []));
  l.push(a);
  spareBytes += a.length;
}

let limit = 32 << 20;
let syncdelay = 5000;
let bytes = 0;
let hits = 0;
let misses = 0;
let syncer: { cancel(): void } | null = null;
let syncerBusy = false;

export function bufcache_setlimit(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) panic(`bufcache_setlimit: ${n}`);
  limit = n;
  evictClean();
}

/** Age (ms) after which the syncer writes a delayed write. */
export function bufcache_setsyncdelay(ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) panic(`bufcache_setsyncdelay: ${ms}`);
  syncdelay = ms;
}

export function bufcache_stats(): { bytes: number; limit: number; buffers: number; dirty: number; hits: number; misses: number } {
  let buffers = 0;
  for (const m of cache.values()) buffers += m.size;
  return { bytes, limit, buffers, dirty: dirtyBufs.size, hits, misses };
}

/** The block, read from the device unless cached. */
export function bread(dev: BlockDevice, offset: number, size: number, owner?: object): Promise<Buf> {
  const bp = incore(dev, offset, size, owner);
  return bp ? Promise.resolve(bp) : lookup(dev, offset, size, owner, true);
}

/**
 * bread as it comes: the held block at once when it is cached (no Promise,
 * no wait), else a Promise as bread's. Drivers whose metadata is mostly
 * cached (a read-only medium's directories) answer lookups at once with it.
 */
export function breadm(dev: BlockDevice, offset: number, size: number, owner?: object): MaybePromise<Buf> {
  return incore(dev, offset, size, owner) ?? lookup(dev, offset, size, owner, true);
}

/**
 * Is the block cached and loaded (NetBSD incore)? Nothing is held or read:
 * a driver asks before reading ahead what it may have read ahead already.
 */
export function bincore(dev: BlockDevice, offset: number, size: number): boolean {
  const bp = cache.get(dev)?.get(offset);
  return bp !== undefined && bp.size === size && !bp.loading;
}

/** The block without reading it: the caller overwrites all of it (zeroes if not cached). */
export function getblk(dev: BlockDevice, offset: number, size: number, owner?: object): Promise<Buf> {
  const bp = incore(dev, offset, size, owner);
  return bp ? Promise.resolve(bp) : lookup(dev, offset, size, owner, false);
}

/** A block of a cluster transfer: its byte offset and size on the device. */
export interface BlockRef { offset: number; size: number }

/**
 * The blocks, held, in the order given (NetBSD breadn): at once when all are
 * cached, else each run of physically adjacent missing blocks is read with
 * one device read. On an error none is held.
 */
export function bread_cluster(dev: BlockDevice, blks: readonly BlockRef[], owner?: object): MaybePromise<Buf[]> {
  const got: (Buf | null)[] = new Array(blks.length);
  let missing = 0;
  for (let i = 0; i < blks.length; i++) {
    got[i] = incore(dev, blks[i].offset, blks[i].size, owner);
    if (!got[i]) missing++;
  }
  return missing === 0 ? got as Buf[] : readMissing(dev, blks, got, owner);
}

/**
 * Write the held buffers (changed by the caller) and release them: each run
 * of physically adjacent ones with one device write. A failure is returned at
 * once and also kept for the owners' next vflushbuf; the buffers of a failed
 * run are invalidated (the device may hold anything of them now), so that
 * nothing retries them and the next read sees what the device has.
 */
export async function bwrite_cluster(bufs: readonly Buf[]): Promise<void> {
  let failure: KernError | undefined;
  try {
    for (const bp of bufs) markDirty(bp);
    for (const run of runsOf(bufs)) {
      try {
        await writeRun(run);
      } catch (e) {
        failure ??= asKernError(e, run[0].dev);
        for (const bp of run) {
          if (bp.owner && !ownerErrors.has(bp.owner)) ownerErrors.set(bp.owner, failure);
          drop(bp);
        }
      }
    }
  } finally {
    for (const bp of bufs) brelse(bp);
  }
  if (failure) throw failure;
}

/** Done with the buffer, unchanged. */
export function brelse(bp: Buf): void {
  if (bp.holds <= 0) panic(`brelse: buffer ${bp.dev.path}@${bp.offset} not held`);
  if (--bp.holds > 0) return;
  if (!bp.cached) return recycle(bp.data);
  lru.add(bp);
  evictClean();
}

/** Delayed write: dirty now, written by a flush, the syncer or eviction. */
export function bdwrite(bp: Buf): void {
  markDirty(bp);
  brelse(bp);
}

/** Write through now, then release. The buffer stays dirty if the write fails. */
export async function bwrite(bp: Buf): Promise<void> {
  markDirty(bp);
  try {
    await writeBack(bp);
  } finally {
    brelse(bp);
  }
}

/** Write every dirty buffer tagged with owner (a vnode); does not flush the device. */
export async function vflushbuf(owner: object): Promise<void> {
  const mine = [...dirtyBufs].filter((bp) => bp.owner === owner);
  const failure = await writeAll(mine);
  const pending = ownerErrors.get(owner);
  ownerErrors.delete(owner);
  if (failure ?? pending) throw failure ?? pending;
}

/** Report, once, a failed write-back of owner's buffers since the last report; writes nothing. */
export function vcheckerror(owner: object): void {
  const pending = ownerErrors.get(owner);
  if (!pending) return;
  ownerErrors.delete(owner);
  throw pending;
}

/** Write every dirty buffer of dev, then make the device durable. */
export async function bflush(dev: BlockDevice): Promise<void> {
  const mine = [...dirtyBufs].filter((bp) => bp.dev === dev);
  const failure = await writeAll(mine);
  const pending = devErrors.get(dev);
  devErrors.delete(dev);
  if (failure ?? pending) throw failure ?? pending;
  await dev.flush();
}

/** Forget every buffer of dev (at unmount, after bflush). */
export function binvalall(dev: BlockDevice): void {
  const m = cache.get(dev);
  devErrors.delete(dev);
  if (!m) return;
  let lost = 0;
  for (const bp of m.values()) {
    if (bp.holds > 0) panic(`binvalall: buffer ${dev.path}@${bp.offset} is held`);
    if (bp.dirty) lost++;
  }
  if (lost) log(`${dev.path}: discarding ${lost} dirty buffer(s) that could not be written`);
  for (const bp of [...m.values()]) drop(bp);
}

// ---- internals ----

/** A cached, loaded block of this size, held; null for anything that must wait. */
function incore(dev: BlockDevice, offset: number, size: number, owner: object | undefined): Buf | null {
  const bp = cache.get(dev)?.get(offset);
  if (!bp || bp.size !== size || bp.loading) return null;
  hits++;
  hold(bp, owner);
  return bp;
}

function asKernError(e: unknown, dev: BlockDevice): KernError {
  return e instanceof KernError ? e : kerr('EIO', `${dev.path}: ${String(e)}`);
}

/** bread_cluster's slow path: got holds the hits, null where a block is missing. */
async function readMissing(dev: BlockDevice, blks: readonly BlockRef[], got: (Buf | null)[], owner: object | undefined): Promise<Buf[]> {
  const waits: Promise<void>[] = [];
  for (let i = 0; i < blks.length;) {
    if (got[i]) { i++; continue; }
    // A run: adjacent blocks that nobody has cached or is reading.
    let j = i;
    let end = blks[i].offset;
    while (j < blks.length && !got[j] && blks[j].offset === end && !cache.get(dev)?.has(blks[j].offset) &&
      blockOk(dev, blks[j].offset, blks[j].size)) {
      end += blks[j].size;
      j++;
    }
    if (j - i < 2) {
      // Alone, cached in another size, being read, or invalid: bread's own path.
      const k = i;
      waits.push(lookup(dev, blks[k].offset, blks[k].size, owner, true).then((bp) => { got[k] = bp; }));
      i++;
      continue;
    }
    waits.push(readRun(dev, blks, i, j, end, got, owner));
    i = j;
  }
  const results = await Promise.allSettled(waits);
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failed) {
    for (const bp of got) if (bp) brelse(bp);
    throw failed.reason;
  }
  return got as Buf[];
}

function blockOk(dev: BlockDevice, offset: number, size: number): boolean {
  return Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(size) && size > 0 && offset + size <= dev.size;
}

/** Blocks i..j-1, adjacent from blks[i].offset to end: one device read fills them all. */
async function readRun(dev: BlockDevice, blks: readonly BlockRef[], i: number, j: number, end: number,
  got: (Buf | null)[], owner: object | undefined): Promise<void> {
  const need = end - blks[i].offset;
  if (bytes + need > limit) await reclaim(need);
  // Others may have cached some of them meanwhile: those go bread's way.
  const mine: Buf[] = [];
  for (let k = i; k < j; k++) {
    if (cache.get(dev)?.has(blks[k].offset)) {
      mine.forEach((bp) => { drop(bp); brelse(bp); });
      for (let m = i; m < j; m++) got[m] = null;
      await Promise.all(blks.slice(i, j).map((b, n) =>
        lookup(dev, b.offset, b.size, owner, true).then((bp) => { got[i + n] = bp; })));
      return;
    }
    misses++;
    const bp = insert(dev, blks[k].offset, blks[k].size, false);
    hold(bp, owner);
    mine.push(bp);
    got[k] = bp;
  }
  const big = blockMemory(need, false);
  // Done (for those who share a block's read) only once the blocks are filled.
  const p = dev.read(big, blks[i].offset).then(() => {
    let at = 0;
    for (const bp of mine) {
      bp.data.set(big.subarray(at, at + bp.size));
      at += bp.size;
    }
    recycle(big);
  });
  for (const bp of mine) bp.loading = p;
  try {
    await p;
  } catch (e) {
    // Nobody may see half-read data: the next bread reads afresh.
    for (let k = i; k < j; k++) got[k] = null;
    for (const bp of mine) { drop(bp); brelse(bp); }
    throw e;
  } finally {
    for (const bp of mine) bp.loading = null;
  }
}

async function lookup(dev: BlockDevice, offset: number, size: number, owner: object | undefined, read: boolean): Promise<Buf> {
  // Drivers compute block addresses from on-disk data: a bad one is EIO, not
  // a panic, and never becomes a buffer that could not be written back.
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(size) || size <= 0 || offset + size > dev.size) {
    throw kerr('EIO', `${dev.path}: block ${offset}+${size} is outside the device (${dev.size} bytes)`);
  }
  let reclaimed = false;
  for (;;) {
    const bp = cache.get(dev)?.get(offset);
    if (bp && bp.size !== size) {
      await resize(bp, size);
      continue;
    }
    if (bp) {
      hits++;
      hold(bp, owner);
      try {
        // Another caller's read of this block is under way: share it.
        if (bp.loading) await bp.loading;
      } catch (e) {
        brelse(bp);
        throw e;
      }
      return bp;
    }
    // Make room before allocating; then look again, since others ran meanwhile.
    if (!reclaimed && bytes + size > limit) {
      reclaimed = true;
      await reclaim(size);
      continue;
    }
    misses++;
    const nb = insert(dev, offset, size, !read);
    hold(nb, owner);
    if (!read) return nb;
    nb.loading = dev.read(nb.data, offset);
    try {
      await nb.loading;
    } catch (e) {
      // Nobody may see half-read data: the next bread reads afresh.
      drop(nb);
      brelse(nb);
      throw e;
    } finally {
      nb.loading = null;
    }
    return nb;
  }
}

/** A block cached with another size: write it back if dirty, drop it. */
async function resize(bp: Buf, size: number): Promise<void> {
  if (bp.holds > 0) {
    log(`${bp.dev.path}: block at ${bp.offset} asked for with ${size} bytes while held with ${bp.size}`);
    throw kerr('EIO', `${bp.dev.path}: conflicting buffer sizes at ${bp.offset}`);
  }
  if (bp.dirty) await writeBack(bp);
  if (bp.cached && bp.holds === 0 && !bp.dirty) drop(bp);
}

function hold(bp: Buf, owner: object | undefined): void {
  bp.holds++;
  lru.delete(bp);
  if (owner) bp.owner = owner;
}

function insert(dev: BlockDevice, offset: number, size: number, zero: boolean): Buf {
  let m = cache.get(dev);
  if (!m) cache.set(dev, (m = new Map()));
  const bp = new Buf(dev, offset, size, zero);
  m.set(offset, bp);
  bytes += size;
  return bp;
}

function drop(bp: Buf): void {
  if (!bp.cached) return;
  bp.cached = false;
  const m = cache.get(bp.dev);
  m?.delete(bp.offset);
  if (m?.size === 0) cache.delete(bp.dev);
  lru.delete(bp);
  dirtyBufs.delete(bp);
  bytes -= bp.size;
  if (bp.holds === 0) recycle(bp.data);
}

function markDirty(bp: Buf): void {
  if (bp.holds <= 0) panic(`bdwrite/bwrite: buffer ${bp.dev.path}@${bp.offset} not held`);
  if (bp.data.length !== bp.size) panic(`buffer ${bp.dev.path}@${bp.offset}: data is ${bp.data.length} bytes, not ${bp.size}`);
  bp.gen++;
  if (!bp.dirty) bp.dirtySince = rumpuser_clock_monotonic_ms();
  if (bp.cached) dirtyBufs.add(bp);
  syncer ??= rumpuser_timer(1000, syncerTick);
}

/**
 * Write the buffer's current contents. A snapshot is written, so holders may
 * keep changing data meanwhile; it is clean afterwards only if nobody did.
 */
function writeBack(bp: Buf): Promise<void> {
  return writeRun([bp]);
}

/**
 * Write adjacent buffers (ascending offsets, one device) with one device
 * write, after any write-back of theirs still under way (an older one must
 * not land last). Each is clean afterwards unless changed meanwhile.
 */
async function writeRun(run: readonly Buf[]): Promise<void> {
  for (const bp of run) while (bp.writing) await bp.writing.catch(() => undefined);
  if (!run.some((bp) => bp.dirty)) return;
  const gens = run.map((bp) => bp.gen);
  const data = blockMemory(run.reduce((n, bp) => n + bp.size, 0), false);
  let at = 0;
  for (const bp of run) { data.set(bp.data, at); at += bp.size; }
  const p = run[0].dev.write(data, run[0].offset);
  for (const bp of run) bp.writing = p;
  try {
    await p;
    run.forEach((bp, i) => {
      bp.failed = false;
      if (bp.gen === gens[i]) {
        bp.dirtySince = -1;
        dirtyBufs.delete(bp);
      }
    });
  } catch (e) {
    for (const bp of run) bp.failed = true;
    throw e;
  } finally {
    for (const bp of run) bp.writing = null;
    recycle(data);
  }
}

/** Write back buffers; the first failure is returned, the rest still tried. */
async function writeAll(bufs: Buf[]): Promise<KernError | undefined> {
  let failure: KernError | undefined;
  for (const run of runsOf(bufs)) {
    try {
      await writeRun(run);
    } catch (e) {
      failure ??= asKernError(e, run[0].dev);
    }
  }
  return failure;
}

/** The buffers in runs of physically adjacent ones, one device each, ascending. */
function runsOf(bufs: readonly Buf[]): Buf[][] {
  const sorted = [...bufs].sort((a, b) => a.offset - b.offset);
  const runs: Buf[][] = [];
  const open = new Map<BlockDevice, Buf[]>();
  for (const bp of sorted) {
    const cur = open.get(bp.dev);
    const last = cur?.[cur.length - 1];
    if (cur && last!.offset + last!.size === bp.offset) {
      cur.push(bp);
    } else {
      const run = [bp];
      runs.push(run);
      open.set(bp.dev, run);
    }
  }
  return runs;
}

/** A write-back nobody waits for (syncer, eviction): log and keep for the next flush. */
async function writeBackInBackground(run: Buf[]): Promise<boolean> {
  try {
    await writeRun(run);
    return true;
  } catch (e) {
    const err = asKernError(e, run[0].dev);
    log(`${run[0].dev.path}: write-back of ${run.length} block(s) at ${run[0].offset} failed: ${err.message}`);
    if (!devErrors.has(run[0].dev)) devErrors.set(run[0].dev, err);
    for (const bp of run) if (bp.owner && !ownerErrors.has(bp.owner)) ownerErrors.set(bp.owner, err);
    return false;
  }
}

/** Drop the oldest clean, unheld buffers until `need` more bytes fit. */
function evictClean(need = 0): void {
  // Within the limit (nearly every release): no walk, not even an iterator.
  if (bytes + need <= limit) return;
  for (const bp of lru) {
    if (bytes + need <= limit) return;
    if (!bp.dirty && !bp.writing) drop(bp);
  }
}

/**
 * Make room for `need` bytes: drop clean buffers, then write back the oldest
 * dirty unheld ones and drop them. Gives up (the cache overshoots) when all
 * that is left is held or fails to write, rather than wait forever.
 */
async function reclaim(need: number): Promise<void> {
  const failed = new Set<Buf>();
  for (;;) {
    evictClean(need);
    if (bytes + need <= limit) return;
    let excess = bytes + need - limit;
    const batch: Buf[] = [];
    for (const bp of lru) {
      if (excess <= 0) break;
      if (!bp.dirty || bp.failed || failed.has(bp)) continue;
      batch.push(bp);
      excess -= bp.size;
    }
    if (batch.length === 0) return;
    const runs = runsOf(batch);
    const ok = await Promise.all(runs.map(writeBackInBackground));
    runs.forEach((run, i) => {
      for (const bp of run) {
        if (!ok[i]) failed.add(bp);
        else if (bp.holds === 0 && !bp.dirty) drop(bp);
      }
    });
  }
}

/** Every second: write delayed writes older than syncdelay that nobody holds. */
async function syncerTick(): Promise<void> {
  if (syncerBusy) return;
  if (dirtyBufs.size === 0) {
    syncer?.cancel();
    syncer = null;
    return;
  }
  syncerBusy = true;
  try {
    const now = rumpuser_clock_monotonic_ms();
    const old = [...dirtyBufs].filter((bp) => bp.holds === 0 && !bp.failed && now - bp.dirtySince >= syncdelay);
    for (const run of runsOf(old)) await writeBackInBackground(run);
  } finally {
    syncerBusy = false;
  }
}
