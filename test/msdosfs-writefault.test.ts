// Write faults (issue 17): the image's own file system full (ENOSPC) or
// failing (EIO) while a FAT volume is written. The error comes back at once
// to write/fsync/close, nothing retries in a loop, the entry never claims
// more than its cluster chain, unmount works, and fsck.fat -n finds what was
// acknowledged before the fault intact. In-process through a fault-injecting
// block device, and through a real FUSE mount of an image on a small kernel
// tmpfs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  blkdev_open, bufcache_setsyncdelay, Cred, errnos, isKernError, Lwp, O_CREAT, O_RDONLY, O_WRONLY, sys_open,
  sys_stat, sys_unlink, vfs_mount, vfs_unmount, vn_close, vn_fsync, vn_read, vn_write, type Mount,
} from '../src/kern/index.js';
import '../src/fs/msdosfs/index.js';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, kernelTmpfs, pattern, rumpMount, rumpUnmount, run, sh, tempDir,
} from './helpers/mount.js';
import { FaultDevice } from './helpers/faultdev.js';

const env = { ...process.env, MTOOLS_SKIP_CHECK: '1', TZ: 'UTC', LC_ALL: 'C.UTF-8' };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

afterEach(async () => {
  bufcache_setsyncdelay(5000);
  await cleanupMounts();
});

/** fsck.fat -n's verdict: status and what it printed beyond its banner and summary. */
function fsck(img: string): { status: number | null; complaints: string[] } {
  const r = run('fsck.fat', ['-n', img], { env });
  const complaints = (r.stdout + r.stderr).split('\n').filter(l => l && !/^fsck\.fat |files, .* clusters$/.test(l));
  return { status: r.status, complaints };
}

/** Device writes in 2.5 s once the syncer has had its one try at what failed: 0 when nothing retries. */
async function noRetryLoop(dev: FaultDevice): Promise<number> {
  await sleep(1500);
  const before = dev.attempts;
  await sleep(2500);
  return dev.attempts - before;
}

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'OK'; } catch (e) { if (isKernError(e)) return e.code; throw e; }
}

async function faultMount(sizeKb: number, fat: string): Promise<{ img: string; dev: FaultDevice; mp: Mount; l: Lwp }> {
  const dir = tempDir('msdos-fault-');
  const img = path.join(dir, 'fat.img');
  execFileSync('mkfs.fat', ['-C', '-F', fat, img, String(sizeKb)], { stdio: 'pipe' });
  const dev = new FaultDevice(await blkdev_open(img, { exclusive: true }));
  const mp = await vfs_mount('msdos', { dev, from: img, flags: 0, options: {} });
  return { img, dev, mp, l: new Lwp(Cred.root, mp.rootvp) };
}

async function writeFile(l: Lwp, p: string, data: Uint8Array): Promise<void> {
  const fp = await sys_open(l, p, O_WRONLY | O_CREAT, 0o644);
  try {
    for (let at = 0; at < data.length;) at += await vn_write(l, fp, data.subarray(at, at + 65536), at);
    await vn_fsync(l, fp);
  } finally { await vn_close(l, fp); }
}

async function readFile(l: Lwp, p: string): Promise<Uint8Array> {
  const { size } = await sys_stat(l, p);
  const fp = await sys_open(l, p, O_RDONLY, 0);
  try {
    const b = new Uint8Array(size);
    expect(await vn_read(l, fp, b, 0)).toBe(size);
    return b;
  } finally { await vn_close(l, fp); }
}

describe('msdosfs: a device that refuses writes (in-process)', () => {
  it('ENOSPC in unwritten space: write fails at once, no retry loop, no file longer than its chain, fsck clean', async () => {
    const { img, dev, mp, l } = await faultMount(32768, '16');
    const keep = pattern(300_000, 7);
    await writeFile(l, '/keep.bin', keep);
    // Everything past what is written so far is a hole the host cannot fill.
    dev.armed = { code: 'ENOSPC', from: dev.size / 2 };
    bufcache_setsyncdelay(0);
    const fp = await sys_open(l, '/fill', O_WRONLY | O_CREAT, 0o644);
    const chunk = pattern(65536, 9);
    let at = 0, err = 'OK';
    const t0 = performance.now();
    for (let i = 0; i < 1000 && err === 'OK'; i++) {
      try { at += await vn_write(l, fp, chunk, at); } catch (e) { err = isKernError(e) ? e.code : String(e); }
    }
    expect(err).toBe('ENOSPC');
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(at).toBeLessThan(dev.size / 2);
    // The next write and fsync fail the same way at once; the syncer does not retry.
    expect(await code(vn_write(l, fp, chunk, at))).toBe('ENOSPC');
    expect(await noRetryLoop(dev)).toBe(0);
    // The failed write-back is also reported once to close (as to fsync), then forgotten.
    expect(await code(vn_close(l, fp))).toBe('ENOSPC');
    expect((await sys_stat(l, '/fill')).size).toBe(at);
    // rm and unmount work while the device is still full.
    await sys_unlink(l, '/fill');
    await vfs_unmount(mp);
    await dev.close();
    const v = fsck(img);
    expect(v.complaints).toEqual([]);
    expect(v.status).toBe(0);
    expect(sha(execFileSync('mtype', ['-i', img, '::keep.bin'], { env, maxBuffer: 1 << 26 }))).toBe(sha(keep));
  });

  it('EIO on every write: write and fsync fail at once, unmount works, the acknowledged file is intact', async () => {
    const { img, dev, mp, l } = await faultMount(16384, '16');
    const keep = pattern(200_000, 11);
    await writeFile(l, '/keep.bin', keep);
    dev.armed = { code: 'EIO', from: 0 };
    bufcache_setsyncdelay(0);
    const fp = await sys_open(l, '/new', O_WRONLY | O_CREAT, 0o644);
    expect(await code(vn_write(l, fp, pattern(100_000, 1), 0))).toBe('EIO');
    expect((await sys_stat(l, '/new')).size).toBe(0);
    expect(await code(vn_fsync(l, fp))).toBe('EIO');
    expect(await noRetryLoop(dev)).toBe(0);
    await vn_close(l, fp).catch(() => undefined);
    const t0 = performance.now();
    await vfs_unmount(mp);
    expect(performance.now() - t0).toBeLessThan(2000);
    await dev.close();
    // Nothing after the fault reached the image: it is as at keep.bin's fsync,
    // marked as not cleanly unmounted (the mount set that, nothing cleared it).
    const v = fsck(img);
    expect(v.complaints.join('\n')).toMatch(/dirty bit/i);
    expect(v.complaints.filter(c => !/dirty bit|not properly unmounted|Leaving filesystem unchanged/i.test(c))).toEqual([]);
    expect(sha(execFileSync('mtype', ['-i', img, '::keep.bin'], { env, maxBuffer: 1 << 26 }))).toBe(sha(keep));
    const dev2 = await blkdev_open(img, { readOnly: true });
    const mp2 = await vfs_mount('msdos', { dev: dev2, from: img, flags: 0, options: {} });
    try {
      const l2 = new Lwp(Cred.root, mp2.rootvp);
      expect(sha(await readFile(l2, '/keep.bin'))).toBe(sha(keep));
      expect(await code(sys_stat(l2, '/new'))).toMatch(/^(OK|ENOENT)$/);
    } finally {
      await vfs_unmount(mp2);
      await dev2.close();
    }
    expect(errnos.EIO).toBe(5);
  });
});

describe.skipIf(SKIP_FUSE)('rump_msdos: the image on a full kernel tmpfs', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('dd conv=fsync gets ENOSPC within seconds; rm and umount work; fsck.fat -n clean, earlier files intact', async () => {
    const dir = tempDir('msdos-full-host-');
    const host = path.join(dir, 'host');
    const mnt = path.join(dir, 'mnt');
    mkdirSync(host);
    mkdirSync(mnt);
    kernelTmpfs(host, 'size=24m,mode=755');
    const img = path.join(host, 'fat.img');
    // A sparse 64 MiB image on 24 MiB of host space.
    execFileSync('mkfs.fat', ['-C', '-F', '32', img, String(64 * 1024)], { stdio: 'pipe' });
    const keep = pattern(2_000_000, 5);
    writeFileSync(path.join(dir, 'keep'), keep);
    const m = rumpMount('rump_msdos', ['-o', 'tz=UTC', img, mnt], mnt, { TZ: 'UTC' });
    let r = sh(`cp '${dir}/keep' '${mnt}/keep.bin' && sync '${mnt}/keep.bin'`, { env });
    expect(r.status, r.stderr).toBe(0);
    const t0 = Date.now();
    r = sh(`timeout 60 dd if=/dev/zero of='${mnt}/fill' bs=64k conv=fsync`, { env, timeout: 70_000 });
    const took = Date.now() - t0;
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/No space left on device/);
    expect(took).toBeLessThan(20_000);
    // The server does not spin: its CPU time stays still over two seconds.
    const cpu = () => {
      const f = sh(`cat /proc/${m.pid}/stat`).stdout.split(' ');
      return Number(f[13]) + Number(f[14]);
    };
    const c0 = cpu();
    await sleep(2000);
    expect(cpu() - c0).toBeLessThan(50); // ticks of 10 ms: under a quarter of the time
    r = sh(`timeout 20 rm '${mnt}/fill'`, { env, timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    await rumpUnmount(m);
    const v = fsck(img);
    expect(v.complaints).toEqual([]);
    expect(v.status).toBe(0);
    expect(sha(execFileSync('mtype', ['-i', img, '::keep.bin'], { env, maxBuffer: 1 << 26 }))).toBe(sha(keep));
  }, 90_000);
});
