// Writes of a file's data that the device refuses: exfat writes whole
// blocks the cache does not hold straight from the caller's buffer, so
// what a failed write carried must stay, as delayed writes in the cache:
// read back at once, and on the device once it works again.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import '../src/fs/exfat/index.js';
import {
  blkdev_open, Cred, Lwp, O_CREAT, O_RDONLY, O_RDWR, sys_open, vfs_mount, vfs_unmount, vn_close, vn_fsync, vn_read, vn_write,
} from '../src/kern/index.js';
import { mkexfat } from './helpers/exfat.js';
import { FaultDevice } from './helpers/faultdev.js';
import { tempDir } from './helpers/mount.js';

it('data a refused write carried reads back at once and reaches the device once it works; fsck.exfat clean', async () => {
  const img = mkexfat(tempDir('exfat-fault-'), 'x.img', 32, 4096);
  const mount = async () => {
    const dev = new FaultDevice(await blkdev_open(img, { exclusive: true }));
    const mp = await vfs_mount('exfat', { dev, from: img, flags: 0, options: {} });
    return { dev, mp, l: new Lwp(Cred.root, mp.rootvp) };
  };
  const readAll = async (l: Lwp) => {
    const fp = await sys_open(l, '/f', O_RDONLY, 0);
    const got = Buffer.alloc(512 << 10);
    try {
      expect(await vn_read(l, fp, got, 0)).toBe(got.length);
    } finally { await vn_close(l, fp); }
    return got;
  };
  const want = Buffer.alloc(512 << 10, 'a');
  want.fill('b', 64 << 10, 192 << 10);

  let { dev, mp, l } = await mount();
  let fp = await sys_open(l, '/f', O_RDWR | O_CREAT, 0o644);
  await vn_write(l, fp, Buffer.alloc(512 << 10, 'a'), 0);
  await vn_fsync(l, fp);
  await vn_close(l, fp);
  await vfs_unmount(mp);
  await dev.close();

  // Remounted: none of the file's blocks is cached, so the overwrite goes straight from its buffer.
  ({ dev, mp, l } = await mount());
  fp = await sys_open(l, '/f', O_RDWR, 0);
  dev.armed = { code: 'EIO', from: 0 };
  await vn_write(l, fp, Buffer.alloc(128 << 10, 'b'), 64 << 10).catch(() => {});
  expect(dev.failures).toBeGreaterThan(0);
  expect((await readAll(l)).equals(want), 'read back while the device refuses writes').toBe(true);
  dev.armed = null;
  await vn_fsync(l, fp);
  await vn_close(l, fp);
  await vfs_unmount(mp);
  await dev.close();

  ({ dev, mp, l } = await mount());
  expect((await readAll(l)).equals(want), 'read back from the device after a remount').toBe(true);
  await vfs_unmount(mp);
  await dev.close();
  const r = spawnSync('fsck.exfat', ['-n', img], { encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
});
