// Stable node ids on read-only mounts (what a restarted server relies on):
// a second kernel mount of the same image, with nothing looked up yet,
// serves every node id and file handle the first one handed out, from the
// ids alone (VFS_VGET: cd9660 finds a record by its position, msdosfs,
// udf and ext2fs by their vcache key); read-write mounts keep counters.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSE_ROOT_ID } from '../p2k/fuse/abi.js';
import { DirentWriter, type FuseAttr } from '../p2k/fuse/codec.js';
import { P2k } from '../p2k/p2k.js';
import '../src/fs/cd9660/index.js';
import '../src/fs/ext2fs/index.js';
import '../src/fs/msdosfs/index.js';
import '../src/fs/udf/index.js';
import { blkdev_open, MNT_RDONLY, O_RDONLY, vfs_mount, type Mount } from '../src/kern/index.js';
import { fatOfTree } from './helpers/fat.js';

const req = { len: 0, opcode: 0, unique: 1, nodeid: 0, uid: 0, gid: 0, pid: 0 };
const opts = { readOnly: true, groups: null, entryTimeout: 60, attrTimeout: 60, directIo: false, stableIds: true };

let tmp = '', src = '';

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0, x = seed; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'rumpfs-stable-'));
  src = path.join(tmp, 'src');
  mkdirSync(path.join(src, 'a', 'b'), { recursive: true });
  writeFileSync(path.join(src, 'top.bin'), bytes(300_000, 1));
  writeFileSync(path.join(src, 'a', 'mid.txt'), 'middle\n');
  writeFileSync(path.join(src, 'a', 'b', 'deep.bin'), bytes(70_000, 2));
  for (let i = 0; i < 60; i++) writeFileSync(path.join(src, 'a', `n${String(i).padStart(2, '0')}.txt`), `${i}\n`);
  // Kept as a link by Rock Ridge and ext2 (FAT and UDF here get the file or nothing).
  symlinkSync('b/deep.bin', path.join(src, 'a', 'link'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const images: Record<string, () => string> = {
  cd9660: () => {
    const img = path.join(tmp, 'img.iso');
    execFileSync('genisoimage', ['-quiet', '-R', '-J', '-o', img, src], { stdio: 'pipe' });
    return img;
  },
  msdos: () => fatOfTree(tmp, 8192, src),
  udf: () => {
    const img = path.join(tmp, 'udf.iso');
    execFileSync('genisoimage', ['-quiet', '-udf', '-R', '-o', img, src], { stdio: 'pipe' });
    return img;
  },
  ext2fs: () => {
    const img = path.join(tmp, 'ext2.img');
    execFileSync('mke2fs', ['-q', '-t', 'ext2', '-d', src, img, '4M'], { stdio: 'pipe' });
    return img;
  },
};

async function kmount(fstype: string, img: string, flags = MNT_RDONLY): Promise<Mount> {
  const dev = await blkdev_open(img, { readOnly: (flags & MNT_RDONLY) !== 0 });
  return vfs_mount(fstype, { dev, from: img, flags, options: {} });
}

/** Every path of the tree with its node id and attributes, as p2k hands them out. */
async function walk(p: P2k, id: number, prefix: string, out: Map<string, { id: number; attr: FuseAttr }>): Promise<void> {
  const { fh } = await p.opendir(req, id);
  const w = new DirentWriter(64 << 10, false);
  await p.readdir(req, id, fh, 0, w);
  await p.releasedir(req, id, fh);
  const names: string[] = [];
  for (let at = 16; at < 16 + w.count;) {
    const len = w.buf.readUInt32LE(at + 16);
    names.push(w.buf.toString('utf8', at + 24, at + 24 + len));
    at += (24 + len + 7) & ~7;
  }
  for (const name of names.filter(n => n !== '.' && n !== '..' && n !== 'lost+found')) {
    const e = await p.lookup(req, id, name);
    const rel = prefix + name;
    out.set(rel, { id: e.nodeid, attr: e.attr });
    if ((e.attr.mode & 0o170000) === 0o040000) await walk(p, e.nodeid, rel + '/', out);
  }
}

describe('stable node ids on read-only mounts', () => {
  for (const fstype of Object.keys(images)) {
    it(`${fstype}: a fresh mount serves the first one's node ids and file handles`, async () => {
      const img = images[fstype]();
      const mpA = await kmount(fstype, img);
      const a = new P2k(mpA, opts);
      const seen = new Map<string, { id: number; attr: FuseAttr }>();
      await walk(a, FUSE_ROOT_ID, '', seen);
      expect(seen.size).toBeGreaterThanOrEqual(65);
      for (const { id, attr } of seen.values()) expect(id).toBe(attr.ino + 2);
      const file = seen.get('a/b/deep.bin')!, dir = seen.get('a')!;
      const { fh: fileFh } = await a.open(req, file.id, O_RDONLY);
      const { fh: dirFh } = await a.opendir(req, dir.id);

      // The second server: its own kernel mount, nothing looked up.
      const mpB = await kmount(fstype, img);
      const b = new P2k(mpB, { ...opts, generation: 1 });
      let links = 0;
      for (const [rel, { id, attr }] of seen) {
        const got = (await b.getattr(req, id)).attr;
        expect({ rel, ...got }).toEqual({ rel, ...attr });
        if ((attr.mode & 0o170000) === 0o120000) {
          links++;
          expect(await b.readlink(req, id)).toBe('b/deep.bin');
        }
      }
      if (fstype === 'cd9660' || fstype === 'ext2fs') expect(links).toBe(1);
      // A handle of the first server, unknown to the second: opened again from its node id.
      const data = await b.read(req, file.id, fileFh, 0, 100_000);
      expect(Buffer.from(data).equals(bytes(70_000, 2))).toBe(true);
      const w = new DirentWriter(64 << 10, false);
      await b.readdir(req, dir.id, dirFh, 0, w);
      expect(w.count).toBeGreaterThan(0);
      await b.release(req, file.id, fileFh);
      await b.releasedir(req, dir.id, dirFh);
      // New handles of the second server never collide with the first's.
      const { fh } = await b.open(req, file.id, O_RDONLY);
      expect(fh).toBeGreaterThanOrEqual(2 ** 32);
      await b.release(req, file.id, fh);
      // Lookups through revived directories give the same ids.
      expect((await b.lookup(req, seen.get('a/b')!.id, 'deep.bin')).nodeid).toBe(file.id);
      // An id nobody handed out is refused, never another file.
      await expect(b.getattr(req, 0x7fff_0000 + 3)).rejects.toMatchObject({ code: expect.stringMatching(/^(ESTALE|EIO|ENOENT)$/) });
      await b.shutdown();
      await a.shutdown();
      await mpA.dev?.close();
      await mpB.dev?.close();
    });
  }

  // VOP_LOOKUPATTR: cd9660 from the directory record, udf from the file entry.
  for (const fstype of ['cd9660', 'udf']) it(`${fstype}: a file's LOOKUP gives its attributes with no vnode loaded; the first request by its id loads it`, async () => {
    const mp = await kmount(fstype, images[fstype]());
    const p = new P2k(mp, opts);
    try {
      const dir = await p.lookup(req, FUSE_ROOT_ID, 'a');
      const e = await p.lookup(req, dir.nodeid, 'mid.txt');
      const key = e.attr.ino;
      expect(e.nodeid).toBe(key + 2);
      expect(mp.vnodes.has(key)).toBe(false);
      // What the vnode says, once loaded, is what the record said.
      expect((await p.getattr(req, e.nodeid)).attr).toEqual(e.attr);
      expect(mp.vnodes.has(key)).toBe(true);
      const { fh } = await p.open(req, e.nodeid, O_RDONLY);
      expect(Buffer.from(await p.read(req, e.nodeid, fh, 0, 100) as Uint8Array).toString()).toBe('middle\n');
      await p.release(req, e.nodeid, fh);
      // Known now (revived: its count starts at 0): each LOOKUP counts, and
      // the host's FORGET of its count lets it go.
      expect((await p.lookup(req, dir.nodeid, 'mid.txt')).nodeid).toBe(e.nodeid);
      expect((await p.lookup(req, dir.nodeid, 'mid.txt')).nodeid).toBe(e.nodeid);
      const vp = mp.vnodes.get(key)!;
      p.forget(e.nodeid, 1);
      expect(vp.usecount).toBe(1);
      p.forget(e.nodeid, 1);
      expect(vp.usecount).toBe(0);
      expect(() => p.forget(e.nodeid, 1)).not.toThrow();
      // Absent names and directories as before.
      expect((await p.lookup(req, dir.nodeid, 'none.txt')).nodeid).toBe(0);
      expect((await p.lookup(req, dir.nodeid, 'b')).attr.mode & 0o170000).toBe(0o040000);
      await expect(p.lookup(req, e.nodeid, 'x')).rejects.toMatchObject({ code: 'ENOTDIR' });
    } finally {
      await p.shutdown();
      await mp.dev?.close();
    }
  });

  it('read-write mounts keep counting node ids, and know no other', async () => {
    const img = images.msdos();
    const mp = await kmount('msdos', img, 0);
    const p = new P2k(mp, { ...opts, readOnly: false });
    const e1 = await p.lookup(req, FUSE_ROOT_ID, 'top.bin'), e2 = await p.lookup(req, FUSE_ROOT_ID, 'a');
    expect([e1.nodeid, e2.nodeid]).toEqual([2, 3]);
    await expect(p.getattr(req, e1.attr.ino + 2)).rejects.toMatchObject({ code: 'ESTALE' });
    await p.shutdown();
    await mp.dev?.close();
  });
});
