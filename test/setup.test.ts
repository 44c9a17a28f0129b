// scripts/setup as root installs a copy of the built package that no
// checkout can take over: the commands keep working when the checkout that
// installed them is deleted, another checkout's setup replaces the copy,
// and a second run with nothing changed changes nothing. Run in temporary
// clones with RUMPFS_ROOT, so the system's own install is never touched.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serverNodeFlags } from '../servers/programs.js';
import { ROOT, SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, rumpUnmount, run, serverPids, tempDir, waitFor } from './helpers/mount.js';

const isRoot = process.getuid?.() === 0;

/** A clone of this repository at HEAD, with this tree's scripts/setup, dependencies and build (so setup builds nothing). */
function checkout(dir: string, name: string): string {
  const co = path.join(dir, name);
  execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, co]);
  execFileSync('git', ['-C', co, 'checkout', '--quiet', execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD']).toString().trim()]);
  cpSync(path.join(ROOT, 'scripts/setup'), path.join(co, 'scripts/setup'));
  for (const d of ['node_modules', 'dist', 'src/rumpuser/build']) {
    rmSync(path.join(co, d), { recursive: true, force: true });
    cpSync(path.join(ROOT, d), path.join(co, d), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }
  // Newer than what they are made from: nothing to rebuild.
  const now = new Date(Date.now() + 60_000);
  for (const f of ['node_modules/.package-lock.json', 'src/rumpuser/build/Release/rumpuser.node', 'dist/.built']) {
    utimesSync(path.join(co, f), now, now);
  }
  return co;
}

function setup(co: string, root: string) {
  const t = Date.now();
  const r = run('bash', [path.join(co, 'scripts/setup')], { cwd: co, env: { ...process.env, RUMPFS_ROOT: root }, timeout: 300_000 });
  return { ...r, ms: Date.now() - t };
}

describe.skipIf(!isRoot)('scripts/setup as root', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  it('installs a copy under RUMPFS_ROOT; a deleted checkout leaves it working; another checkout updates it; a rerun changes nothing', async () => {
    const dir = tempDir('rumpfs-setup-');
    chmodSync(dir, 0o755); // the servers' unprivileged user reads the copy
    const root = path.join(dir, 'root');
    const lib = path.join(root, 'usr/local/lib/rumpfs');
    const a = checkout(dir, 'a');

    const first = setup(a, root);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`installing the package into ${root}/usr/local/lib/rumpfs`);
    expect(lstatSync(lib).isSymbolicLink()).toBe(true);
    const copy = path.join(path.dirname(lib), readlinkSync(lib));
    for (const f of ['dist/servers/rump_msdos.js', 'dist/bin/rump_msdos.cjs', 'dist/bin/mount_rump.cjs', 'package.json',
      'src/rumpuser/build/Release/rumpuser.node', 'src/rumpuser/build/Release/rumpfs_launch', 'node_modules/commander/package.json']) {
      expect(existsSync(path.join(copy, f)), f).toBe(true);
    }
    // Only what runs: no compiler, no test runner.
    for (const d of ['node_modules/typescript', 'node_modules/vitest', 'node_modules/esbuild']) expect(existsSync(path.join(copy, d)), d).toBe(false);
    const shim = (bundle: string) => `#!/bin/sh\nunset NODE_EXTRA_CA_CERTS\nexec ${process.execPath} ${lib}/dist/bin/${bundle}.cjs "$@"\n`;
    // A server runs through its launcher (one Node start per mount).
    const serverShim = (bundle: string) =>
      `#!/bin/sh\nunset NODE_EXTRA_CA_CERTS\nexec ${lib}/src/rumpuser/build/Release/rumpfs_launch ${process.execPath} ${serverNodeFlags(bundle).join(' ')} ${lib}/dist/bin/${bundle}.cjs "$@"\n`;
    expect(readFileSync(path.join(root, 'sbin/mount.rump'), 'utf8')).toBe(shim('mount_rump'));
    for (const h of ['umount.rump', 'umount.fuse.msdos', 'umount.fuse.cd9660']) expect(readFileSync(path.join(root, 'sbin', h), 'utf8')).toBe(shim('umount_rump'));
    for (const cmd of ['rump_tmpfs', 'rump_msdos', 'rump_cd9660', 'rump_udf', 'rump_ntfs']) {
      expect(readFileSync(path.join(root, 'usr/local/bin', cmd), 'utf8')).toBe(serverShim(cmd));
    }
    for (const cmd of ['rumpmount', 'rumpumount']) expect(readFileSync(path.join(root, 'usr/local/bin', cmd), 'utf8')).toBe(shim(cmd));

    // The checkout goes: the commands still work, a real mount included.
    rmSync(a, { recursive: true, force: true });
    const bin = (cmd: string) => path.join(root, 'usr/local/bin', cmd);
    expect(run(bin('rump_msdos'), ['--version']).stdout).toMatch(/^rump_msdos \(rumpfs\) /);
    expect(run(path.join(root, 'sbin/mount.rump'), ['--version']).stdout).toMatch(/^mount\.rump \(rumpfs\) /);
    const img = path.join(dir, 'fat.img'), mp = path.join(dir, 'mnt');
    execFileSync('mkfs.vfat', ['-C', img, '8000'], { stdio: 'ignore' });
    mkdirSync(mp);
    if (!SKIP_FUSE) {
      const m = run(bin('rump_msdos'), [img, mp]);
      expect(m.stderr).toBe('');
      expect(m.status).toBe(0);
      const [pid] = serverPids(mp);
      writeFileSync(path.join(mp, 'hello.txt'), 'hello\n');
      await rumpUnmount({ prog: 'rump_msdos', mountpoint: mp, pid });
      await waitFor('unmounted', () => mountAt(mp) === null);
      expect(run('mtype', ['-i', img, '::hello.txt'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).stdout).toBe('hello\n');
    }

    // Another checkout, another version: its setup replaces the copy.
    const b = checkout(dir, 'b');
    const pkg = JSON.parse(readFileSync(path.join(b, 'package.json'), 'utf8')) as { version: string };
    writeFileSync(path.join(b, 'package.json'), JSON.stringify({ ...pkg, version: `${pkg.version}-b` }, null, 2) + '\n');
    const later = new Date(Date.now() + 120_000);
    utimesSync(path.join(b, 'dist/.built'), later, later);
    const second = setup(b, root);
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    expect(run(bin('rump_msdos'), ['--version']).stdout).toBe(`rump_msdos (rumpfs) ${pkg.version}-b\n`);
    const copyB = readlinkSync(lib);
    expect(copyB).not.toBe(path.basename(copy));

    // Nothing changed: nothing is written, and it is quick.
    const third = setup(b, root);
    expect(third.status).toBe(0);
    expect(third.stdout).toBe('');
    expect(readlinkSync(lib)).toBe(copyB);
    console.log(`setup: first ${first.ms} ms, update ${second.ms} ms, nothing to do ${third.ms} ms`);
    expect(third.ms).toBeLessThan(Math.max(second.ms, 10_000));
  }, 240_000);
});
