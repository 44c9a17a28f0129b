// rump_msdos through a real FUSE mount, judged by the real tools: images made
// by mkfs.vfat and filled by mtools read back exactly through the mount;
// trees written through the mount by cp, tar, mv, rm, truncate and touch are
// clean for fsck.fat and read back identically by mtools after unmount; a
// full volume, a 300 MB file, the mount options, and damaged images.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  bpb, cleanBit, env, fats, fixtureTree, fsckClean, listing, mkfs, mountImage, mtools, peek, poke, sha, shOk,
} from './helpers/fat.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, pattern, processGone, rumpMount, rumpUnmount, run, serverPids, serverScript,
  sh, tempDir,
} from './helpers/mount.js';

describe.skipIf(SKIP_FUSE)('rump_msdos through FUSE', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  for (const f of fats) {
    it(`${f.name}: what mtools wrote reads back exactly (find, ls -l, sha256sum)`, async () => {
      const dir = tempDir('rump-msdos-');
      const src = path.join(dir, 'src');
      fixtureTree(src, f.big);
      const img = mkfs(dir, f.kb, f.args);
      shOk(`cd '${src}' && mcopy -s -i '${img}' ./* ::`);
      const m = mountImage(img, ['-o', 'ro']);
      const seen = listing(m.mountpoint);
      expect(seen).toBe(listing(src));
      expect(seen).toContain('./Ünïcødé ファイル.txt f');
      expect(seen).toContain(`./Documents and Settings/a very long directory name indeed/big file.bin ${f.big}`);
      // Short names reach the same files.
      expect(shOk(`cat '${m.mountpoint}/DOCUME~1/SAMEPR~1.DAT' | sha256sum`)).toContain(sha(pattern(700, 2)));
      await rumpUnmount(m);
    });
  }

  for (const f of fats) {
    it(`${f.name}: cp -a, tar x, mv, rm, overwrite, truncate, touch; then fsck.fat is clean and mtools agrees`, async () => {
      const dir = tempDir('rump-msdos-');
      const fix = path.join(dir, 'fix'), ref = path.join(dir, 'ref'), out = path.join(dir, 'out');
      fixtureTree(fix, f.big);
      writeFileSync(path.join(fix, 'gone.bin'), pattern(70_000, 5));
      writeFileSync(path.join(fix, 'over.txt'), pattern(40_000, 6));
      writeFileSync(path.join(fix, 'a.txt'), 'a\n');
      mkdirSync(path.join(fix, 'gonedir/inner'), { recursive: true });
      writeFileSync(path.join(fix, 'gonedir/inner/x'), 'x');
      const tarball = path.join(dir, 'fix.tar');
      shOk(`tar -C '${fix}' -cf '${tarball}' .`);
      const img = mkfs(dir, f.kb, f.args);
      const workload = `set -e
cp -a '${fix}' w
mkdir t && tar -C t -xf '${tarball}'
mv w/a.txt w/renamed.txt
mv w/DIR8/SUB/FILE.C t/moved.C
mv w/DIR8 'w/Dir Eight, renamed'
mv 't/Documents and Settings' w/docs-moved
rm w/gone.bin && rm -r t/gonedir
printf 'shorter now' > w/over.txt
dd if=/dev/zero of=t/over.txt bs=1000 seek=10 count=3 conv=notrunc status=none
truncate -s 12345 w/empty
truncate -s 100 'w/Documents and Settings/a very long directory name indeed/big file.bin'
touch -d '2021-03-04 05:06:07' w/renamed.txt
touch -d '1999-12-31 23:59:59' t/moved.C`;
      mkdirSync(ref);
      shOk(`cd '${ref}' && ${workload}`);

      const m = mountImage(img);
      // Mounted read-write: marked dirty until a clean unmount.
      if (bpb(img).bits !== 12) expect(cleanBit(img)).toBe(false);
      shOk(`cd '${m.mountpoint}' && ${workload}`);
      expect(listing(m.mountpoint)).toBe(listing(ref));
      // Two-second granularity, rounded down.
      expect(shOk(`cd '${m.mountpoint}' && stat -c '%n %y' w/renamed.txt t/moved.C`)).toBe(
        'w/renamed.txt 2021-03-04 05:06:06.000000000 +0000\nt/moved.C 1999-12-31 23:59:58.000000000 +0000\n');
      await rumpUnmount(m);

      fsckClean(img);
      expect(cleanBit(img)).toBe(true);
      // mtools: the same names, the same contents, the same times.
      const names = mtools('mdir', ['-/', '-b', '-i', img, '::']).split('\n').filter(Boolean)
        .map(l => l.replace(/^::\//, './').replace(/\/$/, '')).sort();
      expect(names).toEqual(shOk(`cd '${ref}' && find . -mindepth 1`).split('\n').filter(Boolean).sort());
      mkdirSync(out);
      mtools('mcopy', ['-s', '-n', '-m', '-i', img, '::/w', '::/t', out]);
      expect(listing(out)).toBe(listing(ref));
      // mcopy -m carries the on-disk times, to the second.
      expect(shOk(`cd '${out}' && stat -c '%n %y' w/renamed.txt t/moved.C`)).toBe(
        'w/renamed.txt 2021-03-04 05:06:06.000000000 +0000\nt/moved.C 1999-12-31 23:59:58.000000000 +0000\n');
      const mdir = mtools('mdir', ['-/', '-a', '-i', img, '::']);
      // Both 8.3 names in one case each: stored short, with the NT case flags.
      expect(mdir).toMatch(/\nrenamed +txt +2 2021-03-04 +5:06 *\n/);
      expect(mdir).toMatch(/\nmoved +C +5000 1999-12-31 +23:59 *\n/);
    });
  }

  it('cp -a of a tree with a hard link and a symbolic link: exactly those two fail', async () => {
    const dir = tempDir('rump-msdos-');
    const fix = path.join(dir, 'fix');
    mkdirSync(path.join(fix, 'sub'), { recursive: true });
    writeFileSync(path.join(fix, 'a.txt'), 'a\n');
    writeFileSync(path.join(fix, 'sub/b.txt'), 'b\n');
    shOk(`ln '${fix}/a.txt' '${fix}/sub/hard' && ln -s ../a.txt '${fix}/sub/sym'`);
    const img = mkfs(dir, 16384, ['-F', '16']);
    const m = mountImage(img);
    const r = sh(`cp -a '${fix}' '${m.mountpoint}/copy'`, { env });
    expect(r.status).toBe(1);
    const errors = r.stderr.split('\n').filter(Boolean).sort();
    expect(errors, r.stderr).toHaveLength(2);
    expect(errors[0]).toMatch(/^cp: cannot create hard link .*: Operation not permitted$/);
    expect(errors[1]).toMatch(/^cp: cannot create symbolic link .*copy\/sub\/sym': Operation not permitted$/);
    // The hard-linked file was copied once, under whichever name cp met first.
    const files = shOk(`cd '${m.mountpoint}/copy' && find . ! -type d`).split('\n').filter(Boolean).sort();
    expect([['./a.txt', './sub/b.txt'], ['./sub/b.txt', './sub/hard']]).toContainEqual(files);
    expect(shOk(`cd '${m.mountpoint}/copy' && cat ${files.join(' ')}`)).toMatch(/^(a\nb|b\na)\n$/);
    await rumpUnmount(m);
    fsckClean(img);
  });

  it('a full volume: dd stops with ENOSPC, the image stays clean, earlier files intact', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const keep = pattern(1_000_000, 3);
    writeFileSync(path.join(dir, 'keep'), keep);
    const m = mountImage(img);
    shOk(`cp '${dir}/keep' '${m.mountpoint}/keep.bin' && mkdir '${m.mountpoint}/d' && echo small > '${m.mountpoint}/d/s.txt'`);
    const r = sh(`dd if=/dev/zero of='${m.mountpoint}/fill' bs=64k`, { env });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("dd: error writing '" + m.mountpoint + "/fill': No space left on device");
    expect(shOk(`df -B1 --output=avail '${m.mountpoint}' | tail -1`).trim()).toBe('0');
    const r2 = sh(`cp '${dir}/keep' '${m.mountpoint}/d/another'`, { env });
    expect(r2.stderr).toMatch(/^cp: .*another.*: No space left on device\n$/);
    expect(shOk(`sha256sum < '${m.mountpoint}/keep.bin'`)).toContain(sha(keep));
    const filled = Number(shOk(`stat -c %s '${m.mountpoint}/fill'`));
    await rumpUnmount(m);
    fsckClean(img);
    expect(createHash('sha256').update(execFileSync('mtype', ['-i', img, '::keep.bin'], { env })).digest('hex')).toBe(sha(keep));
    expect(mtools('mtype', ['-i', img, '::d/s.txt'])).toBe('small\n');
    expect(mtools('mdir', ['-i', img, '::fill'])).toMatch(new RegExp(`\\nfill +${filled} [^]* 0 bytes free\\n`));
    expect(filled).toBeGreaterThan(14_000_000);
  });

  it('a 300 MB file on a 400 MB FAT32 image: written, read back cold, and by mtools', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 400 * 1024, ['-F', '32']);
    // A seeded stream: the same bytes each time it is made.
    const gen = `openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:rump_msdos < /dev/zero 2>/dev/null | head -c ${300 << 20}`;
    const want = shOk(`${gen} | sha256sum`);
    let m = mountImage(img);
    shOk(`${gen} | dd of='${m.mountpoint}/big.bin' bs=1M iflag=fullblock status=none`);
    await rumpUnmount(m);
    fsckClean(img);
    m = mountImage(img, ['-o', 'ro']);
    expect(shOk(`sha256sum < '${m.mountpoint}/big.bin'`)).toBe(want);
    await rumpUnmount(m);
    expect(shOk(`mtype -i '${img}' ::big.bin | sha256sum`)).toBe(want);
  }, 120_000);

  it('-o uid=1000,gid=1000,umask=077 shows in ls -ln', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    mtools('mmd', ['-i', img, '::D']);
    writeFileSync(path.join(dir, 'f'), 'f\n');
    mtools('mcopy', ['-i', img, path.join(dir, 'f'), '::F.TXT']);
    const m = mountImage(img, ['-o', 'uid=1000,gid=1000,umask=077']);
    const ls = shOk(`ls -ln '${m.mountpoint}' | grep -v ^total | awk '{print $1, $3, $4, $NF}'`);
    expect(ls).toBe('drwx------ 1000 1000 D\n-rwx------ 1000 1000 F.TXT\n');
    expect(shOk(`stat -c '%A %u %g' '${m.mountpoint}'`)).toBe('drwx------ 1000 1000\n');
    await rumpUnmount(m);
  });

  it('-o ro refuses every write with EROFS and leaves the image byte-identical', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    writeFileSync(path.join(dir, 'f'), 'f\n');
    mtools('mcopy', ['-i', img, path.join(dir, 'f'), '::F.TXT']);
    mtools('mmd', ['-i', img, '::D']);
    const before = sha(readFileSync(img));
    const m = mountImage(img, ['-o', 'ro']);
    expect(mountAt(m.mountpoint)?.options).toMatch(/^ro,/);
    const mp = m.mountpoint;
    for (const cmd of [`touch ${mp}/new`, `echo x >> ${mp}/F.TXT`, `mkdir ${mp}/E`, `rm ${mp}/F.TXT`, `rmdir ${mp}/D`,
      `mv ${mp}/F.TXT ${mp}/G.TXT`, `truncate -s 0 ${mp}/F.TXT`, `touch -d 2001-01-01 ${mp}/F.TXT`, `chmod 444 ${mp}/F.TXT`]) {
      const r = sh(cmd, { env });
      expect(r.status, cmd).not.toBe(0);
      expect(r.stderr, cmd).toContain('Read-only file system');
    }
    expect(shOk(`cat ${mp}/F.TXT`)).toBe('f\n');
    await rumpUnmount(m);
    expect(sha(readFileSync(img))).toBe(before);
  });

  it('shortname= decides how 8.3 names show and are made', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    writeFileSync(path.join(dir, 'f'), 'f\n');
    mtools('mcopy', ['-i', img, path.join(dir, 'f'), '::README.TXT']);
    const shown: Record<string, string> = {};
    for (const mode of ['mixed', 'win95', 'lower']) {
      const m = mountImage(img, ['-o', `shortname=${mode}`]);
      shOk(`echo ${mode} > ${m.mountpoint}/${mode}.txt`);
      shown[mode] = shOk(`ls ${m.mountpoint}`);
      await rumpUnmount(m);
    }
    expect(shown.mixed).toBe('README.TXT\nmixed.txt\n');
    // Windows 95 knew nothing of the NT case flags.
    expect(shown.win95).toBe('MIXED.TXT\nREADME.TXT\nwin95.txt\n');
    expect(shown.lower).toBe('lower.txt\nmixed.txt\nreadme.txt\nwin95.txt\n');
    fsckClean(img);
    // mixed stores a lower-case 8.3 name short, with the NT case flags; win95 and lower add a long name.
    const mdir = mtools('mdir', ['-i', img, '::']);
    expect(mdir).toMatch(/\nmixed +txt +\d+ [\d-]+ +[\d:]+ *\n/);
    expect(mdir).toMatch(/\nWIN95 +TXT +\d+ [\d-]+ +[\d:]+ +win95\.txt\n/);
    expect(mdir).toMatch(/\nLOWER +TXT +\d+ [\d-]+ +[\d:]+ +lower\.txt\n/);
  });

  it('tz=UTC reads the FAT times as UTC; -t gmtoff shifts them', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const f = path.join(dir, 'f');
    writeFileSync(f, 'f\n');
    const t = new Date('2020-06-01T12:00:00Z');
    utimesSync(f, t, t);
    mtools('mcopy', ['-m', '-i', img, f, '::F.TXT']); // FAT local time 12:00:00 (mtools with TZ=UTC)
    const times: string[] = [];
    for (const opts of [['-o', 'tz=UTC'], ['-t', '7200']]) {
      const m = mountImage(img, opts);
      times.push(shOk(`stat -c %y ${m.mountpoint}/F.TXT`));
      await rumpUnmount(m);
    }
    expect(times).toEqual(['2020-06-01 12:00:00.000000000 +0000\n', '2020-06-01 10:00:00.000000000 +0000\n']);
  });

  it('a bad boot sector: exit 32 with a clear message, the image untouched', () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    poke(img, 11, Buffer.from([0, 0])); // bytes per sector
    const before = sha(readFileSync(img));
    const mp = path.join(dir, 'mnt');
    mkdirSync(mp);
    const r = run(process.execPath, [serverScript('rump_msdos'), img, mp], { env });
    expect(r.status).toBe(32);
    expect(r.stderr).toBe(`rump_msdos: ${img}: EINVAL: invalid argument (not a FAT file system: bytes per sector 0)\n`);
    expect(mountAt(mp)).toBeNull();
    expect(serverPids(mp)).toEqual([]);
    expect(sha(readFileSync(img))).toBe(before);
  });

  it('mount_msdos switches: -l is accepted, -s and -9 are refused with a reason (usage, exit 1)', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const mp = path.join(dir, 'mnt');
    mkdirSync(mp);
    for (const flag of ['-s', '-9']) {
      const r = run(process.execPath, [serverScript('rump_msdos'), flag, img, mp], { env });
      expect(r.status, flag).toBe(1);
      expect(r.stderr).toContain(`${flag} is not supported: this driver always reads and writes long names`);
      expect(mountAt(mp)).toBeNull();
    }
    const m = rumpMount('rump_msdos', ['-l', img, mp], mp);
    expect(mountAt(mp)?.fstype).toBe('fuse.msdos');
    await rumpUnmount(m);
  });

  it('a FAT chain that loops: that file is EIO, the server stays up, the rest reads fine', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16', '-s', '1']);
    const loop = pattern(20_000, 8), fine = pattern(30_000, 9);
    writeFileSync(path.join(dir, 'a'), loop);
    writeFileSync(path.join(dir, 'b'), fine);
    mtools('mcopy', ['-i', img, path.join(dir, 'a'), '::LOOP.BIN']);
    mtools('mcopy', ['-i', img, path.join(dir, 'b'), '::FINE.BIN']);
    // mshowfat: "::/LOOP.BIN <first-last>"; the last cluster points back to the second.
    const [first, last] = mtools('mshowfat', ['-i', img, '::LOOP.BIN']).match(/<(\d+)-(\d+)>/)!.slice(1).map(Number);
    const g = bpb(img);
    expect(g.bits).toBe(16);
    const next = Buffer.alloc(2);
    next.writeUInt16LE(first + 1);
    for (let i = 0; i < g.nfats; i++) poke(img, g.fatOff + i * g.fatBytes + 2 * last, next);
    const m = mountImage(img);
    const r = run('cat', [`${m.mountpoint}/LOOP.BIN`], { env, timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Input/output error');
    expect(processGone(m.pid)).toBe(false);
    expect(shOk(`sha256sum < ${m.mountpoint}/FINE.BIN`)).toContain(sha(fine));
    expect(shOk(`ls ${m.mountpoint}`)).toBe('FINE.BIN\nLOOP.BIN\n');
    await rumpUnmount(m);
  });
});
