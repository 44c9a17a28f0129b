// A crashed read-only server comes back by itself (the supervisor is the C
// launcher, src/rumpuser/launch.c: one Node process per mount):
// with RUMPFS_FAULT panicking a server, every file of an ISO 9660 image and
// of a read-only FAT image still reads whole and right, ls -lR keeps
// working, a file held open across the crash reads to its end, the log
// tells the crash and the restart; an endless fault ends in ENOTCONN after
// restart=N restarts; restart=0 and read-write mounts fail as they always
// did; every way to unmount still ends every process.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ROOT, SKIP_FUSE, cleanupMounts, ensureBuilt, mountAt, pattern, processGone, mountProcesses, rumpMount, run, serverPids, serverScript, sh, tempDir, waitFor,
} from './helpers/mount.js';

const fatEnv = { ...process.env, MTOOLS_SKIP_CHECK: '1', TZ: 'UTC' };

const MANY = 150;
const manyName = (i: number) => `entry-${String(i).padStart(3, '0')}.txt`;

/** The source tree: files of several READs each, a small one, a subdirectory. */
function tree(dir: string): string {
  const src = path.join(dir, 'src');
  mkdirSync(path.join(src, 'sub', 'deeper'), { recursive: true });
  for (let i = 1; i <= 5; i++) writeFileSync(path.join(src, `file${i}.bin`), pattern(i * 210_000 + 17, i));
  writeFileSync(path.join(src, 'small.txt'), 'small\n');
  writeFileSync(path.join(src, 'sub', 'inner.bin'), pattern(333_333, 9));
  writeFileSync(path.join(src, 'sub', 'deeper', 'last.txt'), 'the end\n');
  // A directory that takes several READDIRs.
  mkdirSync(path.join(src, 'many'));
  for (let i = 0; i < MANY; i++) writeFileSync(path.join(src, 'many', manyName(i)), `${i}\n`);
  return src;
}

function isoImage(dir: string, src: string): string {
  const img = path.join(dir, 'img.iso');
  execFileSync('genisoimage', ['-quiet', '-R', '-J', '-o', img, src], { stdio: 'pipe' });
  return img;
}

function fatImage(dir: string, src: string): string {
  const img = path.join(dir, 'fat.img');
  execFileSync('mkfs.vfat', ['-C', img, '16384'], { env: fatEnv, stdio: 'pipe' });
  execFileSync('mcopy', ['-s', '-i', img, ...readdirSync(src).map(n => path.join(src, n)), '::/'], { env: fatEnv, stdio: 'pipe' });
  return img;
}

/** sha256sum of every file, names relative, sorted. */
function sums(dir: string): string {
  const r = sh(`cd '${dir}' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`, { timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

/** ls -lR, which must work. */
function lsR(dir: string): string {
  const r = sh(`cd '${dir}' && LC_ALL=C ls -lR --time-style=+%s .`, { timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

const mountProcs = mountProcesses;

/** The Node processes whose command line names the mount point. */
function nodeProcesses(mnt: string): number[] {
  return readdirSync('/proc').filter(p => /^\d+$/.test(p)).map(Number).filter(pid => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(mnt) && !processGone(pid);
    } catch { return false; }
  });
}

const rssKiB = (pid: number) => Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

const started = new Set<string>();

/** Mount in the background with a log; the launcher must exit 0. */
function mount(prog: string, args: string[], mnt: string, log: string, env: Record<string, string> = {}): void {
  const r = run(process.execPath, [serverScript(prog), ...args, mnt], { env: { ...process.env, RUMPFS_LOG: log, ...env } });
  expect(r.status, r.stderr).toBe(0);
  started.add(mnt);
}

/** Unmount (umount) and wait until no process of the mount is left. */
async function unmount(mnt: string): Promise<void> {
  execFileSync('umount', [mnt]);
  await waitFor(`every process of ${mnt} to exit`, () => {
    const p = mountProcs(mnt);
    return p.supervisors.length === 0 && p.servers.length === 0;
  });
  expect(mountAt(mnt)).toBeNull();
  started.delete(mnt);
}

const logText = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8') : '');
const panics = (log: string) => logText(log).split('\n').filter(l => / rump_\w+\[\d+\]: panic: /.test(l));

/** What a program sees of a path: the errno name it fails with, or 'ok'. */
function lsCode(dir: string): string {
  const r = run('ls', [dir], { timeout: 10_000 });
  if (r.status === 0) return 'ok';
  return /Transport endpoint is not connected/.test(r.stderr) ? 'ENOTCONN' : r.stderr.trim();
}

/** A mount without a supervisor: one server, whose crash leaves the mount answering ENOTCONN until unmounted. */
async function crashStaysDead(mnt: string, log: string): Promise<void> {
    const p = mountProcs(mnt);
    expect(p.supervisors).toEqual([]);
    expect(p.servers).toHaveLength(1);
    expect(run('cat', [path.join(mnt, 'small.txt')], { timeout: 10_000 }).status).not.toBe(0);
    await waitFor('the server to die', () => processGone(p.servers[0]));
    expect(lsCode(mnt)).toBe('ENOTCONN');
    expect(logText(log)).not.toContain('supervisor');
    await unmount(mnt);
}

describe.skipIf(SKIP_FUSE)('a crashed read-only server comes back by itself', () => {
  let dir = '', src = '', iso = '', fat = '', expected = '';
  beforeAll(() => {
    ensureBuilt();
    dir = tempDir('rumpfs-restart-');
    src = tree(dir);
    iso = isoImage(dir, src);
    fat = fatImage(dir, src);
    expected = sums(src);
  }, 120_000);

  afterEach(async () => {
    // Whatever a failed test left: unmount, then end its processes (ours only, by pid).
    for (const mnt of [...started]) {
      started.delete(mnt);
      if (mountAt(mnt)) sh(`umount '${mnt}' || umount -l '${mnt}'`);
      const end = Date.now() + 5000;
      let p = mountProcs(mnt);
      while ((p.supervisors.length || p.servers.length) && Date.now() < end) {
        await new Promise(r => setTimeout(r, 50));
        p = mountProcs(mnt);
      }
      for (const pid of [...p.supervisors, ...p.servers]) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      if (mountAt(mnt)) sh(`umount -l '${mnt}'`);
    }
  });
  afterAll(cleanupMounts);

  const cases = [
    { name: 'rump_cd9660', args: () => [iso], fstype: 'fuse.cd9660' },
    { name: 'rump_msdos -o ro', args: () => ['-o', 'ro', fat], fstype: 'fuse.msdos' },
  ];
  for (const c of cases) {
    const prog = c.name.split(' ')[0];
    it(`${c.name}, RUMPFS_FAULT=panic:VOP_READ:3: every file reads right, ls -lR works, one crash and one restart in the log`, async () => {
      const mnt = tempDir('rumpfs-restart-m-'), log = path.join(dir, `${path.basename(mnt)}.log`);
      mount(prog, c.args(), mnt, log, { RUMPFS_FAULT: 'panic:VOP_READ:3' });
      expect(mountAt(mnt)?.fstype).toBe(c.fstype);
      const before = mountProcs(mnt);
      expect(before.supervisors).toHaveLength(1);
      expect(before.servers).toHaveLength(1);
      // The supervisor holds the FUSE session, never the image; it is the small C launcher, the server the one Node.
      const sup = before.supervisors[0], image = c.args().at(-1)!;
      expect(readFileSync(`/proc/${sup}/comm`, 'utf8').trim()).toBe('rumpfs_launch');
      expect(nodeProcesses(mnt)).toEqual(before.servers);
      expect(rssKiB(sup)).toBeLessThan(8 * 1024);
      const links = readdirSync(`/proc/${sup}/fd`).map(fd => { try { return readlinkSync(`/proc/${sup}/fd/${fd}`); } catch { return ''; } });
      expect(links).toContain('/dev/fuse');
      expect(links).not.toContain(image);
      const listing = lsR(mnt);
      expect(sums(mnt)).toBe(expected);
      expect(lsR(mnt)).toBe(listing);
      // The fault fired once: a restarted server runs without it.
      await waitFor('the restart in the log', () => / supervisor: restart 1 of 3 in 60 s: server \d+/.test(logText(log)));
      const text = logText(log);
      expect(text).toContain(`supervisor: server ${before.servers[0]} killed by SIGABRT: panic: RUMPFS_FAULT: injected at VOP_READ call 3`);
      expect(panics(log)).toHaveLength(1);
      expect(text).not.toMatch(/restart 2 of/);
      // Again, with the new server: all still there.
      expect(sums(mnt)).toBe(expected);
      const after = mountProcs(mnt);
      expect(after.supervisors).toEqual(before.supervisors);
      expect(after.servers).toHaveLength(1);
      expect(after.servers[0]).not.toBe(before.servers[0]);
      await unmount(mnt);
      expect(logText(log)).toContain(`rump_${prog.slice(5)}[${after.servers[0]}]: unmounted ${mnt}: clean`);
    }, 60_000);
  }

  it('a file and a directory held open across the crash read to their ends, through handles the new server opens again', async () => {
    const mnt = tempDir('rumpfs-restart-m-'), log = path.join(dir, `${path.basename(mnt)}.log`);
    // The 3rd VOP_READ: reading another file after the first 4 KiB of the held one.
    mount('rump_cd9660', [iso], mnt, log, { RUMPFS_FAULT: 'panic:VOP_READ:3' });
    const script = `
      const fs = require('node:fs'), { execFileSync } = require('node:child_process'), crypto = require('node:crypto');
      const [held, others] = [process.argv[1], process.argv.slice(2)];
      const fd = fs.openSync(held, 'r'), size = fs.fstatSync(fd).size, buf = Buffer.alloc(size);
      const dir = fs.opendirSync(process.env.MANY_DIR), names = [];
      for (let i = 0; i < 10; i++) names.push(dir.readSync().name);
      let off = fs.readSync(fd, buf, 0, 4096, 0);
      for (const f of others) fs.readFileSync(f);
      while (off < size) { const n = fs.readSync(fd, buf, off, Math.min(65536, size - off), off); if (n === 0) break; off += n; }
      fs.closeSync(fd);
      for (let e; (e = dir.readSync()) !== null;) names.push(e.name);
      dir.closeSync();
      console.log(off + ' ' + crypto.createHash('sha256').update(buf.subarray(0, off)).digest('hex'));
      console.log(names.sort().join(','));`;
    const held = path.join(mnt, 'file5.bin');
    const r = run(process.execPath, ['-e', script, held, ...[1, 2, 3, 4].map(i => path.join(mnt, `file${i}.bin`))],
      { timeout: 30_000, env: { ...process.env, MANY_DIR: path.join(mnt, 'many') } });
    expect(r.stderr).toBe('');
    const want = pattern(5 * 210_000 + 17, 5);
    const [sum, names] = r.stdout.trim().split('\n');
    expect(sum).toBe(`${want.length} ${(await import('node:crypto')).createHash('sha256').update(want).digest('hex')}`);
    expect(names).toBe(Array.from({ length: MANY }, (_, i) => manyName(i)).join(','));
    await waitFor('the restart in the log', () => /supervisor: restart 1 of 3/.test(logText(log)));
    // Both handles: the file's and the directory's.
    expect(logText(log).match(/p2k: handle \d+ of node \d+, an earlier server's, opened again/g)?.length).toBeGreaterThanOrEqual(2);
    expect(panics(log)).toHaveLength(1);
    await unmount(mnt);
  }, 60_000);

  it('a request in flight at the crash is answered EIO by the supervisor; the next one is served', async () => {
    const mnt = tempDir('rumpfs-restart-m-'), log = path.join(dir, `${path.basename(mnt)}.log`);
    // Direct I/O: the READ that panics is the caller's own (no read-ahead the kernel would retry).
    mount('rump_cd9660', [iso], mnt, log, { RUMPFS_FAULT: 'panic:VOP_READ:1', P2K_NOCACHE_PAGE: '1' });
    const small = path.join(mnt, 'small.txt');
    const r = run('cat', [small], { timeout: 10_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    await waitFor('the restart in the log', () => /supervisor: restart 1 of 3/.test(logText(log)));
    expect(logText(log)).toMatch(/supervisor: [1-9]\d* requests? in flight answered EIO/);
    expect(readFileSync(small, 'utf8')).toBe('small\n');
    await unmount(mnt);
  }, 60_000);

  it(':always panics in every server: after restart=2 restarts the mount answers ENOTCONN; umount still works', async () => {
    const mnt = tempDir('rumpfs-restart-m-'), log = path.join(dir, `${path.basename(mnt)}.log`);
    mount('rump_cd9660', ['-o', 'restart=2', iso], mnt, log, { RUMPFS_FAULT: 'panic:VOP_READ:2:always' });
    const { supervisors: [sup] } = mountProcs(mnt);
    // Each server dies at its second VOP_READ: reading on ends in ENOTCONN once the supervisor gives up.
    for (let i = 0; i < 20 && !processGone(sup); i++) run('cat', [1, 2, 3, 4, 5].map(n => path.join(mnt, `file${n}.bin`)), { timeout: 30_000 });
    await waitFor('the supervisor to give up', () => processGone(sup), 20_000);
    const text = logText(log);
    expect(text).toMatch(/supervisor: restart 2 of 2 in 60 s/);
    expect(text).toMatch(/supervisor: 2 restarts in 60 s already: giving up; .* answers ENOTCONN until unmounted/);
    expect(panics(log)).toHaveLength(3);
    expect(lsCode(mnt)).toBe('ENOTCONN');
    expect(mountAt(mnt)?.fstype).toBe('fuse.cd9660');
    await unmount(mnt);
  }, 60_000);

  it('restart=0: no supervisor, one crash and the mount answers ENOTCONN, as before', async () => {
    const mnt = tempDir('rumpfs-restart-m-'), log = path.join(dir, `${path.basename(mnt)}.log`);
    mount('rump_cd9660', ['-o', 'restart=0', iso], mnt, log, { RUMPFS_FAULT: 'panic:VOP_READ:1' });
    await crashStaysDead(mnt, log);
  }, 60_000);

  it('a read-write mount never restarts: the crash leaves ENOTCONN', async () => {
    const d = tempDir('rumpfs-restart-rw-');
    const img = fatImage(d, src);
    const mnt = path.join(d, 'm'), log = path.join(d, 'log');
    mkdirSync(mnt);
    mount('rump_msdos', [img], mnt, log, { RUMPFS_FAULT: 'panic:VOP_READ:1' });
    await crashStaysDead(mnt, log);
  }, 60_000);

  it('every way to unmount ends the supervisor and its server: SIGTERM to either, fusermount3 -u, rumpumount', async () => {
    for (const way of ['server', 'supervisor', 'fusermount', 'rumpumount'] as const) {
      const mnt = tempDir('rumpfs-restart-m-'), log = path.join(dir, `${path.basename(mnt)}.log`);
      mount('rump_cd9660', [iso], mnt, log);
      expect(readFileSync(path.join(mnt, 'small.txt'), 'utf8')).toBe('small\n');
      const { supervisors: [sup], servers: [srv] } = mountProcs(mnt);
      if (way === 'server') process.kill(srv, 'SIGTERM');
      else if (way === 'supervisor') process.kill(sup, 'SIGTERM');
      else if (way === 'fusermount') execFileSync('fusermount3', ['-u', mnt]);
      else {
        // rumpumount waits for the process the launcher started, the supervisor, which exits after its server.
        const r = run(process.execPath, [path.join(ROOT, 'dist/scripts/rumpumount.js'), '-v', mnt], { timeout: 30_000 });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`server ${sup} exited`));
        expect(processGone(sup) && processGone(srv)).toBe(true);
      }
      await waitFor(`${way}: every process to exit`, () => processGone(sup) && processGone(srv));
      await waitFor(`${way}: the mount to go`, () => mountAt(mnt) === null);
      expect(logText(log)).toContain(`[${srv}]: unmounted ${mnt}: clean`);
      started.delete(mnt);
    }
  }, 60_000);
});
