// rumpfs_launch (src/rumpuser/launch.c) with stand-in servers (shell
// scripts speaking its fd-3 lines, and a Node one that asks to be
// supervised): what it returns and says when a server ends before its mount
// is ready, says ready, or stays in front; what its supervisor hands a
// restarted server. Real mounts through it are every other mount test
// (supervised ones: test/restart.test.ts).
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { launcherPath } from '../src/rumpuser/native.js';
import { ensureBuilt, processGone, run, tempDir, waitFor } from './helpers/mount.js';

const isRoot = process.geteuid?.() === 0;

/** The launcher running `sh -c script rump_demo.cjs`: messages name the server rump_demo. */
const launch = (script: string) => run(launcherPath(), ['/bin/sh', '-c', script, 'rump_demo.cjs'], { timeout: 20_000 });

describe('rumpfs_launch', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('a server killed before its mount is ready: exit 32, and the launcher says how it died', () => {
    const r = launch('kill -9 $$');
    expect(r.status).toBe(32);
    expect(r.stderr).toBe('rump_demo: the server was killed by signal 9 (Killed) before the mount was ready\n');
  });

  it('a server that exits before ready: its own status and words (usage 1, --help 0), nothing added', () => {
    let r = launch('echo "rump_demo: unknown option x" >&2; exit 1');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('rump_demo: unknown option x\n');
    r = launch('echo usage; exit 0');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('usage\n');
  });

  it('ready: exit 0 while the server stays; the server\'s environment is the one a server needs', () => {
    const dir = tempDir('rumpfs-launch-');
    // The server says ready, closes fd 3, and stays a while: the launcher must not wait for it.
    const r = run(launcherPath(), ['/bin/sh', '-c', `env > '${dir}/env'; readlink /proc/self/ns/net > '${dir}/ns'; echo ready >&3; exec 3>&- >/dev/null 2>&1; sleep 2`, 'rump_demo.cjs'],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent.pem', NODE_OPTIONS: '--inspect', RUMPFS_NETNS: 'net:[1]' }, timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const env = readFileSync(path.join(dir, 'env'), 'utf8').split('\n');
    expect(env).toEqual(expect.arrayContaining(['UV_USE_IO_URING=0', 'P2K_READY_FD=3', 'P2K_UNMOUNT_FD=4']));
    expect(env.filter(l => /^(NODE_EXTRA_CA_CERTS|NODE_OPTIONS)=/.test(l))).toEqual([]);
    // The network namespace the launcher made for the server (as root), by name; never the caller's value.
    const ns = readFileSync(path.join(dir, 'ns'), 'utf8').trim();
    if (isRoot) expect(ns).not.toBe(readlinkSync('/proc/self/ns/net'));
    expect(env.filter(l => l.startsWith('RUMPFS_NETNS='))).toEqual(isRoot ? [`RUMPFS_NETNS=${ns}`] : []);
  });

  it('unsupervised: once the launcher returns, nothing of it is left (the server\'s parent is not a launcher)', () => {
    const dir = tempDir('rumpfs-launch-');
    const r = run(launcherPath(), ['/bin/sh', '-c', `echo $$ > '${dir}/pid'; echo ready >&3; exec 3>&- >/dev/null 2>&1; sleep 2`, 'rump_demo.cjs'], { timeout: 20_000 });
    expect(r.status).toBe(0);
    const pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
    const ppid = Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    expect(existsSync(`/proc/${ppid}`) ? readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() : '').not.toBe('rumpfs_launch');
  });

  it('"supervise" without its descriptors is refused: the server is served unsupervised', () => {
    const r = launch('echo "supervise 3 /nowhere" >&3; echo ready >&3; exec 3>&- 2>&-');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('rump_demo: cannot supervise: 0 descriptors, want 2 or 3\n');
  });

  it('"supervise" with the wrong descriptors (not /dev/fuse; a region that cannot be sealed) is refused', () => {
    const dir = tempDir('rumpfs-launch-');
    const addon = path.join(path.dirname(launcherPath()), 'rumpuser.node');
    const file = path.join(dir, 'plain');
    for (const [fds, why] of [
      [`[fs.openSync(${JSON.stringify(file)}, 'w+'), fs.openSync(${JSON.stringify(file)}, 'r')]`, 'the first descriptor is not /dev/fuse'],
      [`[fs.openSync('/dev/fuse', 'r+'), fs.openSync(${JSON.stringify(file)}, 'r')]`, 'the in-flight region cannot be sealed and mapped: '],
    ]) {
      const script = `const fs = require('node:fs'), a = require(${JSON.stringify(addon)});
        a.sendFds(3, ${fds}, 'supervise 2 /nowhere\\n'); fs.writeSync(3, 'ready\\n'); fs.closeSync(3); fs.closeSync(2);`;
      const r = run(launcherPath(), [process.execPath, '-e', script, 'rump_demo.cjs'], { timeout: 20_000 });
      expect(r.status).toBe(0);
      // (EINVAL on most file systems, EPERM on tmpfs: a file there is sealed against sealing.)
      expect(r.stderr.startsWith(`rump_demo: cannot supervise: ${why}`) && r.stderr.endsWith('\n') && r.stderr.split('\n').length === 2).toBe(true);
    }
  });

  it('supervised: a server that panics is restarted with fds 4, 5, 6, its env, the region\'s slots answered and cleared, the fault dropped', async () => {
    const dir = tempDir('rumpfs-launch-'), log = path.join(dir, 'log'), mnt = path.join(dir, 'mnt dir');
    const addon = path.join(path.dirname(launcherPath()), 'rumpuser.node');
    // The first server: /dev/fuse (never mounted: the EIO answers fail), a region with three slots set, its log.
    const script = `
      const fs = require('node:fs'), a = require(${JSON.stringify(addon)});
      const say = l => fs.writeSync(2, l + '\\n');
      if (process.env.P2K_FUSE_FD === undefined) {
        const fuse = fs.openSync('/dev/fuse', 'r+'), mem = a.memfdShared('t', 65536), region = a.mapShared(mem, 65536);
        new Uint32Array(region)[0] = 0x52535452;
        const slots = new Float64Array(region, 64);
        slots[5] = 77; slots[6] = -3; slots[7] = 1.5; slots[8191 - 1] = 2 ** 60;
        a.sendFds(3, [fuse, mem, fs.openSync(${JSON.stringify(log)}, 'a')], 'supervise 1 ${mnt.replace(' ', '\\\\040')}\\n');
        fs.writeSync(3, 'ready\\n');
        fs.closeSync(3);
        setTimeout(() => { say('panic: RUMPFS_FAULT: injected demo'); process.abort(); }, 300);
      } else {
        const st = fs.fstatSync(4), region = a.mapShared(5, 65536);
        say('restarted ' + JSON.stringify({
          fuse: st.isCharacterDevice(), pipe: fs.fstatSync(6).isFIFO(), magic: new Uint32Array(region)[0] === 0x52535452,
          slots: new Float64Array(region, 64).filter(u => u !== 0).length, env: [process.env.P2K_FUSE_FD, process.env.P2K_INFLIGHT_FD,
          process.env.P2K_UNMOUNT_FD, process.env.P2K_MOUNTPOINT, process.env.P2K_GENERATION, process.env.RUMPFS_FAULT ?? null],
        }));
        fs.writeSync(3, 'ready\\n');
        fs.closeSync(3);
        setTimeout(() => process.exit(0), 100);
      }`;
    const r = run(launcherPath(), [process.execPath, '-e', script, 'rump_demo.cjs'], { timeout: 20_000, env: { ...process.env, RUMPFS_FAULT: 'panic:demo:1' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    await waitFor('the restarted server to report', () => existsSync(log) && /restarted/.test(readFileSync(log, 'utf8')));
    const text = readFileSync(log, 'utf8');
    const sup = Number(/ rump_demo\[(\d+)\]: supervisor: server \d+ serves /.exec(text)?.[1]);
    await waitFor('the supervisor to exit after its server exits 0', () => processGone(sup));
    expect(text).toMatch(/supervisor: server \d+ serves \/tmp\/.*\/mnt dir; restarts allowed: 1 in 60 s/);
    expect(text).toMatch(/supervisor: server \d+ killed by SIGABRT: panic: RUMPFS_FAULT: injected demo\n/);
    expect(text).toMatch(/supervisor: restart 1 of 1 in 60 s: server \d+\n/);
    expect(text).not.toMatch(/answered EIO/);
    expect(JSON.parse(/restarted (.*)/.exec(text)![1])).toEqual({
      fuse: true, pipe: true, magic: true, slots: 0, env: ['4', '5', '6', mnt, '1', null],
    });
  }, 30_000);

  it('foreground: the launcher stays and exits with the server\'s status', () => {
    const r = launch('echo foreground >&3; echo ready >&3; exec 3>&-; exit 5');
    expect(r.status).toBe(5);
  });

  it('no program: a usage message and status 1', () => {
    const r = run(launcherPath(), []);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^usage: rumpfs_launch PROGRAM/);
  });
});
