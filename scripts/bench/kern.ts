// In-process kernel benchmark: the cost of the kernel's own paths (namei,
// VOP wrappers, locks, vcache, buffer cache, host I/O) with no transport.
//   node dist/scripts/bench/kern.js [--files N] [--reads N] [--big MiB]
// create/stat/unlink N files on tmpfs and msdos through src/ukfs, cached
// 4 KiB reads of a file on msdos, and with --big a file of that size written
// through msdos while the process's RSS and heap are sampled.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bufcache_stats } from '../../src/kern/index.js';
import { mount, type Ukfs } from '../../src/ukfs/index.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const FILES = arg('files', 10000);
const READS = arg('reads', 50000);
const BIG = arg('big', 0);

interface Figure { name: string; ops: number; wallUs: number; cpuUs: number }
const figures: Figure[] = [];

let warming = false;

async function timed(name: string, ops: number, fn: () => Promise<void>): Promise<void> {
  if (warming) return fn();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) * 1000;
  const c = process.cpuUsage(c0);
  figures.push({ name, ops, wallUs: wall / ops, cpuUs: (c.user + c.system) / ops });
}

const fname = (i: number) => `/d/f${String(i).padStart(5, '0')}`;

async function metadata(fs: Ukfs, label: string, remount?: () => Promise<Ukfs>): Promise<Ukfs> {
  await fs.mkdir('/d');
  await timed(`${label} create`, FILES, async () => {
    for (let i = 0; i < FILES; i++) await (await fs.open(fname(i), 'wx')).close();
  });
  if (remount) {
    // Nothing cached: every directory block comes from the image.
    fs = await remount();
    await timed(`${label} stat, cold`, FILES, async () => {
      for (let i = 0; i < FILES; i++) await fs.stat(fname(i));
    });
  }
  await timed(`${label} stat`, FILES, async () => {
    for (let i = 0; i < FILES; i++) await fs.stat(fname(i));
  });
  await timed(`${label} stat ENOENT`, FILES, async () => {
    for (let i = 0; i < FILES; i++) await fs.stat(`/d/missing${i}`).catch(() => undefined);
  });
  await timed(`${label} unlink`, FILES, async () => {
    for (let i = 0; i < FILES; i++) await fs.unlink(fname(i));
  });
  return fs;
}

async function cachedReads(fs: Ukfs, label: string): Promise<void> {
  const size = 4 << 20;
  await fs.writeFile('/r', new Uint8Array(size).fill(7));
  const fh = await fs.open('/r', 'r');
  const buf = new Uint8Array(4096);
  for (let p = 0; p < size; p += 4096) await fh.read(buf, 0, 4096, p);
  let x = 12345;
  await timed(`${label} cached 4 KiB read`, READS, async () => {
    for (let i = 0; i < READS; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      await fh.read(buf, 0, 4096, (x % (size / 4096)) * 4096);
    }
  });
  await fh.close();
}

function mkfat(dir: string, mib: number): string {
  const img = path.join(dir, 'fat.img');
  writeFileSync(img, '');
  spawnSync('truncate', ['-s', `${mib}M`, img]);
  const r = spawnSync('mkfs.fat', ['-F', '32', img], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfs.fat: ${r.stderr}`);
  return img;
}

async function bigWrite(dir: string): Promise<void> {
  const img = mkfat(dir, BIG + 64);
  const fs = await mount('msdos', img);
  const chunk = new Uint8Array(1 << 20).fill(1);
  let rss = 0, heap = 0, ext = 0;
  const sample = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss); heap = Math.max(heap, m.heapUsed); ext = Math.max(ext, m.external + m.arrayBuffers);
  };
  const timer = setInterval(sample, 20);
  const before = process.memoryUsage();
  await timed(`msdos write ${BIG} MiB (per MiB)`, BIG, async () => {
    const fh = await fs.open('/big', 'w');
    for (let i = 0; i < BIG; i++) { await fh.write(chunk, 0, chunk.length, i << 20); if (i % 16 === 0) sample(); }
    await fh.sync();
    await fh.close();
  });
  clearInterval(timer);
  sample();
  const mib = (n: number) => (n / 1048576).toFixed(1);
  console.log(`big write: rss ${mib(before.rss)} -> peak ${mib(rss)} MiB, heapUsed peak ${mib(heap)} MiB, ` +
    `external+arrayBuffers peak ${mib(ext)} MiB, buffer cache ${mib(bufcache_stats().bytes)} MiB`);
  await fs.unmount();
  const r = spawnSync('fsck.fat', ['-n', img], { encoding: 'utf8' });
  console.log(`fsck.fat -n: status ${r.status}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kernbench-'));
  try {
    if (BIG) return await bigWrite(dir);
    // A first round, not counted, so that the JIT has compiled the paths measured.
    warming = true;
    const wfs = await mount('tmpfs', 'tmpfs');
    await metadata(wfs, 'warm-up');
    await wfs.unmount();
    warming = false;
    const tfs = await mount('tmpfs', 'tmpfs');
    await metadata(tfs, 'tmpfs');
    await tfs.unmount();
    const img = mkfat(dir, 256);
    let mfs = await mount('msdos', img);
    mfs = await metadata(mfs, 'msdos', async () => {
      await mfs.unmount();
      return mount('msdos', img);
    });
    await cachedReads(mfs, 'msdos');
    await mfs.unmount();
    for (const f of figures) {
      console.log(`${f.name.padEnd(28)} ${String(Math.round(1e6 / f.wallUs)).padStart(8)} ops/s  ` +
        `${f.wallUs.toFixed(1).padStart(7)} us wall  ${f.cpuUs.toFixed(1).padStart(7)} us cpu`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
