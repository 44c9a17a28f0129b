// ntfs in-process against an image made by mkntfs and filled through
// ntfs-3g: every name, type, file id, size, link count, time (to 100 ns),
// symlink target and content the driver reads must be what ntfs-3g itself
// shows on a read-only mount of the same image; ntfsinfo confirms the image
// really holds what each case is about (compression, sparse runs, an
// attribute list, DOS names). Then the refusals: writes (EROFS, image
// unchanged), damaged records and index blocks (EIO), a bad boot sector.
import { execFileSync, spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSource, mount, type Ukfs } from '../src/ukfs/index.js';
import { ensureBuilt, ROOT } from './helpers/mount.js';
import {
  FOREIGN, FRAGMENTS, HASH_LIMIT, LARGE_SIZE, makeNtfsImage, markAt, ntfs3gTarget, removeTree, MTIME_NS, sha, SPARSE_MARKS, SPARSE_SIZE, UNICODE_NAMES, type Info, type NtfsFixture,
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
      if (rel === '' && d.name === FOREIGN) continue;
      const r = rel ? `${rel}/${d.name}` : d.name;
      const st = await fs.lstat('/' + r, { bigint: true });
      expect(BigInt(d.ino), `readdir and stat agree on the file id of ${r}`).toBe(st.ino);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      expect(d.isDirectory() || d.isSymbolicLink() || d.isFile(), `readdir gives ${r} a type`).toBe(true);
      expect(type === 'dir' ? d.isDirectory() : type === 'link' ? d.isSymbolicLink() : d.isFile(), `readdir type of ${r}`).toBe(true);
      const i: Info = { type, ino: Number(st.ino), size: Number(st.size), nlink: Number(st.nlink), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
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
      expect((await fs.stat('/timed', { bigint: true })).mtimeNs).toBe(MTIME_NS);
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

  it('WSL symlinks are links; other reparse points are files whose data is refused (EOPNOTSUPP)', async () => {
    expect(fx.ntfsinfo(`/${FOREIGN}/dedup`)).toMatch(/\$REPARSE_POINT/);
    await withNtfs(fx.img, {}, async fs => {
      expect(await fs.readlink(`/${FOREIGN}/wsl-link`)).toBe('target/x');
      const st = await fs.stat(`/${FOREIGN}/dedup`);
      expect([st.isFile(), st.size]).toEqual([true, 5]);
      await expect(fs.readFile(`/${FOREIGN}/dedup`)).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
      expect((await fs.readdir(`/${FOREIGN}`, { withFileTypes: true })).map(d => [d.name, d.isSymbolicLink()]).sort())
        .toEqual([['dedup', false], ['wsl-link', true]]);
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
      // readdir(3) would drop an entry with file id 0: $MFT (record 0) has another.
      expect((await fs.stat('/$MFT')).ino).toBeGreaterThan(0);
      expect((await fs.readdir('/', { withFileTypes: true })).find(d => d.name === '$MFT')!.ino).toBe((await fs.stat('/$MFT')).ino);
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

/** An image file opened for small reads and patches, without loading it whole. */
class Patch {
  constructor(private readonly fd: number) {}
  bytes(off: number, n: number): Buffer {
    const b = Buffer.alloc(n);
    nfs.readSync(this.fd, b, 0, n, off);
    return b;
  }
  u16(off: number): number { return this.bytes(off, 2).readUInt16LE(0); }
  u32(off: number): number { return this.bytes(off, 4).readUInt32LE(0); }
  put(off: number, b: Uint8Array): void { nfs.writeSync(this.fd, b, 0, b.length, off); }
  /** Byte offset of MFT record ino in $MFT (at 0x30) or $MFTMirr (0x38): their first runs hold the system files. */
  record(ino: number, at = 0x30): number {
    const bs = this.bytes(0, 512);
    return Number(bs.readBigUInt64LE(at)) * bs.readUInt16LE(11) * bs[13] + ino * 1024;
  }
}

/** Copy the image (sparse, so it is quick) with a change made to it. */
function damaged(name: string, change: (p: Patch) => void): string {
  const out = path.join(tmp, name);
  execFileSync('cp', ['--sparse=always', fx.img, out]);
  const fd = nfs.openSync(out, 'r+');
  try { change(new Patch(fd)); } finally { nfs.closeSync(fd); }
  return out;
}

/** A file's MFT record number, as ntfs-3g reports it. */
function inoOf(p: string): number {
  return fx.ref.get(p)!.ino;
}

describe('ntfs: damaged images give EIO and a log line, never a crash', () => {
  it('a torn MFT record (update sequence mismatch)', async () => {
    const img = damaged('torn.img', p => {
      const at = p.record(inoOf('small/a.txt')) + 510;
      p.put(at, Buffer.from([p.bytes(at, 1)[0] ^ 0xff]));
    });
    await withNtfs(img, {}, async fs => {
      await expect(fs.stat('/small/a.txt')).rejects.toMatchObject({ code: 'EIO' });
      expect((await fs.readFile('/small/nonres-5000')).length).toBe(5000);
    });
  });

  it('an index block with a bad signature, and one pointing at itself', async () => {
    // The big directory's index blocks (file-NNNNN.dat keys), found by their INDX signature.
    const all = nfs.readFileSync(fx.img);
    const key = Buffer.from('file-0', 'utf16le');
    const blocks: number[] = [];
    for (let off = 0; off < all.length; off += 4096) {
      if (all.toString('latin1', off, off + 4) === 'INDX' && all.subarray(off, off + 4096).includes(key)) blocks.push(off);
    }
    expect(blocks.length).toBeGreaterThan(100);
    const bad = damaged('indx.img', p => p.put(blocks[blocks.length >> 1], Buffer.from('XXXX')));
    await withNtfs(bad, {}, async fs => {
      await expect(fs.readdir('/big')).rejects.toMatchObject({ code: 'EIO' });
      expect(await fs.readFile('/small/a.txt', 'utf8')).toBe('hello, ntfs\n');
    });
    // A node block (10,000 names need three levels) whose first child pointer names the block itself.
    let loopAt = -1, selfVcn = 0n;
    for (const off of blocks) {
      const h = off + 0x18;
      if (!(all[h + 12] & 1)) continue;
      const e = h + all.readUInt32LE(h);
      const len = all.readUInt16LE(e + 8);
      const at = e + len - 8;
      // Keep clear of the update sequence bytes at the end of each 512-byte stride.
      if (Math.floor((at - off + 8) / 512) !== Math.floor((at - off) / 512) || (at - off + 8) % 512 > 510 || (at - off) % 512 >= 510) continue;
      loopAt = at;
      selfVcn = all.readBigUInt64LE(off + 0x10);
      break;
    }
    expect(loopAt).toBeGreaterThan(0);
    const loop = damaged('loop.img', p => { const b = Buffer.alloc(8); b.writeBigUInt64LE(selfVcn); p.put(loopAt, b); });
    await withNtfs(loop, {}, async fs => {
      await expect(fs.readdir('/big')).rejects.toMatchObject({ code: 'EIO' });
      expect(await fs.readFile('/small/a.txt', 'utf8')).toBe('hello, ntfs\n');
    });
  });

  it('a boot sector that is not NTFS, and one with a bad cluster size', async () => {
    const a = damaged('oem.img', p => p.put(3, Buffer.from('NOTNTFS ')));
    await expect(mount('ntfs', a, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
    const c = damaged('spc.img', p => p.put(13, Buffer.from([3])));
    await expect(mount('ntfs', c, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('a dirty volume mounts read-only with a warning', () => {
    const img = damaged('dirty.img', p => {
      // $Volume (record 3) in $MFT and in $MFTMirr: its $VOLUME_INFORMATION's flags.
      for (const r of [p.record(3), p.record(3, 0x38)]) {
        let a = r + p.u16(r + 0x14);
        while (p.u32(a) !== 0x70) a += p.u32(a + 4);
        const v = a + p.u16(a + 0x14) + 10;
        p.put(v, Buffer.from([p.bytes(v, 1)[0] | 1]));
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

