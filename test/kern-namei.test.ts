// namei and the system-call layer, on tmpfs through the library.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mount, type Ukfs } from '../src/ukfs/index.js';
import { Cred, Lwp, LockProtocolError, sys_stat, VOP_GETATTR, VOP_RENAME, vrele, vcache_get } from '../src/kern/index.js';

let fs: Ukfs;
beforeEach(async () => {
  fs = await mount('tmpfs', 'namei', { cred: { uid: 0, gid: 0 }, umask: 0o022 });
});
afterEach(async () => {
  await fs.unmount();
});

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));
/** The errors a lost race may give; anything else (a LockProtocolError) fails the test. */
const raced = (e: { code?: string }) => {
  if (!['ENOENT', 'EINVAL', 'ENOTEMPTY', 'EEXIST'].includes(e.code ?? '')) throw e;
};

describe('namei', () => {
  it('resolves . and .., and never climbs above the root', async () => {
    await fs.mkdir('/a/b', { recursive: true });
    await fs.writeFile('/a/b/f', 'x');
    expect(await fs.readFile('/a/./b/../b/f', 'utf8')).toBe('x');
    expect(await fs.readFile('/../../a/b/f', 'utf8')).toBe('x');
    expect((await fs.stat('/..')).ino).toBe((await fs.stat('/')).ino);
  });

  it('follows symbolic links, absolute ones from the mount root', async () => {
    await fs.mkdir('/d');
    await fs.writeFile('/d/target', 'T');
    await fs.symlink('/d/target', '/abs');
    await fs.symlink('d/target', '/rel');
    await fs.symlink('../d', '/d/up');
    expect(await fs.readFile('/abs', 'utf8')).toBe('T');
    expect(await fs.readFile('/rel', 'utf8')).toBe('T');
    expect(await fs.readFile('/d/up/target', 'utf8')).toBe('T');
    expect((await fs.lstat('/abs')).isSymbolicLink()).toBe(true);
  });

  it('ELOOP for link cycles and for chains over the bound', async () => {
    await fs.symlink('/b', '/a');
    await fs.symlink('/a', '/b');
    expect(await code(fs.readFile('/a'))).toBe('ELOOP');
    await fs.writeFile('/t0', 'end');
    for (let i = 1; i <= 41; i++) await fs.symlink(`t${i - 1}`, `/t${i}`);
    expect(await fs.readFile('/t40', 'utf8')).toBe('end');
    expect(await code(fs.readFile('/t41'))).toBe('ELOOP');
  });

  it('ENAMETOOLONG, ENOTDIR, ENOENT, trailing slashes', async () => {
    expect(await code(fs.writeFile('/' + 'n'.repeat(256), 'x'))).toBe('ENAMETOOLONG');
    expect(await code(fs.writeFile('/' + 'é'.repeat(128), 'x'))).toBe('ENAMETOOLONG');
    await fs.writeFile('/' + 'n'.repeat(255), 'x');
    expect(await code(fs.stat('/' + 'a/'.repeat(2100)))).toBe('ENAMETOOLONG');
    await fs.writeFile('/file', 'x');
    expect(await code(fs.stat('/file/x'))).toBe('ENOTDIR');
    expect(await code(fs.stat('/file/'))).toBe('ENOTDIR');
    expect(await code(fs.stat(''))).toBe('ENOENT');
    expect(await code(fs.stat('/nope/x'))).toBe('ENOENT');
    await fs.mkdir('/dir/');
    expect((await fs.stat('/dir/')).isDirectory()).toBe(true);
  });

  it('needs search permission on every directory', async () => {
    await fs.mkdir('/locked/inner', { recursive: true });
    await fs.writeFile('/locked/inner/f', 'x');
    await fs.chmod('/locked', 0o700);
    const l = new Lwp(new Cred(1000, 1000), fs.mp.rootvp, fs.mp.rootvp);
    await expect(sys_stat(l, '/locked/inner/f')).rejects.toMatchObject({ code: 'EACCES' });
    await fs.chmod('/locked', 0o711);
    await expect(sys_stat(l, '/locked/inner/f')).resolves.toMatchObject({ size: 1 });
  });

  it('refuses to remove or rename . and .. and the root', async () => {
    await fs.mkdir('/d');
    expect(await code(fs.rmdir('/d/.'))).toBe('EINVAL');
    expect(await code(fs.rmdir('/d/..'))).toBe('ENOTEMPTY');
    expect(await code(fs.rmdir('/'))).toBe('EBUSY');
    expect(await code(fs.rename('/d/.', '/e'))).toBe('EINVAL');
    expect(await code(fs.rename('/', '/e'))).toBe('EBUSY');
    expect(await code(fs.mkdir('/d/..'))).toBe('EEXIST');
    expect(await code(fs.unlink('/d'))).toBe('EISDIR');
  });
});

describe('the lock protocol', () => {
  it('a VOP called without the declared lock fails loudly', async () => {
    const root = fs.mp.rootvp!;
    const l = new Lwp(Cred.root, root);
    await expect(VOP_GETATTR(root, l)).rejects.toBeInstanceOf(LockProtocolError);
    await root.lock.lock(l, 1);
    await expect(VOP_GETATTR(root, l)).resolves.toMatchObject({ fileid: root.key });
    root.lock.unlock(l);
  });

  it('VOP_RENAME without the mount\'s rename lock fails loudly', async () => {
    await fs.writeFile('/f', 'x');
    const root = fs.mp.rootvp!;
    const l = new Lwp(Cred.root, root);
    const st = await fs.stat('/f');
    const vp = await vcache_get(fs.mp, st.ino);
    try {
      expect(() => VOP_RENAME(root, vp, 'f', root, null, 'g', l)).toThrow(LockProtocolError);
    } finally {
      await vrele(vp);
    }
  });
});

describe('rename under concurrency', () => {
  it('criss-cross directory moves and file renames neither deadlock nor lose entries', async () => {
    await fs.mkdir('/a/x', { recursive: true });
    await fs.mkdir('/b/y', { recursive: true });
    for (let i = 0; i < 20; i++) await fs.writeFile(`/a/f${i}`, String(i));
    const ops: Promise<unknown>[] = [];
    for (let round = 0; round < 50; round++) {
      ops.push(fs.rename('/a/x', '/b/y/x').catch(raced), fs.rename('/b/y', '/a/x/y').catch(raced));
      ops.push(fs.rename('/b/y/x', '/a/x').catch(raced), fs.rename('/a/x/y', '/b/y').catch(raced));
      for (let i = 0; i < 20; i++) ops.push(fs.rename(`/a/f${i}`, `/b/f${i}`).catch(raced), fs.rename(`/b/f${i}`, `/a/f${i}`).catch(raced));
      ops.push(fs.stat('/a').catch(raced), fs.readdir('/b').catch(raced));
    }
    const done = await Promise.race([Promise.all(ops).then(() => 'done'), new Promise(r => setTimeout(() => r('deadlock'), 20_000))]);
    expect(done).toBe('done');
    const names = [...await fs.readdir('/a'), ...await fs.readdir('/b')].filter(n => n.startsWith('f')).sort();
    expect(names).toEqual(Array.from({ length: 20 }, (_, i) => `f${i}`).sort());
    for (const n of names) {
      const where = (await fs.readdir('/a')).includes(n) ? '/a' : '/b';
      expect(await fs.readFile(`${where}/${n}`, 'utf8')).toBe(n.slice(1));
    }
    // Both directories still exist somewhere below the root, once each.
    const seen: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await fs.readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) { seen.push(e.name); await walk(`${d}/${e.name}`); }
      }
    };
    await walk('/');
    expect(seen.sort()).toEqual(['a', 'b', 'x', 'y']);
  });
});
