// The buffer cache against RAM disks wrapped to count and fail I/O.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  bdwrite, bflush, binvalall, bread, brelse, bufcache_setlimit, bufcache_setsyncdelay, bufcache_stats,
  bwrite, getblk, vflushbuf,
} from '../src/kern/bio.js';
import { blkdev_memory, type BlockDevice } from '../src/kern/blkdev.js';
import { kerr, KernError } from '../src/kern/errno.js';

// A panic aborts the process; here it throws instead, so tests can see it.
vi.mock('../src/rumpuser/index.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../src/rumpuser/index.js')>()),
  rumpuser_abort: () => { throw new Error('rumpuser_abort'); },
}));

/** A RAM disk that counts I/O, can be slowed down, and can fail on demand. */
class TestDevice implements BlockDevice {
  readonly mem: BlockDevice;
  reads = 0;
  writes = 0;
  flushes = 0;
  readDelay = 0;
  failReads = false;
  failWrites = false;
  constructor(size = 1 << 20) { this.mem = blkdev_memory(size); }
  get path() { return 'test'; }
  get sectorSize() { return 512; }
  get size() { return this.mem.size; }
  get readOnly() { return false; }
  async read(buf: Uint8Array, offset: number) {
    this.reads++;
    if (this.readDelay) await new Promise((r) => setTimeout(r, this.readDelay));
    if (this.failReads) throw kerr('EIO', 'injected read error');
    return this.mem.read(buf, offset);
  }
  async write(buf: Uint8Array, offset: number) {
    this.writes++;
    if (this.failWrites) throw kerr('EIO', 'injected write error');
    return this.mem.write(buf, offset);
  }
  async flush() { this.flushes++; }
  async close() {}
  /** What the device holds, bypassing the cache. */
  async peek(offset: number, size: number): Promise<Uint8Array> {
    const b = new Uint8Array(size);
    await this.mem.read(b, offset);
    return b;
  }
}

const devs: TestDevice[] = [];
function newdev(size?: number): TestDevice {
  const d = new TestDevice(size);
  devs.push(d);
  return d;
}

afterEach(async () => {
  for (const d of devs.splice(0)) {
    d.failWrites = false;
    await bflush(d).catch(() => undefined);
    binvalall(d);
  }
  bufcache_setlimit(32 << 20);
  bufcache_setsyncdelay(5000);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('bread', () => {
  it('reads through once, then hits the cache', async () => {
    const d = newdev();
    await d.mem.write(new Uint8Array(512).fill(7), 1024);
    const before = bufcache_stats();
    const bp = await bread(d, 1024, 512);
    expect(bp.data.every((x) => x === 7)).toBe(true);
    brelse(bp);
    const again = await bread(d, 1024, 512);
    expect(again).toBe(bp);
    brelse(again);
    expect(d.reads).toBe(1);
    const after = bufcache_stats();
    expect(after.misses - before.misses).toBe(1);
    expect(after.hits - before.hits).toBe(1);
  });

  it('concurrent breads of one block share one device read and one Buf', async () => {
    const d = newdev();
    d.readDelay = 20;
    const bps = await Promise.all([1, 2, 3, 4].map(() => bread(d, 4096, 4096)));
    expect(d.reads).toBe(1);
    expect(new Set(bps).size).toBe(1);
    bps.forEach(brelse);
  });

  it('a failed read is reported to every waiter and not cached', async () => {
    const d = newdev();
    d.readDelay = 10;
    d.failReads = true;
    const results = await Promise.allSettled([bread(d, 0, 512), bread(d, 0, 512)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(d.reads).toBe(1);
    d.failReads = false;
    const bp = await bread(d, 0, 512);
    expect(d.reads).toBe(2);
    brelse(bp);
  });

  it('getblk does not read and gives zeroes', async () => {
    const d = newdev();
    await d.mem.write(new Uint8Array(512).fill(9), 0);
    const bp = await getblk(d, 0, 512);
    expect(d.reads).toBe(0);
    expect(bp.data.every((x) => x === 0)).toBe(true);
    brelse(bp);
  });

  it('an evicted buffer\'s memory serves the next block of its size: zeroed for getblk, read over for bread', async () => {
    const evictAll = () => { bufcache_setlimit(0); bufcache_setlimit(32 << 20); };
    const d = newdev();
    await d.mem.write(new Uint8Array(4096).fill(3), 8192);
    const first = await bread(d, 0, 4096);
    first.data.fill(0xee);
    const memory = first.data.buffer;
    brelse(first);
    evictAll();
    const blank = await getblk(d, 4096, 4096);
    expect(blank.data.buffer).toBe(memory);
    expect(blank.data.every((x) => x === 0)).toBe(true);
    blank.data.fill(0xdd);
    brelse(blank);
    evictAll();
    const read = await bread(d, 8192, 4096);
    expect(read.data.buffer).toBe(memory);
    expect(read.data.every((x) => x === 3)).toBe(true);
    brelse(read);
  });

  it('a different size at a cached offset: written back, dropped, reread', async () => {
    const d = newdev();
    const small = await bread(d, 0, 512);
    small.data.fill(5);
    bdwrite(small);
    const big = await bread(d, 0, 1024);
    expect(big).not.toBe(small);
    expect(big.size).toBe(1024);
    expect(big.data.subarray(0, 512).every((x) => x === 5)).toBe(true);
    expect(big.data.subarray(512).every((x) => x === 0)).toBe(true);
    // Held with one size, asked for with another: an error, not a crash.
    await expect(bread(d, 0, 512)).rejects.toMatchObject({ code: 'EIO' });
    brelse(big);
  });
});

describe('writes', () => {
  it('bdwrite reaches the device only at bflush', async () => {
    const d = newdev();
    const bp = await getblk(d, 8192, 512);
    bp.data.fill(0xab);
    bdwrite(bp);
    expect(d.writes).toBe(0);
    expect((await d.peek(8192, 512))[0]).toBe(0);
    expect(bufcache_stats().dirty).toBeGreaterThan(0);
    await bflush(d);
    expect(d.writes).toBe(1);
    expect(d.flushes).toBe(1);
    expect((await d.peek(8192, 512)).every((x) => x === 0xab)).toBe(true);
    await bflush(d);
    expect(d.writes).toBe(1); // clean now
  });

  it('bwrite writes through at once', async () => {
    const d = newdev();
    const bp = await bread(d, 0, 512);
    bp.data[3] = 42;
    await bwrite(bp);
    expect(d.writes).toBe(1);
    expect((await d.peek(0, 512))[3]).toBe(42);
  });

  it('vflushbuf writes the owner\'s buffers and nothing else', async () => {
    const d = newdev();
    const vnA = {};
    const vnB = {};
    const a = await getblk(d, 0, 512, vnA);
    a.data.fill(1);
    bdwrite(a);
    const b = await getblk(d, 512, 512, vnB);
    b.data.fill(2);
    bdwrite(b);
    await vflushbuf(vnA);
    expect((await d.peek(0, 512))[0]).toBe(1);
    expect((await d.peek(512, 512))[0]).toBe(0);
    expect(d.flushes).toBe(0);
  });

  it('the syncer writes delayed writes older than syncdelay', async () => {
    const d = newdev();
    const bp = await getblk(d, 0, 512);
    bp.data.fill(3);
    bdwrite(bp);
    await sleep(1300);
    expect(d.writes).toBe(0); // younger than the default 5 s
    bufcache_setsyncdelay(0);
    await sleep(1300);
    expect(d.writes).toBe(1);
    expect((await d.peek(0, 512))[0]).toBe(3);
  });

  it('a data change during write-back keeps the buffer dirty', async () => {
    const d = newdev();
    const bp = await getblk(d, 0, 512);
    bp.data.fill(1);
    bdwrite(bp);
    const again = await bread(d, 0, 512);
    const flushing = bflush(d);
    again.data.fill(2);
    bdwrite(again);
    await flushing;
    expect(bufcache_stats().dirty).toBe(1);
    await bflush(d);
    expect((await d.peek(0, 512))[0]).toBe(2);
  });
});

describe('write errors', () => {
  it('a failed flush keeps the buffer dirty and succeeds once the device does', async () => {
    const d = newdev();
    const bp = await getblk(d, 0, 512);
    bp.data.fill(6);
    bdwrite(bp);
    d.failWrites = true;
    await expect(bflush(d)).rejects.toBeInstanceOf(KernError);
    expect(bufcache_stats().dirty).toBe(1);
    d.failWrites = false;
    await bflush(d);
    expect((await d.peek(0, 512))[0]).toBe(6);
  });

  it('a failed background write-back is returned by the next bflush and vflushbuf', async () => {
    const d = newdev();
    const vn = {};
    const bp = await getblk(d, 0, 512, vn);
    bp.data.fill(8);
    bdwrite(bp);
    d.failWrites = true;
    bufcache_setsyncdelay(0);
    await sleep(1300); // the syncer tries and fails
    expect(d.writes).toBeGreaterThan(0);
    d.failWrites = false;
    // The retry succeeds, but the earlier loss of a write is still reported, once.
    await expect(bflush(d)).rejects.toThrow(/injected write error/);
    await expect(vflushbuf(vn)).rejects.toThrow(/injected write error/);
    await bflush(d);
    await vflushbuf(vn);
    expect((await d.peek(0, 512))[0]).toBe(8);
  });

  it('bwrite reports its own failure', async () => {
    const d = newdev();
    d.failWrites = true;
    const bp = await getblk(d, 0, 512);
    await expect(bwrite(bp)).rejects.toMatchObject({ code: 'EIO' });
    expect(bufcache_stats().dirty).toBe(1);
  });
});

describe('memory bound', () => {
  it('a write storm stays under the limit and loses nothing', async () => {
    const limit = 256 * 1024;
    bufcache_setlimit(limit);
    const d = newdev(4 << 20);
    let peak = 0;
    for (let off = 0; off < d.size; off += 4096) {
      const bp = await getblk(d, off, 4096);
      bp.data.fill((off / 4096) & 0xff);
      bdwrite(bp);
      peak = Math.max(peak, bufcache_stats().bytes);
    }
    expect(peak).toBeLessThanOrEqual(limit);
    expect(d.writes).toBeGreaterThan(900); // written back to make room
    await bflush(d);
    for (let off = 0; off < d.size; off += 4096) {
      expect((await d.peek(off, 4096)).every((x) => x === ((off / 4096) & 0xff))).toBe(true);
    }
  });

  it('held buffers are never evicted; clean ones go LRU', async () => {
    bufcache_setlimit(64 * 1024);
    const d = newdev();
    const pinned = await bread(d, 0, 4096);
    for (let off = 4096; off < 1 << 20; off += 4096) brelse(await bread(d, off, 4096));
    expect(bufcache_stats().bytes).toBeLessThanOrEqual(64 * 1024);
    const again = await bread(d, 0, 4096);
    expect(again).toBe(pinned);
    brelse(again);
    brelse(pinned);
    const reads = d.reads;
    brelse(await bread(d, 4096, 4096)); // long evicted: read again
    expect(d.reads).toBe(reads + 1);
  });

  it('binvalall forgets the device', async () => {
    const d = newdev();
    brelse(await bread(d, 0, 512));
    const before = bufcache_stats().buffers;
    binvalall(d);
    expect(bufcache_stats().buffers).toBe(before - 1);
  });
});

describe('bad block addresses', () => {
  it('outside the device, negative or fractional: EIO, nothing cached', async () => {
    const d = newdev(4096);
    const before = bufcache_stats().buffers;
    for (const [off, size] of [[4096, 512], [3584, 1024], [-512, 512], [0.5, 512], [0, 0]]) {
      await expect(bread(d, off, size)).rejects.toMatchObject({ code: 'EIO' });
      await expect(getblk(d, off, size)).rejects.toMatchObject({ code: 'EIO' });
    }
    expect(bufcache_stats().buffers).toBe(before);
    expect(d.reads).toBe(0);
  });
});

describe('misuse panics', () => {
  it('releasing an unheld buffer, binvalall of a held one', async () => {
    const d = newdev();
    const bp = await bread(d, 0, 512);
    expect(() => binvalall(d)).toThrow('rumpuser_abort');
    brelse(bp);
    expect(() => brelse(bp)).toThrow('rumpuser_abort');
  });
});
