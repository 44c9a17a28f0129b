// rump_makefs judged by the real tools: fsck.fat -n clean, the tree read
// back by mtools identical to the source (bytes, names, times to FAT's 2 s),
// as an ordinary user (nobody) on a tree nobody may only read.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const top = path.resolve(import.meta.dirname, '..');
const makefsJs = path.join(top, 'dist/scripts/makefs/rump_makefs.js');
const dir = mkdtempSync(path.join(tmpdir(), 'rumpfs-makefs-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', MTOOLS_SKIP_CHECK: '1' };

interface Run { stdout: string; stderr: string; status: number }
function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => execFile(cmd, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
    resolve({ stdout, stderr, status: err ? (typeof err.code === 'number' ? err.code : 128) : 0 })));
}
const makefs = (...args: string[]) => run('node', [makefsJs, ...args]);

/** fsck.fat -n: status 0 and nothing but its banner and summary. */
async function fsckClean(img: string): Promise<string> {
  const r = await run('fsck.fat', ['-n', img]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length, r.stdout).toBe(2);
  return lines[1];
}

/** Read back with mcopy and compare with diff -r; file mtimes to FAT's 2 seconds. */
async function readsBack(img: string, src: string, name: string): Promise<void> {
  const out = path.join(dir, `back-${name}`);
  mkdirSync(out);
  execFileSync('mcopy', ['-s', '-m', '-n', '-i', img, '::/*', out], { env });
  const d = await run('diff', ['-r', src, out]);
  expect(d.stdout + d.stderr).toBe('');
  const walk = (rel: string): void => {
    for (const n of readdirSync(path.join(src, rel))) {
      const s = statSync(path.join(src, rel, n));
      if (s.isDirectory()) walk(path.join(rel, n));
      else expect(Math.abs(statSync(path.join(out, rel, n)).mtimeMs - s.mtimeMs), path.join(rel, n)).toBeLessThanOrEqual(2000);
    }
  };
  walk('');
}

const tree = path.join(dir, 'tree');
beforeAll(() => {
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('a\n'), 'empty': Buffer.alloc(0), 'big.bin': Buffer.alloc(1_234_567, 7),
    'a long name with spaces and more than thirteen characters.text': Buffer.from('long'),
    'ünïcödé ☃.txt': Buffer.from('unicode'), 'dir/sub/deep/file': Buffer.from('deep'), 'dir/readonly': Buffer.from('ro'),
  };
  for (let i = 0; i < 60; i++) files[`many/file-${i}.dat`] = Buffer.alloc(i * 100, i);
  for (const [f, b] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(tree, f)), { recursive: true });
    writeFileSync(path.join(tree, f), b);
    utimesSync(path.join(tree, f), 1_500_000_000, 1_500_000_000 + f.length * 2);
  }
  linkSync(path.join(tree, 'a.txt'), path.join(tree, 'dir/hardlink.txt'));
  chmodSync(path.join(tree, 'dir/readonly'), 0o444);
  execFileSync('chmod', ['-R', 'go+rX,go-w', tree]);
});

describe('rump_makefs -t msdos', () => {
  it('a tree: fsck.fat clean, mtools reads it back identically, read-only attribute kept', async () => {
    const img = path.join(dir, 'tree.img');
    const r = await makefs(img, tree);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(/^Calculated size of '.*tree\.img': \d+ bytes, \d+ inodes \(FAT1[26], /);
    await fsckClean(img);
    await readsBack(img, tree, 'tree');
    expect(execFileSync('mattrib', ['-i', img, '::/dir/readonly'], { env, encoding: 'utf8' })).toMatch(/^ *A? *R/);
    // Sized to the tree: not more than a tenth over what it holds.
    expect(statSync(img).size).toBeLessThan(1.1 * 1_234_567 + 512 * 1024);
  });

  it("this repository's src/ tree", async () => {
    const img = path.join(dir, 'src.img');
    expect(await makefs(img, path.join(top, 'src'))).toMatchObject({ status: 0, stderr: '' });
    await fsckClean(img);
    await readsBack(img, path.join(top, 'src'), 'src');
  });

  it('FAT32 and FAT16 by option, -s, -M, -m; a tree that does not fit', async () => {
    const f32 = path.join(dir, 'f32.img');
    expect(await makefs('-o', 'fat_type=32,volume_label=RUMPFS', '-s', '40m', f32, tree)).toMatchObject({ status: 0, stderr: '' });
    expect(statSync(f32).size).toBe(40 << 20);
    expect(await fsckClean(f32)).toMatch(/clusters/);
    expect(execFileSync('minfo', ['-i', f32, '::'], { env, encoding: 'utf8' })).toMatch(/fat_bits=32|big size: .*|FAT32/);
    expect(execFileSync('mlabel', ['-s', '-i', f32, '::'], { env, encoding: 'utf8' })).toContain('RUMPFS');
    await readsBack(f32, tree, 'f32');
    const f16 = path.join(dir, 'f16.img');
    expect(await makefs('-t', 'msdos', '-o', 'fat_type=16', '-M', '20m', f16, tree)).toMatchObject({ status: 0 });
    expect(statSync(f16).size).toBe(20 << 20);
    await fsckClean(f16);
    expect(await makefs('-m', '100k', path.join(dir, 'max.img'), tree)).toMatchObject({ status: 1, stderr: expect.stringMatching(/^rump_makefs: .*more than the maximum 102400\n$/) });
    const small = await makefs('-s', '600k', path.join(dir, 'small.img'), tree);
    expect(small.status).toBe(1);
    expect(small.stderr).toMatch(/No space left on device|ENOSPC/);
  });

  it('symbolic links cannot go on FAT: a warning names each; cd9660 has no writer', async () => {
    const t = path.join(dir, 'withlink');
    mkdirSync(t);
    writeFileSync(path.join(t, 'f'), 'f');
    symlinkSync('f', path.join(t, 'l'));
    const r = await makefs(path.join(dir, 'link.img'), t);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(`rump_makefs: ${path.join(t, 'l')}: msdos cannot hold symbolic links: skipped\n`);
    expect(await makefs('-t', 'cd9660', path.join(dir, 'x.iso'), t)).toEqual({ stdout: '', status: 1,
      stderr: 'rump_makefs: cd9660: no writer: the cd9660 driver only reads ISO 9660; make ISO images with genisoimage or xorriso\n' });
  });

  it('runs as nobody on a tree nobody can only read', async () => {
    const out = path.join(dir, 'nobody');
    mkdirSync(out);
    execFileSync('chown', ['nobody', out]);
    const r = await run('runuser', ['-u', 'nobody', '--', 'node', makefsJs, path.join(out, 'n.img'), tree]);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    await fsckClean(path.join(out, 'n.img'));
    await readsBack(path.join(out, 'n.img'), tree, 'nobody');
  });
});

describe('rump_makefs -t ext2fs', () => {
  it('newfs_ext2fs: e2fsck -fn clean at 1, 2 and 4 KiB blocks, one group and many, a short last group', async () => {
    const { newfs_ext2fs } = await import('../scripts/makefs/newfs_ext2fs.js');
    for (const [size, blockSize] of [[100 << 10, 1024], [9 << 20, 1024], [70 << 20, 2048], [600 << 20, 4096], [(40 << 20) + 60 * 1024, 1024]] as const) {
      const img = path.join(dir, `e2-${size}-${blockSize}.img`);
      const l = await newfs_ext2fs(img, { size, blockSize, label: 'rumpfs' });
      const r = await run('e2fsck', ['-fn', img]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`11/${l.groups * l.inodesPerGroup} files`);
      const d = execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      expect(d).toMatch(/Filesystem features:\s+filetype sparse_super large_file\n/);
      expect(d).toMatch(new RegExp(`Block size:\\s+${blockSize}\\n`));
      expect(d).toMatch(/Filesystem volume name:\s+rumpfs\n/);
      expect(execFileSync('debugfs', ['-R', 'ls -p /', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
        .toBe('/2/040755/0/0/.//\n/2/040755/0/0/..//\n/11/040700/0/0/lost+found//\n\n');
      rmSync(img);
    }
  });

  it('a tree: formatted and checked clean; copied in once the library has the ext2fs driver', async () => {
    const { ukfs_vfstypes } = await import('../src/ukfs/index.js');
    const img = path.join(dir, 'tree-ext2.img');
    const r = await makefs('-t', 'ext2fs', img, tree);
    const e2 = await run('e2fsck', ['-fn', img]);
    expect(e2.status, e2.stdout).toBe(0);
    if (!ukfs_vfstypes().includes('ext2fs')) {
      expect(r).toMatchObject({ status: 1, stderr: `rump_makefs: ${img}: formatted, but this library has no ext2fs driver yet to copy the files in\n` });
      return;
    }
    expect(r).toMatchObject({ status: 0, stderr: '' });
    const out = path.join(dir, 'ext2-back');
    mkdirSync(out);
    execFileSync('debugfs', ['-R', `rdump / ${out}`, img], { stdio: 'ignore' });
    rmSync(path.join(out, 'lost+found'), { recursive: true, force: true });
    expect((await run('diff', ['-r', tree, out])).stdout).toBe('');
    expect(execFileSync('debugfs', ['-R', 'stat /dir/hardlink.txt', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toMatch(/Links: 2/);
  });
});
