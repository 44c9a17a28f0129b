// p2k under load, through a real rump_tmpfs mount: eight processes at once
// in shared directories, and a random exerciser checked against a model.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseGroups } from '../p2k/caller_groups.js';
import { fuseOptions } from '../p2k/fuse/mount.js';
import { SKIP_FUSE, cleanupMounts, ensureBuilt, rumpMount, rumpUnmount, tempDir } from './helpers/mount.js';

function runProc(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise(resolve => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const t = setTimeout(() => { err += `\nkilled after ${timeoutMs} ms (deadlock?)`; c.kill('SIGKILL'); }, timeoutMs);
    c.on('close', code => { clearTimeout(t); resolve({ code, out, err }); });
  });
}

// One worker: its own files (names start with w<id>-) in four directories it
// shares with the others; creates, renames across directories, deletes,
// reads back, lists, and appends a line per operation to a shared log.
const WORKER = String.raw`
const fs = require('node:fs');
const [root, id, n] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let x = 2463534242 ^ (id * 7919);
const rand = k => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % k; };
const dirs = ['d0', 'd1', 'd2', 'd3'].map(d => root + '/' + d);
const mine = new Map();
const content = (i, len) => { const u = id + ':' + i + ';'; return u.repeat(Math.ceil(len / u.length)).slice(0, len); };
const fail = m => { console.error('worker ' + id + ': ' + m); process.exit(1); };
const log = fs.openSync(root + '/log', 'a');
for (let i = 0; i < n; i++) {
  const own = [...mine.keys()];
  const r = rand(10);
  if (r < 3 || own.length === 0) {
    const f = dirs[rand(4)] + '/w' + id + '-' + i;
    const c = content(i, 1 + rand(20000));
    fs.writeFileSync(f, c);
    mine.set(f, c);
  } else if (r < 5) {
    const f = own[rand(own.length)];
    const g = dirs[rand(4)] + '/w' + id + '-' + /w\d+-(\d+)/.exec(f)[1] + '-r' + i;
    fs.renameSync(f, g);
    mine.set(g, mine.get(f)); mine.delete(f);
  } else if (r < 6) {
    const f = own[rand(own.length)];
    fs.unlinkSync(f); mine.delete(f);
  } else if (r < 9) {
    const f = own[rand(own.length)];
    if (fs.readFileSync(f, 'utf8') !== mine.get(f)) fail('content of ' + f);
  } else {
    const d = dirs[rand(4)];
    const seen = fs.readdirSync(d).filter(e => e.startsWith('w' + id + '-')).map(e => d + '/' + e).sort();
    const want = [...mine.keys()].filter(f => f.startsWith(d + '/')).sort();
    if (seen.join() !== want.join()) fail('listing of ' + d + ': ' + seen.length + ' vs ' + want.length);
  }
  fs.writeSync(log, id + ' ' + i + '\n');
}
fs.closeSync(log);
process.stdout.write(JSON.stringify([...mine].map(([f, c]) => [f, c.length])));
`;

// fsx-style: random pwrite/pread/ftruncate/mmap reads/renames on a few open
// files, each checked against an in-memory model (Python: Node has no mmap).
const EXERCISER = String.raw`
import mmap, os, random, sys
root, nops, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
names = ['f0', 'f1', 'f2']
p = lambda n: os.path.join(root, n)
model = {n: bytearray() for n in names}
fds = {n: os.open(p(n), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644) for n in names}
MAX = 512 * 1024
def fail(op, msg):
    print(f'op {op}: {msg}', file=sys.stderr); sys.exit(1)
counts = {}
for op in range(nops):
    n = rng.choice(names); m = model[n]; fd = fds[n]
    k = rng.random()
    if k < 0.35:
        kind = 'write'
        off = rng.randrange(MAX); data = rng.randbytes(rng.randrange(1, 65536))
        if os.pwrite(fd, data, off) != len(data): fail(op, 'short write')
        if len(m) < off: m.extend(bytes(off - len(m)))
        m[off:off + len(data)] = data
    elif k < 0.70:
        kind = 'read'
        off = rng.randrange(len(m) + 4096); ln = rng.randrange(1, 65536)
        if os.pread(fd, ln, off) != bytes(m[off:off + ln]): fail(op, f'read {n} {off}+{ln} differs')
    elif k < 0.80:
        kind = 'truncate'
        size = rng.randrange(MAX)
        os.ftruncate(fd, size)
        if size < len(m): del m[size:]
        else: m.extend(bytes(size - len(m)))
    elif k < 0.92:
        kind = 'mmap'
        if len(m) == 0: continue
        with mmap.mmap(fd, len(m), prot=mmap.PROT_READ) as mm:
            off = rng.randrange(len(m)); ln = rng.randrange(1, 65536)
            if mm[off:off + ln] != bytes(m[off:off + ln]): fail(op, f'mmap {n} {off}+{ln} differs')
    elif k < 0.96:
        kind = 'rename'
        a, b = rng.sample(names, 2)
        os.rename(p(a), p(b))
        os.close(fds[b]); fds[b] = fds[a]; model[b] = model[a]
        fds[a] = os.open(p(a), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644); model[a] = bytearray()
    else:
        kind = 'stat'
        if os.stat(p(n)).st_size != len(m): fail(op, f'stat {n} size {os.stat(p(n)).st_size} != {len(m)}')
    counts[kind] = counts.get(kind, 0) + 1
for n in names:
    os.close(fds[n])
    with open(p(n), 'rb') as f:
        if f.read() != bytes(model[n]): fail(nops, f'final content of {n} differs')
print(' '.join(f'{k}={v}' for k, v in sorted(counts.items())))
`;

describe('p2k pieces', () => {
  it('reads supplementary groups from a /proc status text', () => {
    expect(parseGroups('Name:\tx\nGroups:\t4 24 27 \nNgid:\t0\n')).toEqual([4, 24, 27]);
    expect(parseGroups('Groups:\t\n')).toEqual([]);
  });

  it('builds the mount options fusermount3 takes, escaping commas in values', () => {
    const s = fuseOptions({ mountpoint: '/m', fsname: '/img/a,b.img', subtype: 'msdos', readOnly: true, noexec: true, allowOther: false });
    expect(s.split(/(?<!\\),/)).toEqual(['ro', 'nosuid', 'nodev', 'noexec', 'default_permissions', 'fsname=/img/a\\,b.img', 'subtype=msdos']);
    expect(fuseOptions({ mountpoint: '/m', fsname: 'tmpfs', subtype: 'tmpfs', readOnly: false, noexec: false, allowOther: true })).toContain('allow_other');
  });
});

describe.skipIf(SKIP_FUSE)('p2k through rump_tmpfs', () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(cleanupMounts);

  it('serves eight processes at once in shared directories without losing or corrupting anything', async () => {
    const r = tempDir();
    const m = rumpMount('rump_tmpfs', ['-s', '256m', 'tmpfs', r], r);
    for (const d of ['d0', 'd1', 'd2', 'd3']) mkdirSync(path.join(r, d));
    const script = path.join(tempDir(), 'worker.cjs');
    writeFileSync(script, WORKER);
    const N = 400, P = 8;
    const results = await Promise.all(Array.from({ length: P }, (_, id) => runProc(process.execPath, [script, r, String(id), String(N)], 90_000)));
    for (const res of results) expect(res.err).toBe('');
    for (const res of results) expect(res.code).toBe(0);
    // Judge: the directories as listed now, and every file read afresh.
    const expected = new Map<string, number>(results.flatMap(res => JSON.parse(res.out) as [string, number][]));
    const actual = new Map<string, number>();
    for (const d of ['d0', 'd1', 'd2', 'd3']) {
      for (const e of readdirSync(path.join(r, d))) {
        const f = path.join(r, d, e);
        actual.set(f, readFileSync(f).length);
        const [id, i] = /^w(\d+)-(\d+)/.exec(e)!.slice(1);
        const c = readFileSync(f, 'utf8');
        const u = `${id}:${i};`;
        expect(c === u.repeat(Math.ceil(c.length / u.length)).slice(0, c.length), `content of ${f}`).toBe(true);
      }
    }
    expect(actual).toEqual(expected);
    expect(expected.size).toBeGreaterThan(100);
    const lines = readFileSync(path.join(r, 'log'), 'utf8').split('\n').filter(l => l);
    expect(lines).toHaveLength(P * N);
    expect(new Set(lines).size).toBe(P * N);
    for (const l of lines) expect(l).toMatch(/^\d \d+$/);
    await rumpUnmount(m);
  }, 120_000);

  it('passes 50,000 random operations checked against a model (pread/pwrite, truncate, mmap, rename)', async () => {
    const r = tempDir();
    const m = rumpMount('rump_tmpfs', ['-s', '64m', 'tmpfs', r], r);
    const script = path.join(tempDir(), 'fsx.py');
    writeFileSync(script, EXERCISER);
    const res = await runProc('python3', [script, r, '50000', '1234'], 110_000);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/mmap=\d+ read=\d+ rename=\d+ stat=\d+ truncate=\d+ write=\d+/);
    await rumpUnmount(m);
  }, 120_000);
});
