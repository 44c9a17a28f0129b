// rump_tmpfs through a real FUSE mount: ordinary programs against a kernel
// tmpfs as the judge, permissions as other users, the mount options, the
// ways to unmount, foreground and background, and mounts that must fail.
import { execFileSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, existsSync, ftruncateSync, linkSync, mkdirSync, openSync, readdirSync, readSync, statSync,
  symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  SKIP_FUSE, cleanupMounts, ensureBuilt, kernelTmpfs, mountAt, pattern, processGone, rumpMount, rumpMountForeground,
  rumpUnmount, run, serverPids, serverScript, sh, tempDir, waitFor,
} from './helpers/mount.js';


function fixtureTree(dir: string): void {
  writeFileSync(path.join(dir, 'a.txt'), 'hello\n');
  mkdirSync(path.join(dir, 'sub'));
  writeFileSync(path.join(dir, 'sub/deep.txt'), 'deep\n');
  chownSync(path.join(dir, 'sub/deep.txt'), 1000, 1000);
  writeFileSync(path.join(dir, 'big.bin'), pattern(1_000_000, 7));
  writeFileSync(path.join(dir, 'empty'), '');
  chmodSync(path.join(dir, 'empty'), 0o600);
  linkSync(path.join(dir, 'empty'), path.join(dir, 'hl'));
  symlinkSync('sub/deep.txt', path.join(dir, 'link'));
  writeFileSync(path.join(dir, 'sparse'), '');
  truncateSync(path.join(dir, 'sparse'), 1 << 20);
  const t = new Date('2010-01-01T00:00:00Z');
  for (const f of ['a.txt', 'sub/deep.txt', 'big.bin', 'sparse', 'empty']) utimesSync(path.join(dir, f), t, t);
}

// Runs in the directory given; prints what the programs see, nothing that
// depends on when it ran or on directory order.
const WORKLOAD = String.raw`
set -e
FIX=$1
cd "$2"
mkdir src
cp -a "$FIX"/. src/
tar -C src -cf src.tar .
mkdir t
tar -C t -xf src.tar
mv src/a.txt src/b.txt
ln src/b.txt src/hard
ln -s b.txt src/sym
chmod 640 src/b.txt
chown 1234:5678 src/hard
touch -d '2020-01-02 03:04:05' src/b.txt
touch -m -d '2019-05-06 07:08:09' src/sub/deep.txt
touch -a -d '2018-05-06 07:08:09' src/sub/deep.txt
truncate -s 12345 trunc
cp src/big.bin cut && truncate -s 100 cut
dd if="$FIX/big.bin" of=dd.out bs=4096 count=10 seek=3 conv=notrunc status=none
mkfifo fifo
mkdir -p x/y/z && mv x/y x/w && rmdir x/w/z
echo "== tree"
find . -printf '%p %y %m %n %U %G %l\n' | sort
echo "== sizes"
find . -type f ! -name src.tar -printf '%p %s\n' | sort
echo "== times"
find src t -type f -printf '%p %TY-%Tm-%Td %TH:%TM:%.2TS\n' | sort
stat -c '%n %x' src/sub/deep.txt
echo "== sums"
find . -type f ! -name src.tar -print0 | sort -z | xargs -0 sha256sum
echo "== tar"
tar -tvf src.tar | grep -c '^h'
tar -tvf src.tar | grep -v '^d' | sed -E 's/^h/-/; s/ link to .*//' | sort
echo "== ls"
ls -ln --time-style=+%s src t | grep -v '^total' | grep -v '^d' | awk '{print $1, $2, $3, $4, $5, $NF}' | sort
echo "== df"
df -B1 --output=size . | tail -1 | tr -d ' '
`;

describe.skipIf(SKIP_FUSE)('rump_tmpfs through FUSE', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  it('ordinary programs see what they see on a kernel tmpfs', () => {
    const base = tempDir();
    const fix = path.join(base, 'fix'), k = path.join(base, 'k'), r = path.join(base, 'r');
    for (const d of [fix, k, r]) mkdirSync(d);
    fixtureTree(fix);
    kernelTmpfs(k, 'size=64m,mode=1777');
    rumpMount('rump_tmpfs', ['-o', 'size=64m', 'tmpfs', r], r);
    const onKernel = run('/bin/sh', ['-c', WORKLOAD, 'sh', fix, k], { env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } });
    const onRump = run('/bin/sh', ['-c', WORKLOAD, 'sh', fix, r], { env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } });
    expect(onKernel.stderr).toBe('');
    expect(onKernel.status).toBe(0);
    expect(onRump.stderr).toBe('');
    expect(onRump.status).toBe(0);
    expect(onRump.stdout).toBe(onKernel.stdout);
    // Not vacuous: the things the workload set are there.
    expect(onRump.stdout).toContain('./src/hard f 640 2 1234 5678');
    expect(onRump.stdout).toContain('src/b.txt 2020-01-02 03:04:05');
    expect(onRump.stdout).toContain('src/sub/deep.txt 2019-05-06 07:08:09');
    expect(onRump.stdout).toContain('src/sub/deep.txt 2018-05-06 07:08:09');
    expect(onRump.stdout).toContain('./fifo p 644');
    expect(onRump.stdout).toContain('== tar\n1\n'); // the hard link was seen
    expect(onRump.stdout).toContain('== df\n67108864');
  });

  it('decides permissions for other users, groups included, as a kernel tmpfs does', () => {
    const base = tempDir();
    chmodSync(base, 0o755); // nobody must reach the mount points
    const k = path.join(base, 'k'), r = path.join(base, 'r');
    mkdirSync(k); mkdirSync(r);
    kernelTmpfs(k, 'size=16m,mode=755');
    rumpMount('rump_tmpfs', ['-m', '755', '-s', '16m', 'tmpfs', r], r);
    const setup = String.raw`
      set -e; cd "$1"
      mkdir private && chmod 700 private && echo s > private/secret
      echo r > readonly && chmod 644 readonly
      mkdir group && chgrp 4242 group && chmod 770 group
      echo g > group/file && chgrp 4242 group/file && chmod 660 group/file
      mkdir open && chmod 777 open
      mkdir sticky && chmod 1777 sticky && echo x > sticky/rootfile && chmod 666 sticky/rootfile
      echo x > mine && chown 65534 mine && chmod 600 mine`;
    const probe = String.raw`
      cd "$1"
      t() { if out=$("$@" 2>&1); then echo "ok: $*"; else echo "no: $*"; fi; }
      t cat readonly; t sh -c 'echo x >> readonly'; t test -w readonly; t test -r readonly
      t ls private; t cat private/secret
      t ls group; t cat group/file; t sh -c 'echo y >> group/file'; t touch group/new-$2; t test -r group/file
      t touch newfile; t touch open/f-$2; t mv open/f-$2 open/g-$2; t ln -s x open/s-$2; t mkdir open/d-$2; t rmdir open/d-$2
      t rm sticky/rootfile; t sh -c 'echo z > sticky/rootfile'
      t chmod 600 readonly; t chmod 644 mine; t cat mine; t chown 0 mine; t chgrp 4242 mine
      t touch -d 2001-01-01 readonly; t touch readonly; t touch -d 2001-01-01 mine`;
    const results: Record<string, string[]> = {};
    for (const [name, dir] of [['kernel', k], ['rump', r]] as const) {
      const s = run('/bin/sh', ['-c', setup, 'sh', dir]);
      expect(s.stderr).toBe('');
      results[name] = [];
      for (const groups of ['--clear-groups', '--groups=4242']) {
        const p = run('setpriv', ['--reuid=65534', '--regid=65534', groups, '/bin/sh', '-c', probe, 'sh', dir, groups.length]);
        expect(p.status).toBe(0);
        results[name].push(p.stdout);
      }
    }
    expect(results.rump).toEqual(results.kernel);
    const [plain, grouped] = results.rump;
    expect(plain).toContain('ok: cat readonly');
    expect(plain).toContain('no: sh -c echo x >> readonly');
    expect(plain).toContain('no: cat private/secret');
    expect(plain).toContain('no: cat group/file');
    expect(plain).toContain('no: rm sticky/rootfile');
    expect(plain).toContain('ok: chmod 644 mine');
    expect(grouped).toContain('ok: cat group/file');
    expect(grouped).toMatch(/ok: touch group\/new-/);
  });

  // fstat(2) is not checked: the kernel sends no handle with GETATTR, and
  // libfuse 2 has no path left for a removed name (ENOENT).
  it('keeps an unlinked open file working until it is closed, without .fuse_hidden files', async () => {
    const r = tempDir();
    const m = rumpMount('rump_tmpfs', ['tmpfs', r], r);
    const f = path.join(r, 'gone');
    const fd = openSync(f, 'w+');
    try {
      writeSync(fd, 'still here');
      unlinkSync(f);
      expect(readdirSync(r)).toEqual([]);
      writeSync(fd, ', and more', 10);
      const b = Buffer.alloc(64);
      expect(b.toString('utf8', 0, readSync(fd, b, 0, 64, 0))).toBe('still here, and more');
      ftruncateSync(fd, 5);
      expect(b.toString('utf8', 0, readSync(fd, b, 0, 64, 0))).toBe('still');
    } finally {
      closeSync(fd);
    }
    expect(readdirSync(r)).toEqual([]);
    await rumpUnmount(m);
  });

  it('takes NetBSD flags and Linux -o options, and enforces the limits', () => {
    const a = tempDir(), b = tempDir();
    rumpMount('rump_tmpfs', ['-s', '1m', '-m', '0750', '-u', 'nobody', '-g', '4242', '-n', '5', 'tmpfs', a], a);
    let st = statSync(a);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o750, 65534, 4242]);
    expect(sh(`df -B1 --output=size ${a} | tail -1`).stdout.trim()).toBe(String(1 << 20));
    const big = sh(`dd if=/dev/zero of=${a}/f bs=64k count=32 status=none`);
    expect(big.status).not.toBe(0);
    expect(big.stderr).toMatch(/No space left on device/);
    const files = sh(`cd ${a} && for i in 1 2 3 4 5 6 7; do touch n$i || exit 1; done`);
    expect(files.stderr).toMatch(/No space left on device/);

    rumpMount('rump_tmpfs', ['tmpfs', b, '-o', 'size=2m,mode=1777,uid=1,gid=2', '-o', 'mode=711,ro'], b);
    st = statSync(b);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o711, 1, 2]);
    expect(mountAt(b)?.options.split(',')).toContain('ro');
    expect(sh(`touch ${b}/x`).stderr).toMatch(/Read-only file system/);
  });

  it('unmounts with umount, fusermount3 -u and SIGTERM; the server exits each time', async () => {
    for (const way of ['umount', 'fusermount', 'SIGTERM'] as const) {
      const r = tempDir();
      const m = rumpMount('rump_tmpfs', ['tmpfs', r], r);
      writeFileSync(path.join(r, 'f'), way);
      expect(mountAt(r)?.fstype).toBe('fuse.tmpfs');
      await rumpUnmount(m, way);
      expect(readdirSync(r)).toEqual([]);
    }
  });

  it('stays in front with -f, dumps its state on SIGUSR1/SIGUSR2, and exits 0 on SIGTERM or umount', async () => {
    for (const end of ['SIGTERM', 'umount'] as const) {
      const r = tempDir();
      const fg = rumpMountForeground('rump_tmpfs', ['tmpfs', r]);
      await waitFor('the foreground mount', () => mountAt(r)?.fstype === 'fuse.tmpfs');
      const [pid] = serverPids(r);
      writeFileSync(path.join(r, 'f'), 'x');
      process.kill(pid, 'SIGUSR1');
      await waitFor('the vnode dump', () => /vnodes of tmpfs/.test(fg.stderr()));
      process.kill(fg.child.pid!, 'SIGUSR2'); // the launcher passes it on
      await waitFor('the status dump', () => /open handles 0/.test(fg.stderr()));
      if (end === 'SIGTERM') fg.child.kill('SIGTERM');
      else execFileSync('umount', [r]);
      expect(await fg.exit).toBe(0);
      await waitFor('the server to exit', () => processGone(pid));
      await waitFor('the mount to go', () => mountAt(r) === null);
    }
  });

  it('reports mounts that cannot be made, and leaves the mount point alone', () => {
    const base = tempDir();
    const missing = path.join(base, 'missing');
    let r = run(process.execPath, [serverScript('rump_tmpfs'), 'tmpfs', missing]);
    expect(r.status).toBe(32);
    expect(r.stderr).toMatch(/rump_tmpfs: mount point .*missing does not exist/);
    expect(existsSync(missing)).toBe(false);

    const file = path.join(base, 'file');
    writeFileSync(file, '');
    r = run(process.execPath, [serverScript('rump_tmpfs'), 'tmpfs', file]);
    expect(r.status).toBe(32);
    expect(r.stderr).toMatch(/is not a directory/);

    const dir = path.join(base, 'dir');
    mkdirSync(dir);
    r = run(process.execPath, [serverScript('rump_tmpfs'), '-o', 'bogus=1', 'tmpfs', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown option bogus/);
    expect(r.stderr).toMatch(/usage: rump_tmpfs/);
    r = run(process.execPath, [serverScript('rump_tmpfs'), '-s', 'lots', 'tmpfs', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad value for size/);
    r = run(process.execPath, [serverScript('rump_tmpfs'), '-x', 'tmpfs', dir]);
    expect(r.status).toBe(1);
    expect(mountAt(dir)).toBeNull();

    rumpMount('rump_tmpfs', ['tmpfs', dir], dir);
    r = run(process.execPath, [serverScript('rump_tmpfs'), 'tmpfs', dir]);
    expect(r.status).toBe(32);
    expect(r.stderr).toMatch(/is in use/);
    expect(serverPids(dir)).toHaveLength(1);
  });
});
