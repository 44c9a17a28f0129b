#!/usr/bin/env node
// rump_msdos beside fusefat on the same kind of FAT32 image, in one run:
// sequential write and cold read of one big file (MB/s), and create, cold
// stat and unlink of many files in one directory (files/s). Median of --runs,
// with the spread. Both mount with the same FUSE transport options (128 KiB
// writes, no attribute cache, names cached 1 s), so what differs is the file
// system server.
//   node dist/scripts/compare-fat.js [--size MiB] [--files N] [--runs N] [--budget seconds]
//
// Each run, for each server, on a fresh sparse image made by mkfs.vfat -F 32:
//   write   dd 1 MiB blocks from a file in the page cache, then unmount and
//           wait for the server to exit (so every delayed write is counted);
//   read    mount again, drop the host's caches (root; otherwise the image
//           stays in the host page cache and only the FUSE side is cold),
//           dd to /dev/null;
//   create  open(O_CREAT|O_EXCL)+close of N empty files in one directory;
//   stat    unmount, mount, drop caches, stat each by name;
//   unlink  each by name.
// A file phase stops after --budget seconds (fusefat slows down as its
// directory grows: under one create a second past 500 files); its rate is
// then over the files done, and the table says how many.
// Afterwards fsck.fat -n must find each image clean.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const RUMP_MSDOS = path.join(path.dirname(fileURLToPath(import.meta.url)), '../servers/rump_msdos.js');
const root = process.geteuid?.() === 0;
const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

function option(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name}: a positive integer`);
  return v;
}
const sizeMiB = option('size', 256), nfiles = option('files', 2000), runs = option('runs', 3), budget = option('budget', 30);

// Same transport as p2k's servers (p2k/fuse.ts fuseOptionString).
const FUSE_OPTS = 'big_writes,max_write=131072,auto_cache,attr_timeout=0,entry_timeout=1,negative_timeout=0';

interface Server { name: string; mount(img: string, mp: string): void }
const servers: Server[] = [
  { name: 'rump_msdos', mount: (img, mp) => must(process.execPath, [RUMP_MSDOS, img, mp]) },
  { name: 'fusefat', mount: (img, mp) => must('fusefat', ['-o', `rw+,${FUSE_OPTS}`, img, mp]) },
];

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `exit ${r.status}`}\n${r.stderr}`);
  return r.stdout;
}

function isMounted(mp: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] === mp);
}

/** Live processes whose command line names mp: the server of that mount. */
function serversOf(mp: string): number[] {
  return readdirSync('/proc').filter(n => /^\d+$/.test(n)).map(Number).filter(pid => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(mp) &&
        !readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
    } catch {
      return false;
    }
  });
}

async function unmount(mp: string): Promise<void> {
  const pids = serversOf(mp);
  execFileSync(root ? 'umount' : 'fusermount3', root ? [mp] : ['-u', mp]);
  for (const end = Date.now() + 60_000; serversOf(mp).some(p => pids.includes(p));) {
    if (Date.now() > end) throw new Error(`the server of ${mp} did not exit`);
    await new Promise(r => setTimeout(r, 5));
  }
}

function dropCaches(): void {
  if (!root) return;
  spawnSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

const now = () => performance.now() / 1000;

interface Sample { write: number; read: number; create: number; stat: number; unlink: number; files: number }

/** Apply op to each name until the budget is spent: the names done and the rate. */
function timed(names: string[], op: (n: string) => void): { done: string[]; rate: number } {
  const t = now();
  let i = 0;
  while (i < names.length && now() - t < budget) op(names[i++]);
  return { done: names.slice(0, i), rate: i / (now() - t) };
}

async function once(s: Server, work: string, src: string): Promise<Sample> {
  const img = path.join(work, `${s.name}.img`), mp = path.join(work, 'mnt');
  rmSync(img, { force: true });
  // Four times the file, and FAT32 for mtools and fsck.fat alike.
  must('mkfs.vfat', ['-C', '-F', '32', img, String(Math.max(sizeMiB * 4, 256) * 1024)]);
  const bytes = sizeMiB * 1048576;

  s.mount(img, mp);
  let t = now();
  must('dd', [`if=${src}`, `of=${mp}/big.bin`, 'bs=1M', 'status=none']);
  await unmount(mp);
  const write = bytes / 1e6 / (now() - t);

  s.mount(img, mp);
  dropCaches();
  t = now();
  must('dd', [`if=${mp}/big.bin`, 'of=/dev/null', 'bs=1M', 'status=none']);
  const read = bytes / 1e6 / (now() - t);
  if (statSync(`${mp}/big.bin`).size !== bytes) throw new Error(`${s.name}: big.bin has the wrong size`);

  const dir = path.join(mp, 'many');
  mkdirSync(dir);
  const c = timed(Array.from({ length: nfiles }, (_, i) => path.join(dir, `file number ${i}.txt`)),
    n => closeSync(openSync(n, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY)));
  await unmount(mp);

  s.mount(img, mp);
  dropCaches();
  const st = timed(c.done, n => statSync(n));
  const u = timed(c.done, n => unlinkSync(n));
  await unmount(mp);

  const fsck = spawnSync('fsck.fat', ['-n', img], { env, encoding: 'utf8' });
  if (fsck.status !== 0) throw new Error(`${s.name}: fsck.fat -n: exit ${fsck.status}\n${fsck.stdout}${fsck.stderr}`);
  rmSync(img);
  return { write, read, create: c.rate, stat: st.rate, unlink: u.rate, files: Math.min(st.done.length, u.done.length) };
}

function cell(xs: number[]): string {
  const v = [...xs].sort((a, b) => a - b);
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return `${fmt(v[Math.floor(v.length / 2)])} (${fmt(v[0])}-${fmt(v[v.length - 1])})`;
}

const work = mkdtempSync(path.join(tmpdir(), 'compare-fat-'));
const cleanup = () => {
  const mp = path.join(work, 'mnt');
  if (isMounted(mp)) spawnSync('umount', ['-l', mp]);
  if (!isMounted(mp)) rmSync(work, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { cleanup(); process.exit(130); });
try {
  mkdirSync(path.join(work, 'mnt'));
  const src = path.join(work, 'src.bin');
  must('sh', ['-c', `head -c ${sizeMiB * 1048576} /dev/urandom > '${src}' && cat '${src}' > /dev/null`]);
  const samples = new Map<string, Sample[]>(servers.map(s => [s.name, []]));
  for (let r = 0; r < runs; r++) {
    for (const s of servers) {
      process.stderr.write(`run ${r + 1}/${runs}: ${s.name}\n`);
      samples.get(s.name)!.push(await once(s, work, src));
    }
  }
  const rows: [string, Exclude<keyof Sample, 'files'>][] = [
    [`sequential write, MB/s (${sizeMiB} MiB, until the server exits)`, 'write'],
    [`sequential read, MB/s (${root ? 'cold: caches dropped' : 'FUSE cold, image in page cache'})`, 'read'],
    [`create, files/s (${nfiles} in one directory)`, 'create'],
    [`stat, files/s (${root ? 'cold' : 'fresh mount'})`, 'stat'],
    ['unlink, files/s', 'unlink'],
  ];
  const w0 = Math.max(...rows.map(r => r[0].length)), w = 22;
  console.log(`FAT32 image (mkfs.vfat -F 32), median of ${runs} runs (min-max); fsck.fat -n clean after every run`);
  console.log(`${''.padEnd(w0)}  ${servers.map(s => s.name.padEnd(w)).join('')}`);
  for (const [label, k] of rows) {
    console.log(`${label.padEnd(w0)}  ${servers.map(s => cell(samples.get(s.name)!.map(x => x[k])).padEnd(w)).join('')}`);
  }
  for (const s of servers) {
    const files = samples.get(s.name)!.map(x => x.files);
    if (Math.min(...files) < nfiles) console.log(`${s.name}: the ${budget} s budget ran out; files done per run: ${files.join(', ')} of ${nfiles}`);
  }
} finally {
  cleanup();
}
