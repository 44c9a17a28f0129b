// A write into a file's hole that the device refuses: ext2fs reads file
// data from the device, not from the cache, so the blocks the failed write
// had put into the hole must become a hole again; else the file would show
// whatever the disk held there (here: a deleted file's bytes).
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import '../src/fs/ext2fs/index.js';
import {
  blkdev_open, Cred, isKernError, Lwp, O_CREAT, O_RDONLY, O_WRONLY, sys_open, sys_unlink, vfs_mount, vfs_unmount,
  vn_close, vn_fsync, vn_read, vn_write,
} from '../src/kern/index.js';
import { FaultDevice } from './helpers/faultdev.js';
import { tempDir } from './helpers/mount.js';

it('a write into a hole that the device refuses leaves the hole reading zeroes, and e2fsck clean', async () => {
  const img = path.join(tempDir('ext2-fault-'), 'e2.img');
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-b', '4096', img, '32M'], { stdio: 'pipe' });
  const dev = new FaultDevice(await blkdev_open(img, { exclusive: true }));
  const mp = await vfs_mount('ext2fs', { dev, from: img, flags: 0, options: {} });
  const l = new Lwp(Cred.root, mp.rootvp);
  const write = async (p: string, data: Uint8Array, at: number) => {
    const fp = await sys_open(l, p, O_WRONLY | O_CREAT, 0o644);
    try {
      await vn_write(l, fp, data, at);
      await vn_fsync(l, fp);
    } finally { await vn_close(l, fp); }
  };

  // A deleted file's bytes stay on the disk, in blocks that are free again.
  await write('/stale', Buffer.alloc(4 << 20, 'S'), 0);
  await sys_unlink(l, '/stale');
  // A file with a 4 MiB hole after its first block.
  await write('/sparse', Buffer.alloc(4096, 'a'), 0);
  await write('/sparse', Buffer.alloc(4096, 'z'), 4 << 20);

  dev.armed = { code: 'EIO', from: 0 };
  const fp = await sys_open(l, '/sparse', O_WRONLY, 0);
  let failed = '';
  try {
    await vn_write(l, fp, Buffer.alloc(256 << 10, 'w'), 1 << 20);
  } catch (e) {
    failed = isKernError(e) ? e.code : String(e);
  }
  dev.armed = null;
  await vn_close(l, fp);
  expect(failed).toBe('EIO');

  const rp = await sys_open(l, '/sparse', O_RDONLY, 0);
  const got = new Uint8Array(1 << 20);
  expect(await vn_read(l, rp, got, 1 << 20)).toBe(got.length);
  await vn_close(l, rp);
  expect(Buffer.from(got).equals(Buffer.alloc(got.length)), 'the hole reads as zeroes').toBe(true);

  await vfs_unmount(mp);
  await dev.close();
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
});
