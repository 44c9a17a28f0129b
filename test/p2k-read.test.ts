// A FUSE READ asks the file system for the bytes the kernel asked for, no
// more: p2k reads into a pooled 128 KiB buffer, and once handed the whole
// buffer, every 4 KiB random read of an ISO cost two 128 KiB clusters.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { FUSE_ROOT_ID } from '../p2k/fuse/abi.js';
import { P2k } from '../p2k/p2k.js';
import '../src/fs/cd9660/index.js';
import { blkdev_open, MNT_RDONLY, O_RDONLY, vfs_mount, type BlockDevice } from '../src/kern/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'rumpfs-p2k-read-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('a 4 KiB READ reads one cluster of the image, not the pool buffer\'s worth', async () => {
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  writeFileSync(path.join(tmp, 'big'), data);
  const img = path.join(tmp, 'img.iso');
  execFileSync('genisoimage', ['-quiet', '-R', '-o', img, path.join(tmp, 'big')], { stdio: 'pipe' });

  const dev = await blkdev_open(img, { readOnly: true });
  let bytesRead = 0;
  const counting: BlockDevice = Object.create(dev, {
    read: { value: (buf: Uint8Array, offset: number) => { bytesRead += buf.length; return dev.read(buf, offset); } },
  });
  const mp = await vfs_mount('cd9660', { dev: counting, from: img, flags: MNT_RDONLY, options: {} });
  const req = { len: 0, opcode: 0, unique: 1, nodeid: 0, uid: 0, gid: 0, pid: 0 };
  const p = new P2k(mp, { readOnly: true, groups: null, entryTimeout: 60, attrTimeout: 60, directIo: false, stableIds: true });
  const e = await p.lookup(req, FUSE_ROOT_ID, 'big');
  const { fh } = await p.open(req, e.nodeid, O_RDONLY);

  const at = 100 << 10;
  bytesRead = 0;
  const got = await p.read(req, e.nodeid, fh, at, 4096);
  expect(Buffer.from(got).equals(data.subarray(at, at + 4096))).toBe(true);
  // cd9660 reads file data in 128 KiB clusters: [100 KiB, 104 KiB) lies in the first.
  expect(bytesRead).toBeLessThanOrEqual(128 << 10);

  await p.release(req, e.nodeid, fh);
  await p.shutdown();
});
