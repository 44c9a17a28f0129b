// ext2fs's data path maps a request's blocks into physically contiguous
// runs and reads or writes each run with one device transfer: files whose
// blocks are contiguous, fragmented (two files written in turns), with
// holes (and past the indirect boundaries), and ext4 extent trees (several
// extents, holes) read back exactly as debugfs dumps them, whole and in
// ranges that start and end inside blocks; what is written in-process
// passes e2fsck -fn and dumps back identically.
import { execFileSync, spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mount, type Ukfs } from '../src/ukfs/index.js';
import { pattern } from './helpers/mount.js';

let tmp: string;

beforeAll(() => {
  tmp = nfs.mkdtempSync(path.join(os.tmpdir(), 'ext2fs-runs-'));
});
afterAll(() => {
  if (tmp) nfs.rmSync(tmp, { recursive: true, force: true });
});

function fsckClean(img: string): void {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  const text = r.stdout + r.stderr;
  expect(text.split('\n').filter(l => l && !/^e2fsck |^Pass \d|^.*: \d+\/\d+ files/.test(l)), text).toEqual([]);
  expect(r.status, text).toBe(0);
}

/** The file's bytes as debugfs reads them. */
function dump(img: string, file: string): Buffer {
  const out = path.join(tmp, `dump-${Math.random().toString(36).slice(2)}`);
  execFileSync('debugfs', ['-R', `dump ${file} ${out}`, img], { stdio: 'ignore' });
  const b = nfs.readFileSync(out);
  nfs.rmSync(out);
  return b;
}

/** The file's physical blocks, in logical order, as debugfs lists them (holes left out). */
function blocks(img: string, file: string): number[] {
  const s = execFileSync('debugfs', ['-R', `blocks ${file}`, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return s.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Physically contiguous runs among a list of blocks. */
function runCount(bl: number[]): number {
  return bl.filter((b, i) => i === 0 || bl[i - 1] + 1 !== b).length;
}

/** The file read through the driver whole, and in ranges that start and end inside blocks, equals want. */
async function readsBack(fs: Ukfs, file: string, want: Buffer, bs: number): Promise<void> {
  const got = await fs.readFile(file);
  expect(got.length).toBe(want.length);
  expect(Buffer.compare(got, want), `${file} whole`).toBe(0);
  const fh = await fs.open(file, 'r');
  try {
    let x = 12345;
    for (let i = 0; i < 40; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const at = (x >>> 0) % want.length;
      const len = Math.min(want.length - at, 1 + ((x >>> 7) % (bs * 70)));
      const b = Buffer.alloc(len);
      const { bytesRead } = await fh.read(b, 0, len, at);
      expect(bytesRead).toBe(len);
      expect(Buffer.compare(b, want.subarray(at, at + len)), `${file} [${at}, +${len})`).toBe(0);
    }
    // Past the end: nothing; across the end: what there is.
    expect((await fh.read(Buffer.alloc(10), 0, 10, want.length)).bytesRead).toBe(0);
    expect((await fh.read(Buffer.alloc(bs * 3), 0, bs * 3, Math.max(0, want.length - 5))).bytesRead).toBe(Math.min(5, want.length));
  } finally {
    await fh.close();
  }
}

describe('ext2: runs of blocks written and read', () => {
  for (const bs of [1024, 4096]) {
    it(`${bs}-byte blocks: contiguous, fragmented and sparse files`, async () => {
      const img = path.join(tmp, `ext2-${bs}.img`);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-b', String(bs), img, '64M'], { stdio: 'pipe' });
      const contiguous = pattern(3 * 1024 * 1024 + 77, 1);
      const a = pattern(2 * 1024 * 1024 + 3, 2), b = pattern(2 * 1024 * 1024 + 5, 3);
      const sparse = Buffer.alloc(bs * 1400 + 11);
      const pieces: [number, number][] = [[0, 5000], [bs * 11 - 7, 30], [bs * 12 + 3, bs * 3], [bs * 300, bs * 40 + 1], [bs * 1400 - 100, 111]];
      pieces.forEach(([at, n], i) => pattern(n, 10 + i).copy(sparse, at));
      let fs = await mount('ext2fs', img);
      try {
        // One write: the allocator gives it consecutive blocks.
        await fs.writeFile('/contiguous', contiguous);
        // Two files written in turns, a few blocks each: their blocks interleave.
        const fa = await fs.open('/a', 'w'), fb = await fs.open('/b', 'w');
        const step = bs * 3 + 100;
        for (let at = 0; at < Math.max(a.length, b.length); at += step) {
          if (at < a.length) await fa.write(a, at, Math.min(step, a.length - at), at);
          if (at < b.length) await fb.write(b, at, Math.min(step, b.length - at), at);
        }
        await fa.close();
        await fb.close();
        // Holes: pieces written out of order, the size set past the last.
        const fsp = await fs.open('/sparse', 'w');
        for (const [at, n] of [...pieces].reverse()) await fsp.write(sparse, at, n, at);
        await fsp.truncate(sparse.length);
        await fsp.close();
        // Read back through the same mount (the blocks are cached, and written).
        for (const [f, want] of [['/contiguous', contiguous], ['/a', a], ['/b', b], ['/sparse', sparse]] as const) await readsBack(fs, f, want, bs);
      } finally {
        await fs.unmount();
      }
      fsckClean(img);
      expect(runCount(blocks(img, '/contiguous'))).toBeLessThanOrEqual(bs === 1024 ? 8 : 2);
      expect(runCount(blocks(img, '/a'))).toBeGreaterThan(20);
      expect(blocks(img, '/sparse').length).toBeLessThan(1400 / 2);
      for (const [f, want] of [['/contiguous', contiguous], ['/a', a], ['/b', b], ['/sparse', sparse]] as const) {
        expect(Buffer.compare(dump(img, f), want), `debugfs dump ${f}`).toBe(0);
      }
      // A fresh mount reads from the device: the same bytes, read-write and read-only.
      let b2 = b;
      for (const readOnly of [false, true]) {
        fs = await mount('ext2fs', img, { readOnly });
        try {
          for (const [f, want] of [['/contiguous', contiguous], ['/a', a], ['/b', b2], ['/sparse', sparse]] as const) await readsBack(fs, f, want, bs);
          // Overwrites inside blocks, and a truncate inside a block, then read back at once.
          if (!readOnly) {
            const fh = await fs.open('/a', 'r+');
            const patch = pattern(bs * 5 + 9, 99);
            await fh.write(patch, 0, patch.length, bs * 7 + 13);
            await fh.close();
            patch.copy(a, bs * 7 + 13);
            await readsBack(fs, '/a', a, bs);
            await fs.truncate('/b', bs * 9 + 17);
            await fs.truncate('/b', bs * 12);
            b2 = Buffer.concat([b.subarray(0, bs * 9 + 17), Buffer.alloc(bs * 12 - (bs * 9 + 17))]);
            await readsBack(fs, '/b', b2, bs);
          }
        } finally {
          await fs.unmount();
        }
      }
      fsckClean(img);
      expect(Buffer.compare(dump(img, '/a'), a)).toBe(0);
      expect(Buffer.compare(dump(img, '/b'), b2)).toBe(0);
    }, 60_000);
  }
});

describe('ext2: data written around the cache over freed metadata', () => {
  it('blocks of a removed directory and freed indirect blocks, reused at once by a new file, keep its data', async () => {
    const img = path.join(tmp, 'reuse.img');
    // One block group: the directory's blocks are in the same group as the files'.
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-b', '1024', img, '8M'], { stdio: 'pipe' });
    const data = pattern(4 * 1024 * 1024 + 123, 42);
    const fs = await mount('ext2fs', img);
    try {
      // Directory blocks and indirect blocks changed (delayed writes), then freed before any sync.
      await fs.mkdir('/d');
      for (let i = 0; i < 1500; i++) await fs.writeFile(`/d/${'n'.repeat(100)}-${i}`, '');
      await fs.writeFile('/big', pattern(3 * 1024 * 1024, 5));
      await fs.truncate('/big', 5000);
      await fs.rm('/d', { recursive: true });
      await fs.unlink('/big');
      // The new files take the lowest free blocks: those just freed (one block
      // first, so that the new file's data lands where indirect blocks were).
      await fs.writeFile('/shift', 'x');
      const fh = await fs.open('/new', 'w');
      for (let at = 0; at < data.length; at += 65536) await fh.write(data, at, Math.min(65536, data.length - at), at);
      await fh.close();
      await readsBack(fs, '/new', data, 1024);
    } finally {
      // Unmount writes every delayed write left: none may land on the new file's blocks.
      await fs.unmount();
    }
    fsckClean(img);
    expect(Buffer.compare(dump(img, '/new'), data)).toBe(0);
  }, 60_000);
});

describe('ext4 (read-only): extent trees', () => {
  it('a file of several extents, and a sparse one, read back as debugfs dumps them', async () => {
    const src = path.join(tmp, 'ext4-src');
    nfs.mkdirSync(src);
    // 1 KiB blocks: 8 MiB groups, so a 20 MiB file crosses backup superblocks and is split.
    const big = pattern(20 * 1024 * 1024 + 333, 7);
    nfs.writeFileSync(path.join(src, 'big'), big);
    const sparse = Buffer.alloc(9 * 1024 * 1024 + 5);
    const fd = nfs.openSync(path.join(src, 'sparse'), 'w');
    for (const [at, n, seed] of [[100, 3000, 1], [1024 * 1024 + 7, 70000, 2], [9 * 1024 * 1024 - 4000, 4005, 3]]) {
      const p = pattern(n, seed);
      p.copy(sparse, at);
      nfs.writeSync(fd, p, 0, n, at);
    }
    nfs.closeSync(fd);
    const img = path.join(tmp, 'ext4.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-d', src, img, '64M'], { stdio: 'pipe' });
    const extents = execFileSync('debugfs', ['-R', 'ex /big', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(extents.trim().split('\n').length).toBeGreaterThan(3);
    expect(Buffer.compare(dump(img, '/big'), big)).toBe(0);
    expect(Buffer.compare(dump(img, '/sparse'), sparse)).toBe(0);
    const fs = await mount('ext2fs', img, { readOnly: true });
    try {
      await readsBack(fs, '/big', big, 1024);
      await readsBack(fs, '/sparse', sparse, 1024);
    } finally {
      await fs.unmount();
    }
  }, 60_000);
});
