// rumpfs_launch (src/rumpuser/launch.c) with stand-in servers (shell
// scripts speaking its fd-3 lines): what it returns and says when a server
// ends before its mount is ready, says ready, or stays in front. Real
// mounts through it are every other mount test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { launcherPath } from '../src/rumpuser/native.js';
import { ensureBuilt, run, tempDir } from './helpers/mount.js';

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
    const r = run(launcherPath(), ['/bin/sh', '-c', `env > '${dir}/env'; echo ready >&3; exec 3>&- >/dev/null 2>&1; sleep 2`, 'rump_demo.cjs'],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent.pem', NODE_OPTIONS: '--inspect' }, timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const env = readFileSync(path.join(dir, 'env'), 'utf8').split('\n');
    expect(env).toEqual(expect.arrayContaining(['UV_USE_IO_URING=0', 'P2K_READY_FD=3', 'P2K_UNMOUNT_FD=4']));
    expect(env.filter(l => /^(NODE_EXTRA_CA_CERTS|NODE_OPTIONS)=/.test(l))).toEqual([]);
  });

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
