// ext2fs in-process, judged by e2fsprogs: images made by mke2fs -d (ext2,
// ext3, ext4; 1 KiB and 4 KiB blocks; 128- and 256-byte inodes; the big
// directory hashed by e2fsck -D) read back exactly as the source tree;
// features and journal state decide how a mount goes; damaged images give
// EIO, never a crash; trees written in-process on ext2 pass e2fsck -fn.
import { execFileSync, spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mount, type Ukfs } from '../src/ukfs/index.js';
import {
  buildTree, infoOf, LONG_255, LONG_A, LONG_B, makeImage, MANY, NS, NS_MTIME, sha, VARIANTS, walkHost, type Info,
} from './helpers/ext2.js';
import { pattern } from './helpers/mount.js';

let tmp: string;
let src: string;
let source: Map<string, Info>;
const images = new Map<string, string>();

async function walkImage(fs: Ukfs): Promise<Map<string, Info>> {
  const out = new Map<string, Info>();
  const walk = async (rel: string): Promise<void> => {
    const ents = await fs.readdir('/' + rel, { withFileTypes: true });
    for (const d of ents.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (r === 'lost+found') continue;
      const st = await fs.lstat('/' + r);
      expect(d.ino, `readdir and stat agree on the inode of ${r}`).toBe(st.ino);
      const i = infoOf(st);
      if (st.isSymbolicLink()) i.target = await fs.readlink('/' + r);
      if (st.isFile()) i.sha = sha(await fs.readFile('/' + r));
      out.set(r, i);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

function copyImage(name: string): string {
  const to = path.join(tmp, `${name}-${Math.random().toString(36).slice(2)}.img`);
  execFileSync('cp', ['--sparse=always', images.get(name)!, to]);
  return to;
}

/** e2fsck -fn: exit 0, nothing to say beyond the summary. */
function fsckClean(img: string): void {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  const text = r.stdout + r.stderr;
  const complaints = text.split('\n').filter(l => l && !/^e2fsck |^Pass \d|^.*: \d+\/\d+ files/.test(l));
  expect(complaints, text).toEqual([]);
  expect(r.status, text).toBe(0);
}

function pokeBytes(img: string, off: number, bytes: number[]): void {
  const fd = nfs.openSync(img, 'r+');
  try { nfs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, off); } finally { nfs.closeSync(fd); }
}

function peek32(img: string, off: number): number {
  const b = Buffer.alloc(4);
  const fd = nfs.openSync(img, 'r');
  try { nfs.readSync(fd, b, 0, 4, off); } finally { nfs.closeSync(fd); }
  return b.readUInt32LE(0);
}

/** debugfs's view of an inode: block numbers of a file, or a field. */
function debugfs(img: string, cmd: string): string {
  return execFileSync('debugfs', ['-R', cmd, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

beforeAll(() => {
  tmp = nfs.mkdtempSync(path.join(os.tmpdir(), 'ext2fs-'));
  src = path.join(tmp, 'src');
  nfs.mkdirSync(src);
  buildTree(src);
  source = walkHost(src);
  for (const v of VARIANTS) {
    const img = path.join(tmp, `${v.name}.img`);
    makeImage(v, src, img);
    images.set(v.name, img);
  }
}, 60_000);

afterAll(() => {
  if (tmp) nfs.rmSync(tmp, { recursive: true, force: true });
});

describe('images made by mke2fs -d read back exactly', () => {
  for (const v of VARIANTS) {
    it(v.name, async () => {
      const fs = await mount('ext2fs', images.get(v.name)!, { readOnly: true });
      try {
        const got = await walkImage(fs);
        // ns.txt's mtime was set by debugfs (256-byte inodes).
        const want = new Map(source);
        if (v.inode > 128) want.set('ns.txt', { ...want.get('ns.txt')!, mtime: NS_MTIME });
        expect([...got.keys()]).toEqual([...want.keys()]);
        for (const [k, i] of want) expect(got.get(k), k).toEqual(i);
        if (v.inode > 128) {
          const st = await fs.stat('/ns.txt', { bigint: true } as never);
          expect(st.mtimeNs).toBe(BigInt(NS_MTIME) * 1_000_000_000n + BigInt(NS));
        }
        for (const n of [LONG_A, LONG_B, LONG_255, 'größe-日本.txt']) expect((await fs.stat('/' + n)).isFile()).toBe(true);
        // Ranges across holes and block boundaries.
        const sparse = await fs.readFile('/sparse');
        expect(sparse.subarray(20 * 1024 * 1024 + 100, 20 * 1024 * 1024 + 9100)).toEqual(pattern(9000, 5));
        expect(sparse.subarray(5000, 20 * 1024 * 1024 + 100).every(b => b === 0)).toBe(true);
        const st = await fs.stat('/sparse');
        expect(st.blocks * 512).toBeLessThan(1024 * 1024);
        const vfs = await fs.statfs('/');
        expect(vfs.bsize).toBe(v.block);
      } finally {
        await fs.unmount();
      }
    });
  }

  it('the big directory is hashed (dir_index) and every entry is found by name', async () => {
    const img = images.get('ext4-4k-256')!;
    expect(debugfs(img, 'htree /many')).toMatch(/Root node dump/);
    const fs = await mount('ext2fs', img, { readOnly: true });
    try {
      expect((await fs.readdir('/many')).length).toBe(MANY);
      for (const i of [0, 1, 299, MANY - 1]) {
        const n = `entry-with-a-shared-prefix-${String(i).padStart(4, '0')}`;
        expect(await fs.readFile(`/many/${n}`, 'utf8')).toBe(String(i));
      }
      await expect(fs.stat('/many/entry-with-a-shared-prefix-9999')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await fs.unmount();
    }
  });
});

describe('features decide the mount', () => {
  const FEATURE_INCOMPAT = 1024 + 96, FEATURE_RO_COMPAT = 1024 + 100;

  it('an unknown incompatible feature refuses the mount, naming it', async () => {
    const img = copyImage('ext2-4k-256');
    pokeBytes(img, FEATURE_INCOMPAT + 2, [0x01 | (peek32(img, FEATURE_INCOMPAT) >>> 16)]); // encrypt (0x10000)
    await expect(mount('ext2fs', img, { readOnly: true })).rejects.toThrow(/encrypt/);
  });

  it('ext4 with Debian\'s features mounts read-only when asked read-write, and says why', async () => {
    const img = copyImage('ext4-4k-256');
    const fs = await mount('ext2fs', img);
    try {
      expect((await fs.statfs()).readOnly).toBe(true);
      await expect(fs.writeFile('/new', 'x')).rejects.toMatchObject({ code: 'EROFS' });
    } finally {
      await fs.unmount();
    }
  });

  it('an unknown read-only-compatible feature forces read-only', async () => {
    const img = copyImage('ext2-4k-256');
    pokeBytes(img, FEATURE_RO_COMPAT + 3, [0x40]); // bit 30: unknown
    const fs = await mount('ext2fs', img);
    try {
      await expect(fs.mkdir('/d')).rejects.toMatchObject({ code: 'EROFS' });
      expect(await fs.readFile('/hello.txt', 'utf8')).toBe('hello, world\n');
    } finally {
      await fs.unmount();
    }
  });

  it('a journal that needs recovery is refused with a clear message', async () => {
    const img = copyImage('ext3-1k-256');
    pokeBytes(img, FEATURE_INCOMPAT, [peek32(img, FEATURE_INCOMPAT) | 0x4]);
    await expect(mount('ext2fs', img, { readOnly: true })).rejects.toThrow(/journal needs recovery/);
  });
});

describe('damaged images give EIO, not a crash', () => {
  /** Byte offset of inode ino in the image. */
  function inodeOffset(img: string, ino: number): number {
    const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(debugfs(img, `imap <${ino}>`))!;
    return Number(m[1]) * Number(/Block size:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))![1]) + parseInt(m[2], 16);
  }
  const ino = (img: string, p: string) => Number(/Inode: (\d+)/.exec(debugfs(img, `stat ${p}`))![1]);

  it('a block pointer outside the file system', async () => {
    const img = copyImage('ext2-1k-128');
    pokeBytes(img, inodeOffset(img, ino(img, '/dir/three-mib')) + 40 + 4 * 13, [0xff, 0xff, 0xff, 0x7f]);
    const fs = await mount('ext2fs', img, { readOnly: true });
    try {
      await expect(fs.readFile('/dir/three-mib')).rejects.toMatchObject({ code: 'EIO' });
      expect(await fs.readFile('/hello.txt', 'utf8')).toBe('hello, world\n');
    } finally {
      await fs.unmount();
    }
  });

  it('read-write: corruption is recorded in the superblock, and errors=remount-ro stops writes', async () => {
    const img = copyImage('ext2-1k-128');
    pokeBytes(img, inodeOffset(img, ino(img, '/dir/three-mib')) + 40 + 4 * 13, [0xff, 0xff, 0xff, 0x7f]);
    const fs = await mount('ext2fs', img);
    try {
      await fs.writeFile('/before', 'ok');
      await expect(fs.readFile('/dir/three-mib')).rejects.toMatchObject({ code: 'EIO' });
      await expect(fs.writeFile('/after', 'no')).rejects.toMatchObject({ code: 'EROFS' });
    } finally {
      await fs.unmount();
    }
    expect(execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toMatch(/Filesystem state:\s+not clean with errors/);
    expect(debugfs(img, 'cat /before')).toBe('ok');
  });

  it('an extent tree with a bad header, and an inode whose checksum fails', async () => {
    const img = copyImage('ext4-4k-256');
    const off = inodeOffset(img, ino(img, '/dir/three-mib'));
    pokeBytes(img, off + 40, [0x0a, 0xf2]);
    const fs = await mount('ext2fs', img, { readOnly: true });
    try {
      // metadata_csum: the changed inode no longer matches its checksum.
      await expect(fs.readFile('/dir/three-mib')).rejects.toMatchObject({ code: 'EIO' });
      expect((await fs.readdir('/dir')).length).toBeGreaterThan(0);
    } finally {
      await fs.unmount();
    }
  });

  it('a directory entry whose length runs past its block', async () => {
    const img = copyImage('ext2-4k-256');
    const blk = Number(/\(0\):(\d+)/.exec(debugfs(img, 'stat /dir/sub'))![1]);
    pokeBytes(img, blk * 4096 + 12 + 4, [0xf0, 0x7f]);
    const fs = await mount('ext2fs', img, { readOnly: true });
    try {
      await expect(fs.readdir('/dir/sub')).rejects.toMatchObject({ code: 'EIO' });
      await expect(fs.stat('/dir/sub/deep')).rejects.toMatchObject({ code: 'EIO' });
    } finally {
      await fs.unmount();
    }
  });

  it('a superblock with impossible geometry is refused', async () => {
    const img = copyImage('ext2-4k-256');
    pokeBytes(img, 1024 + 32, [0, 0, 0, 0]); // blocks per group 0
    await expect(mount('ext2fs', img, { readOnly: true })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('ext2 written in-process', () => {
  it('creates, links, renames, truncates and removes; e2fsck -fn is clean; debugfs reads it back', async () => {
    for (const name of ['ext2-1k-128', 'ext2-4k-256']) {
      const img = copyImage(name);
      const fs = await mount('ext2fs', img);
      const big = pattern(600_000, 9);
      try {
        await fs.mkdir('/new/a/b', { recursive: true });
        await fs.writeFile('/new/a/b/big', big);
        await fs.writeFile('/new/small', 'small');
        await fs.link('/new/small', '/new/a/small-again');
        await fs.symlink('x'.repeat(300), '/new/slow');
        await fs.symlink('short', '/new/fast');
        await fs.rename('/dir', '/new/a/dir-moved');
        await fs.rename('/hello.txt', '/new/hello');
        await fs.truncate('/block-and-one', 10);
        await fs.truncate('/new/a/b/big', 300_000);
        // The hashed directory changes: it loses its index flag and stays valid.
        await fs.writeFile('/many/added-to-a-hashed-directory', 'new');
        await fs.unlink('/many/entry-with-a-shared-prefix-0300');
        await fs.rm('/new/a/dir-moved/sub', { recursive: true });
        await fs.mkdir('/many2');
        for (let i = 0; i < 300; i++) await fs.writeFile(`/many2/f${i}`, String(i));
        for (let i = 0; i < 300; i += 2) await fs.unlink(`/many2/f${i}`);
        await fs.chmod('/new/small', 0o640);
        await fs.chown('/new/small', 77, 88);
        await fs.utimes('/new/small', 1111111111, 1222222222);
        await fs.mknod('/new/dev', 0o20644, 0x0103);
      } finally {
        await fs.unmount();
      }
      fsckClean(img);
      const out = path.join(tmp, `rdump-${name}`);
      nfs.mkdirSync(out);
      debugfs(img, `rdump / ${out}`);
      expect(sha(nfs.readFileSync(path.join(out, 'new/a/b/big')))).toBe(sha(big.subarray(0, 300_000)));
      expect(nfs.readFileSync(path.join(out, 'new/a/small-again'), 'utf8')).toBe('small');
      expect(nfs.readlinkSync(path.join(out, 'new/slow'))).toBe('x'.repeat(300));
      expect(nfs.readFileSync(path.join(out, 'new/a/dir-moved/three-mib')).equals(pattern(3 * 1024 * 1024 + 5, 2))).toBe(true);
      expect(nfs.readFileSync(path.join(out, 'block-and-one')).equals(pattern(4097, 1).subarray(0, 10))).toBe(true);
      expect(nfs.readdirSync(path.join(out, 'many2')).length).toBe(150);
      expect(nfs.readdirSync(path.join(out, 'many')).length).toBe(MANY);
      expect(nfs.readFileSync(path.join(out, 'many/added-to-a-hashed-directory'), 'utf8')).toBe('new');
      expect(nfs.existsSync(path.join(out, 'new/a/dir-moved/sub'))).toBe(false);
      expect(debugfs(img, 'stat /new/small')).toMatch(/User:\s+77\s+Group:\s+88/);
      // The volume was marked clean at unmount.
      expect(execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toMatch(/Filesystem state:\s+clean/);
    }
  }, 60_000);

  it('ext3 with a clean journal, and ext2 with flex_bg and meta_bg, are written too', async () => {
    for (const [name, args] of [['ext3', ['-t', 'ext3']], ['flex-meta', ['-t', 'ext2', '-O', 'flex_bg,meta_bg,^resize_inode', '-b', '1024']]] as const) {
      const img = path.join(tmp, `${name}-rw.img`);
      execFileSync('mke2fs', ['-q', '-F', ...args, '-d', path.join(src, 'dir'), img, '96M'], { stdio: 'pipe' });
      const fs = await mount('ext2fs', img);
      try {
        expect((await fs.statfs()).readOnly).toBe(false);
        await fs.mkdir('/n');
        await fs.writeFile('/n/f', pattern(300_000, 3));
        await fs.rename('/three-mib', '/n/moved');
        await fs.rm('/sub', { recursive: true });
      } finally {
        await fs.unmount();
      }
      fsckClean(img);
      expect(debugfs(img, 'ls -l /n')).toMatch(/moved/);
    }
  }, 60_000);

  it('a full volume gives ENOSPC and stays clean', async () => {
    const img = path.join(tmp, 'small.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', img, '2M'], { stdio: 'pipe' });
    const fs = await mount('ext2fs', img);
    let err: unknown;
    try {
      for (let i = 0; i < 100; i++) await fs.writeFile(`/f${i}`, pattern(100_000, i));
    } catch (e) {
      err = e;
    } finally {
      await fs.unmount();
    }
    expect(err).toMatchObject({ code: 'ENOSPC' });
    fsckClean(img);
  });
});
