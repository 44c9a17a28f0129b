// rump_msdos with what Linux users bring: case-only renames, a volume left
// dirty by a crash, the fat/vfat mount options of fstab lines, and two
// partitions of one disk mounted at once (a loop device and its image not),
// judged by the real tools (fsck.fat, mtools) and through real mounts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseMsdos } from '../servers/msdos_options.js';
import { cleanBit, env, fsckClean, mkfs, mountImage, mtools, peek, poke, shOk } from './helpers/fat.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, rumpMount, rumpMountForeground, rumpUnmount, run, serverScript, tempDir,
  waitFor,
} from './helpers/mount.js';

describe.skipIf(SKIP_FUSE)('rump_msdos with Linux habits', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  it('renames that change only the case, through the mount (mv, mv -T, rename(2)); mdir shows them after', async () => {
    const dir = tempDir('rump-msdos-');
    const img = mkfs(dir, 16384, ['-F', '16']);
    const m = mountImage(img);
    shOk(`cd '${m.mountpoint}' && echo m > MixedCase.Txt && echo r > readme.txt && mkdir 'Some Dir' && echo s > 'Some Dir/in'`);
    // Each spelling is a node (and an inode number) of its own to the Linux
    // kernel, so that mv sees two files and rename(2) reaches the driver.
    shOk(`cd '${m.mountpoint}' && ls -l >/dev/null && cat mixedcase.txt >/dev/null && mv MixedCase.Txt MIXEDCASE.TXT && mv readme.txt README.txt && mv -T 'Some Dir' 'SOME Dir'`);
    expect(shOk(`ls '${m.mountpoint}'`)).toBe('MIXEDCASE.TXT\nREADME.txt\nSOME Dir\n');
    expect(shOk(`cd '${m.mountpoint}' && cat mixedcase.txt MIXEDCASE.TXT 'some dir/in'`)).toBe('m\nm\ns\n');
    // Back again by rename(2) itself, and a write through one spelling read through another.
    shOk(`cd '${m.mountpoint}' && python3 -c "import os; os.rename('MIXEDCASE.TXT', 'MixedCase.txt')" && echo w >> mixedCASE.txt`);
    expect(shOk(`cd '${m.mountpoint}' && ls && cat MixedCase.txt`)).toBe('MixedCase.txt\nREADME.txt\nSOME Dir\nm\nw\n');
    await rumpUnmount(m);
    fsckClean(img);
    const mdir = mtools('mdir', ['-i', img, '::']);
    expect(mdir).toMatch(/\nMIXEDC~1 TXT +4 [\d-]+ +[\d:]+ +MixedCase\.txt\n/);
    // Base in upper case, extension in lower: stored short with the NT case flag.
    expect(mdir).toMatch(/\nREADME +txt +2 [\d-]+ +[\d:]+ *\n/);
    expect(mdir).toMatch(/\nSOMEDI~1 +<DIR> +[\d-]+ +[\d:]+ +SOME Dir\n/);
    expect(mdir).not.toMatch(/MIXEDCASE|readme|Some Dir/);
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
      // Printed before the mount was made, but the pipe's bytes may reach us a turn of the event loop later.
      const warning = /Volume was not properly unmounted\. Some data may be corrupt\. Please run fsck\./;
      await waitFor('the warning on stderr', () => warning.test(fg.stderr()) || fg.child.exitCode !== null).catch(() => {});
      expect(fg.stderr()).toMatch(warning);
      shOk(`echo a > '${mp}/a'`);
    } finally {
      execFileSync('umount', [mp]);
    }
    expect(await fg.exit).toBe(0);
    fsckClean(img);
    expect(cleanBit(img)).toBe(true);
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
    // Names at the start of a listing line: the volume serial number (random) may hold "D0" too.
    expect(seenWhileMounted()).not.toMatch(/\n(D0|F0) /);
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
});
