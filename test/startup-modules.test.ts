// Every Node module a server loads on its way to serving costs every mount
// its compile time: node:v8 brings node:stream and a dozen more, the first
// performance.now() brings perf_hooks, node:fs/promises its readline and
// watchers (together ~20 ms of a server's start-up CPU, measured). The
// kernel, a driver, p2k and the runner load them only where they are used.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { mkfs } from './helpers/fat.js';
import { ensureBuilt, ROOT, tempDir } from './helpers/mount.js';

const tmp = tempDir('rumpfs-startup-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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
