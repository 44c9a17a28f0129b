// Mount integration through the real tools: util-linux mount/umount running
// /sbin/mount.rump (command line, fstab, -a), mount.fuse3 for fuse.rump_*,
// rumpmount/rumpumount, type detection, MBR and GPT partitions, an ordinary
// user's mount, and each error with its message and mount's exit status.
// mtools and fsck.fat judge what reached the images; every unmount waits for
// the server to exit.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kernelType } from '../scripts/mount/types.js';
import { serverPids } from '../scripts/mount/unmount.js';
import {
  ROOT, SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, processGone, run, serverPids as launchedServerPids, tempDir, waitFor,
  type RunResult,
} from './helpers/mount.js';

const RUMPMOUNT = path.join(ROOT, 'dist/scripts/rumpmount.js');
const RUMPUMOUNT = path.join(ROOT, 'dist/scripts/rumpumount.js');
const RUMP_MSDOS = path.join(ROOT, 'dist/servers/rump_msdos.js');
const NOBODY = 65534;

const rumpmount = (...args: string[]) => run(process.execPath, [RUMPMOUNT, ...args]);
const rumpumount = (...args: string[]) => run(process.execPath, [RUMPUMOUNT, ...args]);
const mount = (...args: string[]) => run('mount', args);

/** Mount points this file mounted, with their servers: afterEach takes away what a failed test left. */
const mine = new Map<string, number>();

/** A command that must have worked. */
function ok(r: RunResult): void {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

/** dir is a mount of this type with one server (recorded for cleanup). */
function served(dir: string, fstype: string): number {
  expect(mountAt(dir)?.fstype).toBe(fstype);
  const pids = serverPids(dir);
  expect(pids).toHaveLength(1);
  mine.set(dir, pids[0]);
  return pids[0];
}

function mounted(r: RunResult, dir: string, fstype: string): number {
  ok(r);
  return served(dir, fstype);
}

/** The system's umount, then wait for the server to exit. */
async function umount(dir: string): Promise<void> {
  const pid = mine.get(dir)!;
  execFileSync('umount', [dir]);
  await waitFor(`server ${pid} to exit`, () => processGone(pid));
  mine.delete(dir);
}

/** rumpumount returns only once the server has exited. */
function rumpUmount(what: string, dir = what): void {
  const pid = mine.get(dir)!;
  const r = rumpumount(what);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(processGone(pid)).toBe(true);
  expect(mountAt(dir)).toBeNull();
  mine.delete(dir);
}

function notMounted(r: RunResult, dir: string, status: number, message: RegExp): void {
  expect(r.status).toBe(status);
  expect(r.stderr).toMatch(message);
  expect(mountAt(dir)).toBeNull();
}

/** A tool's output; it must succeed. */
function out(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A FAT image holding hello.txt (8 MiB). */
function fatImage(file: string, text = 'hello\n'): string {
  out('mkfs.vfat', ['-C', file, '8192']);
  const src = `${file}.hello`;
  writeFileSync(src, text);
  out('mcopy', ['-i', file, src, '::hello.txt']);
  return file;
}

function isoImage(dir: string): string {
  mkdirSync(path.join(dir, 'isotree'));
  writeFileSync(path.join(dir, 'isotree/readme.txt'), 'from the iso\n');
  const iso = path.join(dir, 'c.iso');
  out('genisoimage', ['-quiet', '-R', '-J', '-o', iso, path.join(dir, 'isotree')]);
  return iso;
}

/** Sector where partition 2 starts in the partitioned images: 1 MiB + 4 MiB. */
const P2_SECTOR = 10240;

/** A 16 MiB disk image with a partition table (made by `make`) and a FAT file system in partition 2 holding p2.txt. */
function partitionedImage(file: string, make: (file: string) => void): string {
  writeFileSync(file, '');
  execFileSync('truncate', ['-s', '16M', file]);
  make(file);
  out('mkfs.vfat', ['--offset', String(P2_SECTOR), file, '8192']);
  const src = `${file}.p2`;
  writeFileSync(src, 'partition two\n');
  out('mcopy', ['-i', `${file}@@${P2_SECTOR * 512}`, src, '::p2.txt']);
  return file;
}

function mbrImage(file: string): string {
  return partitionedImage(file, f => execFileSync('sfdisk', ['-q', f], {
    input: `label: dos\nstart=2048, size=8192, type=c\nstart=${P2_SECTOR}, size=16384, type=c\n`,
  }));
}

function gptImage(file: string): string {
  return partitionedImage(file, f => out('sgdisk', ['-n', '1:2048:+4M', '-t', '1:ef00', '-n', `2:${P2_SECTOR}:+8M`, '-t', '2:0700', f]));
}

function mountDir(base: string, name: string): string {
  const d = path.join(base, name);
  mkdirSync(d);
  return d;
}

describe.skipIf(SKIP_FUSE)('mount -o rump, fstab, partitions and type detection', () => {
  beforeAll(() => {
    ensureBuilt();
    // mount.rump, the /usr/local/bin links, /dev/fuse for users: scripts/setup's work.
    let helper = '';
    try { helper = readFileSync('/sbin/mount.rump', 'utf8'); } catch { /* not installed */ }
    if (!helper.includes(path.join(ROOT, 'dist/scripts/mount_rump.js'))) execFileSync('bash', [path.join(ROOT, 'scripts/setup'), '--quiet']);
  }, 120_000);

  afterEach(async () => {
    for (const [dir, pid] of mine) {
      try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
      if (mountAt(dir)) run('umount', [dir]);
      await waitFor('server exit', () => processGone(pid), 5000).catch(() => {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      });
      if (mountAt(dir)) run('umount', ['-l', dir]);
    }
    mine.clear();
    await cleanupMounts();
  });

  it('the system mount runs mount.rump for rump.msdos; what is written reaches the image, which fsck.fat finds clean', async () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const mnt = mountDir(d, 'mnt');
    const pid = mounted(mount('-t', 'rump.msdos', '-o', 'uid=1000,noatime', img, mnt), mnt, 'fuse.msdos');
    // The test helpers' own way of finding servers agrees.
    expect(launchedServerPids(mnt)).toEqual([pid]);
    expect(mountAt(mnt)?.source).toBe(img);
    expect(readFileSync(path.join(mnt, 'hello.txt'), 'utf8')).toBe('hello\n');
    expect(statSync(path.join(mnt, 'hello.txt')).uid).toBe(1000);
    writeFileSync(path.join(mnt, 'new.txt'), 'written through the mount\n');
    await umount(mnt);
    expect(out('mtype', ['-i', img, '::new.txt'])).toBe('written through the mount\n');
    expect(run('fsck.fat', ['-n', img]).status).toBe(0);
  });

  it('mount -f fakes (nothing mounted), -v names the server', () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const mnt = mountDir(d, 'mnt');
    const r = mount('-f', '-v', '-t', 'rump.msdos', img, mnt);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`rump_msdos.cjs ${img} ${mnt}`);
    expect(mountAt(mnt)).toBeNull();
  });

  it('mount -N mounts in another mount namespace (the helper enters it), not in ours', async () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const mnt = mountDir(d, 'mnt');
    const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
    try {
      const ns = `/proc/${holder.pid}/ns/mnt`;
      await waitFor('the new namespace', () => readlinkSync(ns) !== readlinkSync('/proc/self/ns/mnt'));
      ok(mount('-N', String(holder.pid), '-t', 'rump.msdos', img, mnt));
      expect(mountAt(mnt)).toBeNull();
      expect(readFileSync(`/proc/${holder.pid}/mountinfo`, 'utf8')).toContain(`${mnt} rw,nosuid,nodev,relatime - fuse.msdos ${img} `);
      const pids = serverPids(mnt);
      expect(pids).toHaveLength(1);
      const pid = pids[0];
      mine.set(mnt, pid);
      ok(run('nsenter', [`--mount=${ns}`, 'umount', mnt]));
      await waitFor(`server ${pid} to exit`, () => processGone(pid));
      mine.delete(mnt);
    } finally {
      holder.kill();
    }
  });

  it('fstab: mount -T file dir, mount -a -T file (rump.auto, fuse.rump_msdos through mount.fuse3), again skips what is mounted', async () => {
    const d = tempDir();
    const fat = fatImage(path.join(d, 'f.img'));
    const fat2 = fatImage(path.join(d, 'g.img'), 'second\n');
    const iso = isoImage(d);
    const [a, b, c] = ['a', 'b', 'c'].map(n => mountDir(d, n));
    const fstab = path.join(d, 'fstab.test');
    writeFileSync(fstab, [
      '# test lines',
      `${fat} ${a} rump.msdos rw,noauto,uid=1000 0 0`,
      `${iso} ${b} rump.auto ro 0 0`,
      `${fat2} ${c} fuse.rump_msdos uid=1001 0 0`,
      '',
    ].join('\n'));
    mounted(mount('-T', fstab, a), a, 'fuse.msdos');
    expect(statSync(path.join(a, 'hello.txt')).uid).toBe(1000);
    await umount(a);

    ok(mount('-a', '-T', fstab));
    expect(mountAt(a)).toBeNull();
    served(b, 'fuse.cd9660');
    served(c, 'fuse.msdos');
    expect(readFileSync(path.join(b, 'readme.txt'), 'utf8')).toBe('from the iso\n');
    expect(readFileSync(path.join(c, 'hello.txt'), 'utf8')).toBe('second\n');
    expect(statSync(path.join(c, 'hello.txt')).uid).toBe(1001);
    ok(mount('-a', '-T', fstab));
    await umount(b);
    await umount(c);
  });

  it('rumpumount of a mount made with relative paths returns only once the image is clean', () => {
    const d = tempDir();
    fatImage(path.join(d, 'f.img'));
    mountDir(d, 'mnt');
    ok(run(process.execPath, [RUMP_MSDOS, 'f.img', 'mnt'], { cwd: d }));
    writeFileSync(path.join(d, 'mnt', 'new.bin'), Buffer.alloc(4 << 20, 7));
    // The server: its command line has only the relative operands.
    const pid = readdirSync('/proc').filter(p => /^\d+$/.test(p)).map(Number).find(p => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').endsWith(`\0${RUMP_MSDOS}\0f.img\0mnt\0`) &&
          readFileSync(`/proc/${p}/environ`, 'utf8').includes('P2K_READY_FD=');
      } catch { return false; }
    });
    expect(pid).toBeDefined();
    const r = run(process.execPath, [RUMPUMOUNT, 'mnt'], { cwd: d });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(processGone(pid!)).toBe(true);
    // The server has written everything back and cleared the dirty bit.
    expect(run('fsck.fat', ['-n', path.join(d, 'f.img')]).status).toBe(0);
    expect(mountAt(path.join(d, 'mnt'))).toBeNull();
  });

  it('rumpmount: -o rump runs a server (NetBSD), anything else goes to the system mount; fstab by mount point and by device', () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const mnt = mountDir(d, 'mnt');
    mounted(rumpmount('--types=msdos', '--options', 'rump,uid=1000', img, mnt), mnt, 'fuse.msdos');
    expect(statSync(path.join(mnt, 'hello.txt')).uid).toBe(1000);
    rumpUmount(mnt);

    ok(rumpmount('-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt));
    expect(mountAt(mnt)?.fstype).toBe('tmpfs');
    ok(rumpumount(mnt));
    expect(mountAt(mnt)).toBeNull();

    const fstab = path.join(d, 'fstab');
    writeFileSync(fstab, `${img} ${mnt} vfat rump,noauto,uid=1002 0 0\n`);
    mounted(rumpmount('-T', fstab, mnt), mnt, 'fuse.msdos');
    expect(statSync(path.join(mnt, 'hello.txt')).uid).toBe(1002);
    rumpUmount(mnt);
    mounted(rumpmount('-T', fstab, img), mnt, 'fuse.msdos');
    rumpUmount(img, mnt);
    notMounted(rumpmount('-T', fstab, '-o', 'rump', path.join(d, 'elsewhere')), path.join(d, 'elsewhere'), 1, /not found in/);
  });

  it('rumpmount -a: only rump lines, noauto honoured, what is mounted skipped; 64 when some fail, 32 when all do; mount -a alike', async () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const img2 = fatImage(path.join(d, 'g.img'));
    const [a, b, c, e] = ['a', 'b', 'c', 'e'].map(n => mountDir(d, n));
    const missing = path.join(d, 'missing.img');
    const fstab = path.join(d, 'fstab');
    writeFileSync(fstab, [
      `${img} ${a} rump.msdos defaults 0 0`,
      `${img2} ${b} rump.msdos noauto 0 0`,
      `tmpfs ${c} tmpfs size=1m 0 0`,
      `${missing} ${e} rump.msdos defaults 0 0`,
    ].join('\n'));
    const r = rumpmount('-a', '-T', fstab);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain(`${missing}: special device does not exist`);
    served(a, 'fuse.msdos');
    for (const dir of [b, c, e]) expect(mountAt(dir)).toBeNull();
    // a is mounted: skipped, so only the missing one is tried, and fails.
    expect(rumpmount('-a', '-T', fstab).status).toBe(32);
    await umount(a);

    const sys = mount('-a', '-T', fstab, '-t', 'rump.msdos');
    expect(sys.status).toBe(64);
    served(a, 'fuse.msdos');
    await umount(a);
  });

  it('type detection: rump.auto finds FAT and ext4, rump alone ISO 9660', async () => {
    const d = tempDir();
    const fat = fatImage(path.join(d, 'f.img'));
    const iso = isoImage(d);
    const ext = path.join(d, 'e.img');
    out('mke2fs', ['-q', '-F', '-t', 'ext4', ext, '4M']);
    const mnt = mountDir(d, 'mnt');
    mounted(mount('-t', 'rump.auto', fat, mnt), mnt, 'fuse.msdos');
    await umount(mnt);
    mounted(mount('-t', 'rump', iso, mnt), mnt, 'fuse.cd9660');
    expect(readFileSync(path.join(mnt, 'readme.txt'), 'utf8')).toBe('from the iso\n');
    await umount(mnt);
    mounted(rumpmount('-o', 'rump', iso, mnt), mnt, 'fuse.cd9660');
    rumpUmount(mnt);
    mounted(mount('-t', 'rump.auto', '-o', 'ro', ext, mnt), mnt, 'fuse.ext2fs');
    await umount(mnt);
    mounted(mount('-t', 'rump.ext4', '-o', 'ro', ext, mnt), mnt, 'fuse.ext2fs');
    await umount(mnt);
  });

  it('partitions: part=2 of an MBR (sfdisk) and a GPT (sgdisk) disk; without part=N the partitions are listed', async () => {
    const d = tempDir();
    const mbr = mbrImage(path.join(d, 'mbr.img'));
    const gpt = gptImage(path.join(d, 'gpt.img'));
    const mnt = mountDir(d, 'mnt');
    mounted(mount('-t', 'rump.msdos', '-o', 'part=2', mbr, mnt), mnt, 'fuse.msdos');
    expect(readFileSync(path.join(mnt, 'p2.txt'), 'utf8')).toBe('partition two\n');
    writeFileSync(path.join(mnt, 'back.txt'), 'into partition two\n');
    await umount(mnt);
    expect(out('mtype', ['-i', `${mbr}@@${P2_SECTOR * 512}`, '::back.txt'])).toBe('into partition two\n');

    mounted(rumpmount('-o', 'rump,part=2', gpt, mnt), mnt, 'fuse.msdos');
    expect(readFileSync(path.join(mnt, 'p2.txt'), 'utf8')).toBe('partition two\n');
    rumpUmount(mnt);

    // The server alone says it too, and the listing matches sfdisk's table.
    const direct = run(process.execPath, [RUMP_MSDOS, mbr, mnt]);
    notMounted(direct, mnt, 32, /a partitioned disk \(MBR\): choose a partition with -o part=N/);
    const table = JSON.parse(out('sfdisk', ['-J', mbr])) as { partitiontable: { partitions: { start: number; size: number }[] } };
    expect(table.partitiontable.partitions.map(p => [p.start, p.size])).toEqual([[2048, 8192], [P2_SECTOR, 16384]]);
    expect(direct.stderr).toContain('part=1  start 1 MiB  size 4 MiB  type 0x0c');
    expect(direct.stderr).toContain('part=2  start 5 MiB  size 8 MiB  type 0x0c');
    const viaMount = mount('-t', 'rump', gpt, mnt);
    notMounted(viaMount, mnt, 32, /a partitioned disk \(GPT\)/);
    expect(viaMount.stderr).toContain('part=1  start 1 MiB  size 4 MiB  type efi');
    expect(viaMount.stderr).toMatch(/part=2 {2}start 5 MiB {2}size 8 MiB/);
    notMounted(mount('-t', 'rump.msdos', '-o', 'part=3', mbr, mnt), mnt, 32, /no partition 3 \(mbr partitions: 1, 2\)/);
  });

  it('an ordinary user mounts an image it owns without root, writes, and unmounts with rumpumount', () => {
    const d = tempDir();
    chmodSync(d, 0o755);
    const home = mountDir(d, 'home');
    const img = fatImage(path.join(home, 'stick.img'));
    const mnt = mountDir(home, 'mnt');
    for (const p of [home, img, mnt]) chownSync(p, NOBODY, NOBODY);
    const asNobody = (argv: string[]) => run('runuser', ['-u', 'nobody', '--', process.execPath, ...argv]);
    const pid = mounted(asNobody([RUMP_MSDOS, img, mnt]), mnt, 'fuse.msdos');
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\t${NOBODY}\\t${NOBODY}\\t${NOBODY}\\t`, 'm'));
    expect(mountAt(mnt)?.options).toMatch(/nosuid,nodev/);
    const w = run('runuser', ['-u', 'nobody', '--', 'sh', '-c', 'echo mine > "$0"/by-user.txt && stat -c %u "$0"/by-user.txt', mnt]);
    expect(w.stdout.trim()).toBe(String(NOBODY));
    ok(asNobody([RUMPUMOUNT, mnt]));
    expect(processGone(pid)).toBe(true);
    mine.delete(mnt);
    expect(mountAt(mnt)).toBeNull();
    expect(out('mtype', ['-i', img, '::by-user.txt'])).toBe('mine\n');

    // Plain umount by the user (util-linux runs /sbin/umount.fuse.msdos, which
    // waits): at once after it, fsck finds the image clean, the write in it.
    const again = mounted(asNobody([RUMP_MSDOS, img, mnt]), mnt, 'fuse.msdos');
    expect(run('runuser', ['-u', 'nobody', '--', 'sh', '-c', 'echo again > "$0"/second.txt', mnt]).status).toBe(0);
    ok(run('runuser', ['-u', 'nobody', '--', 'umount', mnt]));
    expect(processGone(again)).toBe(true);
    mine.delete(mnt);
    expect(run('fsck.fat', ['-n', img]).status).toBe(0);
    expect(out('mtype', ['-i', img, '::second.txt'])).toBe('again\n');

    // What the user may not do: status 1, as mount's "permissions".
    const rumpmountAsNobody = (...args: string[]) => asNobody([RUMPMOUNT, ...args]);
    notMounted(rumpmountAsNobody('-o', 'rump', img, d), d, 1, /permission denied \(an ordinary user mounts only on a directory it may write to\)/);
    const secret = fatImage(path.join(d, 'root-only.img'));
    chmodSync(secret, 0o600);
    notMounted(rumpmountAsNobody('-o', 'rump', secret, mnt), mnt, 1, /root-only\.img: permission denied/);
    // An image it may only read is mounted read-only, as mount does with a write-protected device.
    chmodSync(img, 0o444);
    const r = rumpmountAsNobody('-o', 'rump', img, mnt);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`rumpmount: WARNING: ${img} is write-protected, mounted read-only`);
    const roPid = served(mnt, 'fuse.msdos');
    expect(mountAt(mnt)?.options).toMatch(/^ro,/);
    ok(asNobody([RUMPUMOUNT, mnt]));
    expect(processGone(roPid)).toBe(true);
    mine.delete(mnt);
  });

  it('errors: a clear message and mount\'s exit status, nothing left mounted', async () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const other = fatImage(path.join(d, 'g.img'));
    const bad = path.join(d, 'bad.img');
    writeFileSync(bad, Buffer.alloc(1 << 20, 0x5a));
    const [mnt, mnt2] = ['mnt', 'mnt2'].map(n => mountDir(d, n));
    notMounted(mount('-t', 'rump.nope', img, mnt), mnt, 32, /unknown file system type 'rump\.nope'/);
    notMounted(rumpmount('-t', 'nope', '-o', 'rump', img, mnt), mnt, 32, /unknown file system type 'nope'/);
    notMounted(mount('-t', 'rump.msdos', path.join(d, 'none.img'), mnt), mnt, 32, /none\.img: special device does not exist/);
    notMounted(mount('-t', 'rump.msdos', bad, mnt), mnt, 32, /not a FAT file system/);
    notMounted(mount('-t', 'rump', bad, mnt), mnt, 32, /no FAT, exFAT, NTFS, ext2\/3\/4, ISO 9660 or UDF file system found/);

    mounted(mount('-t', 'rump.msdos', img, mnt), mnt, 'fuse.msdos');
    // The mount point is busy (and stays as it was).
    const busy = mount('-t', 'rump.msdos', other, mnt);
    expect(busy.status).toBe(32);
    expect(busy.stderr).toMatch(/mount point .*mnt is in use/);
    expect(mountAt(mnt)?.source).toBe(img);
    // The device is mounted elsewhere: the exclusive open fails.
    notMounted(mount('-t', 'rump.msdos', img, mnt2), mnt2, 32, /f\.img: already in use \(mounted elsewhere/);
    notMounted(run(process.execPath, [RUMP_MSDOS, img, mnt2]), mnt2, 32, /EBUSY/);
    await umount(mnt);

    // Usage: mount's status 1.
    notMounted(run('/sbin/mount.rump', [img]), mnt, 1, /expected two operands/);
    notMounted(rumpmount('-o', 'rump,part=0', img, mnt), mnt, 1, /bad value for part: 0/);
    notMounted(mount('-t', 'rump.msdos', '-o', 'bogus=1', img, mnt), mnt, 1, /unknown option bogus/);
    const notThere = rumpumount(mnt);
    expect(notThere.status).toBe(32);
    expect(notThere.stderr).toMatch(/mnt: not mounted/);
  });

  it('rumpumount: a server that does not exit in time is reported (32); the server still exits once it runs again', async () => {
    const d = tempDir();
    const img = fatImage(path.join(d, 'f.img'));
    const mnt = mountDir(d, 'mnt');
    const pid = mounted(rumpmount('-o', 'rump', img, mnt), mnt, 'fuse.msdos');
    process.kill(pid, 'SIGSTOP');
    try {
      const r = rumpumount('-w', '0.5', mnt);
      expect(r.status).toBe(32);
      expect(r.stderr).toMatch(new RegExp(`unmounted, but its server \\(pid ${pid}\\) is still running after 0\\.5 s`));
      expect(mountAt(mnt)).toBeNull();
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(`server ${pid} to exit`, () => processGone(pid));
    mine.delete(mnt);
    expect(run('fsck.fat', ['-n', img]).status).toBe(0);
  });

  it('fstab.example: every line mounts, with its sources replaced by test images', () => {
    const d = tempDir();
    const fat = fatImage(path.join(d, 'f.img'));
    const mbr = mbrImage(path.join(d, 'mbr.img'));
    // An image of each kernel type the lines name, made by that format's own tools.
    const images: Record<string, () => string> = {
      tmpfs: () => 'tmpfs',
      cd9660: () => isoImage(d),
      udf: () => { const f = path.join(d, 'u.udf'); out('mkudffs', ['--media-type=hd', f, '4096']); return f; },
      ext2fs: () => { const f = path.join(d, 'e.img'); out('mke2fs', ['-q', '-t', 'ext4', f, '16M']); return f; },
      exfat: () => { const f = path.join(d, 'x.img'); writeFileSync(f, ''); truncateSync(f, 16 << 20); out('mkfs.exfat', [f]); return f; },
      ntfs: () => { const f = path.join(d, 'n.img'); writeFileSync(f, ''); truncateSync(f, 16 << 20); out('mkntfs', ['-q', '-F', '-f', f]); return f; },
    };
    const lines = readFileSync(path.join(ROOT, 'fstab.example'), 'utf8').split('\n').filter(l => l.trim() !== '' && !l.startsWith('#'));
    expect(lines.length).toBeGreaterThanOrEqual(8);
    const seen = new Set<string>();
    lines.forEach((line, i) => {
      const [, , type, options] = line.trim().split(/\s+/);
      const isRump = type.startsWith('rump') || type.startsWith('fuse.');
      let k = kernelType(type);
      if (k === 'auto') k = 'msdos';
      const spec = /(^|,)part=/.test(options) ? mbr : (images[k] ?? (() => fat))();
      const mnt = mountDir(d, `m${i}`);
      const fstab = path.join(d, `fstab${i}`);
      writeFileSync(fstab, `${spec} ${mnt} ${type} ${options} 0 0\n`);
      // The system's mount for its types; rumpmount for NetBSD's -o rump lines.
      const r = isRump ? mount('-T', fstab, mnt) : rumpmount('-T', fstab, mnt);
      // NTFS is served read-only: a line without ro (written for ntfs-3g) mounts with a warning;
      // so does an ext4 image (the driver reads it, and writes only ext2).
      expect(r.stderr.replace(/^rump_ntfs: NTFS is served read-only; mounting ro \(rw ignored\)\n/, '')
        .replace(/^rumpfs: ext2fs: \S+: mounted read-only: features this driver does not write: [\w, ]+\n/, '')).toBe('');
      expect(r.status).toBe(0);
      served(mnt, `fuse.${k}`);
      seen.add(type);
      rumpUmount(mnt);
    });
    expect([...seen]).toEqual(expect.arrayContaining(['fuse.rump_msdos', 'rump.auto', 'rump.cd9660', 'rump.msdos', 'rump.tmpfs', 'vfat']));
  });
});
