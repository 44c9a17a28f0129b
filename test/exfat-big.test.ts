// exfat in-process, the big ones: a 5,000-file directory and a 64 MiB file
// written by exfat-fuse, read back exactly. (exfat-fuse needs minutes for a
// 5 GiB file and, its lookups being linear, for 10,000 files on a loaded
// machine: those runs are in the notes, not here.)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mount, type Ukfs } from '../src/ukfs/index.js';
import { mkexfat, withExfatFuse } from './helpers/exfat.js';
import { sha } from './helpers/iso.js';
import { pattern } from './helpers/mount.js';

const dir = mkdtempSync(path.join(tmpdir(), 'exfat-big-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mounted: Ukfs[] = [];
afterEach(async () => {
  for (const fs of mounted.splice(0)) await fs.unmount().catch(() => {});
});

async function mnt(img: string): Promise<Ukfs> {
  const fs = await mount('exfat', img, { cred: { uid: 0, gid: 0 }, readOnly: true });
  mounted.push(fs);
  return fs;
}

describe('exfat: big directories and files from exfat-fuse', () => {
  it('a 5,000-file directory written by exfat-fuse', async () => {
    const img = mkexfat(dir, 'many.img', 128, 4096);
    const names = Array.from({ length: 5000 }, (_, i) => `file-${i}-${'x'.repeat(i % 40)}.txt`);
    withExfatFuse(img, (m) => {
      mkdirSync(path.join(m, 'many'));
      for (const [i, n] of names.entries()) writeFileSync(path.join(m, 'many', n), String(i));
    });
    const fs = await mnt(img, true);
    expect((await fs.readdir('/many')).sort()).toEqual([...names].sort());
    for (let i = 0; i < 5000; i += 47) expect(await fs.readFile(`/many/${names[i].toUpperCase()}`, 'utf8')).toBe(String(i));
    expect((await fs.stat('/many')).nlink).toBe(2);
  }, 85_000);

  it('a 64 MiB file from exfat-fuse, read back exactly', async () => {
    const img = mkexfat(dir, 'large.img', 80, 128 << 10);
    const data = pattern(64 << 20, 9);
    withExfatFuse(img, (m) => writeFileSync(path.join(m, 'large.bin'), data));
    const fs = await mnt(img, true);
    expect(sha(await fs.readFile('/large.bin'))).toBe(sha(data));
    // Reads at odd places agree with the source.
    const fh = await fs.open('/large.bin');
    for (const off of [0, 65535, 128 << 10, (50 << 20) + 12345, (64 << 20) - 10]) {
      const b = Buffer.alloc(100000);
      const { bytesRead } = await fh.read(b, 0, b.length, off);
      expect(b.subarray(0, bytesRead).equals(data.subarray(off, off + bytesRead))).toBe(true);
    }
    await fh.close();
  }, 60_000);
});
