// rump_ntfs through a real FUSE mount: an image made by mkntfs and filled
// through ntfs-3g, read with ordinary programs and compared with what
// ntfs-3g itself shows (names, types, sizes, link counts, times, targets,
// contents); the options; read-only in every way, the image unchanged.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ROOT, SKIP_FUSE, cleanupMounts, ensureBuilt, rumpMount, rumpUnmount, run, serverPids, serverScript, sh, tempDir,
} from './helpers/mount.js';
import { makeNtfsImage, ntfs3gTarget, ntfsEnv, sha, walkHost, type NtfsFixture } from './helpers/ntfs.js';

let fx: NtfsFixture;
const BIG = 3000;

beforeAll(async () => {
  ensureBuilt();
  // 10,000 files in one directory are read in-process (ntfs.test.ts); here 3,000 keep the file fast.
  fx = await makeNtfsImage(tempDir('rump-ntfs-img-'), BIG);
}, 60_000);

afterEach(async () => {
  for (const d of mounted.splice(0)) await unmount(d);
});
afterAll(cleanupMounts);

const mounted: string[] = [];

function mountNtfs(options?: string): string {
  const mp = tempDir('rump-ntfs-mnt-');
  rumpMount('rump_ntfs', [...(options ? ['-o', options] : []), fx.img, mp], mp);
  mounted.push(mp);
  return mp;
}

async function unmount(mp: string): Promise<void> {
  const [pid] = serverPids(mp);
  await rumpUnmount({ prog: 'rump_ntfs', mountpoint: mp, pid });
}

/** A script's stdout, run in dir; it must succeed. */
function out(dir: string, script: string): string {
  const r = sh(script, { cwd: dir, env: ntfsEnv });
  if (r.status !== 0) throw new Error(`in ${dir}: ${script}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(SKIP_FUSE)('rump_ntfs', () => {
  it('the mounted tree is what ntfs-3g shows: names, types, ids, sizes, links, times, targets, contents', () => {
    const mp = mountNtfs();
    // This FUSE transport passes times as (rounded) milliseconds: compared to within one.
    const near = (got: string, want: string) => Math.abs(Number(BigInt(got) - BigInt(want))) < 1_000_000 ? want : got;
    const ref = fx.ref;
    const got = new Map([...walkHost(mp)].map(([p, i]) => {
      const w = ref.get(p);
      return [p, w ? { ...i, mtimeNs: near(i.mtimeNs, w.mtimeNs), ctimeNs: near(i.ctimeNs, w.ctimeNs) } : i];
    }));
    expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
    expect(out(mp, 'readlink foreign/wsl-link')).toBe('target/x\n');
    expect(sh('cat foreign/dedup', { cwd: mp }).stderr).toMatch(/Operation not supported/);
    for (const [p, want] of ref) {
      const g = got.get(p)!;
      // ntfs-3g also counts a DOS 8.3 name as a link; here only names that are shown count.
      const nlink = p === 'Long File Name.txt' ? want.nlink - 1 : want.nlink;
      if (want.type === 'dir') expect({ p, ...g, size: 0 }).toEqual({ p, ...want, nlink, size: 0 });
      else if (want.type === 'link') {
        const target = ntfs3gTarget(fx, p, want.target!);
        expect({ p, ...g }).toEqual({ p, ...want, nlink, target, size: Buffer.byteLength(target) });
      } else expect({ p, ...g }).toEqual({ p, ...want, nlink });
    }
    // Ordinary programs: find, ls, sha256sum, cat through links (junctions included), case-insensitive names.
    expect(out(mp, 'find big -type f | wc -l').trim()).toBe(String(BIG));
    expect(out(mp, 'ls links/junction | LC_ALL=C sort').split('\n').filter(Boolean)).toEqual(['mixed.bin', 'random.bin', 'sparse.bin', 'text.txt']);
    expect(out(mp, 'cat links/winabs links/winrel links/up')).toBe('hello, ntfs\n'.repeat(3));
    expect(out(mp, 'cat NAMES/mixedcase.txt')).toBe('case\n');
    expect(out(mp, 'dd if=sparse.bin bs=1M skip=3072 count=1 status=none | sha256sum').split(' ')[0]).toBe(sha(Buffer.alloc(1 << 20)));
    expect(out(mp, 'stat -c %s sparse.bin').trim()).toBe(String(5 * 2 ** 30));
    expect(out(mp, 'ls -a').split('\n')).not.toContain('$MFT');
  }, 60_000);

  it('every write fails with EROFS and the image is unchanged', async () => {
    const before = sha(readFileSync(fx.img));
    const mp = mountNtfs();
    for (const cmd of ['touch new', 'mkdir d', 'rm small/a.txt', 'mv small/a.txt b', 'chmod 600 small/a.txt', 'ln -s x l',
      'ln small/a.txt l2', 'sh -c "echo x >> small/a.txt"', 'truncate -s 0 small/a.txt', 'rmdir small', 'setfattr -n user.x -v 1 small/a.txt']) {
      const r = sh(cmd, { cwd: mp, env: ntfsEnv });
      expect({ cmd, status: r.status === 0 ? 0 : 1 }).toEqual({ cmd, status: 1 });
      expect({ cmd, err: /Read-only file system/.test(r.stderr) }).toEqual({ cmd, err: true });
    }
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find(l => l.split(' ')[4] === mp)!;
    expect(line.split(' ')[5].split(',')).toContain('ro');
    await unmount(mp);
    mounted.splice(mounted.indexOf(mp), 1);
    expect(sha(readFileSync(fx.img))).toBe(before);
  });

  it('uid, gid, umask, fmask, dmask, show_sys_files; rw becomes ro with a warning; unknown options refused', async () => {
    const a = mountNtfs('uid=1234,gid=56,fmask=137,dmask=027');
    expect(out(a, 'stat -c "%u %g %a" small/a.txt small').trim().split('\n')).toEqual(['1234 56 640', '1234 56 750']);
    const b = mountNtfs('umask=077,show_sys_files');
    expect(out(b, 'stat -c %a small/a.txt').trim()).toBe('700');
    expect(out(b, 'ls').split('\n')).toEqual(expect.arrayContaining(['$MFT', '$UpCase', '$Extend']));
    expect(out(b, 'stat -c %s \\$UpCase').trim()).toBe('131072');
    const mp = tempDir('rump-ntfs-mnt-');
    const r = run(process.execPath, [serverScript('rump_ntfs'), '-o', 'rw', fx.img, mp]);
    expect(r.status).toBe(0);
    mounted.push(mp);
    expect(r.stderr).toMatch(/read-only; mounting ro/);
    expect(sh('touch x', { cwd: mp }).stderr).toMatch(/Read-only file system/);
    const bad = run(process.execPath, [serverScript('rump_ntfs'), '-o', 'compression', fx.img, tempDir('rump-ntfs-mnt-')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown option compression/);
  });

  it('rumpmount: -t rump.ntfs3, and -t rump (the type detected from the content)', async () => {
    for (const type of [['-t', 'rump.ntfs3'], ['-t', 'rump']]) {
      const mp = tempDir('rump-ntfs-mnt-');
      const r = run(process.execPath, [path.join(ROOT, 'dist/scripts/rumpmount.js'), ...type, fx.img, mp]);
      expect(r.status, r.stderr).toBe(0);
      mounted.push(mp);
      const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find(l => l.split(' ')[4] === mp);
      expect(line?.split(' - ')[1]).toMatch(/^fuse\.ntfs /);
      expect(out(mp, 'cat small/a.txt')).toBe('hello, ntfs\n');
    }
  });
});
