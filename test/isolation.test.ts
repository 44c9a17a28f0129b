// Isolation through real mounts: every server unprivileged, in an empty
// root, with no network on any thread; a hostile driver inside the real
// sandbox gets nowhere (and the same probe outside the sandbox does); a
// driver panic kills only its own server, which dies by SIGABRT, leaves a
// mount point that answers ENOTCONN at once until it is unmounted, and
// leaves the other mounts and the image usable.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync, writeSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ROOT, SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, processGone, rumpMount, rumpMountForeground, rumpUnmount,
  run, serverPids, tempDir, waitFor,
} from './helpers/mount.js';

const HOSTILE = path.join(ROOT, 'test/fixtures/hostile/rump_hostile.mjs');
const PROBE = path.join(ROOT, 'test/fixtures/hostile/probe.mjs');
const isRoot = process.geteuid?.() === 0;

function status(pid: number | string, key: string): string {
  const m = new RegExp(`^${key}:[ \\t]*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1].trim() : '';
}

/** What a program sees when it stats the path, measured in a child so that a hang cannot hang the test. */
/**
 * List p in a child process (bounded): the code it got. A listing needs the
 * server (a stat may be answered from the kernel's attribute cache for a
 * second after the server died).
 */
function listInChild(p: string, timeoutMs = 2000): { code: string; ms: number } {
  const t0 = Date.now();
  const r = run(process.execPath, ['-e', `try { require('fs').readdirSync(${JSON.stringify(p)}); console.log('OK') } catch (e) { console.log(e.code) }`],
    { timeout: timeoutMs });
  return { code: r.signal ? `HUNG (${r.signal})` : r.stdout.trim(), ms: Date.now() - t0 };
}

/** A FAT image with a few small files (each a different content). */
function fatImage(dir: string, files: Record<string, string>): string {
  const img = path.join(dir, 'fat.img');
  execFileSync('mkfs.vfat', ['-C', '-n', 'ISOTEST', img, '8192'], { stdio: 'ignore' });
  for (const [name, data] of Object.entries(files)) {
    const src = path.join(dir, name);
    writeFileSync(src, data);
    execFileSync('mcopy', ['-i', img, src, `::${name}`]);
    rmSync(src);
  }
  return img;
}

const hostilePids = new Set<number>();
const children = new Set<ChildProcess>();

afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await cleanupMounts();
  for (const pid of hostilePids) {
    await waitFor('hostile server exit', () => processGone(pid), 5000).catch(() => {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    });
  }
  hostilePids.clear();
});

describe.skipIf(SKIP_FUSE)('isolation of rump servers', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it.each(['rump_tmpfs', 'rump_msdos'])('%s runs unprivileged, seccomp-filtered, in an empty root, with no network on any thread', async prog => {
    const dir = tempDir();
    const mnt = path.join(dir, 'mnt');
    execFileSync('mkdir', [mnt]);
    const m = prog === 'rump_tmpfs'
      ? rumpMount(prog, ['tmpfs', mnt], mnt)
      : rumpMount(prog, [fatImage(dir, { 'a.txt': 'a\n' }), mnt], mnt);
    const pid = m.pid;
    for (const k of ['Uid', 'Gid']) {
      const ids = status(pid, k).split(/\s+/).map(Number);
      expect(ids, k).toHaveLength(4);
      expect(ids.every(x => x !== 0), `${k} ${ids}`).toBe(true);
    }
    expect(status(pid, 'Groups')).toBe('');
    expect(status(pid, 'NoNewPrivs')).toBe('1');
    expect(status(pid, 'Seccomp')).toBe('2');
    const hostNet = readlinkSync('/proc/self/ns/net');
    const tasks = readdirSync(`/proc/${pid}/task`);
    expect(tasks.length).toBeGreaterThan(3);
    for (const tid of tasks) {
      const t = `${pid}/task/${tid}`;
      for (const k of ['CapEff', 'CapPrm', 'CapAmb']) expect(status(t, k), `thread ${tid} ${k}`).toBe('0000000000000000');
      expect(status(t, 'Seccomp'), `thread ${tid}`).toBe('2');
      expect(readlinkSync(`/proc/${t}/ns/net`), `thread ${tid}`).not.toBe(hostNet);
    }
    expect(readlinkSync(`/proc/${pid}/root`)).toBe('/run/rumpfs-empty');
    expect(readdirSync(`/proc/${pid}/root`)).toEqual([]);
    // Its network: a loopback interface, down, and nothing else.
    const ifaces = readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2).filter(Boolean).map(l => l.split(':')[0].trim());
    expect(ifaces).toEqual(['lo']);
    if (isRoot) expect(execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-o', 'link'], { encoding: 'utf8' })).toMatch(/^1: lo: .*state DOWN/);
    // Still serving.
    expect(readdirSync(mnt).length).toBe(prog === 'rump_tmpfs' ? 0 : 1);
    await rumpUnmount(m);
  });

  it('a hostile driver inside the sandbox gets nowhere; the same probe outside it does', async () => {
    const dir = tempDir();
    execFileSync('chmod', ['755', dir]);
    const tag = `${process.pid}-${Date.now()}`;
    const markers = [`/tmp/rumpfs-hostile-${tag}`, `/run/rumpfs-hostile-${tag}`];
    // An image whose partition 1 is sectors 2048..6143; patterned bytes before and after it.
    const img = path.join(dir, 'disk.img');
    writeFileSync(img, Buffer.alloc(4 << 20));
    execFileSync('sfdisk', ['-q', img], { input: 'label: dos\nstart=2048, size=4096, type=83\n' });
    const canary = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + 3) & 0xff));
    const fd = openSync(img, 'r+');
    writeSync(fd, canary, 0, canary.length, 3 << 20);
    writeSync(fd, canary, 0, (1 << 20) - 4096, 4096);
    closeSync(fd);
    const outside = () => { const b = readFileSync(img); return Buffer.concat([b.subarray(0, 1 << 20), b.subarray(3 << 20)]); };
    const before = outside();

    // Witnesses: a TCP and a UDP listener on loopback, a process that reports signals, and another server holding a secret.
    let tcpConnections = 0, udpMessages = 0;
    const tcp = net.createServer(s => { tcpConnections++; s.destroy(); });
    const udp = dgram.createSocket('udp4', () => { udpMessages++; });
    try {
      tcp.listen(0, '127.0.0.1');
      await once(tcp, 'listening');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      const victim = spawn(process.execPath, ['-e', "process.on('SIGUSR1', () => console.log('SIGUSR1')); console.log('ready'); setInterval(() => {}, 1000)"],
        { stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(victim);
      let victimOut = '';
      victim.stdout!.setEncoding('utf8').on('data', (d: string) => { victimOut += d; });
      await waitFor('victim', () => victimOut.includes('ready'));
      const peerMnt = path.join(dir, 'peer');
      execFileSync('mkdir', [peerMnt]);
      const peer = rumpMount('rump_tmpfs', ['tmpfs', peerMnt], peerMnt);
      const secret = `SECRET-${tag}-${Math.random().toString(36).slice(2)}`;
      writeFileSync(path.join(peerMnt, 'secret'), secret);

      const ctx = {
        image: img, canaryOffset: 3 << 20, tag, tcpPort: (tcp.address() as net.AddressInfo).port,
        udpPort: udp.address().port, victimPid: victim.pid!, peerPid: peer.pid, secret,
      };
      const mountHostile = (name: string, extra: string) => {
        const mnt = path.join(dir, name);
        execFileSync('mkdir', [mnt]);
        const opts = `part=1,tag=${tag},tcp=${ctx.tcpPort},udp=${ctx.udpPort},victim=${ctx.victimPid},peer=${ctx.peerPid},secret=${secret},canary=${ctx.canaryOffset}${extra}`;
        const r = run(process.execPath, [HOSTILE, '-o', opts, img, mnt]);
        expect(r.status, r.stderr).toBe(0);
        const pids = serverPidsOf(HOSTILE, mnt);
        expect(pids).toHaveLength(1);
        hostilePids.add(pids[0]);
        return { mnt, pid: pids[0] };
      };
      const settle = () => new Promise(r => setTimeout(r, 300));
      const h = mountHostile('hostile', '');
      const sandboxed = JSON.parse(readFileSync(path.join(h.mnt, 'probe'), 'utf8')) as Record<string, string>;
      const attempt = (prefix: string) => Object.keys(sandboxed).find(k => k.startsWith(prefix))!;
      const expected: Record<string, string> = {
        'open /etc/passwd': 'EPERM',
        'openat(procfs, ../etc/passwd)': 'ENOENT',
        'openat(procfs, victim/root/etc/passwd)': 'EACCES',
        'spawnSync /bin/true': 'EPERM',
        'execFileSync /bin/true': 'EPERM',
        [attempt('tcp connect')]: 'EPERM',
        [attempt('udp send')]: 'EPERM',
        'network interfaces': 'EPERM',
        [markers[0].replace('/tmp', 'create /tmp')]: 'EPERM',
        [markers[1].replace('/run', 'create /run')]: 'EPERM',
        'device write past its end': 'EIO',
        'device write before its start': 'EIO',
        'open the image file for writing': 'EPERM',
        'kill(1, 0)': 'EPERM',
        'kill(victim, SIGUSR1)': 'EPERM',
        'read victim memory': 'EACCES',
        // Each server has a uid of its own: no reading another's memory.
        'read peer server memory': 'EACCES',
        'setuid(0)': 'EPERM',
        'chdir .. and readdir': 'EPERM',
      };
      expect(sandboxed).toEqual(expected);
      // Independently: nothing happened.
      await settle();
      for (const f of markers) expect(existsSync(f), f).toBe(false);
      expect(tcpConnections).toBe(0);
      expect(udpMessages).toBe(0);
      expect(victimOut).toBe('ready\n');
      expect(outside().equals(before)).toBe(true);
      expect(processGone(h.pid)).toBe(false);
      execFileSync('umount', [h.mnt]);
      await waitFor('hostile server exit', () => processGone(h.pid));

      // Nor can a server under a named user (rumpuser=).
      const other = mountHostile('other-uid', ',rumpuser=nobody');
      const r2 = JSON.parse(readFileSync(path.join(other.mnt, 'probe'), 'utf8')) as Record<string, string>;
      expect(r2['read peer server memory']).toBe('EACCES');
      execFileSync('umount', [other.mnt]);
      await waitFor('hostile server exit', () => processGone(other.pid));

      // The same probe outside any sandbox: the attempts are real.
      // (Asynchronously: the listeners here must keep answering.)
      const free = spawn(process.execPath, [PROBE, JSON.stringify(ctx)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(free);
      let freeOut = '';
      free.stdout!.setEncoding('utf8').on('data', (d: string) => { freeOut += d; });
      const [freeStatus] = await once(free, 'close') as [number | null];
      expect(freeStatus).toBe(0);
      const unsandboxed = JSON.parse(freeOut) as Record<string, string>;
      const succeeded = Object.keys(unsandboxed).filter(k => unsandboxed[k] === 'SUCCEEDED');
      for (const k of ['open /etc/passwd', 'openat(procfs, ../etc/passwd)', 'spawnSync /bin/true', 'execFileSync /bin/true',
        attempt('tcp connect'), attempt('udp send'), 'network interfaces', 'open the image file for writing', 'kill(victim, SIGUSR1)',
        'chdir .. and readdir']) {
        expect(succeeded, k).toContain(k);
      }
      await settle();
      for (const f of markers) expect(existsSync(f), f).toBe(true);
      expect(tcpConnections).toBe(1);
      expect(udpMessages).toBe(1);
      expect(victimOut).toBe('ready\nSIGUSR1\n');
      expect(outside().equals(before)).toBe(false);
      // The kernel's range check holds either way.
      expect(unsandboxed['device write past its end']).toBe('EIO');
      await rumpUnmount(peer);
    } finally {
      for (const f of markers) rmSync(f, { force: true });
      tcp.close();
      udp.close();
    }
  });

  /** Mount an image with rump_msdos -f and RUMPFS_FAULT; a rump_tmpfs beside it; the launcher reports the server's fate. */
  async function crashSetup(fault: string, files: Record<string, string>) {
    const dir = tempDir();
    const mnt = path.join(dir, 'fat'), other = path.join(dir, 'other');
    execFileSync('mkdir', [mnt, other]);
    const img = fatImage(dir, files);
    const keep = rumpMount('rump_tmpfs', ['tmpfs', other], other);
    writeFileSync(path.join(other, 'keep'), 'still here\n');
    const fg = rumpMountForeground('rump_msdos', [img, mnt], { RUMPFS_FAULT: fault });
    children.add(fg.child);
    await waitFor('rump_msdos mount', () => mountAt(mnt)?.fstype === 'fuse.msdos' || fg.child.exitCode !== null);
    expect(mountAt(mnt)?.fstype, fg.stderr()).toBe('fuse.msdos');
    const [pid] = serverPids(mnt);
    const otherWorks = (n: number) => {
      expect(readFileSync(path.join(other, 'keep'), 'utf8')).toBe('still here\n');
      writeFileSync(path.join(other, `after-${n}`), `${n}\n`);
      expect(readFileSync(path.join(other, `after-${n}`), 'utf8')).toBe(`${n}\n`);
    };
    /** After the panic: SIGABRT, ENOTCONN at once, others fine, umount works, the image still mounts. */
    const afterPanic = async (op: string, n: number) => {
      expect(await fg.exit, fg.stderr()).toBe(134);
      expect(fg.stderr()).toContain(`panic: RUMPFS_FAULT: injected at VOP_${op} call ${n}`);
      expect(processGone(pid)).toBe(true);
      const seen = listInChild(mnt);
      expect(seen.code).toBe('ENOTCONN');
      expect(seen.ms).toBeLessThan(2000);
      expect(mountAt(mnt)?.fstype).toBe('fuse.msdos'); // a dead mount, visibly
      otherWorks(2);
      execFileSync('umount', [mnt]);
      expect(mountAt(mnt)).toBeNull();
      writeFileSync(path.join(mnt, 'plain'), 'x');
      unlinkSync(path.join(mnt, 'plain'));
      await rumpUnmount(keep);
    };
    return { dir, mnt, img, fg, pid, otherWorks, afterPanic };
  }

  it('a panic while reading kills only that server: SIGABRT, ENOTCONN at once, umount works, others unaffected', async () => {
    const files = { 'a.txt': 'alpha\n', 'b.txt': 'bravo\n', 'c.txt': 'charlie\n', 'd.txt': 'delta\n' };
    const s = await crashSetup('panic:VOP_READ:3', files);
    s.otherWorks(1);
    // A file costs two VOP_READs (its data, then the end-of-file read with
    // which p2k fills the FUSE request): the third is b.txt's first.
    const r = run('/bin/sh', ['-c', 'for f in a b c d; do cat "$1/$f.txt" || echo "$f: failed"; done', 'sh', s.mnt], { timeout: 5000 });
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe('alpha\nb: failed\nc: failed\nd: failed\n');
    expect(r.stderr).toMatch(/b\.txt: (Software caused connection abort|Transport endpoint is not connected)/);
    expect(r.stderr).toMatch(/d\.txt: Transport endpoint is not connected/);
    await s.afterPanic('READ', 3);
    // A fresh server reads the untouched image.
    const again = rumpMount('rump_msdos', ['-o', 'ro', s.img, s.mnt], s.mnt);
    for (const [name, data] of Object.entries(files)) expect(readFileSync(path.join(s.mnt, name), 'utf8')).toBe(data);
    await rumpUnmount(again);
    // The crash left the volume marked dirty (the boot sector's flag, as Linux sets it); nothing else is wrong.
    const fsck = run('fsck.fat', ['-n', s.img]);
    expect(fsck.stdout).toMatch(/Dirty bit is set/);
    expect(fsck.stdout.split('\n').filter(l => l.trim() && !/^fsck\.fat |Dirty bit is set|removing dirty bit|Leaving filesystem unchanged|files, .* clusters$/.test(l)),
      fsck.stdout).toEqual([]);
  });

  it('a panic while writing: the fsynced file survives in the image, a fresh server mounts it', async () => {
    const s = await crashSetup('panic:VOP_WRITE:2', { 'old.txt': 'old\n' });
    s.otherWorks(1);
    // First write: acknowledged and fsynced (file and directory). Second write: the panic.
    const f1 = path.join(s.mnt, 'first.txt');
    const fd1 = openSync(f1, 'w');
    writeSync(fd1, 'first, fsynced\n');
    fsyncSync(fd1);
    closeSync(fd1);
    const dfd = openSync(s.mnt, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    const r = run(process.execPath, ['-e', `try { require('fs').writeFileSync(${JSON.stringify(path.join(s.mnt, 'second.txt'))}, 'lost\\n'); console.log('OK') } catch (e) { console.log(e.code) }`],
      { timeout: 5000 });
    expect(['ECONNABORTED', 'ENOTCONN']).toContain(r.stdout.trim());
    await s.afterPanic('WRITE', 2);
    const again = rumpMount('rump_msdos', [s.img, s.mnt], s.mnt);
    expect(readFileSync(path.join(s.mnt, 'old.txt'), 'utf8')).toBe('old\n');
    expect(readFileSync(path.join(s.mnt, 'first.txt'), 'utf8')).toBe('first, fsynced\n');
    await rumpUnmount(again);
    const fsck = run('fsck.fat', ['-n', s.img]);
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
  });
});

/** Servers (not launchers) of a fixture script serving mountpoint. */
function serverPidsOf(script: string, mountpoint: string): number[] {
  return readdirSync('/proc').filter(n => /^\d+$/.test(n)).map(Number).filter(pid => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.includes(script) && argv.includes(mountpoint) && !processGone(pid) &&
        readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').some(e => e.startsWith('P2K_READY_FD='));
    } catch {
      return false;
    }
  });
}
