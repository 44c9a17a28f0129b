// bio's cluster I/O and its failure rules, against a RAM disk that counts
// and fails I/O: one device read per run of adjacent missing blocks, one
// device write per adjacent run, a failed run returned at once and dropped,
// and a failed delayed write never retried by the syncer.
import { afterEach, describe, expect, it } from 'vitest';
import {
  bdwrite, bflush, bincore, binvalall, bread, bread_cluster, breadm, brelse, bufcache_setsyncdelay, bufcache_stats, bwrite_cluster,
  getblk, vflushbuf, type Buf,
} from '../src/kern/bio.js';
import { blkdev_memory, type BlockDevice } from '../src/kern/blkdev.js';
import { kerr } from '../src/kern/errno.js';

class CountingDevice implements BlockDevice {
  readonly mem = blkdev_memory(1 << 20);
  reads: [number, number][] = [];
  writes: [number, number][] = [];
  failWrites = false;
  get path() { return 'count'; }
  get sectorSize() { return 512; }
  get size() { return this.mem.size; }
  get readOnly() { return false; }
  async read(buf: Uint8Array, offset: number) { this.reads.push([offset, buf.length]); return this.mem.read(buf, offset); }
  async write(buf: Uint8Array, offset: number) {
    this.writes.push([offset, buf.length]);
    if (this.failWrites) throw kerr('ENOSPC', 'injected');
    return this.mem.write(buf, offset);
  }
  async flush() {}
  async close() {}
}

const devs: CountingDevice[] = [];
function newdev(): CountingDevice {
  const d = new CountingDevice();
  devs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of devs.splice(0)) {
    d.failWrites = false;
    await bflush(d).catch(() => undefined);
    binvalall(d);
  }
  bufcache_setsyncdelay(5000);
});

const blocks = (...offs: number[]) => offs.map(offset => ({ offset, size: 4096 }));

describe('bread_cluster', () => {
  it('reads each run of adjacent missing blocks with one device read, cached ones not at all', async () => {
    const d = newdev();
    for (let i = 0; i < 16; i++) await d.mem.write(new Uint8Array(4096).fill(i + 1), i * 4096);
    brelse(await bread(d, 2 * 4096, 4096));
    d.reads = [];
    const got = await bread_cluster(d, blocks(0, 4096, 8192, 12288, 16384, 40960, 45056));
    expect(d.reads).toEqual([[0, 8192], [12288, 8192], [40960, 8192]]);
    expect(got.map(bp => bp.data[0])).toEqual([1, 2, 3, 4, 5, 11, 12]);
    got.forEach(brelse);
    // All cached now: answered at once, no device read.
    d.reads = [];
    const again = bread_cluster(d, blocks(0, 4096, 8192));
    expect(Array.isArray(again)).toBe(true);
    (again as Buf[]).forEach(brelse);
    expect(d.reads).toEqual([]);
  });

  it('a block outside the device: EIO, nothing held', async () => {
    const d = newdev();
    await expect(Promise.resolve(bread_cluster(d, blocks(0, 4096, (1 << 20) - 2048)))).rejects.toMatchObject({ code: 'EIO' });
    expect(bufcache_stats().buffers).toBe(2);
    binvalall(d); // panics if anything were still held
  });
});

describe('breadm and bincore', () => {
  it('a cached block at once, a missing one as a Promise (one device read), an outside one EIO', async () => {
    const d = newdev();
    await d.mem.write(new Uint8Array(4096).fill(7), 8192);
    const first = breadm(d, 8192, 4096);
    expect(first).toBeInstanceOf(Promise);
    expect(bincore(d, 8192, 4096)).toBe(false); // still loading
    const bp = await first;
    expect(bincore(d, 8192, 4096)).toBe(true);
    expect(bincore(d, 8192, 2048)).toBe(false);
    expect(bincore(d, 0, 4096)).toBe(false);
    expect(bp.data[0]).toBe(7);
    brelse(bp);
    d.reads = [];
    const again = breadm(d, 8192, 4096);
    expect(again).not.toBeInstanceOf(Promise);
    expect((again as Buf).data[4095]).toBe(7);
    expect(d.reads).toEqual([]);
    brelse(again as Buf);
    await expect(Promise.resolve(breadm(d, (1 << 20) - 2048, 4096))).rejects.toMatchObject({ code: 'EIO' });
    binvalall(d); // panics if anything were still held
  });
});

describe('bwrite_cluster', () => {
  it('writes each adjacent run with one device write and leaves the buffers clean', async () => {
    const d = newdev();
    const bufs = await Promise.all([0, 4096, 8192, 20480].map(o => getblk(d, o, 4096)));
    bufs.forEach((bp, i) => bp.data.fill(i + 7));
    await bwrite_cluster(bufs);
    expect(d.writes).toEqual([[0, 12288], [20480, 4096]]);
    expect(bufcache_stats().dirty).toBe(0);
    const back = new Uint8Array(4096);
    await d.mem.read(back, 8192);
    expect(back[0]).toBe(9);
  });

  it('a failed run: the error at once, the buffers dropped, the owner told once more', async () => {
    const d = newdev();
    const owner = {};
    const bufs = await Promise.all([0, 4096].map(o => getblk(d, o, 4096, owner)));
    bufs.forEach(bp => bp.data.fill(1));
    d.failWrites = true;
    await expect(bwrite_cluster(bufs)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(bufcache_stats().buffers).toBe(0);
    expect(bufcache_stats().dirty).toBe(0);
    await expect(vflushbuf(owner)).rejects.toMatchObject({ code: 'ENOSPC' });
    await vflushbuf(owner);
  });
});

describe('a failed delayed write', () => {
  it('is tried by the syncer once, then only by an explicit flush', async () => {
    const d = newdev();
    const bp = await getblk(d, 0, 4096);
    bp.data.fill(5);
    bdwrite(bp);
    d.failWrites = true;
    bufcache_setsyncdelay(0);
    await new Promise(r => setTimeout(r, 3300)); // three syncer ticks
    expect(d.writes.length).toBe(1);
    await expect(bflush(d)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(d.writes.length).toBe(2);
    d.failWrites = false;
    await bflush(d);
    expect(bufcache_stats().dirty).toBe(0);
  });
});
