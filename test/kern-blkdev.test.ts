// Block devices: RAM disks, slices, image files (partitions made by sfdisk),
// exclusive opening, and a host block device (a loop device) where we may.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blkdev_memory, blkdev_open, blkdev_readall, blkdev_slice } from '../src/kern/blkdev.js';
import { KernError } from '../src/kern/errno.js';

const dir = mkdtempSync(join(tmpdir(), 'rumpfs-blkdev-'));
const loops: string[] = [];
afterAll(() => {
  for (const l of loops) execFileSync('losetup', ['-d', l]);
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1 << 20;
let n = 0;
function image(size = 8 * MiB, fill?: number): string {
  const path = join(dir, `img${n++}.img`);
  if (fill === undefined) {
    writeFileSync(path, '');
    truncateSync(path, size);
  } else {
    writeFileSync(path, new Uint8Array(size).fill(fill));
  }
  return path;
}

const nativeBuilt = existsSync(new URL('../src/rumpuser/build/Release/rumpuser.node', import.meta.url));

describe('memory devices and slices', () => {
  it('reads back what was written; out of range is EIO', async () => {
    const d = blkdev_memory(4096);
    expect([d.size, d.sectorSize, d.readOnly]).toEqual([4096, 512, false]);
    await d.write(new Uint8Array([1, 2, 3]), 4093);
    const b = new Uint8Array(3);
    await d.read(b, 4093);
    expect([...b]).toEqual([1, 2, 3]);
    for (const off of [4094, -1, 0.5, Number.MAX_SAFE_INTEGER]) {
      await expect(d.read(new Uint8Array(3), off)).rejects.toMatchObject({ code: 'EIO' });
      await expect(d.write(new Uint8Array(3), off)).rejects.toMatchObject({ code: 'EIO' });
    }
    await d.close();
    await expect(d.read(b, 0)).rejects.toBeInstanceOf(KernError);
  });

  it('rejects odd sector sizes', () => {
    expect(() => blkdev_memory(4096, 1000)).toThrow(/EINVAL/);
    expect(blkdev_memory(8192, 4096).sectorSize).toBe(4096);
  });

  it('a slice is a window and never writes outside it', async () => {
    const d = blkdev_memory(8192);
    const s = blkdev_slice(d, 1024, 2048);
    expect(s.size).toBe(2048);
    await s.write(new Uint8Array(512).fill(0xee), 1536);
    await expect(s.write(new Uint8Array(512).fill(0x11), 1537)).rejects.toMatchObject({ code: 'EIO' });
    await expect(s.read(new Uint8Array(1), 2048)).rejects.toMatchObject({ code: 'EIO' });
    const all = new Uint8Array(8192);
    await d.read(all, 0);
    expect(all.subarray(2560, 3072).every((x) => x === 0xee)).toBe(true);
    expect(all.filter((x) => x !== 0).length).toBe(512);
    expect(() => blkdev_slice(d, 8000, 1000)).toThrow(/EINVAL/);
  });
});

describe('image files', () => {
  it('writes, flushes and reads back through the host file', async () => {
    const path = image(MiB);
    const d = await blkdev_open(path);
    expect([d.size, d.sectorSize, d.readOnly, d.path]).toEqual([MiB, 512, false, path]);
    await d.write(new Uint8Array(4096).fill(0x5a), 65536);
    await d.flush();
    await d.close();
    const host = readFileSync(path);
    expect(host.subarray(65536, 65536 + 4096).every((x) => x === 0x5a)).toBe(true);
    expect(host[65535]).toBe(0);
  });

  it('maps host errors to errnos naming the path', async () => {
    const missing = join(dir, 'nope.img');
    await expect(blkdev_open(missing)).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringContaining(missing) });
    const sub = join(dir, 'adir');
    mkdirSync(sub);
    await expect(blkdev_open(sub)).rejects.toMatchObject({ code: 'ENODEV' });
    await expect(blkdev_open(image(), { sectorSize: 1000 })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('read-only: writes are EROFS, the file stays unchanged', async () => {
    const path = image(MiB, 0x33);
    chmodSync(path, 0o444);
    const d = await blkdev_open(path, { readOnly: true });
    await expect(d.write(new Uint8Array(512), 0)).rejects.toMatchObject({ code: 'EROFS' });
    const b = new Uint8Array(512);
    await d.read(b, MiB - 512);
    expect(b.every((x) => x === 0x33)).toBe(true);
    await d.close();
    expect(readFileSync(path).every((x) => x === 0x33)).toBe(true);
  });

  it('a file whose size is not a whole sector: reading past its end is EIO', async () => {
    const d = await blkdev_open(image(1000));
    expect(d.size).toBe(1000);
    await expect(d.read(new Uint8Array(512), 512)).rejects.toMatchObject({ code: 'EIO' });
    await d.read(new Uint8Array(488), 512);
    await d.close();
  });

  it('sectorSize is taken from the options for files', async () => {
    const d = await blkdev_open(image(), { sectorSize: 4096, readOnly: true });
    expect(d.sectorSize).toBe(4096);
    await d.close();
  });
});

describe('partitions', () => {
  // A fixed disk id: sfdisk's random one held the byte a test looks for in 1 image of ~60.
  const img = () => {
    const path = image(16 * MiB);
    execFileSync('sfdisk', ['-q', path], { input: 'label: dos\nlabel-id: 0x12345678\nstart=2048,size=2048,type=c\nstart=4096,type=5\nsize=4096,type=83\n' });
    return path;
  };

  it('partition N is the slice sfdisk reports, and writes stay inside it', async () => {
    const path = img();
    const sf = JSON.parse(execFileSync('sfdisk', ['--json', path]).toString()).partitiontable.partitions;
    const p5 = sf.find((p: { node: string }) => p.node.endsWith('5'));
    const d = await blkdev_open(path, { partition: 5 });
    expect(d.size).toBe(p5.size * 512);
    await d.write(new Uint8Array(512).fill(0x77), 0);
    await d.write(new Uint8Array(512).fill(0x78), d.size - 512);
    await expect(d.write(new Uint8Array(512).fill(0x79), d.size - 511)).rejects.toMatchObject({ code: 'EIO' });
    await d.close();
    const host = readFileSync(path);
    const start = p5.start * 512;
    expect(host.subarray(start, start + 512).every((x) => x === 0x77)).toBe(true);
    expect(host.subarray(start + d.size - 512, start + d.size).every((x) => x === 0x78)).toBe(true);
    expect(host.includes(0x79)).toBe(false);
    expect(host.subarray(start + d.size, start + d.size + 512).every((x) => x === 0)).toBe(true);
  });

  it('a missing partition is ENXIO listing what exists', async () => {
    const err = await blkdev_open(img(), { partition: 3 }).catch((e) => e);
    expect(err).toBeInstanceOf(KernError);
    expect(err.code).toBe('ENXIO');
    expect(err.message).toMatch(/no partition 3 \(mbr partitions: 1, 2, 5\)/);
  });
});

describe.skipIf(!nativeBuilt)('exclusive opening (image files: flock)', () => {
  it('a second exclusive writer is EBUSY until the first closes', async () => {
    const path = image();
    const a = await blkdev_open(path, { exclusive: true });
    await expect(blkdev_open(path, { exclusive: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(blkdev_open(path, { exclusive: true, readOnly: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await a.close();
    const b = await blkdev_open(path, { exclusive: true });
    await b.close();
  });

  it('exclusive readers share; a writer is refused while they read', async () => {
    const path = image();
    const r1 = await blkdev_open(path, { exclusive: true, readOnly: true });
    const r2 = await blkdev_open(path, { exclusive: true, readOnly: true });
    await expect(blkdev_open(path, { exclusive: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await r1.close();
    await r2.close();
  });

  it('a failed partition open releases the lock', async () => {
    const path = image();
    await expect(blkdev_open(path, { exclusive: true, partition: 1 })).rejects.toMatchObject({ code: 'ENXIO' });
    const d = await blkdev_open(path, { exclusive: true });
    await d.close();
  });
});

describe.skipIf(!nativeBuilt)('exclusive opening by byte range (partitions, loop devices)', () => {
  process.env.RUMPFS_LOCKDIR = join(dir, 'claims');
  const img = () => {
    const path = image(16 * MiB);
    execFileSync('sfdisk', ['-q', path], { input: 'label: dos\nstart=2048,size=8192,type=c\nstart=10240,type=c\n' });
    return path;
  };

  it('two partitions open read-write at once; overlapping bytes, one writer: EBUSY, by any name', async () => {
    const path = img();
    const p1 = await blkdev_open(path, { exclusive: true, partition: 1 });
    const p2 = await blkdev_open(path, { exclusive: true, partition: 2 });
    await p1.write(new Uint8Array(512).fill(1), 0);
    await p2.write(new Uint8Array(512).fill(2), 0);
    const busy = await blkdev_open(path, { exclusive: true, partition: 1 }).catch((e: unknown) => e);
    expect(busy).toMatchObject({ code: 'EBUSY' });
    expect(String((busy as Error).message)).toMatch(/bytes 1048576-5242880 are in use read-write by another mount/);
    await expect(blkdev_open(path, { exclusive: true, partition: 2, readOnly: true })).rejects.toMatchObject({ code: 'EBUSY' });
    // The whole image overlaps both.
    await expect(blkdev_open(path, { exclusive: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(blkdev_open(path, { exclusive: true, readOnly: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await p1.close();
    await p2.close();
    // Readers of the whole image exclude a partition's writer, not its readers.
    const whole = await blkdev_open(path, { exclusive: true, readOnly: true });
    await expect(blkdev_open(path, { exclusive: true, partition: 2 })).rejects.toMatchObject({ code: 'EBUSY' });
    const r2 = await blkdev_open(path, { exclusive: true, partition: 2, readOnly: true });
    await r2.close();
    await whole.close();
    const again = await blkdev_open(path, { exclusive: true, partition: 1 });
    await again.close();
  });

  it('a claim whose holder died is stale: taken over', async () => {
    const path = img();
    const child = `import('${join(process.cwd(), 'dist/src/kern/blkdev.js')}').then(async (m) => {
      await m.blkdev_open(${JSON.stringify(path)}, { exclusive: true, partition: 1 }); process.stdout.write('held'); setInterval(() => {}, 1000); })`;
    const holder = spawn(process.execPath, ['-e', child], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    await expect(blkdev_open(path, { exclusive: true, partition: 1 })).rejects.toMatchObject({ code: 'EBUSY' });
    holder.kill('SIGKILL');
    await new Promise(r => holder.once('exit', r));
    const d = await blkdev_open(path, { exclusive: true, partition: 1 });
    await d.close();
  });

  it.skipIf(process.getuid?.() !== 0)('a loop device and its backing file (or a partition of it): one writer', async () => {
    const path = img();
    let loop: string;
    try {
      loop = execFileSync('losetup', ['-f', '--show', path], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      return expect.fail('losetup failed');
    }
    loops.push(loop);
    const l = await blkdev_open(loop, { exclusive: true });
    const viaFile = await blkdev_open(path, { exclusive: true }).catch((e: unknown) => e);
    expect(viaFile).toMatchObject({ code: 'EBUSY' });
    await expect(blkdev_open(path, { exclusive: true, partition: 2, readOnly: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await l.close();
    // The other way round, and a partition through the loop device beside another through the file.
    const p1 = await blkdev_open(path, { exclusive: true, partition: 1 });
    const busy = await blkdev_open(loop, { exclusive: true }).catch((e: unknown) => e);
    expect(busy).toMatchObject({ code: 'EBUSY' });
    expect(String((busy as Error).message)).toContain(`of ${path}`);
    await expect(blkdev_open(loop, { exclusive: true, partition: 1 })).rejects.toMatchObject({ code: 'EBUSY' });
    const lp2 = await blkdev_open(loop, { exclusive: true, partition: 2 });
    await lp2.close();
    await p1.close();
  });
});

/** A loop device with 4096-byte sectors, if this machine lets us make one. */
function loopDevice(): string | undefined {
  if (!nativeBuilt || process.getuid?.() !== 0) return undefined;
  try {
    const backing = image(8 * MiB);
    const dev = execFileSync('losetup', ['-f', '--show', '-b', '4096', backing], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    loops.push(dev);
    return dev;
  } catch {
    return undefined;
  }
}

describe('host block device', () => {
  const loop = loopDevice();
  it.skipIf(!loop)('reports the device\'s size and sector size; O_EXCL makes a second opener EBUSY', async () => {
    const d = await blkdev_open(loop!, { exclusive: true, sectorSize: 512 });
    expect(d.size).toBe(8 * MiB);
    expect(d.sectorSize).toBe(4096); // the device's own, not the option
    await d.write(new Uint8Array(4096).fill(0x42), 4096);
    await d.flush();
    await expect(blkdev_open(loop!, { exclusive: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await d.close();
    const again = await blkdev_open(loop!, { exclusive: true, readOnly: true });
    const b = new Uint8Array(4096);
    await again.read(b, 4096);
    expect(b.every((x) => x === 0x42)).toBe(true);
    await again.close();
  });
});

describe('blkdev_readall', () => {
  it('reads every piece, and throws the first error only once every read has settled', async () => {
    const mem = blkdev_memory(8192);
    await mem.write(Buffer.alloc(8192, 7), 0);
    const a = Buffer.alloc(100), b = Buffer.alloc(200);
    await blkdev_readall(mem, [{ buf: a, offset: 0 }, { buf: b, offset: 4000 }]);
    expect(a.every(x => x === 7) && b.every(x => x === 7)).toBe(true);
    let late = false;
    const dev = {
      ...mem, size: mem.size,
      read: (buf: Uint8Array, offset: number) => offset === 0
        ? Promise.reject(new KernError(5, 'first'))
        : new Promise<void>(r => setTimeout(() => { late = true; r(); }, 30)),
    };
    await expect(blkdev_readall(dev, [{ buf: a, offset: 0 }, { buf: b, offset: 512 }])).rejects.toThrow('first');
    expect(late, 'the slower read had finished').toBe(true);
  });
});
