// rump_exfat through a real FUSE mount, judged by the real tools: images made
// by mkfs.exfat and filled by exfat-fuse read back exactly through the mount;
// trees written through the mount by cp, tar, mv, rm, truncate and touch are
// clean for fsck.exfat and read back identically by exfat-fuse; a full
// volume, a big directory, the mount options.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fsckExfat, mkexfat, NAMES, volumeFlags, withExfatFuse } from './helpers/exfat.js';
import { sha } from './helpers/iso.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, pattern, rumpMount, rumpUnmount, run, serverScript, sh, tempDir,
} from './helpers/mount.js';

const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' };

function ok(r: ReturnType<typeof run>): string {
  expect(r.stderr, r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}
const shOk = (script: string) => ok(sh(script, { env }));

/** Whatever a user sees of a tree: names and types, sizes, contents. */
function listing(dir: string): string {
  return shOk(`cd '${dir}' && echo '== find' && find . -mindepth 1 -printf '%p %y\\n' | sort
echo '== sizes' && find . -type f -printf '%p %s\\n' | sort
echo '== sums' && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`);
}

/** Long, non-ASCII and astral names, nesting, empty things, and two files whose appends interleave. */
function fixture(dir: string): void {
  const put = (p: string, data: Buffer | string) => {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), data);
  };
  put('README.txt', 'read me\n');
  put(NAMES.long, pattern(3000, 1));
  put(NAMES.longCjk, pattern(100, 2));
  put(NAMES.nonAscii, pattern(70000, 3));
  put(NAMES.astral, 'astral\n');
  put(`${NAMES.greek}/b/c/deep.txt`, 'deep\n');
  put('big.bin', pattern(3_000_000, 4));
  put('empty', '');
  mkdirSync(path.join(dir, 'empty dir'));
}
const interleave = (d: string) => `for i in $(seq 1 30); do head -c 5000 '${d}/big.bin' >> '${d}/frag-a'; tail -c 7000 '${d}/big.bin' >> '${d}/frag-b'; done`;

function mountImage(img: string, opts: string[] = []) {
  const mp = `${img}.mnt`;
  mkdirSync(mp, { recursive: true });
  return rumpMount('rump_exfat', [...opts, img, mp], mp, { TZ: 'UTC' });
}

describe.skipIf(SKIP_FUSE)('rump_exfat through FUSE', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  for (const cs of [4096, 65536]) {
    it(`${cs}-byte clusters: what exfat-fuse wrote reads back exactly`, async () => {
      const dir = tempDir('rump-exfat-');
      const src = path.join(dir, 'src');
      fixture(src);
      shOk(interleave(src));
      const img = mkexfat(dir, 'x.img', 64, cs);
      withExfatFuse(img, (m) => shOk(`cp -r '${src}'/. '${m}' && rm '${m}/frag-a' '${m}/frag-b' && ${interleave(m)}`));
      const m = mountImage(img, ['-o', 'ro']);
      expect(mountAt(m.mountpoint)?.options).toMatch(/^ro,/);
      expect(listing(m.mountpoint)).toBe(listing(src));
      // Case-insensitive names, case kept in listings.
      expect(shOk(`cat '${m.mountpoint}/readme.TXT'`)).toBe('read me\n');
      expect(shOk(`ls '${m.mountpoint}' | grep -c README.txt`)).toBe('1\n');
      await rumpUnmount(m);
      fsckExfat(img);
    });
  }

  it('cp -a, tar x, mv (also case only), rm -r, truncate, touch -d: fsck.exfat is clean and exfat-fuse reads the same', async () => {
    const dir = tempDir('rump-exfat-');
    const fix = path.join(dir, 'fix'), ref = path.join(dir, 'ref');
    fixture(fix);
    writeFileSync(path.join(fix, 'gone.bin'), pattern(70_000, 5));
    writeFileSync(path.join(fix, 'over.txt'), pattern(40_000, 6));
    mkdirSync(path.join(fix, 'gonedir/inner'), { recursive: true });
    writeFileSync(path.join(fix, 'gonedir/inner/x'), 'x');
    const tarball = path.join(dir, 'fix.tar');
    shOk(`tar -C '${fix}' -cf '${tarball}' .`);
    const img = mkexfat(dir, 'w.img', 64, 4096);
    const workload = `set -e
cp -a '${fix}' w
mkdir t && tar -C t --no-same-owner --no-same-permissions -xf '${tarball}'
${interleave('w')}
mv w/README.txt w/renamed.txt
mv 'w/${NAMES.greek}/b/c/deep.txt' t/moved.txt
mv 'w/${NAMES.greek}' 'w/Greek, renamed'
mv 't/${NAMES.nonAscii}' w/
rm w/gone.bin && rm -r t/gonedir
printf 'shorter now' > w/over.txt
dd if=/dev/zero of=t/over.txt bs=1000 seek=10 count=3 conv=notrunc status=none
truncate -s 12345 w/empty
truncate -s 100 w/big.bin
truncate -s 5000000 t/big.bin
touch -d '2021-03-04 05:06:07.89' w/renamed.txt
touch -d '1999-12-31 23:59:59' t/moved.txt
mv w/renamed.txt w/Renamed.TXT
mv -T 'w/Greek, renamed' 'w/GREEK, Renamed'`;
    mkdirSync(ref);
    shOk(`cd '${ref}' && ${workload}`);

    const m = mountImage(img);
    expect(volumeFlags(img) & 2).toBe(2);
    shOk(`cd '${m.mountpoint}' && ${workload}`);
    expect(listing(m.mountpoint)).toBe(listing(ref));
    // exFAT keeps 10 ms.
    expect(shOk(`cd '${m.mountpoint}' && stat -c '%n %y' w/Renamed.TXT t/moved.txt`)).toBe(
      'w/Renamed.TXT 2021-03-04 05:06:07.890000000 +0000\nt/moved.txt 1999-12-31 23:59:59.000000000 +0000\n');
    await rumpUnmount(m);
    expect(volumeFlags(img) & 2).toBe(0);
    fsckExfat(img);
    withExfatFuse(img, (f) => {
      expect(listing(f)).toBe(listing(ref));
      // exfat-fuse shows whole seconds.
      expect(shOk(`cd '${f}' && TZ=UTC stat -c '%n %y' w/Renamed.TXT t/moved.txt`)).toBe(
        'w/Renamed.TXT 2021-03-04 05:06:07.000000000 +0000\nt/moved.txt 1999-12-31 23:59:59.000000000 +0000\n');
    }, true);
  });

  it('a full volume: dd stops with ENOSPC, the image stays clean, earlier files intact', async () => {
    const dir = tempDir('rump-exfat-');
    const img = mkexfat(dir, 'full.img', 16, 4096);
    const keep = pattern(1_000_000, 3);
    writeFileSync(path.join(dir, 'keep'), keep);
    const m = mountImage(img);
    shOk(`cp '${dir}/keep' '${m.mountpoint}/keep.bin' && mkdir '${m.mountpoint}/d' && echo small > '${m.mountpoint}/d/s.txt'`);
    const r = sh(`dd if=/dev/zero of='${m.mountpoint}/fill' bs=64k`, { env });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`dd: error writing '${m.mountpoint}/fill': No space left on device`);
    expect(shOk(`df -B1 --output=avail '${m.mountpoint}' | tail -1`).trim()).toBe('0');
    const r2 = sh(`cp '${dir}/keep' '${m.mountpoint}/d/another'`, { env });
    expect(r2.stderr).toMatch(/No space left on device/);
    expect(shOk(`sha256sum < '${m.mountpoint}/keep.bin'`)).toContain(sha(keep));
    await rumpUnmount(m);
    fsckExfat(img);
    withExfatFuse(img, (f) => {
      expect(sha(readFileSync(path.join(f, 'keep.bin')))).toBe(sha(keep));
      expect(readFileSync(path.join(f, 'd/s.txt'), 'utf8')).toBe('small\n');
    }, true);
  });

  it('2,000 files in one directory written through the mount: exfat-fuse lists them all', async () => {
    const dir = tempDir('rump-exfat-');
    const img = mkexfat(dir, 'many.img', 64, 4096);
    const m = mountImage(img);
    shOk(`mkdir '${m.mountpoint}/many' && cd '${m.mountpoint}/many' && seq 1 2000 | sed 's/^/file-with-a-longer-name-/' | xargs touch`);
    const here = shOk(`ls '${m.mountpoint}/many' | sort`);
    await rumpUnmount(m);
    fsckExfat(img);
    withExfatFuse(img, (f) => expect(shOk(`ls '${f}/many' | sort`)).toBe(here), true);
    expect(here.split('\n').filter(Boolean)).toHaveLength(2000);
  }, 80_000);

  it('-o uid=1000,gid=1000,umask=077 (and fmask, dmask) show in ls -ln; unknown options are refused', async () => {
    const dir = tempDir('rump-exfat-');
    const img = mkexfat(dir, 'o.img', 16, 4096);
    withExfatFuse(img, (f) => { mkdirSync(path.join(f, 'D')); writeFileSync(path.join(f, 'F'), 'f\n'); });
    let m = mountImage(img, ['-o', 'uid=1000,gid=1000,umask=077']);
    expect(shOk(`ls -ln '${m.mountpoint}' | grep -v ^total | awk '{print $1, $3, $4, $NF}'`)).toBe('drwx------ 1000 1000 D\n-rwx------ 1000 1000 F\n');
    await rumpUnmount(m);
    m = mountImage(img, ['-o', 'fmask=133,dmask=022,iocharset=utf8,errors=continue,time_offset=60,discard,allow_utime=022']);
    expect(shOk(`ls -ln '${m.mountpoint}' | grep -v ^total | awk '{print $1, $NF}'`)).toBe('drwxr-xr-x D\n-rw-r--r-- F\n');
    await rumpUnmount(m);
    for (const bad of ['nosuchoption', 'errors=explode', 'iocharset=latin1', 'time_offset=7']) {
      const r = run(process.execPath, [serverScript('rump_exfat'), '-o', bad, img, `${img}.mnt`], { env });
      expect(r.status, bad).toBe(1);
      expect(r.stderr, bad).toMatch(/unknown option|bad value|only UTF-8/);
    }
    fsckExfat(img);
  });

  it('-o ro refuses every write with EROFS and leaves the image byte-identical', async () => {
    const dir = tempDir('rump-exfat-');
    const img = mkexfat(dir, 'ro.img', 16, 4096);
    withExfatFuse(img, (f) => { mkdirSync(path.join(f, 'D')); writeFileSync(path.join(f, 'F'), 'f\n'); });
    const before = sha(readFileSync(img));
    const m = mountImage(img, ['-o', 'ro']);
    const mp = m.mountpoint;
    for (const cmd of [`touch ${mp}/new`, `echo x >> ${mp}/F`, `mkdir ${mp}/E`, `rm ${mp}/F`, `rmdir ${mp}/D`,
      `mv ${mp}/F ${mp}/G`, `truncate -s 0 ${mp}/F`, `touch -d 2001-01-01 ${mp}/F`]) {
      const r = sh(cmd, { env });
      expect(r.status, cmd).not.toBe(0);
      expect(r.stderr, cmd).toContain('Read-only file system');
    }
    expect(shOk(`cat ${mp}/F`)).toBe('f\n');
    await rumpUnmount(m);
    expect(sha(readFileSync(img))).toBe(before);
  });
});
