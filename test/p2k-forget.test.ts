// The host forgets thousands of nodes at once (a BATCH_FORGET after its
// dentry cache is dropped, or at unmount). p2k releases their vnodes one
// after another: with one async vrele chain per forgotten node alive at the
// same time, 10,000 forgotten FAT files cost the server 20 MiB at its peak.
import { expect, it } from 'vitest';
import { FUSE_ROOT_ID } from '../p2k/fuse/abi.js';
import { P2k } from '../p2k/p2k.js';
import '../src/fs/tmpfs/index.js';
import { O_RDWR, vfs_mount, VType, type VnodeOps } from '../src/kern/index.js';

const FILES = 200;

it('a batch of FORGETs releases its vnodes one at a time, and shutdown waits for them', async () => {
  const mp = await vfs_mount('tmpfs', { dev: null, from: 'tmpfs', flags: 0, options: {} });
  const req = { len: 0, opcode: 0, unique: 1, nodeid: 0, uid: 0, gid: 0, pid: 0 };
  const p = new P2k(mp, { readOnly: false, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false, stableIds: false });
  const ids: number[] = [];
  for (let i = 0; i < FILES; i++) {
    const { entry, open } = await p.create(req, FUSE_ROOT_ID, `f${i}`, 0o100644, O_RDWR);
    await p.release(req, entry.nodeid, open.fh);
    ids.push(entry.nodeid);
  }

  // Every file's VOP_INACTIVE takes a turn of the event loop, and says how many run at once.
  const files = [...mp.vnodes.values()].filter(vp => vp.type === VType.VREG);
  expect(files).toHaveLength(FILES);
  const original = files[0].ops;
  let running = 0, most = 0, done = 0;
  const watched: VnodeOps = {
    ...original,
    inactive: async (vp, l) => {
      most = Math.max(most, ++running);
      await new Promise(r => setImmediate(r));
      running--;
      done++;
      return original.inactive(vp, l);
    },
  };
  for (const vp of files) vp.ops = watched;

  for (const id of ids) p.forget(id, 1);
  await p.shutdown();
  expect(done).toBe(FILES);
  expect(most).toBe(1);
});
