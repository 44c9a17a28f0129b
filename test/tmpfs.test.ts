// tmpfs through the kernel's system-call layer: POSIX behaviours one by one,
// as root and as ordinary users, the mount's limits and the lock protocol.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cred, isKernError, LK_EXCLUSIVE, LK_SHARED, LockProtocolError, Lwp, O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL,
  O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, sys_link, sys_mkdir, sys_mknod, sys_open, sys_readdir, sys_readlink,
  sys_rename, sys_rmdir, sys_setattr, sys_stat, sys_statvfs, sys_symlink, sys_unlink, timespecCmp, vfs_mount,
  vfs_unmount, vn_close, vn_fstat, vn_loanm, vn_read, vn_readdir, vn_write, VOP_GETATTR, VOP_WRITE, makedev, VType,
  type File, type Mount, type MountOptions, type Timespec,
} from '../src/kern/index.js';
import '../src/fs/tmpfs/index.js';
import { TMPFS_MAXFILESIZE, TMPFS_ROOT_ID, type TmpfsNode } from '../src/fs/tmpfs/index.js';

const mounts: Mount[] = [];
afterEach(async () => {
  for (const mp of mounts.splice(0)) await vfs_unmount(mp, true);
});

async function mount(options: MountOptions = {}): Promise<{ mp: Mount; l: Lwp }> {
  const mp = await vfs_mount('tmpfs', { dev: null, from: 'tmpfs', flags: 0, options });
  mounts.push(mp);
  return { mp, l: new Lwp(Cred.root, mp.rootvp) };
}

const as = (mp: Mount, uid: number, gid: number, groups: number[] = []) => new Lwp(new Cred(uid, gid, groups), mp.rootvp);
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The error code a promise rejects with ('OK' if it fulfils). */
async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'OK'; } catch (e) { if (isKernError(e)) return e.code; throw e; }
}

async function withFile<T>(l: Lwp, path: string, flags: number, fn: (fp: File) => Promise<T>, mode = 0o644): Promise<T> {
  const fp = await sys_open(l, path, flags, mode);
  try { return await fn(fp); } finally { await vn_close(l, fp); }
}

function writeAt(l: Lwp, path: string, data: Uint8Array | string, offset = 0, flags = O_WRONLY | O_CREAT): Promise<number> {
  return withFile(l, path, flags, fp => vn_write(l, fp, typeof data === 'string' ? bytes(data) : data, offset));
}

async function readAll(l: Lwp, fp: File): Promise<Uint8Array> {
  const { size } = await vn_fstat(l, fp);
  const buf = new Uint8Array(size);
  const n = await vn_read(l, fp, buf, 0);
  return buf.subarray(0, n);
}

const readFile = (l: Lwp, path: string) => withFile(l, path, O_RDONLY, fp => readAll(l, fp));
const names = async (l: Lwp, path: string) => (await sys_readdir(l, path)).map(d => d.name).filter(n => n !== '.' && n !== '..');
const tick = () => new Promise(r => setTimeout(r, 5));
const after = (a: Timespec, b: Timespec) => timespecCmp(a, b) > 0;

describe('tmpfs: files', () => {
  it('creates, writes, reads, appends and truncates', async () => {
    const { l } = await mount();
    expect(await writeAt(l, '/f', 'hello world')).toBe(11);
    expect(text(await readFile(l, '/f'))).toBe('hello world');
    await writeAt(l, '/f', '!!', 0, O_WRONLY | O_APPEND);
    expect(text(await readFile(l, '/f'))).toBe('hello world!!');
    await sys_setattr(l, '/f', { size: 5 });
    expect(text(await readFile(l, '/f'))).toBe('hello');
    await writeAt(l, '/f', 'abc', 0, O_WRONLY | O_TRUNC);
    expect(text(await readFile(l, '/f'))).toBe('abc');
    expect(await code(sys_open(l, '/f', O_CREAT | O_EXCL | O_WRONLY))).toBe('EEXIST');
    expect(await code(sys_open(l, '/missing', O_RDONLY))).toBe('ENOENT');
    const st = await sys_stat(l, '/f');
    expect(st).toMatchObject({ type: VType.VREG, mode: 0o644, nlink: 1, uid: 0, gid: 0, size: 3, bytes: 4096 });
    expect(st.fileid).toBeGreaterThan(TMPFS_ROOT_ID);
  });

  it('reads holes as zeros and gives them no memory; truncate zeros the tail of the last page', async () => {
    const { l } = await mount();
    const before = await sys_statvfs(l);
    await writeAt(l, '/s', 'X', 10 * 4096 + 7);
    const st = await sys_stat(l, '/s');
    expect(st.size).toBe(10 * 4096 + 8);
    expect(st.bytes).toBe(4096);
    expect((await sys_statvfs(l)).bfree).toBe(before.bfree - 1);
    const data = await readFile(l, '/s');
    expect(data.subarray(0, 10 * 4096 + 7).every(b => b === 0)).toBe(true);
    expect(data[10 * 4096 + 7]).toBe('X'.charCodeAt(0));
    // Shrink into the middle of a written page, grow again: the cut-off bytes read as zeros.
    await writeAt(l, '/t', new Uint8Array(6000).fill(0xaa));
    await sys_setattr(l, '/t', { size: 4100 });
    await sys_setattr(l, '/t', { size: 8000 });
    const t = await readFile(l, '/t');
    expect(t.subarray(0, 4100).every(b => b === 0xaa)).toBe(true);
    expect(t.subarray(4100).every(b => b === 0)).toBe(true);
    expect((await sys_stat(l, '/t')).bytes).toBe(2 * 4096);
    await sys_setattr(l, '/t', { size: 0 });
    expect((await sys_stat(l, '/t')).bytes).toBe(0);
    // A huge sparse file costs nothing.
    await sys_setattr(l, '/t', { size: 2 ** 40 });
    expect((await sys_stat(l, '/t')).bytes).toBe(0);
  });

  it('pages written together read back as runs, at any offset; a truncate into a run keeps only the kept pages\' memory', async () => {
    const { l } = await mount();
    const P = 4096;
    // Runs of 16, 16 and 9 pages; a rewrite across a page boundary; a page after a hole.
    const want = new Uint8Array(60 * P + 3);
    want.set(new Uint8Array(40 * P + 100).map((_, i) => (i * 7 + (i >> 12)) & 0xff));
    await writeAt(l, '/r', want.subarray(0, 40 * P + 100));
    want.set(bytes('middle'), 20 * P - 3);
    await writeAt(l, '/r', bytes('middle'), 20 * P - 3);
    want.set(bytes('far'), 60 * P);
    await writeAt(l, '/r', bytes('far'), 60 * P);
    expect(Buffer.compare(await readFile(l, '/r'), want)).toBe(0);
    await withFile(l, '/r', O_RDONLY, async fp => {
      for (const [off, len] of [[1, 70000], [16 * P - 5, 10], [P - 1, 17 * P + 17], [40 * P, 30 * P], [0, 61 * P]]) {
        const buf = new Uint8Array(len);
        const n = await vn_read(l, fp, buf, off);
        expect([off, n]).toEqual([off, Math.min(len, want.length - off)]);
        expect(Buffer.compare(buf.subarray(0, n), want.subarray(off, off + n))).toBe(0);
      }
    });
    await sys_setattr(l, '/r', { size: 20 * P + 10 });
    await withFile(l, '/r', O_RDONLY, async fp => {
      const pages = fp.vp.node<TmpfsNode>().pages!;
      expect(pages.get(0)!.buffer.byteLength).toBe(16 * P);
      // Pages 16-20 of the second run, in a buffer of their own: the freed 21-31 go.
      expect(pages.get(16)!.buffer).toBe(pages.get(20)!.buffer);
      expect(pages.get(20)!.buffer.byteLength).toBe(5 * P);
    });
    expect(Buffer.compare(await readFile(l, '/r'), want.subarray(0, 20 * P + 10))).toBe(0);
    await sys_setattr(l, '/r', { size: 21 * P });
    expect((await readFile(l, '/r')).subarray(20 * P + 10).every(b => b === 0)).toBe(true);
  });

  it('lends a file\'s bytes without a copy: runs and holes in order, nothing past the end; none while another holds the lock', async () => {
    const { l } = await mount();
    const P = 4096;
    const want = new Uint8Array(5 * P + 10);
    want.set(new Uint8Array(2 * P + 5).fill(7));
    want.set(bytes('tail'), 5 * P + 6);
    await writeAt(l, '/f', want.subarray(0, 2 * P + 5));
    await writeAt(l, '/f', bytes('tail'), 5 * P + 6);
    await withFile(l, '/f', O_RDONLY, async fp => {
      const lent = vn_loanm(l, fp, 3, 6 * P)!;
      // The first write's run of three pages (from byte 3), the hole's two pages, the last page.
      expect(lent.map(p => p.length)).toEqual([3 * P - 3, P, P, 10]);
      expect(Buffer.compare(Buffer.concat(lent), want.subarray(3))).toBe(0);
      expect(lent[0].buffer.byteLength).toBe(3 * P); // a view of the file's own run, not a copy
      expect(vn_loanm(l, fp, want.length, P)).toEqual([]);
      const other = new Lwp(Cred.root, fp.vp);
      await fp.vp.lock.lock(other, LK_EXCLUSIVE);
      expect(vn_loanm(l, fp, 0, P)).toBeNull();
      fp.vp.lock.unlock(other);
    });
    await withFile(l, '/f', O_WRONLY, async fp => expect(() => vn_loanm(l, fp, 0, P)).toThrow(expect.objectContaining({ code: 'EBADF' })));
    await withFile(l, '/', O_RDONLY | O_DIRECTORY, async fp => expect(() => vn_loanm(l, fp, 0, P)).toThrow(expect.objectContaining({ code: 'EISDIR' })));
  });

  it('EFBIG past the maximum file size', async () => {
    const { l } = await mount();
    expect(await code(writeAt(l, '/big', 'x', TMPFS_MAXFILESIZE))).toBe('EFBIG');
    expect(await code(sys_setattr(l, '/big', { size: TMPFS_MAXFILESIZE + 1 }))).toBe('EFBIG');
    expect(await writeAt(l, '/big', 'x', TMPFS_MAXFILESIZE - 1)).toBe(1);
  });

  it('keeps an unlinked open file until its last reference, then frees it', async () => {
    const { l } = await mount();
    const start = await sys_statvfs(l);
    await writeAt(l, '/u', new Uint8Array(3 * 4096).fill(7));
    const fp = await sys_open(l, '/u', O_RDWR);
    try {
      await sys_unlink(l, '/u');
      expect(await code(sys_stat(l, '/u'))).toBe('ENOENT');
      expect((await vn_fstat(l, fp)).nlink).toBe(0);
      await vn_write(l, fp, bytes('more'), 3 * 4096);
      const data = await readAll(l, fp);
      expect(data.length).toBe(3 * 4096 + 4);
      expect(data[0]).toBe(7);
      expect((await sys_statvfs(l)).bfree).toBe(start.bfree - 4);
    } finally {
      await vn_close(l, fp);
    }
    const end = await sys_statvfs(l);
    expect([end.bfree, end.ffree]).toEqual([start.bfree, start.ffree]);
  });

  it('hard links share data and count links', async () => {
    const { l } = await mount();
    await writeAt(l, '/a', 'shared');
    await sys_link(l, '/a', '/b');
    expect((await sys_stat(l, '/a')).nlink).toBe(2);
    expect((await sys_stat(l, '/a')).fileid).toBe((await sys_stat(l, '/b')).fileid);
    await writeAt(l, '/b', 'S');
    expect(text(await readFile(l, '/a'))).toBe('Shared');
    await sys_unlink(l, '/a');
    expect((await sys_stat(l, '/b')).nlink).toBe(1);
    expect(text(await readFile(l, '/b'))).toBe('Shared');
    expect(await code(sys_link(l, '/b', '/b'))).toBe('EEXIST');
    await sys_mkdir(l, '/d', 0o755);
    expect(await code(sys_link(l, '/d', '/d2'))).toBe('EPERM');
  });

  it('device nodes, FIFOs and sockets', async () => {
    const { mp, l } = await mount();
    await sys_mknod(l, '/null', VType.VCHR, 0o666, makedev(1, 3));
    await sys_mknod(l, '/sda', VType.VBLK, 0o660, makedev(8, 0));
    await sys_mknod(l, '/fifo', VType.VFIFO, 0o644);
    await sys_mknod(l, '/sock', VType.VSOCK, 0o755);
    expect(await sys_stat(l, '/null')).toMatchObject({ type: VType.VCHR, rdev: makedev(1, 3), size: 0 });
    expect(await sys_stat(l, '/sda')).toMatchObject({ type: VType.VBLK, rdev: makedev(8, 0) });
    expect((await sys_stat(l, '/fifo')).type).toBe(VType.VFIFO);
    expect((await sys_stat(l, '/sock')).type).toBe(VType.VSOCK);
    expect((await sys_readdir(l, '/')).filter(d => d.name === 'sda')[0].type).toBe(VType.VBLK);
    expect(await code(sys_mknod(as(mp, 1000, 1000), '/tty', VType.VCHR, 0o666, 5))).toBe('EPERM');
  });

  it('rejects bad names', async () => {
    const { l } = await mount();
    expect(await code(writeAt(l, '/' + 'n'.repeat(256), 'x'))).toBe('ENAMETOOLONG');
    expect(await writeAt(l, '/' + 'n'.repeat(255), 'x')).toBe(1);
    // 128 two-byte characters: 256 bytes.
    expect(await code(sys_mkdir(l, '/' + 'é'.repeat(128), 0o755))).toBe('ENAMETOOLONG');
    expect(await code(sys_mkdir(l, '/nul\0name', 0o755))).toBe('EINVAL');
  });
});

describe('tmpfs: directories', () => {
  it('mkdir and rmdir: EEXIST, ENOTEMPTY, ENOTDIR, link counts', async () => {
    const { l } = await mount();
    const root0 = (await sys_stat(l, '/')).nlink;
    await sys_mkdir(l, '/d', 0o755);
    expect(await code(sys_mkdir(l, '/d', 0o755))).toBe('EEXIST');
    expect((await sys_stat(l, '/')).nlink).toBe(root0 + 1);
    expect((await sys_stat(l, '/d')).nlink).toBe(2);
    await sys_mkdir(l, '/d/e', 0o755);
    expect((await sys_stat(l, '/d')).nlink).toBe(3);
    await writeAt(l, '/d/f', 'x');
    expect(await code(sys_rmdir(l, '/d'))).toBe('ENOTEMPTY');
    expect(await code(sys_rmdir(l, '/d/f'))).toBe('ENOTDIR');
    expect(await code(sys_mkdir(l, '/d/f/g', 0o755))).toBe('ENOTDIR');
    expect(await code(sys_unlink(l, '/d/e'))).toBe('EISDIR');
    await sys_unlink(l, '/d/f');
    await sys_rmdir(l, '/d/e');
    await sys_rmdir(l, '/d');
    expect((await sys_stat(l, '/')).nlink).toBe(root0);
    expect(await names(l, '/')).toEqual([]);
  });

  it('`..` of the root is the root; `.` and `..` are listed with the right ids', async () => {
    const { l } = await mount();
    await sys_mkdir(l, '/d', 0o755);
    expect((await sys_stat(l, '/..')).fileid).toBe(TMPFS_ROOT_ID);
    expect((await sys_stat(l, '/d/../..')).fileid).toBe(TMPFS_ROOT_ID);
    const ents = await sys_readdir(l, '/d');
    expect(ents.slice(0, 2).map(d => [d.name, d.fileid, d.cookie])).toEqual([
      ['.', (await sys_stat(l, '/d')).fileid, 1], ['..', TMPFS_ROOT_ID, 2]]);
  });

  it('readdir cookies stay valid while entries come and go', async () => {
    const { l } = await mount();
    await sys_mkdir(l, '/d', 0o755);
    const N = 400;
    for (let i = 0; i < N; i++) await writeAt(l, `/d/f${i}`, '');
    const seen: string[] = [];
    let batches = 0;
    await withFile(l, '/d', O_RDONLY | O_DIRECTORY, async fp => {
      for (let cookie = 0, eof = false; !eof; batches++) {
        const r = await vn_readdir(l, fp, cookie);
        seen.push(...r.entries.map(d => d.name));
        eof = r.eof;
        cookie = r.entries[r.entries.length - 1].cookie;
        // Between batches: remove some files already seen and some not yet, add new ones.
        await sys_unlink(l, `/d/f${batches}`);
        await sys_unlink(l, `/d/f${N - 1 - batches}`);
        await writeAt(l, `/d/new${batches}`, '');
      }
    });
    expect(batches).toBeGreaterThan(2);
    expect(new Set(seen).size).toBe(seen.length);
    // Every file that existed throughout is listed exactly once.
    for (let i = batches; i < N - batches; i++) expect(seen).toContain(`f${i}`);
  });

  it('a removed directory held open lists only . and .. and refuses new entries', async () => {
    const { l } = await mount();
    await sys_mkdir(l, '/gone', 0o755);
    await withFile(l, '/gone', O_RDONLY | O_DIRECTORY, async fp => {
      await sys_rmdir(l, '/gone');
      expect((await vn_readdir(l, fp, 0)).entries.map(d => d.name)).toEqual(['.', '..']);
      expect((await vn_fstat(l, fp)).nlink).toBe(0);
    });
  });
});

describe('tmpfs: symbolic links', () => {
  it('relative and absolute targets, dangling links, loops', async () => {
    const { l } = await mount();
    await sys_mkdir(l, '/d', 0o755);
    await writeAt(l, '/d/f', 'target');
    await sys_symlink(l, 'f', '/d/rel');
    await sys_symlink(l, '/d/f', '/abs');
    await sys_symlink(l, '../d/f', '/d/up');
    for (const p of ['/d/rel', '/abs', '/d/up']) expect(text(await readFile(l, p))).toBe('target');
    expect(await sys_readlink(l, '/abs')).toBe('/d/f');
    expect(await sys_stat(l, '/abs', false)).toMatchObject({ type: VType.VLNK, size: 4, mode: 0o777 });
    await sys_symlink(l, 'nowhere', '/dangling');
    expect(await code(readFile(l, '/dangling'))).toBe('ENOENT');
    // O_CREAT through a dangling link creates its target.
    await writeAt(l, '/dangling', 'made');
    expect(text(await readFile(l, '/nowhere'))).toBe('made');
    await sys_symlink(l, 'loop2', '/loop1');
    await sys_symlink(l, 'loop1', '/loop2');
    expect(await code(readFile(l, '/loop1'))).toBe('ELOOP');
    expect(await code(sys_stat(l, '/loop1/x'))).toBe('ELOOP');
    expect(await code(sys_symlink(l, '', '/empty'))).toBe('ENOENT');
    expect(await code(sys_readlink(l, '/d/f'))).toBe('EINVAL');
  });
});

describe('tmpfs: rename', () => {
  it('every case', async () => {
    const { l } = await mount();
    await writeAt(l, '/a', 'A');
    await writeAt(l, '/b', 'B');
    const idA = (await sys_stat(l, '/a')).fileid;
    await sys_rename(l, '/a', '/b');
    expect(text(await readFile(l, '/b'))).toBe('A');
    expect((await sys_stat(l, '/b')).fileid).toBe(idA);
    expect(await code(sys_stat(l, '/a'))).toBe('ENOENT');

    await sys_mkdir(l, '/d1', 0o755);
    await sys_mkdir(l, '/d2', 0o755);
    await sys_mkdir(l, '/full', 0o755);
    await writeAt(l, '/full/x', '');
    await writeAt(l, '/d1/inside', 'in');
    const rootLinks = (await sys_stat(l, '/')).nlink;
    await sys_rename(l, '/d1', '/d2'); // directory over an empty directory
    expect(text(await readFile(l, '/d2/inside'))).toBe('in');
    expect((await sys_stat(l, '/')).nlink).toBe(rootLinks - 1);
    expect(await code(sys_rename(l, '/d2', '/full'))).toBe('ENOTEMPTY');
    expect(await code(sys_rename(l, '/d2', '/d2/sub'))).toBe('EINVAL');
    expect(await code(sys_rename(l, '/b', '/d2'))).toBe('EISDIR');
    expect(await code(sys_rename(l, '/d2', '/b'))).toBe('ENOTDIR');
    expect(await code(sys_rename(l, '/nope', '/c'))).toBe('ENOENT');

    // Moving a directory to another parent: its `..` and both parents' link counts.
    await sys_mkdir(l, '/p', 0o755);
    await sys_rename(l, '/d2', '/p/moved');
    expect((await sys_stat(l, '/p')).nlink).toBe(3);
    expect((await sys_stat(l, '/')).nlink).toBe(rootLinks - 1); // +p, -d2
    expect((await sys_stat(l, '/p/moved/..')).fileid).toBe((await sys_stat(l, '/p')).fileid);
    expect((await sys_readdir(l, '/p/moved'))[1].fileid).toBe((await sys_stat(l, '/p')).fileid);

    // Same file under two names: nothing happens.
    await sys_link(l, '/b', '/b2');
    await sys_rename(l, '/b', '/b2');
    expect((await sys_stat(l, '/b')).nlink).toBe(2);
    await sys_rename(l, '/b', '/b');
    expect(text(await readFile(l, '/b'))).toBe('A');
  });

  it('replacing an open file keeps it readable, then frees it', async () => {
    const { l } = await mount();
    await writeAt(l, '/old', 'old data');
    await writeAt(l, '/new', 'new');
    const start = await sys_statvfs(l);
    await withFile(l, '/old', O_RDONLY, async fp => {
      await sys_rename(l, '/new', '/old');
      expect(text(await readAll(l, fp))).toBe('old data');
      expect((await vn_fstat(l, fp)).nlink).toBe(0);
    });
    const end = await sys_statvfs(l);
    expect([end.bfree, end.ffree]).toEqual([start.bfree + 1, start.ffree + 1]);
  });
});

describe('tmpfs: permissions', () => {
  it('owner, group, other; supplementary groups; setgid directories', async () => {
    const { mp, l } = await mount();
    const alice = as(mp, 1000, 1000), bob = as(mp, 1001, 1001), carol = as(mp, 1002, 1002, [1000]);
    await writeAt(alice, '/private', 'secret', 0, O_WRONLY | O_CREAT);
    await sys_setattr(alice, '/private', { mode: 0o600 });
    expect(await sys_stat(l, '/private')).toMatchObject({ uid: 1000, gid: 1000 });
    expect(await code(readFile(bob, '/private'))).toBe('EACCES');
    expect(text(await readFile(alice, '/private'))).toBe('secret');
    await sys_setattr(alice, '/private', { mode: 0o640 });
    expect(text(await readFile(carol, '/private'))).toBe('secret');
    expect(await code(readFile(bob, '/private'))).toBe('EACCES');
    expect(await code(writeAt(carol, '/private', 'x'))).toBe('EACCES');
    expect(await code(sys_setattr(bob, '/private', { mode: 0o777 }))).toBe('EPERM');
    expect(await code(sys_setattr(bob, '/private', { size: 0 }))).toBe('EACCES');

    // New files take a setgid directory's group; subdirectories inherit setgid.
    await sys_mkdir(l, '/shared', 0o2775);
    await sys_setattr(l, '/shared', { gid: 50 });
    expect(await code(writeAt(alice, '/shared/f', 'x'))).toBe('EACCES');
    await sys_setattr(l, '/shared', { mode: 0o2777 });
    await writeAt(alice, '/shared/f', 'x');
    expect(await sys_stat(l, '/shared/f')).toMatchObject({ uid: 1000, gid: 50 });
    await sys_mkdir(alice, '/shared/sub', 0o755);
    expect(await sys_stat(l, '/shared/sub')).toMatchObject({ uid: 1000, gid: 50, mode: 0o2755 });
  });

  it('sticky directory: only the owner removes or renames', async () => {
    const { mp, l } = await mount();
    expect((await sys_stat(l, '/')).mode).toBe(0o1777);
    const alice = as(mp, 1000, 1000), bob = as(mp, 1001, 1001);
    await writeAt(alice, '/alices', 'a');
    expect(await code(sys_unlink(bob, '/alices'))).toBe('EPERM');
    expect(await code(sys_rename(bob, '/alices', '/mine'))).toBe('EPERM');
    await writeAt(bob, '/bobs', 'b');
    expect(await code(sys_rename(bob, '/bobs', '/alices'))).toBe('EPERM');
    await sys_rename(alice, '/alices', '/alices2');
    await sys_rename(alice, '/alices2', '/alices');
    await sys_unlink(bob, '/bobs');
    await sys_unlink(alice, '/alices');
  });

  it('mount options set the root; unknown options are refused by name', async () => {
    const { l } = await mount({ mode: '0755', uid: 1000, gid: '100' });
    expect(await sys_stat(l, '/')).toMatchObject({ mode: 0o755, uid: 1000, gid: 100, fileid: TMPFS_ROOT_ID });
    await expect(mount({ sise: '1m' })).rejects.toThrow(/EINVAL.*'sise'/);
    await expect(mount({ size: '12q' })).rejects.toThrow(/EINVAL.*'size'/);
    await expect(mount({ mode: '999' })).rejects.toThrow(/EINVAL.*'mode'/);
  });
});

describe('tmpfs: times', () => {
  it('follow the POSIX update rules', async () => {
    const { l } = await mount();
    await sys_mkdir(l, '/d', 0o755);
    await writeAt(l, '/d/f', 'data');
    const st0 = await sys_stat(l, '/d/f');
    expect(timespecCmp(st0.birthtime, st0.ctime)).toBeLessThanOrEqual(0);
    const old = { sec: 1000, nsec: 0 };
    const reset = () => sys_setattr(l, '/d/f', { atime: old, mtime: old });
    const dreset = () => sys_setattr(l, '/d', { atime: old, mtime: old });

    await reset();
    let before = await sys_stat(l, '/d/f');
    await tick();
    await readFile(l, '/d/f');
    let now = await sys_stat(l, '/d/f');
    expect(after(now.atime, old)).toBe(true);
    expect(now.mtime).toEqual(old);
    expect(now.ctime).toEqual(before.ctime);

    await reset();
    before = await sys_stat(l, '/d/f');
    await tick();
    await writeAt(l, '/d/f', 'x', 1);
    now = await sys_stat(l, '/d/f');
    expect(now.atime).toEqual(old);
    expect(after(now.mtime, old) && after(now.ctime, before.ctime)).toBe(true);

    await reset();
    before = await sys_stat(l, '/d/f');
    await tick();
    await sys_setattr(l, '/d/f', { size: 1 });
    now = await sys_stat(l, '/d/f');
    expect(after(now.mtime, old) && after(now.ctime, before.ctime)).toBe(true);

    for (const change of [
      () => sys_setattr(l, '/d/f', { mode: 0o600 }),
      () => sys_setattr(l, '/d/f', { uid: 5 }),
      () => sys_link(l, '/d/f', '/d/f2'),
    ]) {
      await reset();
      before = await sys_stat(l, '/d/f');
      await tick();
      await change();
      now = await sys_stat(l, '/d/f');
      expect(now.mtime).toEqual(old);
      expect(after(now.ctime, before.ctime)).toBe(true);
    }

    // Names added and removed: the directory's mtime and ctime.
    for (const change of [
      () => writeAt(l, '/d/g', ''), () => sys_unlink(l, '/d/g'), () => sys_mkdir(l, '/d/s', 0o755),
      () => sys_rename(l, '/d/s', '/d/t'), () => sys_rmdir(l, '/d/t'), () => sys_symlink(l, 'f', '/d/ln'),
    ]) {
      await dreset();
      before = await sys_stat(l, '/d');
      await tick();
      await change();
      now = await sys_stat(l, '/d');
      expect(after(now.mtime, old) && after(now.ctime, before.ctime)).toBe(true);
      expect(now.atime).toEqual(old);
    }
    expect((await sys_stat(l, '/d/f')).birthtime).toEqual(st0.birthtime);
  });
});

describe('tmpfs: limits', () => {
  it('ENOSPC at the size limit leaves nothing behind, and the file system still works', async () => {
    const { l } = await mount({ size: '64k' });
    const sv = await sys_statvfs(l);
    expect(sv).toMatchObject({ bsize: 4096, blocks: 16, bfree: 16, namemax: 255 });
    await writeAt(l, '/a', new Uint8Array(40 * 1024).fill(1));
    expect(await code(writeAt(l, '/b', new Uint8Array(30 * 1024).fill(2)))).toBe('ENOSPC');
    expect((await sys_stat(l, '/b')).size).toBe(0);
    expect(await code(writeAt(l, '/a', new Uint8Array(30 * 1024).fill(3), 38 * 1024))).toBe('ENOSPC');
    const a = await readFile(l, '/a');
    expect(a.length).toBe(40 * 1024);
    expect(a.every(b => b === 1)).toBe(true);
    expect((await sys_statvfs(l)).bfree).toBe(6);
    // Holes cost nothing: a sparse file far beyond the limit is fine.
    await sys_setattr(l, '/b', { size: 1 << 30 });
    await writeAt(l, '/b', 'end', (1 << 30) - 3);
    expect((await sys_statvfs(l)).bfree).toBe(5);
    await sys_unlink(l, '/a');
    await writeAt(l, '/c', new Uint8Array(60 * 1024).fill(4));
    expect((await sys_statvfs(l)).bfree).toBe(0);
  });

  it('ENOSPC at the nodes limit, and the file system still works', async () => {
    const { l } = await mount({ nodes: 4 });
    expect(await sys_statvfs(l)).toMatchObject({ files: 4, ffree: 3 });
    await writeAt(l, '/a', '');
    await sys_mkdir(l, '/d', 0o755);
    await sys_symlink(l, 'a', '/s');
    expect(await code(writeAt(l, '/x', ''))).toBe('ENOSPC');
    expect(await code(sys_mkdir(l, '/y', 0o755))).toBe('ENOSPC');
    expect(await code(sys_symlink(l, 'a', '/z'))).toBe('ENOSPC');
    expect(await names(l, '/')).toEqual(['a', 'd', 's']);
    await sys_link(l, '/a', '/hard'); // a link is no new node
    await sys_unlink(l, '/s');
    await writeAt(l, '/x', 'ok');
    expect(text(await readFile(l, '/x'))).toBe('ok');
  });

  it('memory accounting returns to its start after everything is removed', async () => {
    const { l } = await mount();
    const start = await sys_statvfs(l);
    await sys_mkdir(l, '/d', 0o755);
    for (let i = 0; i < 20; i++) await writeAt(l, `/d/f${i}`, new Uint8Array(5000 * i).fill(i), i * 100);
    await sys_link(l, '/d/f3', '/d/h3');
    await sys_symlink(l, 'f1', '/d/s');
    for (const n of await names(l, '/d')) await sys_unlink(l, `/d/${n}`);
    await sys_rmdir(l, '/d');
    const end = await sys_statvfs(l);
    expect([end.bfree, end.ffree]).toEqual([start.bfree, start.ffree]);
  });
});

describe('tmpfs: lock protocol', () => {
  it('a VOP called without the declared lock is a LockProtocolError', async () => {
    const { mp, l } = await mount();
    const root = mp.rootvp!;
    await expect(VOP_GETATTR(root, l)).rejects.toBeInstanceOf(LockProtocolError);
    await root.lock.lock(l, LK_SHARED);
    try {
      expect((await VOP_GETATTR(root, l)).fileid).toBe(TMPFS_ROOT_ID);
      await expect(VOP_WRITE(root, bytes('x'), 0, 0, l)).rejects.toBeInstanceOf(LockProtocolError);
    } finally {
      root.lock.unlock(l);
    }
    await root.lock.lock(l, LK_EXCLUSIVE);
    try {
      expect(await code(VOP_WRITE(root, bytes('x'), 0, 0, l))).toBe('EISDIR');
    } finally {
      root.lock.unlock(l);
    }
  });
});
