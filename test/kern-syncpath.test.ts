// One FUSE request, one answer at once: p2k's handlers on a driver that
// answers at once (tmpfs) give values, not Promises, and the same answers as
// on a driver that answers through Promises (tmpfs-async); absent names cost
// no exception; the last reference's inactive and reclaim run at once; a
// lock protocol violation is still caught on the synchronous path.
import { afterEach, describe, expect, it } from 'vitest';
import { FUSE_ROOT_ID } from '../p2k/fuse/abi.js';
import type { EntryOut } from '../p2k/fuse/codec.js';
import { P2k } from '../p2k/p2k.js';
import {
  Cred, LK_EXCLUSIVE, LK_SHARED, LockProtocolError, Lwp, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, vcache_getm, vcache_setmax,
  vcache_stats, vfs_mount, vfs_unmount, vn_locking, vn_lookupat_or_null, vop_lookup, vop_lookup_or_null,
  vop_create, vreclaim, vrele, VnodeState, type Mount, type Vnode,
} from '../src/kern/index.js';
import '../src/fs/tmpfs/index.js';
import './helpers/tmpfs-async.js';

const mounts: Mount[] = [];
afterEach(async () => {
  for (const mp of mounts.splice(0)) await vfs_unmount(mp, true).catch(() => {});
  vcache_setmax(1024);
});

async function mount(type: string): Promise<Mount> {
  const mp = await vfs_mount(type, { dev: null, from: type, flags: 0, options: {} });
  mounts.push(mp);
  return mp;
}

const req = { len: 0, opcode: 0, unique: 1, nodeid: 0, uid: 0, gid: 0, pid: 1 };
const user = { ...req, uid: 1000, gid: 1000 };
const isPromise = (x: unknown) => x instanceof Promise;

/** An entry without what differs between two mounts (node ids, times). */
const shape = (e: EntryOut) => ({ ...e, nodeid: e.nodeid === 0 ? 0 : 'node', attr: { ...e.attr, atime: 0, mtime: 0, ctime: 0 } });

describe('p2k on a driver that answers at once', () => {
  it('lookup, create, open, write, read, getattr, release, unlink answer at once, the same as through Promises', async () => {
    const results: Record<string, { sync: boolean[]; values: unknown[] }> = {};
    for (const type of ['tmpfs', 'tmpfs-async']) {
      const mp = await mount(type);
      const p = new P2k(mp, { readOnly: false, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false });
      const sync: boolean[] = [], values: unknown[] = [];
      const step = async <T>(r: T | Promise<T>): Promise<T> => { sync.push(!isPromise(r)); return r; };
      const stepErr = async (f: () => unknown): Promise<void> => {
        let r: unknown;
        try { r = f(); } catch (e) { sync.push(true); values.push((e as { code?: string }).code); return; }
        sync.push(!isPromise(r));
        try { await r; values.push('ok'); } catch (e) { values.push((e as { code?: string }).code); }
      };
      const d = await p.mkdir(req, FUSE_ROOT_ID, 'd', 0o755);
      values.push(shape(await step(p.lookup(req, d.nodeid, 'f')))); // absent: a negative entry
      const c = await step(p.create(req, d.nodeid, 'f', 0o644, O_RDWR | O_CREAT | O_EXCL));
      values.push(shape(c.entry));
      values.push(await step(p.write(req, c.entry.nodeid, c.open.fh, 0, Buffer.from('hello, world'), 0)));
      const got = await step(p.read(req, c.entry.nodeid, c.open.fh, 7, 100));
      values.push(Buffer.from(got).toString());
      p.readDone(got);
      await step(p.release(req, c.entry.nodeid, c.open.fh));
      const e = await step(p.lookup(req, d.nodeid, 'f'));
      values.push(shape(e));
      const a = await step(p.getattr(req, e.nodeid));
      values.push({ ...a, attr: { ...a.attr, atime: 0, mtime: 0, ctime: 0 } });
      const o = await step(p.open(req, e.nodeid, O_RDONLY));
      await step(p.release(req, e.nodeid, o.fh));
      // Errors: thrown at once by the synchronous path, rejected by the other.
      await stepErr(() => p.create(req, d.nodeid, 'f', 0o644, O_RDWR | O_CREAT | O_EXCL)); // EEXIST
      await stepErr(() => p.create(user, d.nodeid, 'g', 0o644, O_RDWR | O_CREAT | O_EXCL)); // EACCES
      await stepErr(() => p.unlink(user, d.nodeid, 'f')); // EACCES
      await step(p.unlink(req, d.nodeid, 'f'));
      await stepErr(() => p.unlink(req, d.nodeid, 'f')); // ENOENT
      p.forget(e.nodeid, 2);
      p.forget(d.nodeid, 1);
      await p.shutdown();
      results[type] = { sync, values };
    }
    expect(results["tmpfs"].sync.map((s, i) => s ? "" : String(i)).join("")).toBe("");
    // Through Promises: every kernel answer but the errors found before the driver (permission, existence).
    expect(results['tmpfs-async'].sync.filter(Boolean).length).toBeLessThan(results['tmpfs'].sync.length);
    expect(results['tmpfs-async'].values).toEqual(results['tmpfs'].values);
    expect(results['tmpfs'].values).toContain('EEXIST');
    expect(results['tmpfs'].values).toContain('EACCES');
    expect(results['tmpfs'].values).toContain('ENOENT');
  });
});

describe('the kernel underneath', () => {
  it('an absent name: null from vop_lookup_or_null for a null and an ENOENT driver; vop_lookup throws ENOENT', async () => {
    for (const type of ['tmpfs', 'tmpfs-async']) {
      const mp = await mount(type);
      const root = mp.rootvp!, l = new Lwp(Cred.root, root);
      root.lock.tryLock(l, LK_SHARED);
      try {
        const r = vop_lookup_or_null(root, 'nope', l);
        expect(isPromise(r)).toBe(type !== 'tmpfs');
        expect(await r).toBeNull();
        let err: unknown;
        try { await vop_lookup(root, 'nope', l); } catch (e) { err = e; }
        expect(err).toMatchObject({ code: 'ENOENT' });
      } finally {
        root.lock.unlock(l);
      }
      expect(await vn_lookupat_or_null(l, root, 'nope')).toBeNull();
    }
  });

  it('the last reference: inactive and reclaim at once when the lock is free; later when it is held', async () => {
    const mp = await mount('tmpfs');
    vcache_setmax(1);
    const root = mp.rootvp!;
    const p = new P2k(mp, { readOnly: false, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false });
    const ids: number[] = [];
    for (const n of ['a', 'b', 'c']) {
      const c = p.create(req, FUSE_ROOT_ID, n, 0o644, O_RDWR | O_CREAT) as Awaited<ReturnType<P2k['create']>>;
      ids.push(c.entry.nodeid);
      p.release(req, c.entry.nodeid, c.open.fh);
    }
    const vps = [...mp.vnodes.values()].filter(v => v !== root);
    expect(vps).toHaveLength(3);
    // Forgotten: onto the free list at once, the oldest reclaimed past the limit of 1.
    for (const id of ids) p.forget(id, 1);
    expect(vcache_stats().free).toBe(1);
    expect(vps.filter(v => v.state === VnodeState.RECLAIMED)).toHaveLength(2);
    // A held lock: the last reference waits for it.
    const vp = vcache_getm(mp, vps[2].key) as Vnode;
    expect(isPromise(vp)).toBe(false);
    const other = new Lwp(Cred.root, root);
    vp.lock.tryLock(other, LK_EXCLUSIVE);
    const r = vrele(vp);
    expect(isPromise(r)).toBe(true);
    vp.lock.unlock(other);
    await r;
    expect(vcache_stats().free).toBe(1);
    await p.shutdown();
  });

  it('vcache_getm: a new vnode at once from a driver that loads at once; concurrent loads of a slow one share it', async () => {
    const mp = await mount('tmpfs');
    const p = new P2k(mp, { readOnly: false, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false });
    const c = await p.create(req, FUSE_ROOT_ID, 'x', 0o644, O_RDWR | O_CREAT);
    await p.release(req, c.entry.nodeid, c.open.fh);
    p.forget(c.entry.nodeid, 1);
    expect(vcache_stats().free).toBeGreaterThan(0);
    const amp = await mount('tmpfs-async');
    const aroot = amp.rootvp!;
    const ap = new P2k(amp, { readOnly: false, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false });
    const ac = await ap.create(req, FUSE_ROOT_ID, 'x', 0o644, O_RDWR | O_CREAT);
    await ap.release(req, ac.entry.nodeid, ac.open.fh);
    ap.forget(ac.entry.nodeid, 1);
    // Reclaimed, so loaded anew.
    for (const v of [...amp.vnodes.values()]) if (v !== aroot && v.usecount === 0) await vreclaim(v);
    const key = ac.entry.attr.ino;
    expect(amp.vnodes.has(key)).toBe(false);
    const one = vcache_getm(amp, key), two = vcache_getm(amp, key);
    expect(isPromise(one)).toBe(true);
    const [v1, v2] = await Promise.all([one, two]);
    expect(v1).toBe(v2);
    expect(v1.usecount).toBe(2);
    await vrele(v1);
    await vrele(v2);
    await p.shutdown();
    await ap.shutdown();
  });

  it('a lock protocol violation on the synchronous path is still caught, and the lock goes with the error', async () => {
    const mp = await mount('tmpfs');
    const root = mp.rootvp!, l = new Lwp(Cred.root, root);
    const ops = root.ops;
    // A driver that drops the caller's lock: caught on exit, at once.
    root.ops = { ...ops, getattr: (vp, lw) => { vp.lock.unlock(lw); return ops.getattr(vp, lw); } };
    try {
      expect(() => vn_locking(root, LK_SHARED, l, () => (root.ops.getattr(root, l), vop_lookup(root, 'x', l)))).toThrow(LockProtocolError);
    } finally {
      root.ops = ops;
    }
    expect(root.lock.isLocked()).toBe(false);
    // A VOP that needs an exclusive lock under a shared one: caught at once, the lock released.
    expect(() => vn_locking(root, LK_SHARED, l, () => vop_create(root, 'y', { type: 1, mode: 0o644 }, l))).toThrow(LockProtocolError);
    expect(root.lock.isLocked()).toBe(false);
    // A driver's error at once: thrown, the lock released.
    expect(() => vn_locking(root, LK_SHARED, l, () => vop_lookup(root, 'nope', l))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(root.lock.isLocked()).toBe(false);
    // A held lock: the call waits for it, and answers through a Promise.
    const other = new Lwp(Cred.root, root);
    root.lock.tryLock(other, LK_EXCLUSIVE);
    const r = vn_locking(root, LK_SHARED, l, () => 42);
    expect(isPromise(r)).toBe(true);
    root.lock.unlock(other);
    expect(await r).toBe(42);
    expect(root.lock.isLocked()).toBe(false);
  });
});
