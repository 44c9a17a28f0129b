// udf in-process, against images made by the real tools: genisoimage -udf
// bridge images of a source tree built here (names, sizes, contents and
// times read back exactly, and as the cd9660 driver sees the same image),
// and mkudffs images of each revision, block size and partition kind (root
// owner, mode and label as mkudffs was told, udfinfo's block size). Then
// read-only in every way, options, detection, and damaged images: EIO or
// EINVAL with a log line, never a crash.
import { execFileSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSource, mount, type Ukfs } from '../src/ukfs/index.js';
import { blkdev_open, vfs_mount, vfs_unmount } from '../src/kern/index.js';
import '../src/fs/udf/index.js';
import '../src/fs/cd9660/index.js';
import { udf_crc, udf_timestamp } from '../src/fs/udf/ecma167.js';
import { udf_pathcomponents } from '../src/fs/udf/udf_node.js';
import { udf_cs0 } from '../src/fs/udf/udf_osta.js';
import {
  BIG, BRIDGES, bridgeName, buildUdfTree, labelOf, LONG, makeBridge, makeMkudf, MANY, MKUDF, mkudfName, ROOT_GID, ROOT_MODE,
  ROOT_UID, sha, udfinfo, UNICODE, buildWrudfTree, wrudfFill, wrudfList, bytes,
} from './helpers/udf.js';

let tmp: string;
let src: string;
const img = (n: string) => path.join(tmp, n);

interface Info { type: string; size: number; mtime: number; sha?: string }

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): string {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
}

function walkSource(root: string): Map<string, Info> {
  const out = new Map<string, Info>();
  const walk = (rel: string): void => {
    for (const n of nfs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = nfs.lstatSync(path.join(root, r));
      out.set(r, { type: typeOf(st), size: st.isFile() ? st.size : 0, mtime: Math.floor(st.mtimeMs / 1000), sha: st.isFile() ? sha(nfs.readFileSync(path.join(root, r))) : undefined });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

async function walkImage(fs: Ukfs): Promise<Map<string, Info>> {
  const out = new Map<string, Info>();
  const walk = async (rel: string): Promise<void> => {
    for (const d of await fs.readdir('/' + rel, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const st = await fs.lstat('/' + r);
      expect(d.ino, `readdir and stat agree on the file id of ${r}`).toBe(st.ino);
      expect(typeOf(d), `readdir and stat agree on the type of ${r}`).toBe(typeOf(st));
      out.set(r, { type: typeOf(st), size: st.isFile() ? st.size : 0, mtime: Math.floor(st.mtimeMs / 1000), sha: st.isFile() ? sha(await fs.readFile('/' + r)) : undefined });
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

async function withFs<T>(type: string, image: string, options: Record<string, string | number | boolean>, fn: (fs: Ukfs) => Promise<T>): Promise<T> {
  const fs = await mount(type, image, { readOnly: true, options, cred: { uid: 0, gid: 0 } });
  try { return await fn(fs); } finally { await fs.unmount(); }
}

let source: Map<string, Info>;
/** Bridge images already walked through udf (by the first tests), for the cd9660 comparison. */
const walked = new Map<string, Map<string, Info>>();
let wsrc: string;
/** mkudffs images of CD-RW (sparable partition) filled by wrudf. */
const WRUDF = [['--udfrev=0x0150'], ['--udfrev=0x0201', '--noefe']] as const;
const wrudfName = (flags: readonly string[]) => `wrudf${flags.join('')}.img`;

beforeAll(() => {
  tmp = nfs.mkdtempSync(path.join(os.tmpdir(), 'udf-'));
  src = path.join(tmp, 'src');
  nfs.mkdirSync(src);
  buildUdfTree(src);
  source = walkSource(src);
  for (const f of BRIDGES) makeBridge(f, img(bridgeName(f)), src);
  for (const v of MKUDF) makeMkudf(v, img(mkudfName(v)));
  wsrc = path.join(tmp, 'wsrc');
  buildWrudfTree(wsrc);
  for (const f of WRUDF) {
    execFileSync('mkudffs', ['--media-type=cdrw', '--blocksize=2048', ...f, '--new-file', img(wrudfName(f)), '8192'], { stdio: 'ignore' });
    wrudfFill(img(wrudfName(f)), wsrc);
  }
}, 60_000);

afterAll(() => {
  if (tmp) nfs.rmSync(tmp, { recursive: true, force: true });
});

describe('udf: genisoimage -udf bridge images', () => {
  for (const flags of BRIDGES) {
    const joliet = flags.includes('-J');
    it(`genisoimage ${flags.join(' ')}: names, sizes, contents and times match the source`, async () => {
      const got = await withFs('udf', img(bridgeName(flags)), {}, walkImage);
      walked.set(bridgeName(flags), got);
      // With Joliet, genisoimage names UDF files as Joliet does: 64 characters.
      const expected = new Map([...source].map(([p, i]) => [joliet ? p.split('/').map(c => [...c].slice(0, 64).join('')).join('/') : p, i]));
      expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [p, s] of expected) expect({ p, ...got.get(p) }).toEqual({ p, ...s });
      expect(got.get('big.bin')!.size).toBe(BIG);
      expect([...got.keys()].filter(p => p.startsWith('many/'))).toHaveLength(MANY);
      if (!joliet) expect(got.has(LONG) && got.has(UNICODE)).toBe(true);
    });
  }

  it('attributes: no owner recorded (uid=/gid= stand in), 0444 and 0555, `..` leads up, hard-to-reach reads', async () => {
    const image = img(bridgeName(['-udf', '-R']));
    await withFs('udf', image, {}, async fs => {
      const st = await fs.stat('/Dir/Hello.TXT');
      expect({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, nlink: st.nlink }).toEqual({ mode: 0o444, uid: 65534, gid: 65534, nlink: 1 });
      expect((await fs.stat('/Dir')).mode & 0o7777).toBe(0o555);
      expect((await fs.stat('/a/b/c/d/e/f/g/h/i/j/k/l/../../..')).ino).toBe((await fs.stat('/a/b/c/d/e/f/g/h/i')).ino);
      expect((await fs.stat('/..')).ino).toBe((await fs.stat('/')).ino);
      // Reads at odd offsets and across clusters give the source's bytes.
      const want = nfs.readFileSync(path.join(src, 'big.bin'));
      const fh = await fs.open('/big.bin', 'r');
      try {
        for (const [off, len] of [[0, 1], [2047, 2], [131071, 131074], [BIG - 10, 100], [BIG, 10]]) {
          const b = Buffer.alloc(len);
          const { bytesRead } = await fh.read(b, 0, len, off);
          expect(b.subarray(0, bytesRead).equals(want.subarray(off, off + len))).toBe(true);
        }
      } finally { await fh.close(); }
    });
    await withFs('udf', image, { uid: 1000, gid: 100, mode: 0o640, dmode: 0o750 }, async fs => {
      const st = await fs.stat('/Dir/Hello.TXT');
      expect({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }).toEqual({ mode: 0o640, uid: 1000, gid: 100 });
      expect((await fs.stat('/Dir')).mode & 0o7777).toBe(0o750);
    });
  });

  it('the same image through cd9660 (Rock Ridge) holds the same files', async () => {
    const image = img(bridgeName(['-udf', '-R']));
    const viaUdf = walked.get(bridgeName(['-udf', '-R'])) ?? await withFs('udf', image, {}, walkImage);
    const viaIso = await withFs('cd9660', image, {}, walkImage);
    expect([...viaUdf.keys()].sort()).toEqual([...viaIso.keys()].sort());
    for (const [p, u] of viaUdf) {
      const i = viaIso.get(p)!;
      expect({ p, type: u.type, size: u.size, sha: u.sha, mtime: u.mtime }).toEqual({ p, type: i.type, size: i.size, sha: i.sha, mtime: i.mtime });
    }
  });

  it('detection: a bridge image is udf, a plain ISO 9660 image cd9660', async () => {
    await expect(detectSource(img(bridgeName(['-udf', '-R'])))).resolves.toBe('udf');
    const plain = img('plain.iso');
    execFileSync('genisoimage', ['-quiet', '-R', '-o', plain, path.join(src, 'Dir')]);
    await expect(detectSource(plain)).resolves.toBe('cd9660');
    await expect(mount('udf', plain, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('udf: mkudffs images', () => {
  for (const v of MKUDF) {
    it(`mkudffs --media-type=${v.media} --blocksize=${v.bs} --udfrev=${v.rev} ${(v.extra ?? []).join(' ')} (${v.partition})`, async () => {
      const image = img(mkudfName(v));
      const info = udfinfo(image);
      expect(info.get('blocksize')).toBe(String(v.bs));
      await expect(detectSource(image)).resolves.toBe('udf');
      await withFs('udf', image, {}, async fs => {
        expect(await fs.readdir('/')).toEqual([]);
        const st = await fs.stat('/');
        expect({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, dir: st.isDirectory() }).toEqual({ mode: ROOT_MODE, uid: ROOT_UID, gid: ROOT_GID, dir: true });
        // mkudffs stamps the root with the time it ran.
        expect(Math.abs(st.mtimeMs - nfs.statSync(image).mtimeMs)).toBeLessThan(120_000);
        const sv = await fs.statfs();
        expect(sv.bsize).toBe(v.bs);
      });
      const dev = await blkdev_open(image, { readOnly: true });
      try {
        const mp = await vfs_mount('udf', { dev, from: image, flags: 0, options: {} });
        expect(mp.op.label!(mp)).toBe(labelOf(v));
        await vfs_unmount(mp);
      } finally { await dev.close(); }
    });
  }
});

/** wrudf's permission letters (rwxad per class) for st_mode's bits. */
function letters(mode: number): string {
  return [6, 3, 0].map(sh => ['r', 'w', 'x'].map((c, i) => (mode >> sh) & (4 >> i) ? c : '-').join('')).join(' ');
}

describe('udf: mkudffs images filled by wrudf (sparable partition)', () => {
  for (const flags of WRUDF) {
    it(`mkudffs --media-type=cdrw ${flags.join(' ')} + wrudf: names, sizes, contents, owners and times`, async () => {
      const image = img(wrudfName(flags));
      const want = walkSource(wsrc);
      const got = await withFs('udf', image, {}, walkImage);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [p, w] of want) {
        const g = got.get(p)!;
        // wrudf stamps directories with the time it made them; files keep the source's.
        expect({ p, type: g.type, size: g.size, sha: g.sha, mtime: w.type === 'file' ? g.mtime : 0 })
          .toEqual({ p, type: w.type, size: w.size, sha: w.sha, mtime: w.type === 'file' ? w.mtime : 0 });
      }
      await withFs('udf', image, {}, async fs => {
        const st = await fs.stat('/Dir/Hello.TXT');
        expect({ uid: st.uid, gid: st.gid }).toEqual({ uid: 1234, gid: 5678 });
      });
    });
  }

  it('owners, permissions and sizes as wrudf itself lists them', async () => {
    const image = img(wrudfName(WRUDF[1]));
    const copy = img('wrudf-ls.img');
    nfs.copyFileSync(image, copy);
    const dirs = ['', 'Dir', 'Dir/Sub', 'many', 'a/b/c/d/e/f/g/h'];
    const listed = wrudfList(copy, dirs);
    expect(listed.size).toBeGreaterThan(210);
    // mkudffs records the spare area of rewritable media as a hidden file (UDF 2.3.13): shown only with unhide.
    expect(listed.has('Non-Allocatable Space')).toBe(true);
    await withFs('udf', image, {}, async fs => expect(await fs.readdir('/')).not.toContain('Non-Allocatable Space'));
    await withFs('udf', image, { unhide: true }, async fs => {
      for (const [p, l] of listed) {
        const st = await fs.stat('/' + p);
        const perms = l.perms.split(' ').map(x => x.slice(0, 3)).join(' ');
        expect({ p, uid: st.uid, gid: st.gid, perms: letters(st.mode), size: st.isDirectory() ? 0 : st.size })
          .toEqual({ p, uid: l.uid, gid: l.gid, perms, size: st.isDirectory() ? 0 : l.size });
      }
    });
  });

  it('a packet moved by the sparing table is read from where the table says', async () => {
    const image = img(wrudfName(WRUDF[0]));
    const buf = nfs.readFileSync(image);
    const [pd] = tagged(buf, 5);
    const partStart = buf.readUInt32LE(pd * 2048 + 188);
    const tables = tagged(buf, 0).filter(sct => buf.subarray(sct * 2048 + 17, sct * 2048 + 35).toString('latin1') === '*UDF Sparing Table');
    expect(tables.length).toBe(2);
    const data = bytes(1_500_000, 21);
    // The packet (32 blocks) holding block 400 of big.bin's data, all of it that file's data in a row.
    const sector400 = buf.indexOf(data.subarray(400 * 2048, 401 * 2048)) / 2048;
    const packet = Math.floor((sector400 - partStart) / 32) * 32;
    const firstBlock = 400 - (sector400 - partStart - packet);
    expect(buf.subarray((partStart + packet) * 2048, (partStart + packet + 32) * 2048).equals(data.subarray(firstBlock * 2048, (firstBlock + 32) * 2048))).toBe(true);
    const spared = Buffer.from(buf);
    const mapped = spared.readUInt32LE(tables[0] * 2048 + 60);
    spared.copy(spared, mapped * 2048, (partStart + packet) * 2048, (partStart + packet + 32) * 2048);
    spared.fill(0xee, (partStart + packet) * 2048, (partStart + packet + 32) * 2048);
    const zapped = Buffer.from(spared);
    for (const sct of tables) {
      const o = sct * 2048;
      spared.writeUInt32LE(packet, o + 56);
      spared.writeUInt16LE(udf_crc(spared.subarray(o + 16, o + 16 + spared.readUInt16LE(o + 10))), o + 8);
      let sum = 0;
      for (let i = 0; i < 16; i++) if (i !== 4) sum += spared[o + i];
      spared[o + 4] = sum & 0xff;
    }
    nfs.writeFileSync(img('spared.img'), spared);
    nfs.writeFileSync(img('zapped.img'), zapped);
    const want = sha(nfs.readFileSync(path.join(wsrc, 'big.bin')));
    await withFs('udf', img('spared.img'), {}, async fs => expect(sha(await fs.readFile('/big.bin'))).toBe(want));
    // Without the table's entry the packet reads as what is left there.
    await withFs('udf', img('zapped.img'), {}, async fs => expect(sha(await fs.readFile('/big.bin'))).not.toBe(want));
  });
});

/** Set a descriptor's CRC (over its CRC length) and tag checksum after changing it. */
function retag(b: Buffer, o: number): void {
  b.writeUInt16LE(udf_crc(b.subarray(o + 16, o + 16 + b.readUInt16LE(o + 10))), o + 8);
  let sum = 0;
  for (let i = 0; i < 16; i++) if (i !== 4) sum += b[o + i];
  b[o + 4] = sum & 0xff;
}

/** The byte offset of the file entry (wrudf's: short allocation descriptors) whose data starts with `content`. */
function wrudfFe(b: Buffer, partStart: number, content: Buffer): number {
  const hits = tagged(b, 261).filter(s => {
    const o = s * 2048, lea = b.readUInt32LE(o + 168);
    const lb = b.readUInt32LE(o + 176 + lea + 4);
    return b.subarray((partStart + lb) * 2048, (partStart + lb) * 2048 + content.length).equals(content);
  });
  expect(hits).toHaveLength(1);
  return hits[0] * 2048;
}

describe('udf: symbolic links and device files (wrudf writes neither: its file entries turned into them)', () => {
  it('path components read as the link target; a device specification as st_rdev', async () => {
    const image = img(wrudfName(WRUDF[1]));
    const b = nfs.readFileSync(image);
    const partStart = b.readUInt32LE(tagged(b, 5)[0] * 2048 + 188);
    const feOf = (content: string) => wrudfFe(b, partStart, Buffer.from(content));
    // Dir/Hello.TXT -> a symbolic link to /etc/hostname: root, "etc", "hostname".
    const link = feOf('hello, world\n');
    const pc = Buffer.from([2, 0, 0, 0, 5, 4, 0, 0, 8, ...Buffer.from('etc'), 5, 9, 0, 0, 8, ...Buffer.from('hostname')]);
    const dataAt = (partStart + b.readUInt32LE(link + 176 + 4)) * 2048;
    pc.copy(b, dataAt);
    b.writeBigUInt64LE(BigInt(pc.length), link + 56);
    b.writeUInt32LE(pc.length, link + 176);
    b[link + 16 + 11] = 12;
    retag(b, link);
    // Dir/Sub/data -> a character device 1:3: an EA header and a device specification EA before its allocation descriptor.
    const dev = feOf('private\n');
    const ad = Buffer.from(b.subarray(dev + 176, dev + 184));
    const ea = Buffer.alloc(48);
    ea.writeUInt16LE(262, 0);
    ea.writeUInt16LE(2, 2);
    ea.writeUInt16LE(8, 10);
    ea.writeUInt32LE(b.readUInt32LE(dev + 12), 12);
    ea.writeUInt32LE(48, 16);
    ea.writeUInt32LE(48, 20);
    retag(ea, 0);
    ea.writeUInt32LE(12, 24);
    ea[28] = 1;
    ea.writeUInt32LE(24, 32);
    ea.writeUInt32LE(1, 40);
    ea.writeUInt32LE(3, 44);
    ea.copy(b, dev + 176);
    ad.copy(b, dev + 176 + 48);
    b.writeUInt32LE(48, dev + 168);
    b.writeUInt16LE(176 + 48 + 8 - 16, dev + 10);
    b[dev + 16 + 11] = 7;
    retag(b, dev);
    nfs.writeFileSync(img('special.img'), b);
    await withFs('udf', img('special.img'), {}, async fs => {
      expect(await fs.readlink('/Dir/Hello.TXT')).toBe('/etc/hostname');
      const l = await fs.lstat('/Dir/Hello.TXT');
      expect({ link: l.isSymbolicLink(), size: l.size }).toEqual({ link: true, size: '/etc/hostname'.length });
      const d = await fs.lstat('/Dir/Sub/data');
      expect({ chr: d.isCharacterDevice(), rdev: d.rdev }).toEqual({ chr: true, rdev: nfs.statSync('/dev/null').rdev });
      const types = Object.fromEntries((await fs.readdir('/Dir', { withFileTypes: true })).map(e => [e.name, typeOf(e)]));
      expect(types).toEqual({ 'Hello.TXT': 'link', Sub: 'dir' });
    });
  });
});

describe('udf: a deleted entry (wrudf removes by rewriting the directory; here the FID is marked)', () => {
  it('an entry whose FID says deleted is neither listed nor found', async () => {
    const b = nfs.readFileSync(img(wrudfName(WRUDF[1])));
    const name = Buffer.from([8, ...Buffer.from('empty')]);
    const at = b.indexOf(name);
    // The FID whose identifier that is: tag 257, identifier after its implementation use.
    let fid = -1;
    for (let k = at - 38; k >= at - 38 - 64 && fid < 0; k -= 2) {
      if (b.readUInt16LE(k) === 257 && k + 38 + b.readUInt16LE(k + 36) === at && b[k + 19] === name.length) fid = k;
    }
    expect(fid).toBeGreaterThan(0);
    b[fid + 18] |= 4;
    retag(b, fid);
    // A directory embedded in its file entry: that entry's CRC covers the FID too.
    const sector = fid - (fid % 2048);
    if (sector !== fid && b.readUInt16LE(sector) === 261) retag(b, sector);
    nfs.writeFileSync(img('deleted.img'), b);
    await withFs('udf', img('deleted.img'), {}, async fs => {
      const names = await fs.readdir('/');
      expect(names).not.toContain('empty');
      expect(names).toContain('big.bin');
      await expect(fs.stat('/empty')).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });
});

describe('udf: allocation descriptors wrudf does not write', () => {
  it('extended descriptors (ext_ad), and an extent allocated but not recorded reading as zeros', async () => {
    const image = img(wrudfName(WRUDF[1]));
    const b = nfs.readFileSync(image);
    const partStart = b.readUInt32LE(tagged(b, 5)[0] * 2048 + 188);
    const data = nfs.readFileSync(path.join(wsrc, 'big.bin'));
    const fe = wrudfFe(b, partStart, data.subarray(0, 2048));
    const lad = b.readUInt32LE(fe + 172);
    const shorts = Array.from({ length: lad / 8 }, (_, i) => [b.readUInt32LE(fe + 176 + 8 * i), b.readUInt32LE(fe + 180 + 8 * i)]);
    // wrudf went around the blocks in use: big.bin lies in several extents.
    expect(shorts.length).toBeGreaterThan(1);
    const ext = Buffer.alloc(20 * shorts.length);
    shorts.forEach(([len, lb], i) => {
      ext.writeUInt32LE(len, 20 * i);
      ext.writeUInt32LE(len & 0x3fffffff, 20 * i + 4);
      ext.writeUInt32LE(len & 0x3fffffff, 20 * i + 8);
      ext.writeUInt32LE(lb, 20 * i + 12);
    });
    const withExt = Buffer.from(b);
    ext.copy(withExt, fe + 176);
    withExt.writeUInt32LE(ext.length, fe + 172);
    withExt.writeUInt16LE((withExt.readUInt16LE(fe + 16 + 18) & ~7) | 2, fe + 16 + 18);
    withExt.writeUInt16LE(176 + ext.length - 16, fe + 10);
    retag(withExt, fe);
    nfs.writeFileSync(img('extad.img'), withExt);
    await withFs('udf', img('extad.img'), {}, async fs => expect(sha(await fs.readFile('/big.bin'))).toBe(sha(data)));
    // The first extent marked "allocated, not recorded": its bytes read as zeros, the rest as before.
    const unrec = Buffer.from(b);
    unrec.writeUInt32LE((shorts[0][0] & 0x3fffffff) | 0x40000000, fe + 176);
    retag(unrec, fe);
    nfs.writeFileSync(img('unrecorded.img'), unrec);
    const want = Buffer.from(data);
    want.fill(0, 0, shorts[0][0] & 0x3fffffff);
    await withFs('udf', img('unrecorded.img'), {}, async fs => expect(sha(await fs.readFile('/big.bin'))).toBe(sha(want)));
  });
});

describe('udf: read-only', () => {
  it('every write is EROFS and the image is unchanged', async () => {
    const image = img(bridgeName(['-udf']));
    const before = sha(nfs.readFileSync(image));
    await withFs('udf', image, {}, async fs => {
      await expect(fs.writeFile('/new', 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.writeFile('/Dir/Hello.TXT', 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.mkdir('/d')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.unlink('/NOEXT')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.rmdir('/Dir/Sub')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.rename('/NOEXT', '/x')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.chmod('/NOEXT', 0o777)).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.truncate('/NOEXT', 0)).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.symlink('x', '/l')).rejects.toMatchObject({ code: 'EROFS' });
    });
    expect(sha(nfs.readFileSync(image))).toBe(before);
  });

  it('session=N: a volume written for sector N onwards (mkudffs --startblock) is found from its anchor at N+256', async () => {
    const part = img('startblock.part');
    execFileSync('mkudffs', ['--media-type=hd', '--blocksize=2048', '--startblock=64', `--uid=${ROOT_UID}`, '--new-file', part, '2048'], { stdio: 'ignore' });
    // Placed at sector 64 of a disc; the copy of the anchor in the last sector damaged, so only N+256 names it.
    const disc = Buffer.concat([Buffer.alloc(64 * 2048), nfs.readFileSync(part)]);
    disc[disc.length - 2048 + 4] ^= 0xff;
    nfs.writeFileSync(img('session.img'), disc);
    await expect(mount('udf', img('session.img'), { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
    await withFs('udf', img('session.img'), { session: 64 }, async fs => expect((await fs.stat('/')).uid).toBe(ROOT_UID));
  });

  it('options: unknown ones are EINVAL', async () => {
    await expect(mount('udf', img(bridgeName(['-udf'])), { readOnly: true, options: { norock: true } })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(mount('udf', img(bridgeName(['-udf'])), { readOnly: true, options: { uid: 'x' } })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

/** The sectors (2048 bytes) starting with a descriptor tag `ident` (version 2 or 3). */
function tagged(b: Buffer, ident: number): number[] {
  const out: number[] = [];
  for (let s = 0; (s + 1) * 2048 <= b.length; s++) {
    if (b.readUInt16LE(s * 2048) === ident && [2, 3].includes(b.readUInt16LE(s * 2048 + 2))) out.push(s);
  }
  return out;
}

/** A copy of image with bytes changed at `offset`. */
function damaged(image: string, name: string, offset: number, bytes: number[]): string {
  const b = nfs.readFileSync(image);
  b.set(bytes, offset);
  const out = img(name);
  nfs.writeFileSync(out, b);
  return out;
}

describe('udf: damaged images', () => {
  it('an anchor, the logical volume, the file set or a file entry damaged: EINVAL/EIO, not a crash', async () => {
    const image = img(mkudfName(MKUDF[2]));
    // Every anchor (256, N-256 and the last sector) damaged: not UDF.
    const sectors = nfs.statSync(image).size / 2048;
    const a = damaged(image, 'noanchor.img', 256 * 2048 + 4, [0x55]);
    const b = damaged(a, 'noanchor2.img', (sectors - 257) * 2048 + 4, [0x55]);
    const noAnchor = damaged(b, 'noanchor3.img', (sectors - 1) * 2048 + 4, [0x55]);
    await expect(mount('udf', noAnchor, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
    // One anchor left: still mounts.
    await withFs('udf', a, {}, async fs => expect(await fs.readdir('/')).toEqual([]));
    const buf = nfs.readFileSync(image);
    const [mainLvd, reserveLvd] = tagged(buf, 6);
    const [fsd] = tagged(buf, 256);
    expect(reserveLvd).toBeGreaterThan(mainLvd);
    // The main sequence's logical volume descriptor damaged: the reserve sequence serves.
    const lvd1 = damaged(image, 'lvd1.img', mainLvd * 2048 + 100, [0xff]);
    await withFs('udf', lvd1, {}, async fs => expect((await fs.stat('/')).uid).toBe(ROOT_UID));
    // Both: EIO.
    const lvd2 = damaged(lvd1, 'lvd2.img', reserveLvd * 2048 + 100, [0xff]);
    await expect(mount('udf', lvd2, { readOnly: true })).rejects.toMatchObject({ code: 'EIO' });
    // The file set descriptor's root ICB pointing elsewhere: its CRC no longer matches.
    await expect(mount('udf', damaged(image, 'fsd.img', fsd * 2048 + 404, [0x07]), { readOnly: true })).rejects.toMatchObject({ code: 'EIO' });
    // The file set descriptor moved one sector on: nothing where the logical volume says it is.
    const moved = Buffer.from(buf);
    moved.copy(moved, (fsd + 1) * 2048, fsd * 2048, (fsd + 1) * 2048);
    moved.fill(0, fsd * 2048, (fsd + 1) * 2048);
    nfs.writeFileSync(img('fsdmoved.img'), moved);
    await expect(mount('udf', img('fsdmoved.img'), { readOnly: true })).rejects.toMatchObject({ code: 'EIO' });
  });

  it('a truncated image: what it still holds of a file reads, the rest is EIO', async () => {
    const image = img(bridgeName(['-udf']));
    const b = nfs.readFileSync(image);
    const data = nfs.readFileSync(path.join(src, 'big.bin'));
    const at = b.indexOf(data.subarray(0, 4096));
    expect(at).toBeGreaterThan(0);
    // Cut 300,000 bytes (not a cluster or block multiple) into big.bin's data.
    nfs.writeFileSync(img('truncated.iso'), b.subarray(0, at + 300_000));
    await withFs('udf', img('truncated.iso'), {}, async fs => {
      const fh = await fs.open('/big.bin', 'r');
      try {
        const head = Buffer.alloc(290_000);
        expect((await fh.read(head, 0, head.length, 0)).bytesRead).toBe(head.length);
        expect(head.equals(data.subarray(0, head.length))).toBe(true);
        await expect(fh.read(Buffer.alloc(4096), 0, 4096, 400_000)).rejects.toMatchObject({ code: 'EIO' });
      } finally { await fh.close(); }
    });
  });

  it('a damaged directory entry is EIO for that directory only', async () => {
    const image = img(bridgeName(['-udf']));
    const b = nfs.readFileSync(image);
    // The FID naming MixedCase.Data, in Dir/Sub's directory: its name's bytes, then its CRC no longer matches.
    const at = b.indexOf(Buffer.from('MixedCase.Data', 'latin1'), 0x8000 * 2);
    expect(at).toBeGreaterThan(0);
    const bad = damaged(image, 'badfid.img', at, [0x4e]);
    await withFs('udf', bad, {}, async fs => {
      await expect(fs.readdir('/Dir/Sub')).rejects.toMatchObject({ code: 'EIO' });
      expect((await fs.readFile('/Dir/Hello.TXT')).toString()).toBe('hello, world\n');
    });
  });
});

describe('udf: formats', () => {
  it('CRC-ITU-T as ECMA-167 computes it', () => {
    // The check value of CRC-16/XMODEM (poly 0x1021, init 0).
    expect(udf_crc(Buffer.from('123456789'))).toBe(0x31c3);
  });

  it('timestamps with a timezone, and sub-second fields', () => {
    const b = Buffer.alloc(12);
    // Type 1 (local), +120 minutes: 2020-02-29 12:34:56.78 91 2 local is 10:34:56 UTC.
    b.writeUInt16LE((1 << 12) | 120, 0);
    b.writeInt16LE(2020, 2);
    b.set([2, 29, 12, 34, 56, 78, 91, 2], 4);
    expect(udf_timestamp(b, 0, 't')).toEqual({ sec: Date.UTC(2020, 1, 29, 10, 34, 56) / 1000, nsec: 789_102_000 });
    b.writeUInt16LE((1 << 12) | (0x1000 - 300), 0);
    expect(udf_timestamp(b, 0, 't').sec).toBe(Date.UTC(2020, 1, 29, 17, 34, 56) / 1000);
    b[5] = 32;
    expect(() => udf_timestamp(b, 0, 't')).toThrow(expect.objectContaining({ code: 'EIO' }));
  });

  it('OSTA compressed unicode, 8 and 16 bits', () => {
    expect(udf_cs0(Buffer.from([8, ...Buffer.from('caf\xe9', 'latin1')]), 'n')).toBe('café');
    expect(udf_cs0(Buffer.from([16, 0x00, 0x61, 0xd8, 0x34, 0xdd, 0x1e]), 'n')).toBe('a𝄞');
    expect(() => udf_cs0(Buffer.from([16, 0x00]), 'n')).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(() => udf_cs0(Buffer.from([7, 0x41]), 'n')).toThrow(expect.objectContaining({ code: 'EIO' }));
  });

  it('symbolic link path components', () => {
    const pc = (type: number, name = '') => {
      const n = name ? Buffer.from([8, ...Buffer.from(name, 'latin1')]) : Buffer.alloc(0);
      return Buffer.concat([Buffer.from([type, n.length, 0, 0]), n]);
    };
    expect(udf_pathcomponents(Buffer.concat([pc(2), pc(5, 'etc'), pc(5, 'hostname')]), 'l')).toBe('/etc/hostname');
    expect(udf_pathcomponents(Buffer.concat([pc(3), pc(5, 'Dir'), pc(4), pc(5, 'x')]), 'l')).toBe('../Dir/./x');
    expect(udf_pathcomponents(pc(2), 'l')).toBe('/');
    expect(() => udf_pathcomponents(Buffer.concat([pc(5, 'a'), pc(9)]), 'l')).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(() => udf_pathcomponents(Buffer.from([5, 10, 0, 0, 8]), 'l')).toThrow(expect.objectContaining({ code: 'EIO' }));
  });
});
