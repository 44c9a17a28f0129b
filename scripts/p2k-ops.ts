#!/usr/bin/env node
// Operations per second through rump_tmpfs (FUSE -> p2k -> kernel -> tmpfs),
// beside a kernel tmpfs and barefs (an in-memory file system directly on the
// same FUSE transport and options): what p2k and the kernel cost per request.
// One client (this process, synchronous calls); root; needs the dist/ build.
//   node dist/scripts/p2k-ops.js [seconds per figure, default 2]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.argv[2] ?? 2);

function mounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] === dir);
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise(r => setTimeout(r, 20));
  }
  throw new Error(`timed out: ${what}`);
}

/** Calls of fn per second, over the measuring time. */
function rate(fn: (i: number) => void): number {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) fn(n++);
  return n / ((performance.now() - t0) / 1000);
}

function measure(dir: string): number[] {
  writeFileSync(path.join(dir, 's'), 'x');
  const stat = rate(() => statSync(path.join(dir, 's')));
  const create = rate(i => closeSync(openSync(path.join(dir, `c${i}`), 'w')));
  const size = 1 << 20;
  writeFileSync(path.join(dir, 'r'), Buffer.alloc(size, 1));
  const fd = openSync(path.join(dir, 'r'), 'r');
  const buf = Buffer.alloc(4096);
  const read = rate(i => readSync(fd, buf, 0, 4096, ((i * 7) % (size / 4096)) * 4096));
  closeSync(fd);
  return [stat, create, read];
}

interface Subject { name: string; start(dir: string): Promise<void>; stop(dir: string): Promise<void> }

const kernel: Subject = {
  name: 'kernel tmpfs',
  async start(dir) { spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', dir]); },
  async stop(dir) { spawnSync('umount', [dir]); },
};

function barefs(nocache: boolean): Subject {
  return {
    name: nocache ? 'barefs, no cache' : 'barefs (fuse-native only)',
    async start(dir) {
      const c = spawn(process.execPath, [path.join(dist, 'p2k/barefs.js'), ...(nocache ? ['--nocache'] : []), dir], { stdio: 'ignore', detached: true });
      c.unref();
      await until(() => mounted(dir), 'barefs mount');
    },
    async stop(dir) { spawnSync('umount', [dir]); },
  };
}

function rump(nocache: boolean): Subject {
  return {
    name: nocache ? 'rump_tmpfs, P2K_NOCACHE' : 'rump_tmpfs (p2k + kernel)',
    async start(dir) {
      const r = spawnSync(process.execPath, [path.join(dist, 'servers/rump_tmpfs.js'), '-s', '256m', 'tmpfs', dir],
        { env: { ...process.env, ...(nocache ? { P2K_NOCACHE: '1' } : {}) }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`rump_tmpfs: ${r.stderr}`);
    },
    async stop(dir) { spawnSync('umount', [dir]); },
  };
}

const base = mkdtempSync(path.join(tmpdir(), 'p2k-ops-'));
const rows: [string, number[]][] = [];
try {
  for (const s of [kernel, barefs(false), rump(false), barefs(true), rump(true)]) {
    const dir = path.join(base, String(rows.length));
    mkdirSync(dir);
    await s.start(dir);
    try {
      rows.push([s.name, measure(dir)]);
    } finally {
      await s.stop(dir);
      await until(() => !mounted(dir), `${s.name} unmount`);
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(12);
console.log(`${'(one client, ops/s)'.padEnd(28)}${'stat'.padStart(12)}${'create'.padStart(12)}${'read 4 KiB'.padStart(12)}`);
for (const [name, v] of rows) console.log(`${name.padEnd(28)}${v.map(fmt).join('')}`);
