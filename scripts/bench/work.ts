// One timed workload, run by the bench in its own process (so that a
// timeout or Ctrl-C can stop it while the bench unmounts in order):
//   node work.js KIND ARGS...   prints {"seconds": s, "count": n}
// Synchronous calls: one client, one request at a time, as cp or ls would.
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileName } from './layout.js';

const CHUNK = 1 << 20;

function timed(fn: () => number): { seconds: number; count: number } {
  const t0 = performance.now();
  const count = fn();
  return { seconds: (performance.now() - t0) / 1000, count };
}

const kinds: Record<string, (args: string[]) => number> = {
  /** Write BYTES to FILE in 1 MiB writes, then fsync and close: everything is on the file system's medium. */
  seqwrite([file, bytes]) {
    const buf = Buffer.alloc(CHUNK);
    for (let i = 0; i < CHUNK; i += 8) buf.writeDoubleLE(i, i);
    const fd = openSync(file, 'w');
    let done = 0;
    while (done < Number(bytes)) done += writeSync(fd, buf, 0, Math.min(CHUNK, Number(bytes) - done));
    fsyncSync(fd);
    closeSync(fd);
    return done;
  },
  /** Read FILE to its end in 1 MiB reads. */
  seqread([file]) {
    const buf = Buffer.alloc(CHUNK);
    const fd = openSync(file, 'r');
    let done = 0, n: number;
    while ((n = readSync(fd, buf, 0, CHUNK, null)) > 0) done += n;
    closeSync(fd);
    return done;
  },
  /** Create N empty files, or as many as fit in SECONDS (some file systems slow down with every file). */
  create([dir, n, seconds]) {
    const end = performance.now() + Number(seconds) * 1000;
    let i = 0;
    for (; i < Number(n) && performance.now() < end; i++) closeSync(openSync(path.join(dir, fileName(i)), 'wx'));
    return i;
  },
  stat([dir, n]) {
    for (let i = 0; i < Number(n); i++) statSync(path.join(dir, fileName(i)));
    return Number(n);
  },
  /** One readdir with file types (what ls and find need). */
  list([dir]) {
    return readdirSync(dir, { withFileTypes: true }).length;
  },
  unlink([dir, n]) {
    for (let i = 0; i < Number(n); i++) unlinkSync(path.join(dir, fileName(i)));
    return Number(n);
  },
  /** A program, output discarded; fails if it fails. */
  exec([cmd, ...args]) {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr}`);
    return 1;
  },
};

const [kind, ...args] = process.argv.slice(2);
const fn = kinds[kind];
if (!fn) {
  process.stderr.write(`work: unknown workload ${kind}\n`);
  process.exit(2);
}
// mkdir is set-up, not part of the measured create.
if (kind === 'create') mkdirSync(args[0], { recursive: true });
process.stdout.write(JSON.stringify(timed(() => fn(args))) + '\n');
