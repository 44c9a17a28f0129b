// Every Node module a server loads on its way to serving costs every mount
// its compile time: node:v8 brings node:stream and a dozen more, the first
// performance.now() brings perf_hooks, node:fs/promises its readline and
// watchers (together ~20 ms of a server's start-up CPU, measured). The
// kernel, a driver, p2k and the runner load them only where they are used.
// And what a mount compiles is compiled once: a server's loader keeps V8's
// code cache of it (scripts/bundle.mjs).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { serverNodeFlags } from '../servers/programs.js';
import { launcherPath } from '../src/rumpuser/native.js';
import { mkfs } from './helpers/fat.js';
import { cleanupMounts, ensureBuilt, mountAt, processGone, ROOT, run, SKIP_FUSE, serverPids, tempDir, waitFor } from './helpers/mount.js';

const tmp = tempDir('rumpfs-startup-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(cleanupMounts);

const HEAVY = ['fs/promises', 'v8', 'perf_hooks', 'child_process', 'stream', 'net'];

it('mounting an image and serving it loads none of ' + HEAVY.join(', '), () => {
  ensureBuilt();
  const img = mkfs(tmp, 4096, ['-F', '32']);
  const dist = (f: string) => JSON.stringify(path.join(ROOT, 'dist', f));
  const script = `
    import { writeSync } from 'node:fs';
    import { blkdev_open, vfs_mount } from ${dist('src/kern/index.js')};
    import ${dist('src/fs/msdosfs/index.js')};
    import { P2k } from ${dist('p2k/p2k.js')};
    import ${dist('servers/runner.js')};
    const dev = await blkdev_open(${JSON.stringify(img)}, { exclusive: true });
    const mp = await vfs_mount('msdos', { dev, from: 'img', flags: 0, options: {} });
    const p = new P2k(mp, { readOnly: false, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false, stableIds: false });
    const req = { len: 0, opcode: 0, unique: 1, nodeid: 0, uid: 0, gid: 0, pid: 0 };
    const { entry, open } = await p.create(req, 1, 'f', 0o100644, 2);
    await p.write(req, entry.nodeid, open.fh, 0, Buffer.alloc(1 << 20, 7), 0);
    await p.fsync(req, entry.nodeid, open.fh, false);
    await p.release(req, entry.nodeid, open.fh);
    await p.shutdown();
    await dev.close();
    // Not process.stdout: it would load node:stream and node:net itself.
    writeSync(1, JSON.stringify(process.moduleLoadList));
  `;
  // What Node's own ES module loader loads (node:stream among them) is the baseline: servers are CommonJS bundles.
  const modules = (code: string) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as string[]).filter(m => m.startsWith('NativeModule ')).map(m => m.slice('NativeModule '.length));
  };
  const baseline = new Set(modules(`import { writeSync } from 'node:fs'; writeSync(1, JSON.stringify(process.moduleLoadList));`));
  const added = modules(script).filter(m => !baseline.has(m));
  expect(added.filter(m => HEAVY.includes(m))).toEqual([]);
});

it.skipIf(SKIP_FUSE)('a server writes its code cache at its first mount, the next mounts use it; one V8 refuses, or an empty one left old, is replaced', async () => {
  ensureBuilt();
  const stub = path.join(ROOT, 'dist/bin/rump_tmpfs.cjs');
  if (!existsSync(stub) || statSync(stub).mtimeMs < statSync(path.join(ROOT, 'dist/servers/rump_tmpfs.js')).mtimeMs) {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/bundle.mjs')]);
  }
  // Named after the bundle's content (V8 itself checks only the source's length).
  const name = /cache = __dirname \+ '\/(rump_tmpfs\.[0-9a-f]{16}\.cache)'/.exec(readFileSync(stub, 'utf8'))?.[1];
  expect(name).toBeDefined();
  const cache = path.join(ROOT, 'dist/bin', name!);
  // As servers/programs.ts serverCommand starts it from dist/.
  const [cmd, ...args] = [launcherPath(), process.execPath, ...serverNodeFlags('rump_tmpfs'), stub];
  const mnt = path.join(tmp, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const mountOnce = async () => {
    const r = run(cmd, [...args, 'tmpfs', mnt]);
    expect(r.status, r.stderr).toBe(0);
    writeFileSync(path.join(mnt, 'f'), 'x');
    const [pid] = serverPids(mnt);
    execFileSync('umount', [mnt]);
    await waitFor('the server to exit', () => processGone(pid));
    expect(mountAt(mnt)).toBeNull();
  };
  rmSync(cache, { force: true });
  await mountOnce();
  const first = statSync(cache);
  expect(first.size).toBeGreaterThan(10_000);
  await mountOnce();
  expect(statSync(cache).ino).toBe(first.ino); // accepted: not written again
  writeFileSync(cache, 'not a code cache');
  await mountOnce();
  expect(readFileSync(cache).length).toBeGreaterThan(10_000);
  // Empty: claimed by a server that fills it once its mount has answered. Left to it while recent...
  writeFileSync(cache, '');
  await mountOnce();
  expect(statSync(cache).size).toBe(0);
  // ...and replaced once old (its server was killed before it could fill it).
  const old = new Date(Date.now() - 60_000);
  utimesSync(cache, old, old);
  await mountOnce();
  expect(readFileSync(cache).length).toBeGreaterThan(10_000);
});
