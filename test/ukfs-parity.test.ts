// The library against node:fs/promises: the same scenarios run on a host
// tmpdir and on the library over tmpfs, msdos (mkfs.vfat) and, read-only,
// cd9660 (genisoimage -R of a host tree); results and error codes must match.
import { execFileSync } from 'node:child_process';
import * as nfs from 'node:fs/promises';
import { constants, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mount, type Ukfs } from '../src/ukfs/index.js';

const host = mkdtempSync(path.join(tmpdir(), 'rumpfs-parity-'));
afterAll(() => rmSync(host, { recursive: true, force: true }));

/** The calls the scenarios use, as both node:fs/promises and Ukfs have them. */
type Fs = typeof nfs;
/** A scenario: its result (errors as their codes) must not depend on the file system. */
type Scenario = (fs: Fs, at: (p: string) => string, rel: (p: string) => string) => Promise<unknown>;

/** The value, or the error's code: what is compared. */
async function r<T>(p: Promise<T> | (() => Promise<T>)): Promise<T | { code: string }> {
  try {
    return await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return { code: (e as { code?: string }).code ?? String(e) };
  }
}

const T1 = 1_600_000_000; // even seconds: FAT keeps mtimes to 2 s

/** Scenarios for any writable file system. */
const writable: Record<string, Scenario> = {
  'writeFile/readFile: encodings, flags, errors, signal': async (fs, at) => {
    await fs.writeFile(at('a.txt'), 'hello');
    await fs.appendFile(at('a.txt'), Buffer.from(' world'));
    await fs.writeFile(at('a.txt'), '!', { flag: 'a' });
    const ac = new AbortController();
    ac.abort();
    return [
      await fs.readFile(at('a.txt'), 'utf8'),
      (await fs.readFile(at('a.txt'))).toString('hex'),
      await fs.readFile(at('a.txt'), { encoding: 'base64' }),
      await r(fs.writeFile(at('a.txt'), 'x', { flag: 'wx' })),
      await r(fs.readFile(at('nothere'))),
      await r(fs.readFile(at(''))),
      await r(fs.readFile(at('a.txt'), { signal: ac.signal })),
      await r(fs.writeFile(at('b.txt'), 'x', { signal: ac.signal })),
      await r(fs.readFile(at('a.txt/x'))),
      await fs.readFile(at('a.txt'), { flag: 'a+', encoding: 'utf8' }),
      await r(fs.writeFile(at('a.txt'), 'x', { flag: 'bogus' })),
    ];
  },

  'FileHandle: concurrent reads, then concurrent writes, on one handle': async (fs, at) => {
    await fs.writeFile(at('c'), Buffer.alloc(64 * 1024, 7));
    const fh = await fs.open(at('c'), 'r+');
    try {
      const bufs = [0, 1, 2, 3].map(() => Buffer.alloc(4096));
      const reads = await Promise.all(bufs.map((b, i) => fh.read(b, 0, 4096, i * 8192)));
      const writes = await Promise.all([0, 1, 2, 3].map(i => fh.write(Buffer.alloc(100, i + 1), 0, 100, i * 1000)));
      return [reads.map(x => x.bytesRead), bufs.map(x => x[4095]), writes.map(x => x.bytesWritten),
        (await fs.readFile(at('c'))).subarray(0, 4000).toString('hex')];
    } finally {
      await fh.close();
    }
  },

  'FileHandle: read() forms, readv, writev, appendFile, write forms': async (fs, at) => {
    await fs.writeFile(at('f'), '0123456789abcdef');
    const out: unknown[] = [];
    const fh = await fs.open(at('f'), 'r+');
    try {
      const none = await fh.read();
      out.push(none.bytesRead, none.buffer.length, Buffer.from(none.buffer.subarray(0, none.bytesRead)).toString());
      const b = Buffer.alloc(8, '.');
      out.push((await fh.read(b, { position: 2, length: 4, offset: 1 })).bytesRead, b.toString());
      out.push((await fh.read({ buffer: b, position: 10 })).bytesRead, b.toString());
      out.push((await fh.read(b, 0, 3, 0)).bytesRead, b.toString());
      out.push(await r(fh.read(b, 0, 20, 0)));
      const v = [Buffer.alloc(3), Buffer.alloc(5), Buffer.alloc(20)];
      const rv = await fh.readv(v, 4);
      out.push(rv.bytesRead, v.map(x => x.toString('latin1')));
      out.push((await fh.writev([Buffer.from('AB'), Buffer.from('CD')], 1)).bytesWritten);
      out.push((await fh.write('xyz', 12)).bytesWritten);
      out.push((await fh.write(Buffer.from('--QQ--'), 2, 2, 0)).bytesWritten);
      out.push((await fh.write(Buffer.from('tail'), { offset: 1, length: 2, position: 16 })).bytesWritten);
      out.push((await fh.stat()).size);
    } finally {
      await fh.close();
    }
    out.push(await fs.readFile(at('f'), 'utf8'));
    // Sequential reads advance the offset; readFile on the handle reads the rest.
    const seq = await fs.open(at('f'), 'r');
    const b2 = Buffer.alloc(4);
    await seq.read(b2, 0, 4, null);
    out.push(b2.toString(), await seq.readFile('utf8'));
    await seq.close();
    const ap = await fs.open(at('f'), 'a');
    await ap.appendFile('++');
    await ap.write('##');
    await ap.close();
    out.push(await fs.readFile(at('f'), 'utf8'));
    const wr = await fs.open(at('g'), 'w');
    await wr.writeFile('first');
    await wr.writeFile('second'); // from the current offset, as Node
    await wr.close();
    out.push(await fs.readFile(at('g'), 'utf8'));
    const ro = await fs.open(at('g'), 'r');
    out.push(await r(ro.write('x')));
    await ro.close();
    out.push(await r(ro.stat()));
    return out;
  },

  'readdir: plain, withFileTypes, recursive, buffer, errors': async (fs, at) => {
    await fs.mkdir(at('d/e/f'), { recursive: true });
    await fs.writeFile(at('d/x'), '1');
    await fs.writeFile(at('d/e/y'), '2');
    await fs.writeFile(at('d/e/f/z'), '3');
    const typed = (await fs.readdir(at('d'), { withFileTypes: true })).map(d => [d.name, d.isFile(), d.isDirectory()]);
    const rec = await fs.readdir(at('d'), { recursive: true });
    const recTyped = (await fs.readdir(at('d'), { recursive: true, withFileTypes: true }))
      .map(d => [path.relative(at('d'), d.parentPath), d.name, d.isDirectory()]);
    const bufs = (await fs.readdir(at('d'), { encoding: 'buffer' })).map(b => Buffer.isBuffer(b) && b.toString());
    return [
      (await fs.readdir(at('d'))).sort(), typed.sort(), rec.sort(), recTyped.sort(), bufs.sort(),
      await r(fs.readdir(at('d/x'))), await r(fs.readdir(at('nope'))),
    ];
  },

  'stat: bigint with ns times, numbers, errors': async (fs, at) => {
    await fs.writeFile(at('s'), 'abc');
    await fs.utimes(at('s'), T1, T1 + 2);
    const n = await fs.stat(at('s'));
    const b = await fs.stat(at('s'), { bigint: true });
    const lb = await fs.lstat(at('s'), { bigint: true });
    const fh = await fs.open(at('s'));
    const fb = await fh.stat({ bigint: true });
    await fh.close();
    return [
      typeof b.size, typeof b.mode, typeof b.mtimeNs, typeof n.size, b.size, b.mtimeNs, b.mtimeMs, n.mtimeMs,
      b.mtime.getTime(), lb.mtimeNs, fb.mtimeNs, b.isFile(), b.isDirectory(), 'mtimeNs' in n,
      await r(fs.stat(at('nope'), { bigint: true })), await r(fs.stat(at('s/x'))),
    ];
  },

  'copyFile and cp': async (fs, at) => {
    await fs.mkdir(at('src/sub'), { recursive: true });
    await fs.writeFile(at('src/a'), 'A');
    await fs.writeFile(at('src/sub/b'), 'B'.repeat(70000));
    await fs.copyFile(at('src/a'), at('a2'));
    const out: unknown[] = [await fs.readFile(at('a2'), 'utf8')];
    out.push(await r(fs.copyFile(at('src/a'), at('a2'), constants.COPYFILE_EXCL)));
    out.push(await r(fs.copyFile(at('nope'), at('a3'))));
    out.push(await r(fs.copyFile(at('src'), at('a3'))));
    await fs.cp(at('src'), at('dst'), { recursive: true });
    out.push((await fs.readdir(at('dst'), { recursive: true })).sort(), (await fs.readFile(at('dst/sub/b'))).length);
    out.push(await r(fs.cp(at('src'), at('dst2'))));
    out.push(await r(fs.cp(at('src'), at('src/sub/in'), { recursive: true })));
    out.push(await r(fs.cp(at('src/a'), at('src/a'))));
    out.push(await r(fs.cp(at('src/a'), at('dst/sub'))));
    out.push(await r(fs.cp(at('src'), at('a2'), { recursive: true })));
    out.push(await r(fs.cp(at('src/a'), at('dst/a'), { force: false, errorOnExist: true })));
    await fs.writeFile(at('src/a'), 'changed');
    await fs.cp(at('src/a'), at('dst/a'), { force: false });
    out.push(await fs.readFile(at('dst/a'), 'utf8'));
    await fs.cp(at('src/a'), at('dst/a'));
    out.push(await fs.readFile(at('dst/a'), 'utf8'));
    await fs.utimes(at('src/a'), T1, T1);
    await fs.cp(at('src/a'), at('kept'), { preserveTimestamps: true });
    out.push((await fs.stat(at('kept'))).mtimeMs);
    await fs.cp(at('src'), at('filtered'), { recursive: true, filter: (s) => !s.endsWith('/b') });
    out.push((await fs.readdir(at('filtered'), { recursive: true })).sort());
    return out;
  },

  'realpath, mkdtemp, mkdir, rm, rename, truncate, access': async (fs, at, rel) => {
    await fs.mkdir(at('p/q'), { recursive: true });
    await fs.writeFile(at('p/q/file'), '12345');
    const tmp = await fs.mkdtemp(at('p/tmp-'));
    const st = await fs.stat(tmp);
    return [
      rel(await fs.realpath(at('p/./q/../q/file'))), await r(fs.realpath(at('p/nope'))), await r(fs.realpath(at('p/q/file/x'))),
      rel(tmp).length, rel(tmp).startsWith('p/tmp-'), st.isDirectory(),
      rel((await fs.mkdir(at('m/n/o'), { recursive: true }))!), await fs.mkdir(at('m/n/o'), { recursive: true }),
      await r(fs.mkdir(at('m'))), await r(fs.mkdir(at('p/q/file/x'), { recursive: true })), await r(fs.mkdir(at('zz/y'))),
      await r(fs.rm(at('m'))), await r(fs.rm(at('nope'))), await fs.rm(at('nope'), { force: true }),
      await fs.rm(at('m'), { recursive: true }), await r(fs.stat(at('m'))),
      await r(fs.rmdir(at('p'))), await r(fs.rename(at('nope'), at('x'))),
      await fs.rename(at('p/q/file'), at('p/moved')), await r(fs.stat(at('p/q/file'))),
      await fs.truncate(at('p/moved'), 2), await fs.readFile(at('p/moved'), 'utf8'),
      await r(fs.access(at('p/moved'))), await r(fs.access(at('p/moved'), constants.R_OK | constants.W_OK)),
      await r(fs.access(at('nope'), constants.F_OK)), await r(fs.unlink(at('p'))),
      await r(fs.lchmod(at('p/moved'), 0o600)),
    ];
  },

  'opendir: read, async iteration, recursive, closed': async (fs, at) => {
    await fs.mkdir(at('o/sub'), { recursive: true });
    for (const n of ['1', '2', '3']) await fs.writeFile(at(`o/${n}`), n);
    await fs.writeFile(at('o/sub/4'), '4');
    const names: string[] = [];
    for await (const d of await fs.opendir(at('o'))) names.push(`${d.name}:${d.isDirectory()}`);
    const rec: string[] = [];
    for await (const d of await fs.opendir(at('o'), { recursive: true })) rec.push(path.relative(at('o'), path.join(d.parentPath, d.name)));
    const dir = await fs.opendir(at('o'));
    const first = await dir.read();
    await dir.close();
    return [names.sort(), rec.sort(), first !== null, await r(async () => dir.read()), await r(async () => dir.close()), await r(fs.opendir(at('nope'))), await r(fs.opendir(at('o/1')))];
  },

  'streams on handles': async (fs, at) => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const w = await fs.open(at('big'), 'w');
    await pipeline(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), w.createWriteStream());
    const fh = await fs.open(at('big'));
    const chunks: Buffer[] = [];
    await pipeline(fh.createReadStream({ start: 10, end: 200_009, highWaterMark: 4096 }), new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } }));
    const got = Buffer.concat(chunks);
    const lines = await fs.open(at('big'));
    await fs.writeFile(at('lines'), 'one\ntwo\nthree\n');
    const l = await fs.open(at('lines'));
    const ls: string[] = [];
    for await (const line of l.readLines()) ls.push(line);
    await lines.close();
    return [(await fs.stat(at('big'))).size, got.length, got.equals(data.subarray(10, 200_010)), ls];
  },

  'utimes, lutimes, chmod on handles and paths': async (fs, at) => {
    await fs.writeFile(at('t'), 'x');
    await fs.lutimes(at('t'), T1, T1 + 4);
    const a = (await fs.stat(at('t'))).mtimeMs;
    const fh = await fs.open(at('t'), 'r+');
    await fh.utimes(T1, T1 + 6);
    const b = (await fs.stat(at('t'))).mtimeMs;
    await fh.truncate(0);
    await fh.close();
    return [a, b, (await fs.stat(at('t'))).size, await r(fs.utimes(at('nope'), T1, T1))];
  },
};

/** Only where symbolic links and modes exist (not FAT). */
const unixy: Record<string, Scenario> = {
  'symlinks: realpath, lstat, lutimes, cp, loops': async (fs, at, rel) => {
    await fs.mkdir(at('l/real'), { recursive: true });
    await fs.writeFile(at('l/real/f'), 'F');
    await fs.symlink('real', at('l/ln'));
    await fs.symlink(at('l/real/f'), at('l/abs'));
    await fs.symlink('loop1', at('l/loop2'));
    await fs.symlink('loop2', at('l/loop1'));
    await fs.lutimes(at('l/ln'), T1, T1);
    await fs.cp(at('l'), at('l2'), { recursive: true, verbatimSymlinks: true });
    return [
      rel(await fs.realpath(at('l/ln/f'))), rel(await fs.realpath(at('l/abs'))), await r(fs.realpath(at('l/loop1'))),
      (await fs.lstat(at('l/ln'))).isSymbolicLink(), (await fs.lstat(at('l/ln'))).mtimeMs, await fs.readlink(at('l2/ln')),
      (await fs.readdir(at('l'), { withFileTypes: true })).map(d => [d.name, d.isSymbolicLink()]).sort(),
      await r(fs.stat(at('l/loop1'))),
    ];
  },
  'modes: mkdtemp 0700, copyFile keeps the mode, access': async (fs, at) => {
    const t = await fs.mkdtemp(at('mt-'));
    await fs.writeFile(at('x'), 'x', { mode: 0o640 });
    await fs.chmod(at('x'), 0o751);
    await fs.copyFile(at('x'), at('y'));
    await fs.mkdir(at('mm'), { mode: 0o705 });
    await fs.cp(at('mm'), at('mm2'), { recursive: true });
    return [(await fs.stat(t)).mode & 0o777, (await fs.stat(at('y'))).mode & 0o777, (await fs.stat(at('mm2'))).mode & 0o777];
  },
};

/** Read-only scenarios, run on the tree the ISO was made from. */
const readOnly: Record<string, Scenario> = {
  'read-only: reads, readdir, stat, realpath, opendir, streams': async (fs, at, rel) => {
    const fh = await fs.open(at('dir/data.bin'));
    const b = Buffer.alloc(16);
    const rd = await fh.read(b, { position: 1000, length: 10, offset: 3 });
    const chunks: Buffer[] = [];
    for await (const c of fh.createReadStream({ start: 5, end: 5004 })) chunks.push(c as Buffer);
    const names: string[] = [];
    for await (const d of await fs.opendir(at(''), { recursive: true })) names.push(path.relative(at(''), path.join(d.parentPath, d.name)));
    const st = await fs.stat(at('dir/data.bin'), { bigint: true });
    return [
      rd.bytesRead, b.toString('hex'), Buffer.concat(chunks).length,
      (await fs.readdir(at(''), { recursive: true })).sort(), names.sort(),
      st.size, st.mtimeNs, typeof st.ino, await fs.readFile(at('top.txt'), 'utf8'),
      rel(await fs.realpath(at('dir/../dir/./data.bin'))), await r(fs.readFile(at('missing'))),
      await r(fs.access(at('top.txt'), constants.R_OK)), await r(fs.readdir(at('top.txt'))),
    ];
  },
};

function runner(fs: Fs, root: string) {
  const at = (p: string) => (p === '' ? root : path.posix.join(root, p));
  const rel = (p: string) => path.posix.relative(root, p);
  return (s: Scenario, dir: string) => s(fs, (p) => at(path.posix.join(dir, p)), (p) => path.posix.relative(at(dir), p) || rel(p));
}

async function onHost(name: string, s: Scenario): Promise<unknown> {
  const dir = path.join(host, name.replace(/[^a-z]+/gi, '-'));
  mkdirSync(dir);
  return runner(nfs, dir)(s, '');
}

let tmpfs: Ukfs, msdos: Ukfs, iso: Ukfs;
const hostResults = new Map<string, unknown>();

beforeAll(async () => {
  tmpfs = await mount('tmpfs', 'parity');
  const img = path.join(host, 'fat.img');
  writeFileSync(img, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '48M', img]);
  execFileSync('mkfs.vfat', ['-F', '32', img], { stdio: 'ignore' });
  msdos = await mount('msdos', img);
  // The ISO's source tree, times in whole seconds (Rock Ridge keeps seconds).
  const tree = path.join(host, 'isotree');
  mkdirSync(path.join(tree, 'dir/deep/er'), { recursive: true });
  writeFileSync(path.join(tree, 'top.txt'), 'top file\n');
  const data = Buffer.alloc(20000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  writeFileSync(path.join(tree, 'dir/data.bin'), data);
  writeFileSync(path.join(tree, 'dir/deep/er/leaf'), 'leaf');
  utimesSync(path.join(tree, 'dir/data.bin'), T1, T1);
  const isoImg = path.join(host, 'ro.iso');
  execFileSync('genisoimage', ['-quiet', '-R', '-o', isoImg, tree]);
  iso = await mount('auto', isoImg, { readOnly: true });
  for (const [n, s] of Object.entries({ ...writable, ...unixy })) hostResults.set(n, await onHost(n, s));
  for (const [n, s] of Object.entries(readOnly)) hostResults.set(n, await runner(nfs, tree)(s, ''));
});

afterAll(async () => {
  await tmpfs?.unmount();
  await msdos?.unmount();
  await iso?.unmount();
});

const ukfsAsFs = (u: Ukfs) => u as unknown as Fs;

describe.each([
  ['tmpfs', () => tmpfs, { ...writable, ...unixy }],
  ['msdos', () => msdos, writable],
])('ukfs on %s matches node:fs/promises', (_name, get, scenarios) => {
  it.each(Object.keys(scenarios))('%s', async (name) => {
    const dir = '/' + name.replace(/[^a-z]+/gi, '-');
    await get().mkdir(dir);
    const got = await runner(ukfsAsFs(get()), '/')(scenarios[name], dir);
    expect(got).toEqual(hostResults.get(name));
  });
});

describe('ukfs on cd9660 (read-only) matches node:fs/promises on the source tree', () => {
  it.each(Object.keys(readOnly))('%s', async (name) => {
    expect(await runner(ukfsAsFs(iso), '/')(readOnly[name], '')).toEqual(hostResults.get(name));
  });

  it('writes fail with EROFS; W_OK access too', async () => {
    const fs = ukfsAsFs(iso);
    expect(await r(fs.writeFile('/new', 'x'))).toEqual({ code: 'EROFS' });
    expect(await r(fs.copyFile('/top.txt', '/copy'))).toEqual({ code: 'EROFS' });
    expect(await r(fs.mkdtemp('/t-'))).toEqual({ code: 'EROFS' });
    expect(await r(fs.access('/top.txt', constants.W_OK))).toEqual({ code: 'EROFS' });
  });
});

describe('calls Node has and the library cannot do', () => {
  it('throw ERR_METHOD_NOT_IMPLEMENTED naming the call', async () => {
    expect(() => tmpfs.watch('/')).toThrow(expect.objectContaining({ code: 'ERR_METHOD_NOT_IMPLEMENTED', message: expect.stringContaining('watch') }));
    await expect(tmpfs.lchmod('/', 0o700)).rejects.toMatchObject({ code: 'ERR_METHOD_NOT_IMPLEMENTED', message: expect.stringContaining('lchmod') });
  });
});
