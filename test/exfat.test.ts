// exfat in-process against the real tools: images made by mkfs.exfat (several
// cluster sizes) and filled by exfat-fuse read back exactly; what the driver
// writes is clean for fsck.exfat and reads back identically through
// exfat-fuse; damaged images give errors, not hangs.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { exfat_getlabel } from '../src/fs/exfat/index.js';
import { set_checksum, boot_checksum } from '../src/fs/exfat/exfat.js';
import type { ExNode } from '../src/fs/exfat/exfat_node.js';
import { bdwrite, bincore, bread } from '../src/kern/index.js';
import { mount, type Ukfs } from '../src/ukfs/index.js';
import { fsckExfat, hostTree, mkexfat, NAMES, peek, poke, volumeFlags, withExfatFuse } from './helpers/exfat.js';
import { sha } from './helpers/iso.js';
import { pattern } from './helpers/mount.js';

const dir = mkdtempSync(path.join(tmpdir(), 'exfat-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mounted: Ukfs[] = [];
afterEach(async () => {
  for (const fs of mounted.splice(0)) await fs.unmount().catch(() => {});
});

async function mnt(img: string, readOnly = false, options: Record<string, string | number | boolean> = {}): Promise<Ukfs> {
  const fs = await mount('exfat', img, { cred: { uid: 0, gid: 0 }, umask: 0o022, readOnly, options });
  mounted.push(fs);
  return fs;
}
async function umnt(fs: Ukfs): Promise<void> {
  mounted.splice(mounted.indexOf(fs), 1);
  await fs.unmount();
}

/** Every file under p: path -> sha256 (directories: 'dir'). */
async function tree(fs: Ukfs, p = '', out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const d of await fs.readdir(p || '/', { withFileTypes: true })) {
    const q = `${p}/${d.name}`;
    if (d.isDirectory()) { out.set(q, 'dir'); await tree(fs, q, out); }
    else out.set(q, sha(await fs.readFile(q)));
  }
  return out;
}

/** The driver's node of an open file (file ids are vnode keys). */
async function nodeOf(fs: Ukfs, p: string): Promise<{ node: ExNode; close: () => Promise<void> }> {
  const fh = await fs.open(p);
  const ino = (await fs.stat(p)).ino;
  return { node: fs.mp.vnodes.get(ino)!.node<ExNode>(), close: () => fh.close() };
}

/** The same content, written by whoever owns root: long and non-ASCII names, fragmented and contiguous files. */
function populate(root: string): void {
  writeFileSync(path.join(root, 'hello.txt'), 'hello, exFAT\n');
  writeFileSync(path.join(root, NAMES.long), pattern(5000, 1));
  writeFileSync(path.join(root, NAMES.nonAscii), pattern(70000, 2));
  writeFileSync(path.join(root, NAMES.longCjk), pattern(100, 6));
  writeFileSync(path.join(root, NAMES.astral), pattern(1234, 3));
  mkdirSync(path.join(root, NAMES.greek, 'b', 'c'), { recursive: true });
  writeFileSync(path.join(root, NAMES.greek, 'b', 'c', 'deep.txt'), 'deep\n');
  mkdirSync(path.join(root, 'empty dir'));
  writeFileSync(path.join(root, 'empty file'), '');
  writeFileSync(path.join(root, 'contiguous.bin'), pattern(3 << 20, 4));
  // Appends to two files in turn: their clusters interleave (FAT chains).
  for (let i = 0; i < 40; i++) {
    appendFileSync(path.join(root, 'frag-a'), pattern(3000 + i, 100 + i));
    appendFileSync(path.join(root, 'frag-b'), pattern(5000 + i, 200 + i));
  }
  utimesSync(path.join(root, 'hello.txt'), new Date('2021-05-06T07:08:09.120Z'), new Date('2021-05-06T07:08:09.120Z'));
}

const expected = (() => {
  const h = path.join(dir, 'host');
  mkdirSync(h);
  populate(h);
  return hostTree(h);
})();

describe('exfat: reading what exfat-fuse wrote', () => {
  for (const cs of [512, 4096, 32768, 1 << 20]) {
    it(`${cs}-byte clusters: every name and byte, case-insensitive lookup, chains and NoFatChain`, async () => {
      const img = mkexfat(dir, `read-${cs}.img`, 96, cs, 'TESTVOL');
      const fuseTimes = withExfatFuse(img, (m) => {
        populate(m);
        return statSync(path.join(m, 'hello.txt')).mtimeMs;
      });
      fsckExfat(img);
      const fs = await mnt(img, true);
      expect(await tree(fs)).toEqual(expected);
      expect(exfat_getlabel(fs.mp)).toBe('TESTVOL');
      // Case-insensitive through the up-case table, case preserved in listings.
      expect(await fs.readFile('/HELLO.TXT', 'utf8')).toBe('hello, exFAT\n');
      expect(sha(await fs.readFile('/' + NAMES.nonAscii.toUpperCase()))).toBe(expected.get('/' + NAMES.nonAscii));
      expect(await fs.readFile(`/${NAMES.greek.toUpperCase()}/B/C/DEEP.TXT`, 'utf8')).toBe('deep\n');
      expect((await fs.readdir('/')).sort()).toEqual([...expected.keys()].filter(k => k.lastIndexOf('/') === 0).map(k => k.slice(1)).sort());
      // Times: exfat-fuse keeps whole seconds (exFAT could keep 10 ms); we agree with it.
      const st = await fs.stat('/hello.txt');
      expect(st.mtimeMs).toBe(Date.parse('2021-05-06T07:08:09Z'));
      expect(st.mtimeMs).toBe(fuseTimes);
      expect((await fs.stat('/contiguous.bin')).size).toBe(3 << 20);
      // The interleaved files are FAT chains of several extents; the big one is contiguous.
      const a = await nodeOf(fs, '/frag-a');
      if (cs < 32768) {
        expect(a.node.noFatChain).toBe(false);
        expect(a.node.ext.length).toBeGreaterThan(1);
      }
      await a.close();
      const c = await nodeOf(fs, '/contiguous.bin');
      expect(c.node.ext.length).toBe(1);
      await c.close();
      await umnt(fs);
      // A read-write mount with no change leaves a clean, unchanged volume.
      const before = sha(peek(img, 0, 1 << 20));
      const rw = await mnt(img);
      expect(volumeFlags(img) & 2).toBe(2);
      await umnt(rw);
      expect(volumeFlags(img) & 2).toBe(0);
      expect(sha(peek(img, 0, 1 << 20))).toBe(before);
      fsckExfat(img);
    });
  }
});

/** The File entry (device offset = file id) and its whole set of a file, for crafting damage. */
async function entrySet(img: string, p: string): Promise<{ off: number; set: Buffer }> {
  const fs = await mnt(img, true);
  const off = (await fs.stat(p)).ino;
  await umnt(fs);
  const n = peek(img, off, 2)[1] + 1;
  return { off, set: peek(img, off, n * 32) };
}

function writeSet(img: string, off: number, set: Buffer): void {
  set.writeUInt16LE(set_checksum(set), 2);
  poke(img, off, set);
}

describe('exfat: ValidDataLength and damaged images', () => {
  it('is detected by its name (type auto), before FAT', async () => {
    const img = mkexfat(dir, 'auto.img', 8, 4096);
    const fs = await mount('auto', img, { readOnly: true });
    mounted.push(fs);
    expect(fs.type).toBe('exfat');
  });


  it('bytes past ValidDataLength read as zeros', async () => {
    const img = mkexfat(dir, 'vdl.img', 32, 32768);
    withExfatFuse(img, (m) => writeFileSync(path.join(m, 'vdl.bin'), pattern(10000, 5)));
    const { off, set } = await entrySet(img, '/vdl.bin');
    set.writeBigUInt64LE(4000n, 32 + 8);
    writeSet(img, off, set);
    fsckExfat(img);
    const fs = await mnt(img, true);
    const b = await fs.readFile('/vdl.bin');
    expect(b.length).toBe(10000);
    expect(b.subarray(0, 4000).equals(pattern(10000, 5).subarray(0, 4000))).toBe(true);
    expect(b.subarray(4000).every(x => x === 0)).toBe(true);
  });

  it('a damaged main boot region: the backup, read-only; both damaged: refused', async () => {
    const img = mkexfat(dir, 'boot.img', 32, 4096);
    withExfatFuse(img, (m) => writeFileSync(path.join(m, 'f'), 'data'));
    poke(img, 100, Buffer.from([0xde, 0xad])); // VolumeSerialNumber: covered by the checksum
    const fs = await mnt(img);
    expect(await fs.readFile('/f', 'utf8')).toBe('data');
    await expect(fs.writeFile('/g', 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await umnt(fs);
    poke(img, 512 * 12 + 100, Buffer.from([0xde, 0xad]));
    await expect(mnt(img, true)).rejects.toMatchObject({ code: 'EINVAL' });
    // A checksum made to match a bad geometry is still refused.
    const region = peek(img, 0, 512 * 12);
    region.writeUInt32LE(0xffffff00, 92); // ClusterCount past the volume
    const sum = boot_checksum(region, 512);
    for (let o = 512 * 11; o < 512 * 12; o += 4) region.writeUInt32LE(sum, o);
    poke(img, 0, region);
    await expect(mnt(img, true)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('bad SetChecksum, NameHash, chain loop, cluster out of range or free in the bitmap, bad up-case checksum: EIO, never a hang', async () => {
    const base = mkexfat(dir, 'dmg.img', 32, 4096);
    withExfatFuse(base, (m) => {
      for (let i = 0; i < 8; i++) appendFileSync(path.join(m, 'chain'), pattern(4096, i)), appendFileSync(path.join(m, 'other'), 'x'.repeat(4096));
      writeFileSync(path.join(m, 'victim'), 'v');
    });
    const copy = (n: string) => { const p = path.join(dir, n); writeFileSync(p, peek(base, 0, statSync(base).size)); return p; };
    const { off: voff, set: vset } = await entrySet(base, '/victim');
    const { off: coff, set: cset } = await entrySet(base, '/chain');

    const badSum = copy('badsum.img');
    poke(badSum, voff + 2, Buffer.from([vset[2] ^ 0xff]));
    // errors=remount-ro (the default): the first damage seen turns the mount read-only.
    let fs = await mnt(badSum);
    await expect(fs.readdir('/')).rejects.toMatchObject({ code: 'EIO' });
    expect(fs.mp.readOnly).toBe(true);
    await umnt(fs);
    expect(volumeFlags(badSum) & 2).toBe(2); // left dirty for fsck
    fs = await mnt(badSum, false, { errors: 'continue' });
    await expect(fs.readdir('/')).rejects.toMatchObject({ code: 'EIO' });
    expect(fs.mp.readOnly).toBe(false);
    await umnt(fs);

    const badHash = copy('badhash.img');
    const h = Buffer.from(vset);
    h.writeUInt16LE(h.readUInt16LE(36) ^ 1, 36);
    writeSet(badHash, voff, h);
    fs = await mnt(badHash, true);
    await expect(fs.stat('/victim')).rejects.toMatchObject({ code: 'EIO' });
    await umnt(fs);

    // The chained file's second cluster points back to its first.
    const loop = copy('loop.img');
    const bs = peek(loop, 0, 512);
    const fatOff = bs.readUInt32LE(80) * 512;
    const first = cset.readUInt32LE(32 + 20);
    const second = peek(loop, fatOff + 4 * first, 4).readUInt32LE(0);
    poke(loop, fatOff + 4 * second, Buffer.from(new Uint32Array([first]).buffer));
    fs = await mnt(loop, true);
    await expect(fs.readFile('/chain')).rejects.toMatchObject({ code: 'EIO' });
    expect(await fs.readFile('/victim', 'utf8')).toBe('v');
    await umnt(fs);

    const range = copy('range.img');
    const r = Buffer.from(cset);
    r.writeUInt32LE(0x7fffffff, 32 + 20);
    writeSet(range, coff, r);
    fs = await mnt(range, true);
    await expect(fs.readFile('/chain')).rejects.toMatchObject({ code: 'EIO' });
    await umnt(fs);

    // DataLength past the volume, and ValidDataLength past DataLength.
    const big = copy('big.img');
    const g = Buffer.from(cset);
    g.writeBigUInt64LE(1n << 50n, 32 + 24);
    writeSet(big, coff, g);
    fs = await mnt(big, true);
    await expect(fs.stat('/chain')).rejects.toMatchObject({ code: 'EIO' });
    await umnt(fs);

    const up = copy('upcase.img');
    // The up-case table follows the bitmap in mkfs.exfat's layout: find its entry in the root.
    const heap = bs.readUInt32LE(88) * 512, cs = 512 << bs[109], root = bs.readUInt32LE(96);
    const rootDir = peek(up, heap + (root - 2) * cs, cs);
    let e = 0;
    while (rootDir[e] !== 0x82) e += 32;
    const upFirst = rootDir.readUInt32LE(e + 20);
    const at = heap + (upFirst - 2) * cs + 200;
    poke(up, at, Buffer.from([peek(up, at, 1)[0] ^ 0x55]));
    await expect(mnt(up, true)).rejects.toMatchObject({ code: 'EIO' });

    // A file on clusters the bitmap calls free (they would be handed out again).
    const freed = copy('freed.img');
    let b = 0;
    while (rootDir[b] !== 0x81) b += 32;
    const bitmapAt = heap + (rootDir.readUInt32LE(b + 20) - 2) * cs;
    const bit = first - 2;
    poke(freed, bitmapAt + (bit >> 3), Buffer.from([peek(freed, bitmapAt + (bit >> 3), 1)[0] & ~(1 << (bit & 7))]));
    fs = await mnt(freed, true);
    await expect(fs.readFile('/chain')).rejects.toMatchObject({ code: 'EIO' });
    expect(await fs.readFile('/victim', 'utf8')).toBe('v');
    await umnt(fs);
  });
});

describe('exfat: writing', () => {
  it('create, write, extend, truncate, unlink, mkdir, rmdir, rename, utimes, read-only: fsck clean, exfat-fuse reads the same', async () => {
    const img = mkexfat(dir, 'rw.img', 64, 4096);
    const fs = await mnt(img);
    const free0 = (await fs.statfs('/')).bfree;
    await fs.mkdir('/d');
    await fs.mkdir('/d/e');
    await fs.writeFile('/d/e/' + NAMES.long, pattern(20000, 11));
    await fs.writeFile('/' + NAMES.astral, pattern(999, 12));
    // Interleaved appends: contiguous while they can be, then chains.
    for (let i = 0; i < 30; i++) {
      await fs.appendFile('/x', pattern(4096, 20 + i));
      await fs.appendFile('/y', pattern(4096, 60 + i));
    }
    await fs.writeFile('/solo', pattern(1 << 20, 13));
    const solo = await nodeOf(fs, '/solo');
    expect(solo.node.noFatChain).toBe(true);
    await solo.close();
    const x = await nodeOf(fs, '/x');
    expect(x.node.noFatChain).toBe(false);
    expect(x.node.ext.length).toBeGreaterThan(1);
    await x.close();
    await fs.writeFile('/t', pattern(50000, 14));
    await fs.truncate('/t', 12345);
    await fs.writeFile('/grow', 'abc');
    await fs.truncate('/grow', 100000);
    await fs.writeFile('/gone', pattern(40000, 15));
    await fs.unlink('/gone');
    await fs.mkdir('/rmme');
    await fs.rmdir('/rmme');
    await expect(fs.rmdir('/d')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await fs.rename('/d/e', '/moved');
    await fs.rename('/x', '/moved/x-renamed');
    await fs.rename('/y', '/Y'); // case only
    expect(await fs.readdir('/')).toContain('Y');
    await fs.writeFile('/over', 'new');
    await fs.writeFile('/old', 'old');
    await fs.rename('/old', '/over');
    await fs.utimes('/solo', new Date('2000-01-02T03:04:05.670Z'), new Date('2001-02-03T04:05:06.780Z'));
    await fs.writeFile('/ro', 'read only');
    await fs.chmod('/ro', 0o444);
    expect((await fs.stat('/ro')).mode & 0o222).toBe(0);
    await expect(fs.chown('/ro', 1000, 1000)).rejects.toMatchObject({ code: 'EPERM' });
    await expect(fs.symlink('a', '/sl')).rejects.toMatchObject({ code: 'EPERM' });
    await expect(fs.writeFile('/bad:name', 'x')).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(fs.writeFile('/' + 'n'.repeat(256), 'x')).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    const want = await tree(fs);
    expect(volumeFlags(img) & 2).toBe(2);
    const used = free0 - (await fs.statfs('/')).bfree;
    await umnt(fs);
    expect(volumeFlags(img) & 2).toBe(0);
    fsckExfat(img);
    expect(want.get('/grow')).toBe(sha(Buffer.concat([Buffer.from('abc'), Buffer.alloc(100000 - 3)])));
    expect(want.get('/t')).toBe(sha(pattern(50000, 14).subarray(0, 12345)));
    withExfatFuse(img, (m) => {
      expect(hostTree(m)).toEqual(want);
      // exfat-fuse shows whole seconds.
      expect(statSync(path.join(m, 'solo')).mtimeMs).toBe(Date.parse('2001-02-03T04:05:06Z'));
      // exfat-fuse counts the same free clusters.
      expect(fuseFree(m)).toBe(free0 - used);
    }, true);
    // Remounted: the same tree, the read-only attribute and times kept.
    const again = await mnt(img, true);
    expect(await tree(again)).toEqual(want);
    expect((await again.stat('/ro')).mode & 0o222).toBe(0);
    // exFAT keeps 10 ms of mtime, whole even... seconds of atime (no 10 ms field).
    expect((await again.stat('/solo')).mtimeMs).toBe(Date.parse('2001-02-03T04:05:06.780Z'));
    expect((await again.stat('/solo')).atimeMs).toBe(Date.parse('2000-01-02T03:04:04Z'));
    expect(free0 - (await again.statfs('/')).bfree).toBe(used);
    await umnt(again);
  });

  it('reads the same bytes from blocks the cache holds (a delayed write among them) and from runs it does not', async () => {
    const img = mkexfat(dir, 'mix.img', 32, 4096);
    let fs = await mnt(img);
    // Interleaved appends: both files' clusters alternate (FAT chains, runs of one cluster).
    const model = { a: Buffer.alloc(0), b: Buffer.alloc(0) };
    for (let i = 0; i < 24; i++) {
      const pa = pattern(6000 + i, 300 + i), pb = pattern(4096, 400 + i);
      await fs.appendFile('/a', pa);
      await fs.appendFile('/b', pb);
      model.a = Buffer.concat([model.a, pa]);
      model.b = Buffer.concat([model.b, pb]);
    }
    await umnt(fs);
    fs = await mnt(img);
    // Overwritten ranges stay cached (clean); the rest of the file is not cached after the remount.
    const fh = await fs.open('/a', 'r+');
    for (const at of [5000, 40000, 90001, 131000]) {
      const p = pattern(3000, at);
      await fh.write(p, 0, p.length, at);
      p.copy(model.a, at);
    }
    await fh.close();
    // A delayed write of the file's data (as a failed write-through leaves one): only the cache has it.
    const { node, close } = await nodeOf(fs, '/a');
    const pos = 70000, emp = node.emp, blk = node.devOff(pos - (pos % emp.bsize));
    const bp = await bread(emp.dev, blk, emp.bsize);
    const fresh = pattern(100, 77);
    bp.data.set(fresh, pos % emp.bsize);
    bdwrite(bp);
    fresh.copy(model.a, pos);
    await close();
    expect(bincore(emp.dev, blk, emp.bsize)).toBe(true);
    for (const [name, want] of Object.entries(model)) {
      expect(sha(await fs.readFile('/' + name))).toBe(sha(want));
      // Odd pieces: reads that start and end inside blocks, across cached and uncached ones.
      const h = await fs.open('/' + name);
      for (let at = 7; at < want.length; at += 4093) {
        const got = Buffer.alloc(5000);
        const { bytesRead } = await h.read(got, 0, got.length, at);
        expect(got.subarray(0, bytesRead)).toEqual(want.subarray(at, at + 5000));
      }
      await h.close();
    }
  });

  it('4096-byte sectors: the boot region is 12 such sectors; written files read back through exfat-fuse', async () => {
    const img = mkexfat(dir, 's4k.img', 32, 32768, undefined, ['-b', '4096']);
    const fs = await mnt(img);
    await fs.mkdir('/d');
    await fs.writeFile('/d/f', pattern(100000, 31));
    await fs.rename('/d/f', '/g');
    const want = await tree(fs);
    await umnt(fs);
    fsckExfat(img);
    withExfatFuse(img, (m) => expect(hostTree(m)).toEqual(want), true);
  });

  it('a full volume gives ENOSPC and leaves a clean image', async () => {
    const img = mkexfat(dir, 'full.img', 8, 4096);
    const fs = await mnt(img);
    let n = 0;
    let err: unknown = null;
    try {
      for (;; n++) await fs.writeFile(`/f${n}`, pattern(300000, n));
    } catch (e) { err = e; }
    expect(err).toMatchObject({ code: 'ENOSPC' });
    expect((await fs.statfs('/')).bfree).toBeLessThan(300000 / 4096);
    await expect(fs.mkdir('/more/than/fits')).rejects.toBeTruthy();
    const want = await tree(fs);
    await umnt(fs);
    fsckExfat(img);
    withExfatFuse(img, (m) => expect(hostTree(m)).toEqual(want), true);
  });

  it('a directory that grows past many clusters, and entries reused after removal', async () => {
    const img = mkexfat(dir, 'grow.img', 32, 512);
    const fs = await mnt(img);
    await fs.mkdir('/d');
    for (let i = 0; i < 600; i++) await fs.writeFile(`/d/${'n'.repeat(i % 60)}-${i}`, String(i));
    for (let i = 0; i < 600; i += 2) await fs.unlink(`/d/${'n'.repeat(i % 60)}-${i}`);
    for (let i = 0; i < 100; i++) await fs.writeFile(`/d/again-${i}`, String(i));
    const want = await tree(fs);
    expect([...want.keys()].length).toBe(1 + 300 + 100);
    await umnt(fs);
    fsckExfat(img);
    withExfatFuse(img, (m) => expect(hostTree(m)).toEqual(want), true);
  });
});


/** Free clusters as exfat-fuse counts them (its statfs block is a cluster). */
function fuseFree(m: string): number {
  return Number(execFileSync('stat', ['-f', '-c', '%f', m]).toString().trim());
}
