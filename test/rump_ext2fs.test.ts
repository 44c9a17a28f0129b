// rump_ext2fs through a real FUSE mount, judged by e2fsprogs: ext4 with
// Debian's features (and ext2, ext3) made by mke2fs -d read back exactly
// through the mount; trees written on ext2 by cp -a, tar x, mv, rm -r,
// truncate, ln, chmod, chown and touch -d pass e2fsck -fn and read back
// identically with debugfs rdump; a full volume; the options.
import { execFileSync, spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTree, makeImage, NS, NS_MTIME, VARIANTS, walkHost, type Info } from './helpers/ext2.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, pattern, rumpMount, rumpUnmount, run, serverScript, sh, tempDir,
} from './helpers/mount.js';

function shOk(script: string): string {
  const r = sh(script);
  expect(r.stderr, r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

function fsckClean(img: string): void {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  const text = r.stdout + r.stderr;
  expect(text.split('\n').filter(l => l && !/^e2fsck |^Pass \d|^.*: \d+\/\d+ files/.test(l)), text).toEqual([]);
  expect(r.status, text).toBe(0);
}

function mountImage(img: string, opts: string[] = []) {
  const mp = path.join(path.dirname(img), `mnt-${path.basename(img)}`);
  nfs.mkdirSync(mp, { recursive: true });
  return rumpMount('rump_ext2fs', [...opts, img, mp], mp);
}

const started = Math.floor(Date.now() / 1000) - 60;

/**
 * What rdump keeps: types, modes (without setuid, setgid and sticky, which
 * it drops), owners, sizes, contents, targets; the mtimes of files
 * the workload did not change.
 */
function comparable(m: Map<string, Info>): Map<string, Partial<Info>> {
  const out = new Map<string, Partial<Info>>();
  for (const [k, i] of m) {
    if (!['file', 'dir', 'link'].includes(i.type)) continue;
    const { nlink: _n, mtime, ...all } = i;
    const rest = { ...all, mode: all.mode & ~0o7000 };
    const old = mtime < started ? { mtime } : {};
    out.set(k, i.type === 'file' ? { ...rest, ...old } : i.type === 'link' ? { type: i.type, target: i.target, size: i.size } : rest);
  }
  return out;
}

describe.skipIf(SKIP_FUSE)('rump_ext2fs through FUSE', () => {
  let src: string;
  let source: Map<string, Info>;
  let dir: string;
  beforeAll(() => {
    ensureBuilt();
    // Not tempDir(): cleanupMounts removes those after each test.
    dir = nfs.mkdtempSync(path.join(os.tmpdir(), 'rump-ext2fs-'));
    src = path.join(dir, 'src');
    nfs.mkdirSync(src);
    buildTree(src);
    source = walkHost(src);
  }, 120_000);
  afterEach(cleanupMounts);
  afterAll(() => { if (dir) nfs.rmSync(dir, { recursive: true, force: true }); });

  for (const v of VARIANTS.filter(x => ['ext4-4k-256', 'ext2-1k-128', 'ext3-1k-256'].includes(x.name))) {
    it(`${v.name}: what mke2fs -d wrote reads back exactly (names, modes, owners, times, links, devices, sha256)`, async () => {
      const img = path.join(dir, `${v.name}.img`);
      makeImage(v, src, img);
      const m = mountImage(img, ['-o', 'ro']);
      const got = walkHost(m.mountpoint);
      const want = new Map(source);
      if (v.inode > 128) want.set('ns.txt', { ...want.get('ns.txt')!, mtime: NS_MTIME });
      expect([...got.keys()]).toEqual([...want.keys()]);
      for (const [k, i] of want) expect(got.get(k), k).toEqual(i);
      if (v.inode > 128) {
        // The FUSE transport carries milliseconds (the in-process test checks the nanoseconds).
        expect(shOk(`stat -c %y '${m.mountpoint}/ns.txt'`)).toContain(`.${String(NS).slice(0, 3)}`);
      }
      await rumpUnmount(m);
    });
  }

  it('ext4 asked read-write is served read-only (extents are not written)', async () => {
    const img = path.join(dir, 'ro4.img');
    makeImage(VARIANTS.find(x => x.name === 'ext4-4k-256')!, src, img, 32);
    const m = mountImage(img);
    const r = sh(`touch '${m.mountpoint}/x'`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
    await rumpUnmount(m);
    fsckClean(img);
  });

  it('ext2: cp -a, tar x, mv, rm -r, truncate, ln, chmod, chown, touch -d; e2fsck -fn clean; rdump reads it back', async () => {
    const work = tempDir('rump-ext2fs-rw-');
    const img = path.join(work, 'rw.img'), ref = path.join(work, 'ref'), out = path.join(work, 'out');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-b', '1024', img, '128M'], { stdio: 'pipe' });
    const tarball = path.join(work, 'src.tar');
    shOk(`tar -C '${src}' --exclude=./sock -S -cf '${tarball}' .`);
    const workload = `set -e
cp -a '${src}' copy
mkdir t && tar -C t -xf '${tarball}'
mv copy/dir moved-dir
mv t/hello.txt t/dir/sub/renamed.txt
mv t/many t/dir/many-moved
rm -r copy/many t/sticky
truncate -s 1000 t/dir/three-mib
truncate -s 200000 copy/block-and-one
ln t/linked t/another-name
ln -s ../t/linked copy/rel-link
chmod 4711 t/setuid
chmod 700 moved-dir
chown 1234:5678 t/empty
chown -h 42:43 copy/fast-link
touch -d '2030-01-02 03:04:05.123456789' t/private
touch -d '1990-05-06 07:08:09' moved-dir/sub/deep/file
printf 'appended' >> t/dir/sub/deep/file`;
    nfs.mkdirSync(ref);
    shOk(`cd '${ref}' && ${workload}`);
    const m = mountImage(img);
    shOk(`cd '${m.mountpoint}' && ${workload}`);
    // Hard links counted; times to the nanosecond while mounted (a 128-byte inode keeps seconds on disk).
    expect(shOk(`stat -c '%h %y' '${m.mountpoint}/t/linked' '${m.mountpoint}/t/private'`)).toBe(
      shOk(`stat -c '%h %y' '${ref}/t/linked'`) + '1 2030-01-02 03:04:05.123456789 +0000\n');
    await rumpUnmount(m);
    fsckClean(img);
    expect(execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toMatch(/Filesystem state:\s+clean/);
    nfs.mkdirSync(out);
    execFileSync('debugfs', ['-R', `rdump / ${out}`, img], { stdio: 'pipe' });
    nfs.rmSync(path.join(out, 'lost+found'), { recursive: true });
    const got = comparable(walkHost(out)), want = comparable(walkHost(ref));
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [k, i] of want) expect(got.get(k), k).toEqual(i);
    // Set-id bits and special files, as debugfs sees them (rdump drops and skips them).
    expect(execFileSync('debugfs', ['-R', 'stat /t/setuid', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
      .toMatch(/Mode:\s+04711/);
    expect(execFileSync('debugfs', ['-R', 'stat /copy/sticky', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
      .toMatch(/Mode:\s+01777/);
    expect(execFileSync('debugfs', ['-R', 'stat /t/bigdev', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
      .toMatch(/Device major\/minor number: 300:70000/);
  }, 120_000);

  it('a full volume: ENOSPC, and the image stays clean', async () => {
    const work = tempDir('rump-ext2fs-full-');
    const img = path.join(work, 'full.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', img, '8M'], { stdio: 'pipe' });
    const m = mountImage(img);
    const r = sh(`dd if=/dev/zero of='${m.mountpoint}/fill' bs=64k status=none; echo rc=$?; for i in 1 2 3; do echo x > '${m.mountpoint}/more'$i || true; done; df -k '${m.mountpoint}' | tail -1`);
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.stdout).toMatch(/rc=1/);
    // Room again once the big file goes.
    nfs.rmSync(path.join(m.mountpoint, 'fill'));
    nfs.writeFileSync(path.join(m.mountpoint, 'after'), 'x');
    await rumpUnmount(m);
    fsckClean(img);
  });

  it('a 1 GiB file (1 KiB blocks: triple indirect) written at its start, middle and end reads back', async () => {
    const work = tempDir('rump-ext2fs-big-');
    const img = path.join(work, 'big.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-b', '1024', img, '64M'], { stdio: 'pipe' });
    const chunk = path.join(work, 'chunk');
    nfs.writeFileSync(chunk, pattern(3 << 20, 77));
    const m = mountImage(img);
    const f = path.join(m.mountpoint, 'gib');
    shOk(`dd if='${chunk}' of='${f}' bs=1M status=none && dd if='${chunk}' of='${f}' bs=1M seek=500 conv=notrunc status=none && ` +
      `dd if='${chunk}' of='${f}' bs=1M seek=1021 conv=notrunc status=none`);
    expect(nfs.statSync(f).size).toBe(1 << 30);
    const want = shOk(`cat '${chunk}' | sha256sum`);
    for (const at of [0, 500, 1021]) expect(shOk(`dd if='${f}' bs=1M skip=${at} count=3 status=none | sha256sum`)).toBe(want);
    expect(shOk(`dd if='${f}' bs=1M skip=3 count=497 status=none | tr -d '\\0' | wc -c`)).toBe('0\n');
    await rumpUnmount(m);
    fsckClean(img);
    // debugfs finds the last block where the driver put it.
    const last = Number(execFileSync('debugfs', ['-R', `bmap /gib ${(1 << 20) - 1}`, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const blk = Buffer.alloc(1024);
    const fd = nfs.openSync(img, 'r');
    try { nfs.readSync(fd, blk, 0, 1024, last * 1024); } finally { nfs.closeSync(fd); }
    expect(blk.equals(pattern(3 << 20, 77).subarray((3 << 20) - 1024))).toBe(true);
  }, 60_000);

  it('options: sb= reads a backup superblock (read-only); unknown options and bad values are refused', async () => {
    const img = path.join(dir, 'opts.img');
    makeImage(VARIANTS.find(x => x.name === 'ext2-1k-128')!, src, img, 32);
    const m = mountImage(img, ['-o', 'sb=8193,errors=remount-ro,nouser_xattr,acl']);
    expect(nfs.readFileSync(path.join(m.mountpoint, 'hello.txt'), 'utf8')).toBe('hello, world\n');
    expect(sh(`touch '${m.mountpoint}/x'`).stderr).toMatch(/Read-only file system/);
    await rumpUnmount(m);
    for (const [opt, msg] of [['bogus', /unknown option bogus/], ['errors=explode', /bad value for errors/], ['sb=x', /bad value for sb/]] as const) {
      const mp = tempDir('rump-ext2fs-opt-');
      const r = run(process.execPath, [serverScript('rump_ext2fs'), '-o', opt, img, mp]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});
