// Type detection against images made by the real tools.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectSource } from '../src/ukfs/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rumpfs-detect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function image(name: string, size: number): string {
  const p = path.join(dir, name);
  writeFileSync(p, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(size), p]);
  return p;
}

describe('detectSource', () => {
  it.each([['12', 2], ['16', 20], ['32', 40]])('FAT%s made by mkfs.vfat', (bits, mib) => {
    const img = image(`fat${bits}.img`, mib << 20);
    execFileSync('mkfs.vfat', ['-F', bits, img], { stdio: 'ignore' });
    return expect(detectSource(img)).resolves.toBe('msdos');
  });

  it('ext2 and ext4 made by mke2fs', async () => {
    for (const t of ['ext2', 'ext4']) {
      const img = image(`${t}.img`, 8 << 20);
      execFileSync('mke2fs', ['-q', '-F', '-t', t, img], { stdio: 'ignore' });
      await expect(detectSource(img)).resolves.toBe('ext2fs');
    }
  });

  it('ISO 9660 made by genisoimage', async () => {
    const src = path.join(dir, 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'a.txt'), 'a');
    const iso = path.join(dir, 'x.iso');
    execFileSync('genisoimage', ['-quiet', '-R', '-o', iso, src]);
    await expect(detectSource(iso)).resolves.toBe('cd9660');
  });

  it('a partition of an MBR disk image', async () => {
    const img = image('disk.img', 24 << 20);
    execFileSync('sfdisk', ['-q', img], { input: 'start=2048, size=20480, type=c\n' });
    const part = image('part.img', 20480 * 512);
    execFileSync('mkfs.vfat', ['-F', '16', part], { stdio: 'ignore' });
    execFileSync('dd', [`if=${part}`, `of=${img}`, 'bs=512', 'seek=2048', 'conv=notrunc'], { stdio: 'ignore' });
    await expect(detectSource(img, 1)).resolves.toBe('msdos');
  });

  it('nothing known: ENODEV with the device named', async () => {
    const img = image('zero.img', 1 << 20);
    await expect(detectSource(img)).rejects.toMatchObject({ code: 'ENODEV', message: expect.stringContaining('zero.img') });
  });
});
