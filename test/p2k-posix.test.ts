// What FUSE's node ids make right, judged by a kernel tmpfs: names at the
// end of 4095-byte paths, 255-byte names at depth, fstat of a file unlinked
// while open, nanosecond times, 64-bit inode numbers; and plain umount,
// which must leave a FAT image clean the moment it returns.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SKIP_FUSE, cleanupMounts, ensureBuilt, kernelTmpfs, rumpMount, run, sh, tempDir, waitFor } from './helpers/mount.js';

const ROOT = path.resolve(import.meta.dirname, '..');

// 15 directories of 255 bytes, then 255-byte names: 15 * 256 + 255 = 4095
// bytes from the mount's root, the longest path PATH_MAX allows.
const DEEP = String.raw`
set -e
cd "$1"
n=$(printf 'n%.0s' $(seq 255))
for i in $(seq 15); do mkdir "$n"; cd "$n"; done
f=$(printf 'f%.0s' $(seq 254))
echo data > "$f"a
ln "$f"a "$f"l
mv "$f"a "$f"m
chmod 640 "$f"m
truncate -s 3 "$f"m
mkdir "$f"d
rmdir "$f"d
mkdir "$f"e
ln -s target "$f"s
mkfifo "$f"p
rm "$f"l
find . -printf '%f %y %m %n %s %l\n' | sort | sed "s/$f/F/g"
cd "$1"
p=$(for i in $(seq 15); do printf '%s/' "$n"; done)"$f"m
printf 'path bytes %s\n' "$(printf %s "$p" | wc -c)"
stat -c '%s %h %a' "$p"
cat "$p"; echo
mv "$p" "$p"2 2>&1 | sed 's/.*: //' || true
`;

// The times and what an open descriptor of an unlinked file still knows.
const TIMES_AND_UNLINKED = String.raw`
set -e
cd "$1"
echo x > t
touch -d '2021-03-04 05:06:07.123456789' t
touch -a -d '2001-02-03 04:05:06.987654321' t
stat -c '%y | %x' t
cp -a t u
stat -c '%y | %x' u
node -e '
  const fs = require("node:fs");
  const fd = fs.openSync("gone", "w+");
  fs.writeSync(fd, "still here");
  fs.unlinkSync("gone");
  const s = fs.fstatSync(fd);
  const b = Buffer.alloc(32);
  const n = fs.readSync(fd, b, 0, 32, 0);
  fs.ftruncateSync(fd, 5);
  console.log("fstat after unlink: nlink", s.nlink, "size", s.size, "read", JSON.stringify(b.toString("utf8", 0, n)), "then size", fs.fstatSync(fd).size);
  console.log("exists:", fs.existsSync("gone"));
  fs.closeSync(fd);
'
`;

// Linux's rules an unprivileged caller meets: an owner's chmod keeps the
// sticky bit on a file; a write or truncation clears setuid, and setgid
// where group execute is set; opening a FIFO needs its permission.
const PRIVILEGES = String.raw`
set -e
cd "$1"
nob() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
touch s; chown 65534:65534 s
nob chmod 1644 s; stat -c 's %a' s
touch w; chmod 6775 w; chown 0:65534 w
nob sh -c 'echo data >> w'; stat -c 'w %a' w
touch g; chmod 2664 g; chown 0:65534 g
nob sh -c 'echo data >> g'; stat -c 'g %a' g
touch t; chmod 4777 t
nob truncate -s 0 t; stat -c 't %a' t
mkfifo p; chmod 600 p
nob sh -c 'exec 3<>p' 2>&1 | sed 's/.*: //' || true
`;

describe.skipIf(SKIP_FUSE)('POSIX through node ids, judged by a kernel tmpfs', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  function both(script: string): { rump: string; kernel: string } {
    const k = tempDir(), r = tempDir();
    kernelTmpfs(k);
    try {
      rumpMount('rump_tmpfs', ['-s', '64m', 'tmpfs', r], r);
      const out = (dir: string) => {
        const x = run('/bin/sh', ['-c', script, 'sh', dir]);
        return `status ${x.status}\n${x.stdout}${x.stderr}`;
      };
      return { rump: out(r), kernel: out(k) };
    } finally {
      run('umount', [k]);
    }
  }

  it('creates, links, renames, chmods, truncates and removes at the end of 4095-byte paths', () => {
    const { rump, kernel } = both(DEEP);
    expect(kernel).toContain('path bytes 4095');
    expect(kernel).toContain('Fs l 777 1 6 target');
    expect(rump).toBe(kernel);
  });

  it('keeps nanosecond times through touch -d and cp -a, and fstat works on an unlinked open file', () => {
    const { rump, kernel } = both(TIMES_AND_UNLINKED);
    expect(kernel).toContain('2021-03-04 05:06:07.123456789');
    expect(kernel).toContain('fstat after unlink: nlink 0 size 10 read "still here" then size 5');
    expect(rump).toBe(kernel);
  });

  it('keeps the sticky bit on an owner\'s chmod, clears setuid/setgid on unprivileged writes, checks FIFO opens', () => {
    const { rump, kernel } = both(PRIVILEGES);
    expect(kernel).toBe('status 0\ns 1644\nw 775\ng 2664\nt 777\nPermission denied\n');
    expect(rump).toBe(kernel);
  });

  it('hands 64-bit inode numbers through stat and readdir intact', () => {
    const r = tempDir();
    rumpMount('rump_tmpfs', ['-o', 'inode64', 'tmpfs', r], r);
    writeFileSync(path.join(r, 'f'), 'x');
    sh(`mkdir "${r}/d" && ln "${r}/f" "${r}/d/g"`);
    const statIno = run('stat', ['-c', '%i', path.join(r, 'f')]).stdout.trim();
    const lsIno = run('ls', ['-i', path.join(r, 'd')]).stdout.trim().split(/\s+/)[0];
    const nodeIno = execFileSync(process.execPath, ['-e', `console.log(require('node:fs').statSync(${JSON.stringify(path.join(r, 'd/g'))}, { bigint: true }).ino.toString())`], { encoding: 'utf8' }).trim();
    expect(BigInt(statIno)).toBeGreaterThan(2n ** 32n);
    expect(lsIno).toBe(statIno);
    expect(nodeIno).toBe(statIno);
  });
});

describe.skipIf(SKIP_FUSE)('server start-up and its log', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  it('refuses a bad P2K_WIZARDUID before touching the image: exit 32, the volume not left dirty', () => {
    const d = tempDir(), img = path.join(d, 'fat.img'), mnt = path.join(d, 'm');
    execFileSync('mkfs.vfat', ['-C', img, '8192'], { stdio: 'pipe' });
    sh(`mkdir "${mnt}"`);
    const before = execFileSync('sha256sum', [img], { encoding: 'utf8' });
    const r = run(process.execPath, [path.join(ROOT, 'dist/servers/rump_msdos.js'), img, mnt], { env: { ...process.env, P2K_WIZARDUID: 'abc' } });
    expect(r.status).toBe(32);
    expect(r.stderr).toMatch(/P2K_WIZARDUID=abc: not a uid/);
    expect(execFileSync('sha256sum', [img], { encoding: 'utf8' })).toBe(before);
  });

  it('a background server writes its panic to the log, each line with its name and pid', async () => {
    const d = tempDir(), mnt = path.join(d, 'm'), log = path.join(d, 'rumpfs.log');
    sh(`mkdir "${mnt}"`);
    const m = rumpMount('rump_tmpfs', ['tmpfs', mnt], mnt, { RUMPFS_LOG: log, RUMPFS_FAULT: 'panic:VOP_LOAN:1' });
    writeFileSync(path.join(mnt, 'f'), 'x');
    expect(run('cat', [path.join(mnt, 'f')]).status).not.toBe(0);
    const text = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    await waitFor('the panic in the log', () => text().includes('panic:'));
    expect(text()).toContain(`rump_tmpfs[${m.pid}]: serving tmpfs on ${mnt}`);
    expect(text()).toMatch(new RegExp(`Z rump_tmpfs\\[${m.pid}\\]: panic: RUMPFS_FAULT: injected at VOP_LOAN call 1`));
  });
});

describe.skipIf(SKIP_FUSE)('plain umount of a read-write mount', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  it('returns only once the server has flushed and marked the FAT volume clean', () => {
    // scripts/setup installs the helper util-linux's umount runs for fuse.msdos.
    expect(existsSync('/sbin/umount.fuse.msdos'), 'run scripts/setup as root').toBe(true);
    const d = tempDir(), img = path.join(d, 'fat.img'), mnt = path.join(d, 'm');
    execFileSync('mkfs.vfat', ['-C', '-F', '32', img, String(256 * 1024)], { stdio: 'pipe' });
    sh(`mkdir "${mnt}"`);
    for (let round = 0; round < 3; round++) {
      rumpMount('rump_msdos', [img, mnt], mnt);
      // Many small dirty buffers and a big file: more to flush than a quick exit could.
      const w = sh(`set -e; cd "${mnt}"; mkdir r${round}; for i in $(seq 100); do echo $i > r${round}/f$i; done; ` +
        `head -c 10000000 /dev/urandom > r${round}/big; cd /`);
      expect(w.stderr).toBe('');
      const u = run('umount', [mnt]);
      expect(u.status, u.stderr).toBe(0);
      const f = run('fsck.fat', ['-n', img]);
      expect(f.status, `round ${round}: ${f.stdout}${f.stderr}`).toBe(0);
      expect(f.stdout).not.toMatch(/dirty|not properly unmounted/i);
    }
  }, 180_000);
});
