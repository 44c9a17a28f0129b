// cd9660 against images made by genisoimage and xorriso from a source tree
// built here: names, types, modes, owners, times, symlink targets and
// contents read through the kernel must match the tree the tools were given.
import { execFileSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mount, type Ukfs } from '../src/ukfs/index.js';
import {
  blkdev_open, Cred, Lwp, O_DIRECTORY, sys_open, vcache_get, vfs_mount, vfs_unmount, vn_close, vn_readdir, vn_stat, vrele, VType,
  type Dirent as KDirent,
} from '../src/kern/index.js';
import '../src/fs/cd9660/index.js';
import {
  buildTree, bytes, CLEF, HUGE_MARKS, HUGE_SIZE, imgName, isoEnv, LONG, makeHugeIso, makeIso, makeMultiSession, sha, UNICODE, VARIANTS,
} from './helpers/iso.js';

const env = isoEnv;
let tmp: string;
let src: string;

function sh(cmd: string, args: string[], cwd = tmp): void {
  execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
}

interface Info { type: string; mode: number; uid: number; gid: number; size: number; mtime: number; nlink: number; target?: string; sha?: string; rdev?: number }

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean }): string {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chr' : 'other';
}

function walkSource(root: string): Map<string, Info> {
  const out = new Map<string, Info>();
  const walk = (rel: string): void => {
    for (const n of nfs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = nfs.lstatSync(p);
      const i: Info = { type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, mtime: Math.floor(st.mtimeMs / 1000), nlink: st.nlink };
      if (st.isSymbolicLink()) i.target = nfs.readlinkSync(p);
      if (st.isFile()) i.sha = sha(nfs.readFileSync(p));
      if (st.isCharacterDevice()) i.rdev = st.rdev;
      out.set(r, i);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

async function walkImage(fs: Ukfs): Promise<Map<string, Info>> {
  const out = new Map<string, Info>();
  const walk = async (rel: string): Promise<void> => {
    const ents = await fs.readdir('/' + rel, { withFileTypes: true });
    for (const d of ents) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const st = await fs.lstat('/' + r);
      expect(d.ino, `readdir and stat agree on the file id of ${r}`).toBe(st.ino);
      const i: Info = { type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, mtime: Math.floor(st.mtimeMs / 1000), nlink: st.nlink };
      if (st.isSymbolicLink()) i.target = await fs.readlink('/' + r);
      if (st.isFile()) i.sha = sha(await fs.readFile('/' + r));
      if (st.isCharacterDevice()) i.rdev = st.rdev;
      out.set(r, i);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

const variants = VARIANTS;

let source: Map<string, Info>;

beforeAll(() => {
  tmp = nfs.mkdtempSync(path.join(os.tmpdir(), 'cd9660-'));
  src = path.join(tmp, 'src');
  nfs.mkdirSync(src);
  buildTree(src);
  source = walkSource(src);
  for (const v of variants) makeIso(v, path.join(tmp, imgName(v)), src);
}, 120_000);

afterAll(() => {
  if (tmp) nfs.rmSync(tmp, { recursive: true, force: true });
});

async function withIso<T>(img: string, options: Record<string, string | number | boolean>, fn: (fs: Ukfs) => Promise<T>): Promise<T> {
  const fs = await mount('cd9660', path.join(tmp, img), { readOnly: true, options, cred: { uid: 0, gid: 0 } });
  try { return await fn(fs); } finally { await fs.unmount(); }
}

/** Source paths a tree without Rock Ridge can hold: no symlinks or special files, names short enough. */
function plainSubset(maxName: number): string[] {
  return [...source].filter(([p, i]) => (i.type === 'file' || i.type === 'dir') && !/[\u{10000}-\u{10ffff}]/u.test(p) &&
    p.split('/').every(c => c.length <= maxName) && p.split('/').length <= 6).map(([p]) => p);
}

describe('cd9660: images from genisoimage and xorriso', () => {
  for (const v of variants.filter(x => x.rr)) {
    it(`${v.tool} ${v.flags.join(' ')}: Rock Ridge tree matches the source`, async () => {
      const got = await withIso(imgName(v), {}, walkImage);
      const moved = ['rr_moved', '.rr_moved'];
      const names = [...got.keys()].filter(p => !moved.includes(p.split('/')[0])).sort();
      expect(names).toEqual([...source.keys()].sort());
      for (const [p, s] of source) {
        const g = got.get(p)!;
        expect({ p, type: g.type, size: g.type === 'file' ? g.size : 0, target: g.target, sha: g.sha, rdev: g.rdev })
          .toEqual({ p, type: s.type, size: s.type === 'file' ? s.size : 0, target: s.target, sha: s.sha, rdev: s.rdev });
        if (v.rr === 'R') {
          expect({ p, mode: g.mode, uid: g.uid, gid: g.gid }).toEqual({ p, mode: s.mode, uid: s.uid, gid: s.gid });
          if (s.type !== 'link') expect({ p, mtime: g.mtime }).toEqual({ p, mtime: s.mtime });
          // genisoimage counts a directory's links; libisofs records 1.
          if (s.type === 'dir' && v.tool === 'genisoimage') expect({ p, nlink: g.nlink }).toEqual({ p, nlink: s.nlink });
        } else {
          // -r: owner root, everything readable, no write bits, execute for all if for any.
          expect({ p, uid: g.uid, gid: g.gid }).toEqual({ p, uid: 0, gid: 0 });
          if (s.type === 'file') expect({ p, mode: g.mode & 0o777 }).toEqual({ p, mode: s.mode & 0o111 ? 0o555 : 0o444 });
        }
      }
      if (v.tool === 'genisoimage') {
        // The tree deeper than 8 levels was relocated (CL/PL/RE): `..` still leads back up.
        await withIso(imgName(v), {}, async fs => {
          const deep = '/a/b/c/d/e/f/g/h/i/j';
          expect((await fs.stat(deep + '/../../..')).ino).toBe((await fs.stat('/a/b/c/d/e/f/g')).ino);
          expect(await fs.readdir('/rr_moved')).toEqual([]);
        });
      }
    });
  }

  for (const v of variants.filter(x => !x.rr && x.joliet)) {
    it(`${v.tool} ${v.flags.join(' ')}: Joliet names and contents match the source`, async () => {
      const got = await withIso(imgName(v), {}, walkImage);
      for (const p of plainSubset(64)) expect(got.has(p), `${p} in the Joliet tree`).toBe(true);
      for (const [p, g] of got) {
        // Joliet keeps 64 characters of a name: the long one is there, cut; and CLEF is mangled.
        if (p.startsWith('a-long-file-name-') || p.startsWith('clef ')) continue;
        const s = source.get(p);
        expect(s, `${p} exists in the source`).toBeDefined();
        if (g.type === 'file' && s!.type === 'file') expect({ p, sha: g.sha }).toEqual({ p, sha: s!.sha });
        expect({ p, mode: g.mode }).toEqual({ p, mode: 0o555 });
      }
    });
  }

  for (const v of variants.filter(x => !x.rr && !x.joliet)) {
    it(`${v.tool}: plain ISO 9660 names as Linux shows them (map=normal, map=off)`, async () => {
      await withIso(imgName(v), {}, async fs => {
        expect(await fs.readFile('/dir/hello.txt', 'utf8')).toBe('hello, world\n');
        expect(await fs.readFile('/noext', 'utf8')).toBe('no extension\n');
        expect(sha(await fs.readFile('/big.bin'))).toBe(source.get('big.bin')!.sha);
        expect((await fs.stat('/dir/sub')).isDirectory()).toBe(true);
        expect((await fs.stat('/dir/hello.txt')).mode & 0o7777).toBe(0o555);
        expect((await fs.readdir('/many')).length).toBe(300);
      });
      await withIso(imgName(v), { map: 'off' }, async fs => {
        const root = await fs.readdir('/');
        expect(root).toContain('DIR');
        expect(root.some(n => /^NOEXT\.?;1$/.test(n))).toBe(true);
      });
    });
  }
});

describe('cd9660: options', () => {
  it('norrip and nojoliet choose the tree; without either Rock Ridge wins', async () => {
    await withIso('genisoimage-J-R.iso', {}, async fs => {
      expect(await fs.readlink('/links/rel')).toBe('../Dir/Hello.TXT');
      expect(await fs.readdir('/')).toContain(LONG);
    });
    await withIso('genisoimage-J-R.iso', { norrip: true }, async fs => {
      const root = await fs.readdir('/');
      expect(root).toContain(UNICODE);
      expect(root).toContain('Dir');
      await expect(fs.readlink('/links/rel')).rejects.toBeDefined();
      expect((await fs.stat('/Dir/Hello.TXT')).mode & 0o7777).toBe(0o555);
    });
    await withIso('genisoimage-J-R.iso', { norrip: true, nojoliet: true }, async fs => {
      expect(await fs.readdir('/')).toContain('dir');
      expect(await fs.readFile('/dir/hello.txt', 'utf8')).toBe('hello, world\n');
    });
  });

  it('uid, gid, mode and dmode set what the medium does not say', async () => {
    await withIso('genisoimage.iso', { uid: 1000, gid: '100', mode: '0444', dmode: 0o500 }, async fs => {
      const f = await fs.stat('/dir/hello.txt');
      const d = await fs.stat('/dir');
      expect([f.uid, f.gid, f.mode & 0o7777]).toEqual([1000, 100, 0o444]);
      expect([d.uid, d.gid, d.mode & 0o7777]).toEqual([1000, 100, 0o500]);
    });
    await withIso('genisoimage-R.iso', { uid: 42 }, async fs => {
      const f = await fs.stat('/owned');
      expect([f.uid, f.gid, f.mode & 0o7777]).toEqual([42, 5678, 0o644]);
    });
  });

  it('refuses unknown options and bad values with EINVAL naming them', async () => {
    const dev = await blkdev_open(path.join(tmp, 'genisoimage.iso'), { readOnly: true });
    try {
      for (const [opts, word] of [[{ bogus: 1 }, 'bogus'], [{ map: 'upper' }, 'map'], [{ uid: 'x' }, 'uid'], [{ session: 5 }, 'session']] as const) {
        await expect(vfs_mount('iso9660', { dev, from: 'img', flags: 0, options: opts })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining(word) });
      }
    } finally {
      await dev.close();
    }
  });
});

describe('cd9660: the kernel interface', () => {
  it('is read-only: writes fail with EROFS and the mount says so', async () => {
    await withIso('genisoimage-R.iso', {}, async fs => {
      const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);
      expect(await code(fs.writeFile('/new', 'x'))).toBe('EROFS');
      expect(await code(fs.writeFile('/NOEXT', 'x'))).toBe('EROFS');
      expect(await code(fs.mkdir('/d'))).toBe('EROFS');
      expect(await code(fs.rm('/NOEXT'))).toBe('EROFS');
      expect(await code(fs.chmod('/NOEXT', 0o600))).toBe('EROFS');
      expect(await code(fs.rename('/NOEXT', '/x'))).toBe('EROFS');
      expect(await code(fs.symlink('x', '/y'))).toBe('EROFS');
      const st = await fs.statfs();
      expect(st.readOnly).toBe(true);
      expect(st.bsize).toBe(2048);
      const info = execFileSync('isoinfo', ['-d', '-i', path.join(tmp, 'genisoimage-R.iso')], { env }).toString();
      expect(st.blocks).toBe(Number(/Volume size is: (\d+)/.exec(info)![1]));
    });
  });

  it('readdir cookies are stable record offsets: resuming anywhere gives the rest', async () => {
    const dev = await blkdev_open(path.join(tmp, 'xorriso-R.iso'), { readOnly: true });
    const mp = await vfs_mount('cd9660', { dev, from: 'img', flags: 0, options: {} });
    try {
      const l = new Lwp(Cred.root, mp.rootvp);
      const fp = await sys_open(l, '/many', O_DIRECTORY);
      try {
        const all: KDirent[] = [];
        const batches: number[] = [];
        for (let cookie = 0; ;) {
          const { entries, eof } = await vn_readdir(l, fp, cookie);
          all.push(...entries);
          batches.push(entries.length);
          if (eof) break;
          cookie = entries[entries.length - 1].cookie;
        }
        expect(batches.length).toBeGreaterThan(1);
        expect(all.map(e => e.name)).toEqual(['.', '..', ...Array.from({ length: 300 }, (_, i) => `file-${String(i).padStart(3, '0')}`)]);
        for (const k of [1, 57, 150, 301]) {
          const { entries } = await vn_readdir(l, fp, all[k - 1].cookie);
          expect(entries[0]).toEqual(all[k]);
        }
        expect((await vn_readdir(l, fp, all[all.length - 1].cookie)).entries).toEqual([]);
        // A file id from readdir loads the file (as FUSE readdirplus may); an unknown one is ESTALE.
        const vp = await vcache_get(mp, all[7].fileid);
        try {
          expect(vp.type).toBe(VType.VREG);
        } finally {
          await vrele(vp);
        }
        await expect(vcache_get(mp, 12345)).rejects.toMatchObject({ code: 'ESTALE' });
      } finally {
        await vn_close(l, fp);
      }
    } finally {
      await vfs_unmount(mp);
      await dev.close();
    }
  });

  it("readdir's attributes of a file are what stat of its vnode says (FUSE readdirplus answers from them)", async () => {
    for (const v of variants) {
      const dev = await blkdev_open(path.join(tmp, imgName(v)), { readOnly: true });
      const mp = await vfs_mount('cd9660', { dev, from: 'img', flags: 0, options: {} });
      try {
        const l = new Lwp(Cred.root, mp.rootvp);
        let withAttr = 0;
        const walk = async (dir: string): Promise<void> => {
          const fp = await sys_open(l, dir, O_DIRECTORY);
          try {
            for (let cookie = 0; ;) {
              const { entries, eof } = await vn_readdir(l, fp, cookie);
              for (const e of entries) {
                if (e.name === '.' || e.name === '..') continue;
                const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
                if (e.type === VType.VDIR) await walk(p);
                if (!e.attr) continue;
                withAttr++;
                const vp = await vcache_get(mp, e.fileid);
                try {
                  expect({ p: `${imgName(v)} ${p}`, attr: e.attr }).toEqual({ p: `${imgName(v)} ${p}`, attr: await vn_stat(l, vp) });
                } finally {
                  await vrele(vp);
                }
              }
              if (eof || entries.length === 0) break;
              cookie = entries[entries.length - 1].cookie;
            }
          } finally {
            await vn_close(l, fp);
          }
        };
        await walk('/');
        expect(withAttr, `${imgName(v)}: files with attributes from readdir`).toBeGreaterThan(300);
      } finally {
        await vfs_unmount(mp);
        await dev.close();
      }
    }
  });

  it('serves concurrent reads of many files', async () => {
    await withIso('xorriso-J-R.iso', {}, async fs => {
      const names = Array.from({ length: 300 }, (_, i) => `/many/file-${String(i).padStart(3, '0')}`);
      const got = await Promise.all([...names.map(n => fs.readFile(n, 'utf8')), fs.readFile('/big.bin')]);
      names.forEach((n, i) => expect(got[i]).toBe(`file ${i}\n`));
      expect(sha(got[300] as Buffer)).toBe(source.get('big.bin')!.sha);
    });
  });
});

describe('cd9660: multi-session images (xorriso -dev ... -commit)', () => {
  it('shows the newest session by default, older ones with session= or sbsector=', async () => {
    const { img: msImg, sb } = makeMultiSession(path.join(tmp, 'ms'));
    const img = path.relative(tmp, msImg);
    expect(sb.length).toBe(3);
    const tree = async (opts: Record<string, string | number>) => withIso(img, opts, async fs => {
      const out: string[] = [];
      for (const n of await fs.readdir('/')) {
        if ((await fs.stat('/' + n)).isDirectory()) for (const m of await fs.readdir('/' + n)) out.push(`${n}/${m}=${await fs.readFile(`/${n}/${m}`, 'utf8')}`);
        else out.push(`${n}=${await fs.readFile('/' + n, 'utf8')}`);
      }
      return out.sort();
    });
    const newest = ['more/three=third session\n', 'more/two=second session\n'];
    expect(await tree({})).toEqual(newest);
    expect(await tree({ session: 3 })).toEqual(newest);
    expect(await tree({ session: 1 })).toEqual(['one=first session\n']);
    expect(await tree({ sbsector: sb[1] })).toEqual(['more/two=second session\n', 'one=first session\n']);
    await expect(tree({ session: 4 })).rejects.toMatchObject({ code: 'EINVAL' });
    // A single-session image is session 1.
    const top = [...source.keys()].filter(k => !k.includes('/'));
    expect((await withIso('genisoimage-R.iso', { session: 1 }, fs => fs.readdir('/'))).filter(n => n !== 'rr_moved').sort()).toEqual(top.sort());
    await expect(withIso('genisoimage-R.iso', { session: 2 }, fs => fs.readdir('/'))).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('cd9660: a file larger than 4 GiB (multi-extent, xorriso -iso-level 3)', () => {
  it('reads ranges around the 4 GiB extent boundary', async () => {
    const img = makeHugeIso(tmp);
    try {
      await withIso('huge.iso', {}, async fs => {
        const st = await fs.stat('/huge.bin');
        expect(st.size).toBe(HUGE_SIZE);
        const fh = await fs.open('/huge.bin');
        try {
          for (const [i, off] of HUGE_MARKS.entries()) {
            const buf = new Uint8Array(1200);
            const { bytesRead } = await fh.read(buf, 0, 1200, off - 100 < 0 ? off : off - 100);
            const start = off - 100 < 0 ? 0 : 100;
            expect(bytesRead).toBe(Math.min(1200, HUGE_SIZE - (off - start)));
            expect(sha(buf.subarray(start, start + 1000)), `marker ${i} at ${off}`).toBe(sha(bytes(1000, 100 + i)));
            expect(buf.subarray(0, start).every(b => b === 0)).toBe(true);
          }
          const tail = new Uint8Array(10);
          expect((await fh.read(tail, 0, 10, HUGE_SIZE)).bytesRead).toBe(0);
        } finally {
          await fh.close();
        }
      });
    } finally {
      nfs.rmSync(img, { force: true });
    }
  }, 120_000);
});

describe('cd9660: Rock Ridge details', () => {
  it('reads a symlink target continued across SL entries and continuation areas (xorriso)', async () => {
    const dir = path.join(tmp, 'sl');
    nfs.mkdirSync(dir);
    const target = ['', 'c'.repeat(250), '..', '.', ...Array.from({ length: 20 }, (_, i) => `component-${i}-${'y'.repeat(20)}`)].join('/');
    nfs.symlinkSync(target, path.join(dir, 'long'));
    nfs.symlinkSync('./x/../y', path.join(dir, 'dots'));
    makeIso({ tool: 'xorriso', flags: ['-R'], rr: 'R', joliet: false }, path.join(tmp, 'sl.iso'), dir);
    await withIso('sl.iso', {}, async fs => {
      expect(await fs.readlink('/long')).toBe(target);
      expect(await fs.readlink('/dots')).toBe('./x/../y');
      expect((await fs.lstat('/long')).size).toBe(Buffer.byteLength(target));
    });
  });

  it('uncompresses zisofs files (xorriso --zisofs), and refuses damaged ones with EIO', async () => {
    const dir = path.join(tmp, 'z');
    nfs.mkdirSync(dir);
    const text = Buffer.from(Array.from({ length: 30000 }, (_, i) => `line ${i % 977} of a compressible file\n`).join(''));
    nfs.writeFileSync(path.join(dir, 'text'), text);
    nfs.writeFileSync(path.join(dir, 'random'), bytes(100_000, 3));
    sh('xorriso', ['-outdev', 'z.iso', '-map', dir, '/', '-set_filter_r', '--zisofs', '/', '--', '-commit']);
    const img = nfs.readFileSync(path.join(tmp, 'z.iso'));
    const rec = rawFind(img, 'text');
    expect(rawSusp(img, rec, 'ZF'), 'xorriso compressed the file').toBeGreaterThan(0);
    expect(rec.size).toBeLessThan(text.length / 4);
    await withIso('z.iso', {}, async fs => {
      expect((await fs.stat('/text')).size).toBe(text.length);
      expect(sha(await fs.readFile('/text'))).toBe(sha(text));
      expect(sha(await fs.readFile('/random'))).toBe(sha(bytes(100_000, 3)));
      const fh = await fs.open('/text');
      try {
        for (const off of [0, 32768 - 10, 65536 + 5, text.length - 7]) {
          const b = new Uint8Array(100);
          const { bytesRead } = await fh.read(b, 0, 100, off);
          expect(Buffer.from(b.subarray(0, bytesRead)).equals(text.subarray(off, off + 100))).toBe(true);
        }
      } finally {
        await fh.close();
      }
    });
    // Damage the compressed data (past the header and block pointers).
    img.fill(0x55, rec.extent * 2048 + 200, rec.extent * 2048 + 260);
    nfs.writeFileSync(path.join(tmp, 'zbad.iso'), img);
    await withIso('zbad.iso', {}, async fs => {
      await expect(fs.readFile('/text')).rejects.toMatchObject({ code: 'EIO' });
    });
  });

  it('decodes Joliet UCS-2 with surrogate pairs, strips ;1 and replaces what POSIX forbids', async () => {
    const { jolietfntrans, isofntrans } = await import('../src/fs/cd9660/cd9660_util.js');
    const be = (s: string) => new Uint8Array(Buffer.from(s, 'utf16le').swap16());
    expect(jolietfntrans(be('clef 𝄞.txt;1'))).toBe('clef 𝄞.txt');
    expect(jolietfntrans(be('a/b\0c'))).toBe('a_b_c');
    expect(jolietfntrans(new Uint8Array([0xd8, 0x34, 0x00, 0x41]))).toBe('\ufffdA');
    // A lone low surrogate at the end and an odd last byte read as TextDecoder('utf-16be') read them; a leading BOM,
    // which TextDecoder dropped, is kept: it is part of the recorded name (Linux isofs keeps it too).
    expect(jolietfntrans(new Uint8Array([0x00, 0x41, 0xdd, 0x1e, 0x42]))).toBe('A\ufffd');
    expect(jolietfntrans(new Uint8Array([0xfe, 0xff, 0x00, 0x41]))).toBe('\ufeffA');
    expect(isofntrans(new TextEncoder().encode('README.;1'), 'normal')).toBe('readme');
    expect(isofntrans(new TextEncoder().encode('README.;1'), 'off')).toBe('README.;1');
  });
});

/** A minimal reader of the images the tools made, to find what to damage. */
const u32 = (b: Buffer, o: number) => b.readUInt32LE(o);
interface RawRec { off: number; len: number; name: string; extent: number; size: number; su: number }
function rawDir(img: Buffer, extent: number, size: number): RawRec[] {
  const out: RawRec[] = [];
  for (let s = 0; s < size; s += 2048) {
    for (let p = 0; p < 2048;) {
      const off = extent * 2048 + s + p, len = img[off];
      if (!len) break;
      const nl = img[off + 32];
      const su = off + 33 + nl + (nl & 1 ? 0 : 1);
      let name = img.toString('latin1', off + 33, off + 33 + nl);
      // Rock Ridge NM, when there is one in the record itself.
      for (let q = su; q + 4 <= off + len && img[q + 2] >= 4;) {
        if (img.toString('latin1', q, q + 2) === 'NM') name = img.toString('utf8', q + 5, q + img[q + 2]);
        q += img[q + 2];
      }
      out.push({ off, len, name, extent: u32(img, off + 2), size: u32(img, off + 10), su });
      p += len;
    }
  }
  return out;
}
function rawRoot(img: Buffer): { extent: number; size: number } {
  return { extent: u32(img, 16 * 2048 + 156 + 2), size: u32(img, 16 * 2048 + 156 + 10) };
}
function rawFind(img: Buffer, p: string): RawRec {
  let dir = rawRoot(img);
  let rec: RawRec | undefined;
  for (const c of p.split('/').filter(Boolean)) {
    rec = rawDir(img, dir.extent, dir.size).find(r => r.name === c);
    if (!rec) throw new Error(`${c} not found in the image`);
    dir = rec;
  }
  return rec!;
}
/** Offset of the first SUSP entry `sig` in a record's system use area. */
function rawSusp(img: Buffer, r: RawRec, sig: string): number {
  for (let q = r.su; q + 4 <= r.off + r.len && img[q + 2] >= 4; q += img[q + 2]) {
    if (img.toString('latin1', q, q + 2) === sig) return q;
  }
  throw new Error(`no ${sig} entry`);
}

describe('cd9660: damaged images fail cleanly (EINVAL at mount, EIO later), never hang', () => {
  const damaged = (base: string, name: string, damage: (img: Buffer) => void): string => {
    const img = nfs.readFileSync(path.join(tmp, base));
    damage(img);
    nfs.writeFileSync(path.join(tmp, name), img);
    return name;
  };
  /** Walk everything, reading every file; the errors met, by code. */
  const walkAll = async (name: string): Promise<string[]> => {
    const errors: string[] = [];
    const fs = await mount('cd9660', path.join(tmp, name), { readOnly: true });
    const note = (e: { code?: string }) => {
      if (!e.code || !/^E[A-Z]+$/.test(e.code)) throw e;
      errors.push(e.code);
    };
    const walk = async (p: string, depth: number): Promise<void> => {
      if (depth > 40) return;
      let names: string[] = [];
      try { names = await fs.readdir(p); } catch (e) { note(e as { code?: string }); }
      for (const n of names) {
        const q = `${p === '/' ? '' : p}/${n}`;
        try {
          const st = await fs.lstat(q);
          if (st.isDirectory()) await walk(q, depth + 1);
          else if (st.isFile()) await fs.readFile(q);
          else if (st.isSymbolicLink()) await fs.readlink(q);
        } catch (e) { note(e as { code?: string }); }
      }
    };
    try { await walk('/', 0); } finally { await fs.unmount(); }
    return errors;
  };
  const mountCode = (name: string, options = {}) =>
    mount('cd9660', path.join(tmp, name), { readOnly: true, options }).then(async fs => { await fs.unmount(); return 'ok'; }, (e: { code?: string }) => e.code);

  it('no volume descriptor, no primary one, bad block size or root record: EINVAL', async () => {
    expect(await mountCode(damaged('genisoimage-R.iso', 'bad1.iso', img => img.fill(0, 16 * 2048, 17 * 2048)))).toBe('EINVAL');
    expect(await mountCode(damaged('genisoimage-R.iso', 'bad2.iso', img => { img[16 * 2048] = 2; }))).toBe('EINVAL');
    expect(await mountCode(damaged('genisoimage-R.iso', 'bad3.iso', img => img.writeUInt16LE(512, 16 * 2048 + 128)))).toBe('EINVAL');
    expect(await mountCode(damaged('genisoimage-R.iso', 'bad4.iso', img => { img[16 * 2048 + 156] = 10; }))).toBe('EINVAL');
    expect(await mountCode(damaged('genisoimage-R.iso', 'bad5.iso', img => img.writeUInt32LE(0x7fffffff, 16 * 2048 + 156 + 2)))).toBe('EINVAL');
    nfs.writeFileSync(path.join(tmp, 'tiny.iso'), Buffer.alloc(4096));
    expect(await mountCode('tiny.iso')).toBe('EINVAL');
    expect(await mountCode('genisoimage-R.iso', { sbsector: 1 << 20 })).toBe('EINVAL');
  });

  it('bad record lengths, names, extents and directory sizes: EIO', async () => {
    const cases: [string, (img: Buffer) => void][] = [
      ['short record', img => { img[rawFind(img, 'Dir/Hello.TXT').off] = 20; }],
      ['record across a sector', img => { const r = rawFind(img, 'Dir/Hello.TXT'); img[r.off] = 2048 - (r.off % 2048) + 2; }],
      ['name past the record', img => { const r = rawFind(img, 'Dir/Hello.TXT'); img[r.off + 32] = r.len; }],
      ['extent past the end', img => { const r = rawFind(img, 'Dir/Hello.TXT'); img.writeUInt32LE(img.length / 2048 + 10, r.off + 2); }],
      ['huge file size', img => { const r = rawFind(img, 'big.bin'); img.writeUInt32LE(0xfffff000, r.off + 10); }],
      ['huge directory', img => { const r = rawFind(img, 'Dir'); img.writeUInt32LE(0xfffff000, r.extent * 2048 + 10); }],
      ['directory extent not a directory', img => { const r = rawFind(img, 'Dir'); img.writeUInt32LE(rawFind(img, 'NOEXT').extent, r.off + 2); }],
      ['SUSP entry too short', img => { const r = rawFind(img, 'Dir/Hello.TXT'); img[rawSusp(img, r, 'PX') + 2] = 2; }],
      ['SUSP entry past its area', img => { const r = rawFind(img, 'Dir/Hello.TXT'); img[rawSusp(img, r, 'PX') + 2] = 250; }],
    ];
    for (const [what, damage] of cases) {
      const name = damaged('genisoimage-R.iso', `bad-${what.replace(/ /g, '-')}.iso`, damage);
      const errors = await walkAll(name);
      expect(errors, what).toContain('EIO');
      expect(errors.every(c => c === 'EIO' || c === 'ENOENT'), `${what}: ${errors}`).toBe(true);
    }
  });

  it('continuation areas that loop and relocations that point up: EIO', async () => {
    // The file's PX becomes a CE to sector 1 (unused system area), whose CE points to itself.
    const ce = (block: number, off: number, len: number) => {
      const e = Buffer.alloc(28);
      e.write('CE', 0, 'latin1'); e[2] = 28; e[3] = 1;
      e.writeUInt32LE(block, 4); e.writeUInt32BE(block, 8);
      e.writeUInt32LE(off, 12); e.writeUInt32BE(off, 16);
      e.writeUInt32LE(len, 20); e.writeUInt32BE(len, 24);
      return e;
    };
    const loop = damaged('genisoimage-R.iso', 'celoop.iso', img => {
      const px = rawSusp(img, rawFind(img, 'Dir/Hello.TXT'), 'PX');
      ce(1, 0, 28).copy(img, px);
      img.write('PD', px + 28, 'latin1'); img[px + 30] = 8; img[px + 31] = 1;
      ce(1, 0, 28).copy(img, 2048);
    });
    expect(await walkAll(loop)).toEqual(['EIO']);
    // A CL (in g, for the relocated h) made to point at g's ancestor a.
    const cl = damaged('genisoimage-R.iso', 'clloop.iso', img => {
      const h = rawFind(img, 'a/b/c/d/e/f/g/h');
      img.writeUInt32LE(rawFind(img, 'a').extent, rawSusp(img, h, 'CL') + 4);
    });
    const errors = await walkAll(cl);
    expect(errors).toContain('EIO');
    await withIso(cl, {}, async fs => {
      await expect(fs.readdir('/a/b/c/d/e/f/g')).rejects.toMatchObject({ code: 'EIO' });
      await expect(fs.stat('/a/b/c/d/e/f/g/h')).rejects.toMatchObject({ code: 'EIO' });
    });
  });

  it('a directory record pointing at the root makes a cycle that names still resolve through', async () => {
    const name = damaged('genisoimage-R.iso', 'selfloop.iso', img => {
      const r = rawFind(img, 'Dir');
      img.writeUInt32LE(rawRoot(img).extent, r.off + 2);
      img.writeUInt32BE(rawRoot(img).extent, r.off + 6);
    });
    await withIso(name, {}, async fs => {
      expect((await fs.stat('/Dir')).ino).toBe((await fs.stat('/')).ino);
      expect(await fs.readFile('/Dir/Dir/Dir/NOEXT', 'utf8')).toBe('no extension\n');
      expect((await fs.stat('/Dir/..')).ino).toBe((await fs.stat('/')).ino);
    });
  });

  it('a truncated image: what is left is readable, the rest is EIO', async () => {
    const img = nfs.readFileSync(path.join(tmp, 'xorriso-R.iso'));
    const big = rawFind(img, 'big.bin');
    nfs.writeFileSync(path.join(tmp, 'cut.iso'), img.subarray(0, big.extent * 2048 + 4096));
    const errors = await walkAll('cut.iso');
    expect(errors).toContain('EIO');
    await withIso('cut.iso', {}, async fs => {
      const fh = await fs.open('/big.bin');
      try {
        const b = new Uint8Array(4096);
        expect((await fh.read(b, 0, 4096, 0)).bytesRead).toBe(4096);
        expect(Buffer.from(b).equals(nfs.readFileSync(path.join(src, 'big.bin')).subarray(0, 4096))).toBe(true);
        await expect(fh.read(b, 0, 4096, 8192)).rejects.toMatchObject({ code: 'EIO' });
      } finally {
        await fh.close();
      }
    });
  });

  it('random damage to directories and system use areas: errors, never a crash or a hang', async () => {
    const base = nfs.readFileSync(path.join(tmp, 'genisoimage-J-R.iso'));
    // Damage the directory sectors: from the root's extent up to the first file data.
    const lo = rawRoot(base).extent * 2048, hi = rawFind(base, 'NOEXT').extent * 2048;
    let seed = 12345;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (let round = 0; round < 40; round++) {
      const img = Buffer.from(base);
      for (let k = 0; k < 1 + rnd(20); k++) img[lo + rnd(hi - lo)] = rnd(256);
      nfs.writeFileSync(path.join(tmp, 'fuzz.iso'), img);
      const mc = await mountCode('fuzz.iso');
      if (mc !== 'ok') { expect(['EINVAL', 'EIO']).toContain(mc); continue; }
      await walkAll('fuzz.iso');
    }
  }, 120_000);
});
