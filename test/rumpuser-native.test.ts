// The rumpuser addon's plain wrappers: flock between processes, block device
// geometry, Node-style errors.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { flock, blkdevSize, blkdevSectorSize, getrlimit, capget, preadNowait, threadTest } from '../src/rumpuser/native.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const addon = path.join(here, '..', 'src', 'rumpuser', 'build', 'Release', 'rumpuser.node');
let tmp = '';

beforeAll(() => {
  execFileSync(process.execPath, [path.join(here, '..', 'src', 'rumpuser', 'build.mjs')], { stdio: 'inherit' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rumpuser-native-'));
  return () => fs.rmSync(tmp, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): NodeJS.ErrnoException {
  try { fn(); } catch (e) { return e as NodeJS.ErrnoException; }
  throw new Error('did not throw');
}

describe('flock', () => {
  it('an exclusive lock held by another process gives EWOULDBLOCK, and is free once it exits', async () => {
    const file = path.join(tmp, 'lock');
    fs.writeFileSync(file, '');
    // The holder: takes the lock, says so, keeps it until stdin closes.
    const holder = spawn(process.execPath, ['-e', `
      const n = require(${JSON.stringify(addon)});
      const fd = require('fs').openSync(${JSON.stringify(file)}, 'r+');
      n.flock(fd, 1);
      process.stdout.write('locked\\n');
      process.stdin.resume();
      process.stdin.on('end', () => process.exit(0));
    `], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = await once(holder.stdout, 'data');
      expect(String(line)).toBe('locked\n');
      const fd = fs.openSync(file, 'r+');
      try {
        const e = errorOf(() => flock(fd, 'ex'));
        expect(['EWOULDBLOCK', 'EAGAIN']).toContain(e.code);
        expect(e.errno).toBe(-os.constants.errno.EWOULDBLOCK);
        expect(e.syscall).toBe('flock');
        expect(e).toBeInstanceOf(Error);
        expect(errorOf(() => flock(fd, 'sh')).code).toBe(e.code);

        holder.stdin.end();
        const [code] = await once(holder, 'exit');
        expect(code).toBe(0);
        flock(fd, 'ex');
        flock(fd, 'un');
        flock(fd, 'sh');
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      holder.kill();
    }
  });

  it('shared locks coexist across descriptions; a shared lock blocks an exclusive one', () => {
    const file = path.join(tmp, 'lock2');
    fs.writeFileSync(file, '');
    const a = fs.openSync(file, 'r'), b = fs.openSync(file, 'r');
    try {
      flock(a, 'sh');
      flock(b, 'sh');
      flock(b, 'un');
      expect(errorOf(() => flock(b, 'ex')).code).toBe('EWOULDBLOCK');
    } finally {
      fs.closeSync(a);
      fs.closeSync(b);
    }
  });

  it('a bad descriptor gives EBADF', () => {
    const e = errorOf(() => flock(987654, 'ex'));
    expect(e.code).toBe('EBADF');
    expect(e.errno).toBe(-os.constants.errno.EBADF);
  });
});

describe('block devices', () => {
  it('a regular file is not a block device: ENOTTY', () => {
    const file = path.join(tmp, 'plain');
    fs.writeFileSync(file, Buffer.alloc(4096));
    const fd = fs.openSync(file, 'r');
    try {
      const e = errorOf(() => blkdevSize(fd));
      expect(e.code).toBe('ENOTTY');
      expect(e.syscall).toBe('ioctl(BLKGETSIZE64)');
      expect(errorOf(() => blkdevSectorSize(fd)).code).toBe('ENOTTY');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('size and sector size of a loop device', (ctx) => {
    const img = path.join(tmp, 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 3 * 1024 * 1024);
    let dev = '';
    try {
      dev = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      ctx.skip(); // no loop devices here (not root, or in a container)
    }
    try {
      const fd = fs.openSync(dev, 'r');
      try {
        expect(blkdevSize(fd)).toBe(3 * 1024 * 1024);
        expect(blkdevSectorSize(fd)).toBe(512);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      execFileSync('losetup', ['-d', dev]);
    }
  });
});

describe('other wrappers', () => {
  it('getrlimit, capget, threadTest', () => {
    const [soft, hard] = getrlimit('nofile');
    expect(soft).toBeGreaterThan(0);
    expect(hard).toBeGreaterThanOrEqual(soft);
    const caps = capget();
    expect(typeof caps.effective).toBe('bigint');
    if (process.geteuid?.() === 0) expect(caps.effective).not.toBe(0n);
    expect(threadTest()).toBe(true);
  });
});

describe('preadNowait', () => {
  it('reads what the page cache holds; 0 at the end; -1 for data not in memory; errors throw', () => {
    // In the checkout's build/ (gitignored), not /tmp: a tmpfs /tmp cannot drop a file's pages.
    fs.mkdirSync(path.join(here, '..', 'build'), { recursive: true });
    const f = path.join(here, '..', 'build', `pread-nowait-${process.pid}`);
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    fs.writeFileSync(f, data);
    const fd = fs.openSync(f, 'r');
    try {
      const buf = new Uint8Array(1 << 20);
      expect(preadNowait(fd, buf, 1 << 20)).toBe(buf.length); // just written: in the page cache
      expect(Buffer.from(buf).equals(data.subarray(1 << 20, 2 << 20))).toBe(true);
      expect(preadNowait(fd, buf.subarray(0, 10), data.length)).toBe(0);
      // Dropped from the page cache (POSIX_FADV_DONTNEED, after a flush): would wait.
      execFileSync('sync');
      execFileSync('python3', ['-c', `import os; fd = os.open(${JSON.stringify(f)}, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)`]);
      expect(preadNowait(fd, buf, 0)).toBe(-1);
      expect(errorOf(() => preadNowait(-1, buf, 0)).code).toBe('EBADF');
      expect(() => preadNowait(fd, Buffer.alloc(1) as unknown as Uint8Array, -1)).toThrow(TypeError);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(f);
    }
  });
});
