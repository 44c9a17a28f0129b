// "tmpfs-async": tmpfs answering every operation through a Promise, as a
// driver doing I/O does, and an absent name as a thrown ENOENT (the older
// lookup contract); for the tests that compare the kernel's synchronous and
// asynchronous paths.
import { tmpfs_vfsops, tmpfs_vnodeops } from '../../src/fs/tmpfs/index.js';
import { kerr, vfs_register, type VnodeOps } from '../../src/kern/index.js';

const asyncOps = Object.fromEntries(Object.entries(tmpfs_vnodeops).map(([k, f]) =>
  [k, k === 'pathconf' ? f : async (...a: unknown[]) => {
    const r = await (f as (...x: unknown[]) => unknown)(...a);
    if (k === 'lookup' && r === null) throw kerr('ENOENT');
    return r;
  }])) as unknown as VnodeOps;

vfs_register({
  ...tmpfs_vfsops,
  name: 'tmpfs-async',
  async loadvnode(mp, vp, key) {
    await tmpfs_vfsops.loadvnode(mp, vp, key);
    vp.ops = asyncOps;
  },
});
