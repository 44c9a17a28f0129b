// rump_msdos through a real FUSE mount, judged by the real tools: images made
// by mkfs.vfat and filled by mtools read back exactly through the mount;
// trees written through the mount by cp, tar, mv, rm, truncate and touch are
// clean for fsck.fat and read back identically by mtools after unmount; a
// full volume, a 300 MB file, the mount options, and damaged images.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseMsdos } from '../servers/msdos_options.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, pattern, processGone, rumpMount, rumpMountForeground, rumpUnmount, run,
  serverPids, serverScript, sh, tempDir, waitFor,
} from './helpers/mount.js';

const env = { ...process.env, MTOOLS_SKIP_CHECK: '1', TZ: 'UTC', LC_ALL: 'C.UTF-8' };


const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A sparse image made by mkfs.vfat over kb KiB. */
function mkfs(dir: string, kb: number, args: string[]): string {
  const img = path.join(dir, 'fat.img');
  execFileSync('mkfs.vfat', ['-C', ...args, img, String(kb)], { env, stdio: 'pipe' });
  return img;
}

function ok(r: ReturnType<typeof run>): string {
  expect(r.stderr, r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}
const shOk = (script: string) => ok(sh(script, { env }));
const mtools = (cmd: string, args: string[]) => ok(run(cmd, args, { env }));

/** Whatever a user sees of a tree: names and types, sizes (find and ls -l), contents. */
function listing(dir: string): string {
  return shOk(`cd '${dir}' && echo '== find' && find . -mindepth 1 -printf '%p %y\\n' | sort
echo '== sizes' && find . -type f -printf '%p %s\\n' | sort
echo '== ls' && ls -lAR --time-style=+ . | awk '/:$/ { print } /^-/ { $1 = $2 = $3 = $4 = ""; print }'
echo '== sums' && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`);
}

/** fsck.fat -n: exit 0 and nothing to complain about. */
function fsckClean(img: string): void {
  const r = run('fsck.fat', ['-n', img], { env });
  const text = r.stdout + r.stderr;
  expect(text.split('\n').filter(l => l && !/^fsck\.fat |files, .* clusters$/.test(l)), text).toEqual([]);
  expect(r.status, text).toBe(0);
}

function peek(img: string, off: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync(img, 'r');
  try { readSync(fd, b, 0, n, off); } finally { closeSync(fd); }
  return b;
}

function poke(img: string, off: number, bytes: Buffer): void {
  const fd = openSync(img, 'r+');
  try { writeSync(fd, bytes, 0, bytes.length, off); } finally { closeSync(fd); }
}

/** The boot sector's geometry, read independently of the driver. */
function bpb(img: string) {
  const b = peek(img, 0, 512);
  const bps = b.readUInt16LE(11), rsvd = b.readUInt16LE(14), nfats = b[16];
  const fat32 = b.readUInt16LE(22) === 0;
  const fatSectors = fat32 ? b.readUInt32LE(36) : b.readUInt16LE(22);
  const total = b.readUInt16LE(19) || b.readUInt32LE(32);
  const clusters = (total - rsvd - nfats * fatSectors - (b.readUInt16LE(17) * 32) / bps) / b[13];
  const bits = fat32 ? 32 : clusters < 4085 ? 12 : 16;
  return { bps, fatOff: rsvd * bps, fatBytes: fatSectors * bps, nfats, bits };
}

/** FAT[1]'s clean-shutdown bit (FAT16 bit 15, FAT32 bit 27; FAT12 has none). */
function cleanBit(img: string): boolean {
  const g = bpb(img);
  if (g.bits === 12) return true;
  const f = peek(img, g.fatOff, 8);
  return g.bits === 32 ? (f.readUInt32LE(4) & 0x08000000) !== 0 : (f.readUInt16LE(2) & 0x8000) !== 0;
}

/** A tree with long, unicode, mixed-case and 8.3 names, nesting, empty and multi-MB files (mtools keeps to the BMP). */
function fixtureTree(dir: string, bigSize: number): void {
  const put = (p: string, data: Buffer | string) => {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), data);
  };
  put('README.TXT', 'read me\n');
  put('lower.txt', 'lower case 8.3\n');
  put('MiXeD.Txt', 'mixed\n');
  put('Ünïcødé ファイル.txt', 'unicode\n');
  put('empty', '');
  put('Documents and Settings/a very long directory name indeed/big file.bin', pattern(bigSize, 1));
  for (let i = 1; i <= 12; i++) put(`Documents and Settings/Same Prefix Name ${i}.data`, pattern(i * 700, i + 1));
  put('DIR8/SUB/FILE.C', pattern(5000, 99));
  mkdirSync(path.join(dir, 'empty dir'));
}

const fats = [
  { name: 'FAT12', kb: 8000, args: ['-F', '12', '-s', '4'], big: 3_000_000 },
  { name: 'FAT16', kb: 32768, args: ['-F', '16', '-s', '4'], big: 6_000_000 },
  // FAT32 needs 65525 clusters for mtools to take it as FAT32.
  { name: 'FAT32', kb: 300_000, args: ['-F', '32', '-s', '8'], big: 6_000_000 },
];

/** A mount point and a mounted image. */
function mountImage(img: string, opts: string[] = ['-o', 'tz=UTC']) {
  const mp = path.join(path.dirname(img), 'mnt');
  mkdirSync(mp, { recursive: true });
  return rumpMount('rump_msdos', [...opts, img, mp], mp, { TZ: 'UTC' });
}

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

  it('rename(2) to the same name in other case changes the name; mdir shows it after', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const m = mountImage(img);
    shOk(`cd '${m.mountpoint}' && echo m > MixedCase.Txt && echo r > readme.txt && mkdir 'Some Dir'`);
    // util-linux rename calls rename(2); GNU mv refuses first ("are the same file": one inode), as on Linux's vfat.
    shOk(`cd '${m.mountpoint}' && rename.ul MixedCase.Txt MIXEDCASE.TXT MixedCase.Txt && rename.ul readme README readme.txt && rename.ul Some SOME 'Some Dir'`);
    expect(shOk(`ls '${m.mountpoint}'`)).toBe('MIXEDCASE.TXT\nREADME.txt\nSOME Dir\n');
    expect(shOk(`cat '${m.mountpoint}/mixedcase.txt'`)).toBe('m\n');
    await rumpUnmount(m);
    fsckClean(img);
    const mdir = mtools('mdir', ['-i', img, '::']);
    expect(mdir).toMatch(/\nMIXEDC~1 TXT +2 [\d-]+ +[\d:]+ +MIXEDCASE\.TXT\n/);
    // Base in upper case, extension in lower: stored short with the NT case flag.
    expect(mdir).toMatch(/\nREADME +txt +2 [\d-]+ +[\d:]+ *\n/);
    expect(mdir).toMatch(/\nSOMEDI~1 +<DIR> +[\d-]+ +[\d:]+ +SOME Dir\n/);
    expect(mdir).not.toMatch(/MixedCase|readme|Some Dir/);
  });

  it('a volume left dirty: rump_msdos -f prints the kernel\'s warning; after umount fsck.fat finds it clean', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    poke(img, 37, Buffer.from([peek(img, 37, 1)[0] | 1])); // the boot sector's dirty flag, as a crash leaves it
    expect(run('fsck.fat', ['-n', img]).stdout).toMatch(/Dirty bit is set/);
    const mp = path.join(dir, 'mnt');
    mkdirSync(mp);
    const fg = rumpMountForeground('rump_msdos', [img, mp]);
    try {
      await waitFor('rump_msdos mount', () => mountAt(mp)?.fstype === 'fuse.msdos' || fg.child.exitCode !== null);
      expect(fg.stderr()).toMatch(/Volume was not properly unmounted\. Some data may be corrupt\. Please run fsck\./);
      shOk(`echo a > '${mp}/a'`);
    } finally {
      execFileSync('umount', [mp]);
    }
    expect(await fg.exit).toBe(0);
    fsckClean(img);
    expect(cleanBit(img)).toBe(true);
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

  it('Linux vfat options honoured: showexec, quiet, dirsync, flush, allow_utime, time_offset, rodir, nonumtail, nfs=nostale_ro', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const f = path.join(dir, 'f');
    writeFileSync(f, 'f\n');
    const t = new Date('2020-06-01T12:00:00Z');
    utimesSync(f, t, t);
    mtools('mcopy', ['-m', '-i', img, f, '::T.TXT']); // FAT local time 12:00:00 (mtools with TZ=UTC)
    mtools('mmd', ['-i', img, '::RO']);
    mtools('mattrib', ['-i', img, '+r', '::RO']);
    const seenWhileMounted = () => run('mdir', ['-i', img, '::'], { env }).stdout;
    const typeWhileMounted = (name: string) => run('mtype', ['-i', img, `::${name}`], { env }).stdout;
    const settle = (ms: number) => new Promise(r => setTimeout(r, ms));

    // Without the options: Linux's defaults (and delayed writes, 5 s).
    let m = mountImage(img);
    shOk(`cd '${m.mountpoint}' && mkdir D0 && echo data0 > F0.TXT && echo x > a0.exe && echo y > 'Long File Name.txt'`);
    await settle(300);
    expect(seenWhileMounted()).not.toMatch(/D0|F0/);
    expect(shOk(`cd '${m.mountpoint}' && stat -c '%n %a' a0.exe F0.TXT RO && TZ=UTC stat -c %y T.TXT`)).toBe(
      'a0.exe 755\nF0.TXT 755\nRO 755\n2020-06-01 12:00:00.000000000 +0000\n');
    expect(run('chown', ['1234', path.join(m.mountpoint, 'F0.TXT')]).stderr).toMatch(/Operation not permitted/);
    await rumpUnmount(m);
    expect(mtools('mdir', ['-i', img, '::'])).toMatch(/\nLONGFI~1 TXT +2 .* Long File Name\.txt\n/);

    m = mountImage(img, ['-o', 'showexec,quiet,dirsync,flush,allow_utime=2,time_offset=120,rodir,nonumtail,umask=0']);
    shOk(`chmod 755 '${dir}'`);
    shOk(`cd '${m.mountpoint}' && mkdir D1`);
    // dirsync: the new directory is on the image at once.
    expect(seenWhileMounted()).toMatch(/\nD1 +<DIR> /);
    shOk(`cd '${m.mountpoint}' && echo data1 > F1.TXT && echo x > a1.exe && echo y > 'Long File Name 2.txt'`);
    // flush: a closed file's data is on the image at once (FUSE's release comes after close returns).
    await waitFor('F1.TXT on the image', () => typeWhileMounted('F1.TXT') === 'data1\n', 2000);
    expect(shOk(`cd '${m.mountpoint}' && stat -c '%n %a' a1.exe F1.TXT RO D1 && TZ=UTC stat -c %y T.TXT`)).toBe(
      'a1.exe 777\nF1.TXT 666\nRO 555\nD1 777\n2020-06-01 10:00:00.000000000 +0000\n');
    // quiet: chown succeeds and changes nothing.
    shOk(`chown 1234:1234 '${m.mountpoint}/F1.TXT'`);
    expect(shOk(`stat -c %u '${m.mountpoint}/F1.TXT'`)).toBe('0\n');
    // allow_utime=2: others may set times.
    const touch = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'touch', '-d', '2021-01-01 00:00:00', path.join(m.mountpoint, 'F1.TXT')]);
    expect(touch.stderr).toBe('');
    expect(touch.status).toBe(0);
    await rumpUnmount(m);
    fsckClean(img);
    const mdir = mtools('mdir', ['-i', img, '::']);
    // nonumtail: the first shortened name without ~N.
    expect(mdir).toMatch(/\nLONGFILE TXT +2 .* Long File Name 2\.txt\n/);

    // allow_utime=20: the group only (Linux's default follows dmask: umask=0 lets others too).
    m = mountImage(img, ['-o', 'umask=0,allow_utime=20']);
    expect(run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'touch', '-d', '2021-01-01', path.join(m.mountpoint, 'F1.TXT')]).stderr)
      .toMatch(/Operation not permitted/);
    await rumpUnmount(m);

    m = mountImage(img, ['-o', 'nfs=nostale_ro']);
    expect(run('touch', [path.join(m.mountpoint, 'new')]).stderr).toMatch(/Read-only file system/);
    await rumpUnmount(m);
  });

  it('Linux fat/vfat options that change nothing here are accepted (bad values refused); unknown ones still refused', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const noops = 'errors=remount-ro,check=strict,iocharset=iso8859-1,nls=utf8,utf8=0,utf8,uni_xlate,discard,fat=16,' +
      'blocksize=512,usefree,debug,sys_immutable,dots,nodots,dotsOK=no,posix,conv=binary,cvf_format=none,cvf_option=x,' +
      'dos1xfloppy,nonempty,nfs,nfs=stale_rw';
    const m = mountImage(img, ['-o', noops]);
    shOk(`echo a > '${m.mountpoint}/a'`);
    await rumpUnmount(m);
    fsckClean(img);
    for (const bad of ['errors=ignore', 'check=x', 'fat=8', 'blocksize=4096', 'dotsOK=maybe', 'discard=1', 'time_offset=x',
      'allow_utime=9', 'nfs=x', 'showexec=1', 'iocharset', 'bogus', 'toString']) {
      expect(() => parseMsdos(['-o', bad, img, '/mnt']), bad).toThrow(/^(bad value for|option \w+ (needs a value|takes no value)|unknown option|bad mode for)/);
    }
    const mp = path.join(dir, 'mnt');
    const r = run(process.execPath, [serverScript('rump_msdos'), '-o', 'errors=ignore', img, mp], { env });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('rump_msdos: bad value for errors: ignore\nusage: rump_msdos [-fl] [-u uid] [-g gid] [-m mask] [-M mask] [-t gmtoff] [-o options] special node\n');
  });

  it('two FAT partitions of one disk image mounted read-write at once; a loop device and its backing file refused', async () => {
    const dir = tempDir('rump-msdos-');
    const img = path.join(dir, 'disk.img');
    shOk(`truncate -s 64M '${img}' && printf 'label: dos\nstart=2048,size=30720,type=e\nstart=32768,type=c\n' | sfdisk -q '${img}'`);
    // (mkfs.vfat warns that the image is larger than the file system.)
    expect(run('mkfs.vfat', ['-F', '16', '--offset', '2048', img, '15360']).status).toBe(0);
    expect(run('mkfs.vfat', ['-F', '32', '--offset', '32768', img, '49152']).status).toBe(0);
    const mnt = (n: string) => { const p = path.join(dir, n); mkdirSync(p, { recursive: true }); return p; };
    const m1 = rumpMount('rump_msdos', ['-o', 'part=1', img, mnt('boot')], path.join(dir, 'boot'));
    const m2 = rumpMount('rump_msdos', ['-o', 'part=2', img, mnt('root')], path.join(dir, 'root'));
    shOk(`echo boot > '${m1.mountpoint}/config.txt' && echo root > '${m2.mountpoint}/fstab'`);
    // The same partition twice: refused, naming the bytes.
    const again = run(process.execPath, [serverScript('rump_msdos'), '-o', 'part=1', img, mnt('again')], { env });
    expect(again.status).toBe(32);
    expect(again.stderr).toMatch(/bytes 1048576-16777216 are in use read-write by another mount/);
    await rumpUnmount(m1);
    await rumpUnmount(m2);
    for (const [n, start, sectors, file, text] of [[1, 2048, 30720, 'config.txt', 'boot'], [2, 32768, 98304, 'fstab', 'root']] as const) {
      const part = path.join(dir, `p${n}.img`);
      shOk(`dd if='${img}' of='${part}' bs=512 skip=${start} count=${sectors} status=none`);
      fsckClean(part);
      expect(mtools('mtype', ['-i', part, `::${file}`])).toBe(`${text}\n`);
    }

    // A loop device over the image: its partition 1 and the image's are the same bytes; partition 2 is not.
    const loop = run('losetup', ['-f', '--show', img]).stdout.trim();
    expect(loop).toMatch(/^\/dev\/loop\d+$/);
    try {
      const ml = rumpMount('rump_msdos', ['-o', 'part=1', loop, mnt('loop')], path.join(dir, 'loop'));
      const viaFile = run(process.execPath, [serverScript('rump_msdos'), '-o', 'part=1', img, mnt('file')], { env });
      expect(viaFile.status).toBe(32);
      expect(viaFile.stderr).toMatch(/bytes 1048576-16777216 are in use read-write by another mount/);
      const whole = run(process.execPath, [serverScript('rump_msdos'), '-o', 'ro', img, mnt('file')], { env });
      expect(whole.status).toBe(32);
      const m2b = rumpMount('rump_msdos', ['-o', 'part=2', img, path.join(dir, 'root')], path.join(dir, 'root'));
      await rumpUnmount(m2b);
      await rumpUnmount(ml);
    } finally {
      run('losetup', ['-d', loop]);
    }
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
