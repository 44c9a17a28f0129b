// rump_udf through a real FUSE mount: genisoimage -udf bridge images and
// mkudffs images filled by wrudf, read with ordinary programs (find, stat,
// sha256sum, diff) and compared with the source tree; the bridge image as
// cd9660 sees it; detection by mount.rump (udf before ISO 9660, and
// -t rump.cd9660 still taking the ISO side); options; read-only in every
// way; a damaged image refused with a clear message.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isoEnv } from './helpers/iso.js';
import {
  SKIP_FUSE, ROOT, cleanupMounts, ensureBuilt, mountAt, rumpMount, rumpUnmount, run, serverPids, serverScript, sh, tempDir,
} from './helpers/mount.js';
import { BRIDGES, bridgeName, buildUdfTree, buildWrudfTree, makeBridge, sha, wrudfFill } from './helpers/udf.js';

let tmp = '';
let src = '';
let wsrc = '';
const img = (name: string) => path.join(tmp, name);

function out(dir: string, script: string): string {
  const r = sh(script, { cwd: dir, env: isoEnv });
  if (r.status !== 0) throw new Error(`in ${dir}: ${script}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function mountUdf(image: string, options?: string) {
  const mp = tempDir('rump-udf-mnt-');
  rumpMount('rump_udf', [...(options ? ['-o', options] : []), image, mp], mp);
  return mp;
}

async function unmount(mp: string): Promise<void> {
  const [pid] = serverPids(mp);
  await rumpUnmount({ prog: 'rump_udf', mountpoint: mp, pid });
}

const FIND = `find . -mindepth 1 -printf '%P %y\\n' | LC_ALL=C sort`;
const SUMS = `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`;
const FILETIMES = `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %s %Y'`;

describe.skipIf(SKIP_FUSE)('rump_udf through FUSE', () => {
  beforeAll(() => {
    ensureBuilt();
    tmp = mkdtempSync(path.join(tmpdir(), 'rump-udf-'));
    src = path.join(tmp, 'src');
    mkdirSync(src);
    buildUdfTree(src);
    for (const f of BRIDGES.slice(0, 2)) makeBridge(f, img(bridgeName(f)), src);
    wsrc = path.join(tmp, 'wsrc');
    buildWrudfTree(wsrc);
    execFileSync('mkudffs', ['--media-type=cdrw', '--blocksize=2048', '--udfrev=0x0201', '--noefe', '--new-file', img('wrudf.img'), '8192'], { stdio: 'ignore' });
    wrudfFill(img('wrudf.img'), wsrc);
  }, 120_000);
  afterEach(cleanupMounts);
  afterAll(async () => {
    await cleanupMounts();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('genisoimage -udf -R: find, sha256sum, stat and diff -r agree with the source; the ISO side too', async () => {
    const image = img(bridgeName(['-udf', '-R']));
    const mp = mountUdf(image);
    expect(mountAt(mp)).toMatchObject({ fstype: 'fuse.udf', source: image });
    expect(mountAt(mp)!.options.split(',')).toContain('ro');
    expect(out(mp, FIND)).toBe(out(src, FIND));
    expect(out(mp, SUMS)).toBe(out(src, SUMS));
    expect(out(mp, FILETIMES)).toBe(out(src, FILETIMES));
    const d = run('diff', ['-r', src, mp]);
    expect(d.stdout + d.stderr).toBe('');
    expect(d.status).toBe(0);
    expect(out(mp, `stat -c '%a %u %g' Dir/Hello.TXT Dir`)).toBe('444 65534 65534\n555 65534 65534\n');
    // The same image through rump_cd9660 holds the same files.
    const iso = tempDir('rump-udf-iso-');
    rumpMount('rump_cd9660', [image, iso], iso);
    expect(out(iso, SUMS)).toBe(out(mp, SUMS));
    execFileSync('umount', [iso]);
    await unmount(mp);
  }, 60_000);

  it('an mkudffs CD-RW image filled by wrudf (sparable partition) reads back as its source', async () => {
    const mp = mountUdf(img('wrudf.img'));
    expect(out(mp, FIND)).toBe(out(wsrc, FIND));
    expect(out(mp, SUMS)).toBe(out(wsrc, SUMS));
    expect(out(mp, FILETIMES)).toBe(out(wsrc, FILETIMES));
    expect(out(mp, `stat -c '%a %u %g' Dir/Hello.TXT`)).toBe('755 1234 5678\n');
    expect(out(mp, 'ls -A')).not.toContain('Non-Allocatable Space');
    await unmount(mp);
    const all = mountUdf(img('wrudf.img'), 'unhide');
    expect(out(all, 'ls -A')).toContain('Non-Allocatable Space');
    await unmount(all);
  }, 60_000);

  it('mount.rump: -t rump detects udf on a bridge image; -t rump.cd9660 takes its ISO 9660 side', async () => {
    const image = img(bridgeName(['-udf', '-R']));
    const helper = path.join(ROOT, 'dist/scripts/mount_rump.js');
    for (const [type, fstype] of [['rump', 'fuse.udf'], ['rump.udf', 'fuse.udf'], ['rump.cd9660', 'fuse.cd9660']]) {
      const mp = tempDir('rump-udf-auto-');
      const r = run(process.execPath, [helper, image, mp, '-t', type]);
      expect({ type, status: r.status, stderr: r.stderr }).toEqual({ type, status: 0, stderr: '' });
      expect(mountAt(mp)).toMatchObject({ fstype });
      expect(out(mp, 'cat Dir/Hello.TXT')).toBe('hello, world\n');
      const [pid] = serverPids(mp);
      await rumpUnmount({ prog: fstype, mountpoint: mp, pid });
    }
  }, 60_000);

  it('-o uid=,gid=,mode=,dmode=; unknown options refused', async () => {
    const mp = mountUdf(img(bridgeName(['-udf'])), 'uid=1000,gid=100,mode=0640,dmode=0750');
    expect(out(mp, `stat -c '%n %a %u %g' Dir/Hello.TXT Dir`)).toBe('Dir/Hello.TXT 640 1000 100\nDir 750 1000 100\n');
    await unmount(mp);
    const bad = tempDir('rump-udf-bad-');
    const r = run(process.execPath, [serverScript('rump_udf'), '-o', 'norock', img(bridgeName(['-udf'])), bad]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('unknown option norock');
    expect(mountAt(bad)).toBeNull();
  }, 30_000);

  it('writes fail with EROFS and leave the image byte for byte as it was', async () => {
    const image = img('wrudf.img');
    const before = sha(readFileSync(image));
    const mp = mountUdf(image);
    for (const cmd of ['touch new', 'touch empty', 'mkdir newdir', 'rm empty', 'rmdir a/b/c/d/e/f/g/h', 'mv empty moved', 'mv Dir Dir2',
      'echo x >> big.bin', 'chmod 600 big.bin', 'ln -s x sym', 'ln big.bin hard', 'truncate -s 0 big.bin']) {
      const r = sh(cmd, { cwd: mp });
      expect({ cmd, status: r.status }).not.toEqual({ cmd, status: 0 });
      expect(r.stderr, cmd).toContain('Read-only file system');
    }
    expect(out(mp, 'cat Dir/Hello.TXT; ls new moved 2>&1 | wc -l')).toBe('hello, world\n2\n');
    await unmount(mp);
    expect(sha(readFileSync(image))).toBe(before);
  }, 30_000);

  it('a damaged image: exit 32 with a clear message, nothing mounted', () => {
    const good = readFileSync(img(bridgeName(['-udf'])));
    const b = Buffer.from(good);
    // Every anchor: the one at 256 and the one in the last sector.
    for (const s of [256, good.length / 2048 - 1]) b[s * 2048 + 4] ^= 0xff;
    writeFileSync(img('noanchor.iso'), b);
    const mp = tempDir('rump-udf-mnt-');
    const r = run(process.execPath, [serverScript('rump_udf'), img('noanchor.iso'), mp]);
    expect(r.status).toBe(32);
    expect(r.stderr).toMatch(/rump_udf: .*noanchor\.iso: .*no anchor volume descriptor pointer/);
    expect(mountAt(mp)).toBeNull();
    expect(serverPids(mp)).toEqual([]);
  });
});
