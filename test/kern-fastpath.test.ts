// The kernel's synchronous fast paths: a driver that answers at once and one
// that answers through Promises give the same results and errors through
// every layer; the lock protocol is enforced on both; cache hits (locks,
// vnodes, buffers) are answered without a Promise; negative lookups carry no
// stack trace.
import { afterEach, describe, expect, it } from 'vitest';
import {
  blkdev_memory, bread, bread_cluster, brelse, binvalall, Cred, getblk, isKernError, kerr, LK_EXCLUSIVE, LK_SHARED,
  LockProtocolError, Lwp, O_CREAT, O_RDWR, sys_link, sys_mkdir, sys_open, sys_readdir, sys_readlink, sys_rename,
  sys_rmdir, sys_setattr, sys_stat, sys_symlink, sys_unlink, vcache_get, vcache_tryget, vfs_mount,
  vfs_unmount, vn_close, vn_lock, vn_read, vn_write, vop_create, vop_getattr, vop_lookup, VOP_CREATE, VOP_GETATTR,
  VOP_LOOKUP, vrele, type Mount, type Vnode,
} from '../src/kern/index.js';
import '../src/fs/tmpfs/index.js';
import './helpers/tmpfs-async.js';

const mounts: Mount[] = [];
afterEach(async () => {
  for (const mp of mounts.splice(0)) await vfs_unmount(mp, true);
});

async function mount(type: string): Promise<{ mp: Mount; l: Lwp }> {
  const mp = await vfs_mount(type, { dev: null, from: type, flags: 0, options: {} });
  mounts.push(mp);
  return { mp, l: new Lwp(Cred.root, mp.rootvp) };
}

const bytes = (s: string) => new TextEncoder().encode(s);

/** The same calls on one mount: results and error codes, times left out. */
async function script(l: Lwp): Promise<unknown[]> {
  const out: unknown[] = [];
  const rec = async (p: () => Promise<unknown>) => {
    try {
      const r = await p();
      out.push(r && typeof r === 'object' && 'fileid' in r
        ? { ...r, atime: 0, mtime: 0, ctime: 0, birthtime: 0 } : r);
    } catch (e) {
      if (!isKernError(e)) throw e;
      out.push(e.code);
    }
  };
  const user = new Lwp(new Cred(1000, 1000), l.root);
  await rec(() => sys_mkdir(l, '/d', 0o755));
  await rec(() => sys_mkdir(l, '/d', 0o755));
  await rec(async () => {
    const fp = await sys_open(l, '/d/f', O_RDWR | O_CREAT, 0o644);
    try {
      await vn_write(l, fp, bytes('hello'), 0);
      const b = new Uint8Array(8);
      return [await vn_read(l, fp, b, 0), [...b]];
    } finally { await vn_close(l, fp); }
  });
  await rec(() => sys_stat(l, '/d/f'));
  await rec(() => sys_stat(l, '/d/missing'));
  await rec(() => sys_stat(l, '/d/f/x'));
  await rec(() => sys_symlink(l, '/d/f', '/s'));
  await rec(() => sys_readlink(l, '/s'));
  await rec(() => sys_stat(l, '/s'));
  await rec(() => sys_link(l, '/d/f', '/d/g'));
  await rec(() => sys_rename(l, '/d/g', '/h'));
  await rec(() => sys_setattr(l, '/h', { mode: 0o600 }));
  await rec(() => sys_stat(user, '/h'));
  await rec(() => sys_setattr(l, '/d', { mode: 0o700 }));
  await rec(() => sys_stat(user, '/d/f'));
  await rec(async () => (await sys_readdir(l, '/')).map(d => [d.name, d.type]));
  await rec(() => sys_unlink(l, '/h'));
  await rec(() => sys_rmdir(l, '/d'));
  await rec(() => sys_unlink(l, '/d/f'));
  await rec(() => sys_rmdir(l, '/d'));
  await rec(() => sys_stat(l, '/d'));
  return out;
}

describe('sync and async drivers', () => {
  it('give the same results and errors through namei and the system calls', async () => {
    const a = await script((await mount('tmpfs')).l);
    const b = await script((await mount('tmpfs-async')).l);
    expect(a).toEqual(b);
    expect(a).toContain('ENOENT');
    expect(a).toContain('EACCES');
    expect(a).toContain('ENOTEMPTY');
  });

  it('vop_* answer a synchronous driver at once; VOP_* always with a Promise', async () => {
    const { mp, l } = await mount('tmpfs');
    const { mp: amp, l: al } = await mount('tmpfs-async');
    const root = mp.rootvp!, aroot = amp.rootvp!;
    root.lock.tryLock(l, LK_EXCLUSIVE);
    aroot.lock.tryLock(al, LK_EXCLUSIVE);
    try {
      const va = vop_getattr(root, l);
      expect(va).not.toBeInstanceOf(Promise);
      expect(vop_getattr(aroot, al)).toBeInstanceOf(Promise);
      const p = VOP_GETATTR(root, l);
      expect(p).toBeInstanceOf(Promise);
      expect(await p).toEqual(va);
      // A synchronous driver's error is thrown by vop_*, rejected by VOP_*.
      expect(() => vop_lookup(root, 'nope', l)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      await expect(VOP_LOOKUP(root, 'nope', l)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(VOP_LOOKUP(aroot, 'nope', al)).rejects.toMatchObject({ code: 'ENOENT' });
      const vp = vop_create(root, 'f', { type: 1, mode: 0o644 }, l);
      expect(vp).not.toBeInstanceOf(Promise); // a new vnode, loaded at once by a driver that can
      await vrele(await vp);
      const avp = vop_create(aroot, 'f', { type: 1, mode: 0o644 }, al);
      expect(avp).toBeInstanceOf(Promise);
      await vrele(await avp);
      const again = vop_lookup(root, 'f', l) as Vnode;
      expect(again).not.toBeInstanceOf(Promise); // cached now
      await vrele(again);
    } finally {
      root.lock.unlock(l);
      aroot.lock.unlock(al);
    }
  });
});

describe('the lock protocol, answered at once or later', () => {
  for (const type of ['tmpfs', 'tmpfs-async']) {
    it(`${type}: entry and exit are checked`, async () => {
      const { mp, l } = await mount(type);
      const root = mp.rootvp!;
      expect(() => vop_getattr(root, l)).toThrow(LockProtocolError);
      await expect(VOP_GETATTR(root, l)).rejects.toBeInstanceOf(LockProtocolError);
      root.lock.tryLock(l, LK_SHARED);
      try {
        await expect(VOP_CREATE(root, 'f', { type: 1, mode: 0o644 }, l)).rejects.toBeInstanceOf(LockProtocolError);
      } finally {
        root.lock.unlock(l);
      }
      // A driver that drops the caller's lock is caught on exit.
      const ops = root.ops;
      root.ops = { ...ops, getattr: (vp, lw) => { vp.lock.unlock(lw); return ops.getattr(vp, lw); } };
      try {
        root.lock.tryLock(l, LK_SHARED);
        await expect(VOP_GETATTR(root, l)).rejects.toBeInstanceOf(LockProtocolError);
        expect(root.lock.heldBy(l)).toBe(0);
      } finally {
        root.ops = ops;
      }
      // A driver returning a new vnode locked is caught.
      let made: Vnode | null = null;
      root.ops = { ...ops, create: async (dvp, name, va, lw) => {
        made = await ops.create(dvp, name, va, lw);
        made.lock.tryLock(lw, LK_EXCLUSIVE);
        return made;
      } };
      root.lock.tryLock(l, LK_EXCLUSIVE);
      try {
        await expect(VOP_CREATE(root, 'g', { type: 1, mode: 0o644 }, l)).rejects.toBeInstanceOf(LockProtocolError);
      } finally {
        root.ops = ops;
        root.lock.unlock(l);
        const vp = made as Vnode | null;
        if (vp) { vp.lock.unlock(l); await vrele(vp); }
      }
    });
  }
});

describe('cache hits without a Promise', () => {
  it('vn_lock takes a free lock at once and queues behind a holder', async () => {
    const { mp, l } = await mount('tmpfs');
    const root = mp.rootvp!;
    const other = new Lwp(Cred.root, root);
    expect(vn_lock(root, LK_EXCLUSIVE, l)).toBeUndefined();
    expect(root.lock.heldBy(l)).toBe(LK_EXCLUSIVE);
    const p = vn_lock(root, LK_SHARED, other);
    expect(p).toBeInstanceOf(Promise);
    root.lock.unlock(l);
    await p;
    expect(root.lock.heldBy(other)).toBe(LK_SHARED);
    root.lock.unlock(other);
  });

  it('vcache_tryget and vrele: a referenced, cached vnode at once; the last reference waits for inactive', async () => {
    const { mp } = await mount('tmpfs');
    const root = mp.rootvp!;
    const vp = vcache_tryget(mp, root.key);
    expect(vp).toBe(root);
    expect(vrele(vp!)).toBeUndefined();
    expect(vcache_tryget(mp, 999)).toBeNull();
    await expect(vcache_get(mp, 999)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('bread of a cached block and bread_cluster of cached blocks answer at once', async () => {
    const dev = blkdev_memory(1 << 20);
    try {
      const bp = await getblk(dev, 0, 4096);
      bp.data.fill(3);
      brelse(bp);
      const blks = [{ offset: 0, size: 4096 }];
      const got = bread_cluster(dev, blks);
      expect(Array.isArray(got)).toBe(true);
      expect((got as { data: Uint8Array }[])[0].data[0]).toBe(3);
      brelse((got as Parameters<typeof brelse>[0][])[0]);
      const again = await bread(dev, 0, 4096);
      expect(again).toBe(bp);
      brelse(again);
    } finally {
      binvalall(dev);
    }
  });
});

describe('negative lookups', () => {
  it('a KernError carries no stack trace', () => {
    const e = kerr('ENOENT');
    expect(e.stack ?? '').not.toMatch(/\n\s+at /);
  });
});
