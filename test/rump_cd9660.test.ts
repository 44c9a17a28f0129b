// rump_cd9660 through a real FUSE mount: images made by genisoimage and
// xorriso from a source tree, read with ordinary programs (find, stat,
// readlink, sha256sum, ls, diff, dd) and compared with the tree itself;
// the options; multi-session; read-only in every way; a corrupt image; a
// file over 4 GiB.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTree, bytes, HUGE_MARKS, HUGE_SIZE, imgName, isoEnv, LONG, makeHugeIso, makeIso, makeMultiSession, sha, UNICODE, VARIANTS,
} from './helpers/iso.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, rumpMount, rumpUnmount, run, serverPids, serverScript, sh, tempDir,
} from './helpers/mount.js';

let tmp = '';
let src = '';
const img = (name: string) => path.join(tmp, name);

/** A script's stdout, run in dir; it must succeed. */
function out(dir: string, script: string): string {
  const r = sh(script, { cwd: dir, env: isoEnv });
  if (r.status !== 0) throw new Error(`in ${dir}: ${script}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function mountIso(image: string, options?: string) {
  const mp = tempDir('rump-cd9660-mnt-');
  rumpMount('rump_cd9660', [...(options ? ['-o', options] : []), image, mp], mp);
  return mp;
}

/** The unmount that goes with mountIso (cleanupMounts does it too when a test fails first). */
async function unmount(mp: string): Promise<void> {
  const [pid] = serverPids(mp);
  await rumpUnmount({ prog: 'rump_cd9660', mountpoint: mp, pid });
}

/** The access modes (O_ACCMODE) of the server's open descriptions of image, from /proc/PID/fdinfo. */
function imageAccessModes(mp: string, image: string): number[] {
  const [pid] = serverPids(mp);
  return readdirSync(`/proc/${pid}/fd`).filter(fd => {
    try { return readlinkSync(`/proc/${pid}/fd/${fd}`) === image; } catch { return false; }
  }).map(fd => Number.parseInt(/^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1], 8) & 3);
}

/** Where Rock Ridge writers put directories deeper than 8 levels; only on the image. */
const MOVED = /^\.?rr_moved(\/|$)/;

const FIND = `find . -mindepth 1 -printf '%P\\n' | LC_ALL=C sort`;
const STAT = `find . -mindepth 1 -print0 | xargs -0 stat -c '%n|%F|%s|%a|%u|%g|%Y|%t:%T' | LC_ALL=C sort`;
const SUMS = `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`;
const LINKS = `readlink links/rel links/abs links/dir links/longtarget`;
const LSDIRS = `. Dir Dir/Sub links a/b/c/d/e/f/g/h/i/j`;

interface Row { type: string; size: string; mode: string; uid: string; gid: string; mtime: string; rdev: string }
function statRows(text: string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [n, type, size, mode, uid, gid, mtime, rdev] = line.split('|');
    rows.set(n.replace(/^\.\//, ''), { type, size, mode, uid, gid, mtime, rdev });
  }
  return rows;
}

/** ls -ln without what an image need not keep: link counts, directory sizes, symlink times, totals. */
function lsNormal(text: string): string[] {
  return text.split('\n').filter(l => l && !l.startsWith('total') && !/ \.?rr_moved$/.test(l)).map(l => {
    const f = l.split(/ +/);
    if (f.length < 7) return l;
    const [perm, , uid, gid, size, time, ...name] = f;
    return [perm, uid, gid, perm.startsWith('d') ? '-' : size, perm.startsWith('l') ? '-' : time, ...name].join(' ');
  });
}

describe.skipIf(SKIP_FUSE)('rump_cd9660 through FUSE', () => {
  beforeAll(() => {
    ensureBuilt();
    tmp = mkdtempSync(path.join(tmpdir(), 'rump-cd9660-'));
    src = path.join(tmp, 'src');
    mkdirSync(src);
    buildTree(src);
    for (const v of VARIANTS) makeIso(v, img(imgName(v)), src);
  }, 120_000);
  afterEach(cleanupMounts);
  afterAll(async () => {
    await cleanupMounts();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const srcStat = () => statRows(out(src, STAT));

  for (const v of VARIANTS.filter(x => x.rr)) {
    it(`${v.tool} ${v.flags.join(' ')}: find, stat, readlink, sha256sum, ls -l and diff -r agree with the source`, async () => {
      const mp = mountIso(img(imgName(v)));
      expect(mountAt(mp)).toMatchObject({ fstype: 'fuse.cd9660', source: img(imgName(v)) });
      expect(mountAt(mp)!.options.split(',')).toContain('ro');

      expect(out(mp, FIND).split('\n').filter(p => !MOVED.test(p))).toEqual(out(src, FIND).split('\n'));
      expect(out(mp, SUMS)).toBe(out(src, SUMS));
      expect(out(mp, LINKS)).toBe(out(src, LINKS));
      // Contents and symlink targets; fifos and devices are compared by stat below (diff only says what they are).
      const d = run('diff', ['-r', '--no-dereference', '-x', 'fifo', '-x', 'chardev', '-x', 'rr_moved', '-x', '.rr_moved', src, mp]);
      expect(d.stdout + d.stderr).toBe('');
      expect(d.status).toBe(0);

      const want = srcStat();
      const got = statRows(out(mp, STAT));
      for (const [p, s] of want) {
        const g = got.get(p)!;
        expect({ p, type: g.type, rdev: g.rdev, size: s.type === 'directory' ? '-' : g.size })
          .toEqual({ p, type: s.type, rdev: s.rdev, size: s.type === 'directory' ? '-' : s.size });
        if (v.rr === 'R') {
          expect({ p, mode: g.mode, uid: g.uid, gid: g.gid }).toEqual({ p, mode: s.mode, uid: s.uid, gid: s.gid });
          if (s.type !== 'symbolic link') expect({ p, mtime: g.mtime }).toEqual({ p, mtime: s.mtime });
        } else {
          // -r: owned by root, readable by all, no write bits, execute for all if for any.
          expect({ p, uid: g.uid, gid: g.gid }).toEqual({ p, uid: '0', gid: '0' });
          if (s.type === 'regular file') expect({ p, mode: Number.parseInt(g.mode, 8) & 0o777 }).toEqual({ p, mode: Number.parseInt(s.mode, 8) & 0o111 ? 0o555 : 0o444 });
        }
      }
      if (v.rr === 'R') {
        const ls = `LC_ALL=C ls -ln --time-style=+%s ${LSDIRS}`;
        expect(lsNormal(out(mp, ls))).toEqual(lsNormal(out(src, ls)));
      }
      await unmount(mp);
    }, 30_000);
  }

  /** Joliet keeps 64 UCS-2 characters of a name: the long one is cut and the one outside the BMP mangled. */
  function checkJoliet(mp: string): void {
    const listed = out(mp, FIND).split('\n').filter(Boolean);
    const source = srcStat();
    const plain = [...source].filter(([p, s]) => (s.type === 'regular file' || s.type === 'directory') && !/[\u{10000}-\u{10ffff}]/u.test(p) &&
      p.split('/').every(c => c.length <= 64) && p.split('/').length <= 6).map(([p]) => p);
    for (const p of plain) expect(listed, `${p} in the Joliet tree`).toContain(p);
    for (const p of listed.filter(q => !q.startsWith(LONG.slice(0, 20)) && !q.startsWith('clef '))) expect(source.has(p), `${p} in the source`).toBe(true);
    const files = `sha256sum Dir/Hello.TXT '${UNICODE}' Dir/Sub/MixedCase.Data many/file-123 big.bin`;
    expect(out(mp, files)).toBe(out(src, files));
    expect(out(mp, `stat -c '%a %u %g' Dir/Hello.TXT Dir`)).toBe('555 0 0\n555 0 0\n');
    expect(run('readlink', [path.join(mp, 'links/rel')]).status).not.toBe(0);
  }

  it('Joliet names without Rock Ridge (genisoimage -J, xorriso -J) and with -o norrip', async () => {
    for (const name of ['genisoimage-J.iso', 'xorriso-J.iso']) {
      const mp = mountIso(img(name));
      checkJoliet(mp);
      await unmount(mp);
    }
    const both = mountIso(img('genisoimage-J-R.iso'), 'norrip');
    checkJoliet(both);
    await unmount(both);
  }, 30_000);

  it('-o nojoliet: Rock Ridge still wins; without it, ISO 9660 names as Linux shows them', async () => {
    const rr = mountIso(img('genisoimage-J-R.iso'), 'nojoliet');
    expect(out(rr, `readlink links/rel; cat '${UNICODE}'`)).toBe('../Dir/Hello.TXT\nunicode\n');
    await unmount(rr);
    for (const [name, opts] of [['genisoimage-J.iso', 'nojoliet'], ['genisoimage-J-R.iso', 'nojoliet,norrip'], ['xorriso-J-R.iso', 'nrr,nojoliet']]) {
      const mp = mountIso(img(name), opts);
      expect(out(mp, 'cat dir/hello.txt noext; ls dir')).toBe('hello, world\nno extension\nhello.txt\nsub\n');
      expect(run('ls', [path.join(mp, 'Dir')]).status).not.toBe(0);
      await unmount(mp);
    }
  }, 30_000);

  it('-o uid=,gid=,mode=,dmode= set what the medium does not say; uid= overrides a Rock Ridge owner', async () => {
    const mp = mountIso(img('genisoimage.iso'), 'uid=1000,gid=100,mode=0444,dmode=0500');
    expect(out(mp, `stat -c '%n %a %u %g' dir/hello.txt dir .`)).toBe('dir/hello.txt 444 1000 100\ndir 500 1000 100\n. 500 1000 100\n');
    expect(out(mp, 'ls -ln dir | grep hello')).toMatch(/^-r--r--r-- 1 1000 100 +13 .* hello\.txt\n$/);
    await unmount(mp);
    const rr = mountIso(img('genisoimage-R.iso'), 'uid=42');
    expect(out(rr, `stat -c '%a %u %g' owned`)).toBe('644 42 5678\n');
    await unmount(rr);
  }, 30_000);

  it('a multi-session image: the newest session by default, the first with -o session=1', async () => {
    const { img: ms } = makeMultiSession(path.join(tmp, 'ms'));
    const tree = 'find . -mindepth 1 -type f -printf "%P=" -exec cat {} \\; | LC_ALL=C sort';
    const newest = mountIso(ms);
    expect(out(newest, tree)).toBe('more/three=third session\nmore/two=second session\n');
    await unmount(newest);
    const first = mountIso(ms, 'session=1');
    expect(out(first, tree)).toBe('one=first session\n');
    await unmount(first);
  }, 30_000);

  it('writes fail with EROFS and leave the image byte for byte as it was', async () => {
    const image = img('xorriso-J-R.iso');
    const before = sha(readFileSync(image));
    const mp = mountIso(image);
    // Opened O_RDONLY, not merely refused writes.
    expect(imageAccessModes(mp, image)).toEqual([0]);
    for (const cmd of ['touch new', 'touch NOEXT', 'mkdir newdir', 'rm NOEXT', 'rmdir many', 'mv NOEXT moved', 'mv Dir Dir2',
      'echo x >> NOEXT', 'chmod 600 NOEXT', 'ln -s x sym', 'ln NOEXT hard', 'truncate -s 0 NOEXT']) {
      const r = sh(cmd, { cwd: mp });
      expect({ cmd, status: r.status }).not.toEqual({ cmd, status: 0 });
      expect(r.stderr, cmd).toContain('Read-only file system');
    }
    expect(out(mp, 'cat NOEXT; ls -d Dir; ls new moved 2>&1 | wc -l')).toBe('no extension\nDir\n2\n');
    await unmount(mp);
    expect(sha(readFileSync(image))).toBe(before);
  }, 30_000);

  it('opens the image read-only: a 0444 image on a read-only file system mounts, twice at once', async () => {
    // Root may open a 0444 file for writing; a read-only bind mount refuses even root.
    const dir = tempDir('rump-cd9660-ro-');
    const ro = tempDir('rump-cd9660-robind-');
    copyFileSync(img('genisoimage-R.iso'), path.join(dir, 'cd.iso'));
    chmodSync(path.join(dir, 'cd.iso'), 0o444);
    execFileSync('mount', ['--bind', dir, ro]);
    execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
    expect(sh(': >> cd.iso', { cwd: ro }).stderr).toContain('Read-only file system');
    const image = path.join(ro, 'cd.iso');
    const a = mountIso(image);
    const b = mountIso(image);
    expect(out(a, SUMS)).toBe(out(src, SUMS));
    expect(out(b, LINKS)).toBe(out(src, LINKS));
    await unmount(a);
    expect(out(b, 'cat Dir/Hello.TXT')).toBe('hello, world\n');
    await unmount(b);
  }, 30_000);

  it('a corrupt image (mutated primary volume descriptor): exit 32 with a clear message, nothing mounted', () => {
    const good = readFileSync(img('genisoimage-R.iso'));
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['bad-id.iso', b => { b.write('XXXXX', 16 * 2048 + 1, 'latin1'); }, /not an ISO 9660 file system: no volume descriptor at sector 16/],
      ['bad-type.iso', b => { b[16 * 2048] = 2; }, /not an ISO 9660 file system: no primary volume descriptor/],
      ['bad-bsize.iso', b => { b.writeUInt16LE(512, 16 * 2048 + 128); }, /EINVAL/],
      ['bad-root.iso', b => { b.writeUInt32LE(0x7fffffff, 16 * 2048 + 156 + 2); }, /EINVAL/],
    ];
    for (const [name, damage, message] of cases) {
      const b = Buffer.from(good);
      damage(b);
      writeFileSync(img(name), b);
      const mp = tempDir('rump-cd9660-mnt-');
      const r = run(process.execPath, [serverScript('rump_cd9660'), img(name), mp]);
      expect({ name, status: r.status }).toEqual({ name, status: 32 });
      expect(r.stderr).toContain(`rump_cd9660: ${img(name)}: `);
      expect(r.stderr).toMatch(message);
      expect(mountAt(mp)).toBeNull();
      expect(serverPids(mp)).toEqual([]);
    }
  });

  it('a file over 4 GiB (xorriso -iso-level 3, sparse): dd around the 4 GiB boundary reads what was written', async () => {
    const huge = makeHugeIso(tmp);
    try {
      const mp = mountIso(huge);
      const file = path.join(mp, 'huge.bin');
      expect(out(mp, 'stat -c %s huge.bin')).toBe(`${HUGE_SIZE}\n`);
      /** What the file holds at [off, off + len): zeros and the marks. */
      const expected = (off: number, len: number) => {
        const b = Buffer.alloc(Math.max(0, Math.min(len, HUGE_SIZE - off)));
        HUGE_MARKS.forEach((m, i) => {
          const mark = bytes(1000, 100 + i);
          const from = Math.max(m, off), to = Math.min(m + 1000, off + b.length);
          if (from < to) mark.copy(b, from - off, from - m, to - m);
        });
        return b;
      };
      const dd = (off: number, len: number) => execFileSync('dd', [`if=${file}`, 'bs=64K', 'iflag=skip_bytes,count_bytes', `skip=${off}`, `count=${len}`, 'status=none'], { maxBuffer: 1 << 24 });
      const ranges = [...HUGE_MARKS.map(m => [Math.max(0, m - 100), 1200]), [2 ** 32 - (1 << 20), 2 << 20], [2 ** 32 - 1, 2], [HUGE_SIZE - 10, 100], [HUGE_SIZE, 10]];
      for (const [off, len] of ranges) expect({ off, sha: sha(dd(off, len)) }).toEqual({ off, sha: sha(expected(off, len)) });
      await unmount(mp);
    } finally {
      rmSync(huge, { force: true });
    }
  }, 90_000);
});
