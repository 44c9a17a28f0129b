// ntfs in-process against an image made by mkntfs and filled through
// ntfs-3g: every name, type, file id, size, link count, time (to 100 ns),
// symlink target and content the driver reads must be what ntfs-3g itself
// shows on a read-only mount of the same image; ntfsinfo confirms the image
// really holds what each case is about (compression, sparse runs, an
// attribute list, DOS names). Then the refusals: writes (EROFS, image
// unchanged), damaged records and index blocks (EIO), a bad boot sector.
import { spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSource, mount, type Ukfs } from '../src/ukfs/index.js';
import { ensureBuilt, ROOT } from './helpers/mount.js';
import {
  FRAGMENTS, HASH_LIMIT, LARGE_SIZE, makeNtfsImage, markAt, ntfs3gTarget, removeTree, MTIME_NS, sha, SPARSE_MARKS, SPARSE_SIZE, UNICODE_NAMES, type Info, type NtfsFixture,
} from './helpers/ntfs.js';

let tmp = '';
let fx: NtfsFixture;

beforeAll(async () => {
  tmp = nfs.mkdtempSync(path.join(os.tmpdir(), 'ntfs-test-'));
  fx = await makeNtfsImage(tmp);
}, 85_000);

afterAll(() => {
  if (tmp) removeTree(tmp);
});

async function withNtfs<T>(img: string, options: Record<string, string | number | boolean>, fn: (fs: Ukfs) => Promise<T>): Promise<T> {
  const fs = await mount('ntfs', img, { readOnly: true, options, cred: { uid: 0, gid: 0, groups: [] } });
  try { return await fn(fs); } finally { await fs.unmount(); }
}

async function walk(fs: Ukfs): Promise<Map<string, Info>> {
  const out = new Map<string, Info>();
  const w = async (rel: string): Promise<void> => {
    for (const d of await fs.readdir('/' + rel, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const st = await fs.lstat('/' + r);
      expect(d.ino, `readdir and stat agree on the file id of ${r}`).toBe(st.ino);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      expect(d.isDirectory() || d.isSymbolicLink() || d.isFile(), `readdir gives ${r} a type`).toBe(true);
      expect(type === 'dir' ? d.isDirectory() : type === 'link' ? d.isSymbolicLink() : d.isFile(), `readdir type of ${r}`).toBe(true);
      const i: Info = { type, ino: st.ino, size: st.size, nlink: st.nlink, mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
      if (type === 'link') i.target = await fs.readlink('/' + r);
      if (type === 'file' && i.size <= HASH_LIMIT) i.sha = sha(await fs.readFile('/' + r));
      out.set(r, i);
      if (type === 'dir') await w(r);
    }
  };
  await w('');
  return out;
}

function imageHash(img: string): string {
  return sha(nfs.readFileSync(img));
}

describe('ntfs: an image from mkntfs filled through ntfs-3g', () => {
  it('the image holds what the cases are about (ntfsinfo)', () => {
    expect(fx.ntfsinfo('/comp/text.txt')).toMatch(/COMPRESSED/);
    expect(fx.ntfsinfo('/comp/text.txt')).toMatch(/Attribute flags:\s+0x0001/);
    expect(fx.ntfsinfo('/sparse.bin')).toMatch(/Attribute flags:\s+0x8000/);
    expect(fx.ntfsinfo('/fragmented.bin')).toMatch(/\$ATTRIBUTE_LIST/);
    expect(fx.ntfsinfo('/Long File Name.txt')).toMatch(/Namespace:\s+DOS/);
    expect(fx.ntfsinfo('/links/winrel')).toMatch(/\$REPARSE_POINT/);
    expect(fx.ref.get('big')).toBeDefined();
    expect([...fx.ref.keys()].filter(p => p.startsWith('big/')).length).toBe(10_000);
  });

  it('every name, type, file id, size, link count, time, target and content is what ntfs-3g shows', async () => {
    const got = await withNtfs(fx.img, {}, walk);
    expect([...got.keys()].sort()).toEqual([...fx.ref.keys()].sort());
    for (const [p, want] of fx.ref) {
      const g = got.get(p)!;
      // ntfs-3g gives a directory the size of its index's allocation (or root); compared for files and links.
      // ntfs-3g also counts a DOS 8.3 name as a link; here only names that are shown count.
      const nlink = p === 'Long File Name.txt' ? want.nlink - 1 : want.nlink;
      if (want.type === 'dir') expect({ p, ...g, size: 0 }).toEqual({ p, ...want, nlink, size: 0 });
      else if (want.type === 'link') {
        const target = ntfs3gTarget(fx, p, want.target!);
        expect({ p, ...g }).toEqual({ p, ...want, nlink, target, size: Buffer.byteLength(target) });
      } else expect({ p, ...g }).toEqual({ p, ...want, nlink });
    }
  }, 60_000);

  it('reads large, sparse, fragmented and compressed files at any offset', async () => {
    await withNtfs(fx.img, {}, async fs => {
      expect((await fs.stat('/large.bin')).size).toBe(LARGE_SIZE);
      const fh = await fs.open('/sparse.bin', 'r');
      try {
        expect((await fh.stat()).size).toBe(SPARSE_SIZE);
        // Holes take no space.
        expect((await fh.stat()).blocks * 512).toBeLessThan(1 << 20);
        for (const m of SPARSE_MARKS) {
          const b = Buffer.alloc(9);
          const { bytesRead } = await fh.read(b, 0, 9, m - 1 < 0 ? 0 : m - 1);
          expect(bytesRead).toBe(m + 8 > SPARSE_SIZE ? SPARSE_SIZE - m + 1 : 9);
          if (m > 0) expect(b[0]).toBe(0);
          expect(b.subarray(m > 0 ? 1 : 0, m > 0 ? 8 : 7)).toEqual(markAt(m));
        }
        const hole = Buffer.alloc(1 << 20, 1);
        await fh.read(hole, 0, hole.length, 3 * 2 ** 30);
        expect(hole.every(x => x === 0)).toBe(true);
      } finally { await fh.close(); }
      const frag = await fs.readFile('/fragmented.bin');
      expect(frag.length).toBe((FRAGMENTS - 1) * 65536 + 1);
      for (let i = 0; i < FRAGMENTS; i++) expect(frag[i * 65536]).toBe(i & 0xff);
      // Compressed data read in pieces that straddle compression units matches the whole.
      const whole = await fs.readFile('/comp/mixed.bin');
      const fc = await fs.open('/comp/mixed.bin', 'r');
      try {
        for (const [off, len] of [[65530, 20], [0, 1], [131000, 70000], [whole.length - 5, 100]]) {
          const b = Buffer.alloc(len);
          const { bytesRead } = await fc.read(b, 0, len, off);
          expect(b.subarray(0, bytesRead)).toEqual(whole.subarray(off, off + len));
        }
      } finally { await fc.close(); }
      // Compressed files take less space than their size.
      const st = await fs.stat('/comp/text.txt');
      expect(st.blocks * 512).toBeLessThan(st.size / 2);
    });
  });

  it('times to 100 ns; hard links share a file id; DOS names hidden; Unicode names kept', async () => {
    await withNtfs(fx.img, {}, async fs => {
      expect((await fs.stat('/timed')).mtimeNs).toBe(MTIME_NS);
      const t = await fs.stat('/links/target');
      expect(t.nlink).toBe(3);
      expect((await fs.stat('/links/hard1')).ino).toBe(t.ino);
      expect((await fs.stat('/small/hard2')).ino).toBe(t.ino);
      const root = await fs.readdir('/');
      expect(root).toContain('Long File Name.txt');
      expect(root).not.toContain('LONGFI~1.TXT');
      expect((await fs.stat('/Long File Name.txt')).nlink).toBe(1);
      expect((await fs.readdir('/names')).sort()).toEqual([...UNICODE_NAMES, 'MixedCase.TXT'].sort());
    });
  });

  it('looks names up without regard to case ($UpCase), keeping their case', async () => {
    await withNtfs(fx.img, {}, async fs => {
      const ino = (await fs.stat('/names/MixedCase.TXT')).ino;
      expect((await fs.stat('/NAMES/mixedcase.txt')).ino).toBe(ino);
      expect((await fs.stat('/Names/MIXEDCASE.txt')).ino).toBe(ino);
      expect((await fs.stat('/names/' + UNICODE_NAMES[1].toUpperCase())).ino).toBe((await fs.stat('/names/' + UNICODE_NAMES[1])).ino);
      expect((await fs.stat('/BIG/FILE-09999.DAT')).size).toBe(5);
      await expect(fs.stat('/names/nonexistent')).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  it('symlinks: ntfs-3g (Interix) ones, Windows relative and absolute ones and a junction', async () => {
    await withNtfs(fx.img, {}, async fs => {
      expect(await fs.readlink('/links/rel')).toBe('target');
      expect(await fs.readlink('/links/abs')).toBe('/etc/hostname');
      expect(await fs.readlink('/links/winrel')).toBe('../small/a.txt');
      expect(await fs.readlink('/links/winabs')).toBe('../small/a.txt');
      expect(await fs.readlink('/links/junction')).toBe('../comp');
      expect((await fs.readFile('/links/winabs')).toString()).toBe('hello, ntfs\n');
      expect((await fs.readdir('/links/junction')).sort()).toEqual(['mixed.bin', 'random.bin', 'sparse.bin', 'text.txt']);
    });
  });

  it('system files are hidden unless show_sys_files', async () => {
    await withNtfs(fx.img, {}, async fs => {
      expect((await fs.readdir('/')).filter(n => n.startsWith('$'))).toEqual([]);
      await expect(fs.stat('/$MFT')).rejects.toMatchObject({ code: 'ENOENT' });
    });
    await withNtfs(fx.img, { show_sys_files: true }, async fs => {
      const names = await fs.readdir('/');
      for (const n of ['$MFT', '$MFTMirr', '$LogFile', '$Volume', '$AttrDef', '$Bitmap', '$Boot', '$BadClus', '$Secure', '$UpCase', '$Extend']) {
        expect(names).toContain(n);
      }
      expect((await fs.stat('/$UpCase')).size).toBe(131072);
      expect((await fs.stat('/$Extend')).isDirectory()).toBe(true);
      expect((await fs.readFile('/$Boot')).subarray(3, 11).toString()).toBe('NTFS    ');
    });
  });

  it('uid, gid, umask, fmask, dmask; unknown options refused', async () => {
    await withNtfs(fx.img, { uid: 1234, gid: 55, fmask: '133', dmask: '022' }, async fs => {
      const f = await fs.stat('/small/a.txt'), d = await fs.stat('/small');
      expect([f.uid, f.gid, f.mode & 0o777, d.mode & 0o777]).toEqual([1234, 55, 0o644, 0o755]);
    });
    await withNtfs(fx.img, { umask: '077' }, async fs => {
      expect((await fs.stat('/small/a.txt')).mode & 0o777).toBe(0o700);
    });
    await expect(mount('ntfs', fx.img, { readOnly: true, options: { compression: true } })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('every change is EROFS and the image is unchanged', async () => {
    const before = imageHash(fx.img);
    const fs = await mount('ntfs', fx.img, { options: {}, cred: { uid: 0, gid: 0, groups: [] } });
    try {
      expect((await fs.statfs()).readOnly).toBe(true);
      await expect(fs.writeFile('/new', 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.writeFile('/small/a.txt', 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.mkdir('/d')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.unlink('/small/a.txt')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.rmdir('/small')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.rename('/small/a.txt', '/b')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.symlink('x', '/l')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.link('/small/a.txt', '/l')).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.chmod('/small/a.txt', 0o600)).rejects.toMatchObject({ code: 'EROFS' });
      await expect(fs.truncate('/small/a.txt', 0)).rejects.toMatchObject({ code: 'EROFS' });
    } finally { await fs.unmount(); }
    expect(imageHash(fx.img)).toBe(before);
  });

  it('is detected, and ntfs3 names it too', async () => {
    expect(await detectSource(fx.img)).toBe('ntfs');
    const fs = await mount('ntfs3', fx.img, { readOnly: true });
    try { expect(await fs.readFile('/small/a.txt', 'utf8')).toBe('hello, ntfs\n'); } finally { await fs.unmount(); }
  });
});

/** Byte offset of MFT record ino in the image (the MFT's first run holds the system files). */
function recordOffset(img: Buffer, ino: number): number {
  const cs = img.readUInt16LE(11) * img[13];
  return Number(img.readBigUInt64LE(0x30)) * cs + ino * 1024;
}

function mirrorOffset(img: Buffer, ino: number): number {
  const cs = img.readUInt16LE(11) * img[13];
  return Number(img.readBigUInt64LE(0x38)) * cs + ino * 1024;
}

/** Copy the image with a change made to it. */
function damaged(name: string, change: (b: Buffer) => void): string {
  const b = nfs.readFileSync(fx.img);
  change(b);
  const out = path.join(tmp, name);
  nfs.writeFileSync(out, b);
  return out;
}

/** The offset of a file's MFT record, found by its number as ntfs-3g reports it. */
function inoOf(p: string): number {
  return fx.ref.get(p)!.ino;
}

describe('ntfs: damaged images give EIO and a log line, never a crash', () => {
  it('a torn MFT record (update sequence mismatch)', async () => {
    const img = damaged('torn.img', b => { b[recordOffset(b, inoOf('small/a.txt')) + 510] ^= 0xff; });
    await withNtfs(img, {}, async fs => {
      await expect(fs.stat('/small/a.txt')).rejects.toMatchObject({ code: 'EIO' });
      expect((await fs.readFile('/small/nonres-5000')).length).toBe(5000);
    });
  });

  it('an index block with a bad signature, and one pointing at itself', async () => {
    const big = inoOf('big');
    // The big directory's index blocks: find one by its INDX signature after the MFT.
    const b0 = nfs.readFileSync(fx.img);
    const probe = await withNtfs(fx.img, {}, async fs => (await fs.readdir('/big')).length);
    expect(probe).toBe(10_000);
    let indx = -1;
    for (let off = 0; off < b0.length; off += 4096) {
      if (b0.toString('latin1', off, off + 4) === 'INDX' && b0.readUInt32LE(off + 0x18 + 0x20 + 0x10 + 0) !== 0 &&
          b0.subarray(off, off + 4096).includes(Buffer.from('file-0', 'utf16le'))) { indx = off; break; }
    }
    expect(indx).toBeGreaterThan(0);
    const img = damaged('indx.img', b => { b.write('XXXX', indx, 'latin1'); });
    await withNtfs(img, {}, async fs => {
      await expect(fs.readdir('/big')).rejects.toMatchObject({ code: 'EIO' });
      expect(await fs.readFile('/small/a.txt', 'utf8')).toBe('hello, ntfs\n');
    });
    expect(big).toBeGreaterThan(0);
  });

  it('a boot sector that is not NTFS, and one with a bad cluster size', async () => {
    const a = damaged('oem.img', b => { b.write('NOTNTFS ', 3, 'latin1'); });
    await expect(mount('ntfs', a, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
    const c = damaged('spc.img', b => { b[13] = 3; });
    await expect(mount('ntfs', c, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('a dirty volume mounts read-only with a warning', () => {
    const img = damaged('dirty.img', b => {
      // $Volume (record 3) in $MFT and in $MFTMirr: its $VOLUME_INFORMATION's flags.
      for (const r of [recordOffset(b, 3), mirrorOffset(b, 3)]) {
        let p = r + b.readUInt16LE(r + 0x14);
        while (b.readUInt32LE(p) !== 0x70) p += b.readUInt32LE(p + 4);
        const v = p + b.readUInt16LE(p + 0x14);
        b.writeUInt16LE(b.readUInt16LE(v + 10) | 1, v + 10);
      }
    });
    ensureBuilt();
    const script = `import { mount } from ${JSON.stringify(path.join(ROOT, 'dist/src/ukfs/index.js'))};
      const fs = await mount('ntfs', ${JSON.stringify(img)}, { readOnly: true });
      console.log(await fs.readFile('/small/a.txt', 'utf8')); await fs.unmount();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/ntfs: .*dirty.img: volume is marked dirty .*read-only/);
    expect(r.stdout).toBe('hello, ntfs\n\n');
    expect(r.status).toBe(0);
    // ntfs-3g agrees that the flag is set.
    const info = spawnSync('ntfsinfo', ['-f', '-m', img], { encoding: 'utf8' });
    expect(info.stdout).toMatch(/Volume Flags:.*DIRTY/);
  });
});

