// A randomized exerciser: thousands of operations with a fixed seed, run on
// tmpfs through the kernel's system calls and on a small in-memory model of
// POSIX (as the kernel's namei and rename decide), every result compared:
// data, error codes, directory listings in order, attributes. Then the same
// concurrently: several "threads" on their own subtrees, compared with their
// own models, plus renames in shared directories, with a deadlock timeout.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cred, isKernError, Lwp, O_CREAT, O_EXCL, O_RDONLY, O_TRUNC, O_WRONLY, sys_link, sys_mkdir, sys_open,
  sys_readdir, sys_readlink, sys_rename, sys_rmdir, sys_setattr, sys_stat, sys_statvfs, sys_symlink, sys_unlink,
  vcache_setmax, vcache_stats, vfs_mount, vfs_unmount, vn_close, vn_fstat, vn_read, vn_write, VType, type Mount,
} from '../src/kern/index.js';
import '../src/fs/tmpfs/index.js';

const mounts: Mount[] = [];
afterEach(async () => {
  for (const mp of mounts.splice(0)) await vfs_unmount(mp, true);
});

async function mount(): Promise<Mount> {
  const mp = await vfs_mount('tmpfs', { dev: null, from: 'tmpfs', flags: 0, options: {} });
  mounts.push(mp);
  return mp;
}

/** mulberry32: a small, fixed PRNG so every run is the same run. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    bytes: (n: number) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (next() * 256) | 0; return b; },
  };
}
type Rng = ReturnType<typeof prng>;

/** Data compared as length and FNV-1a hash, so a mismatch prints short. */
function digest(b: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193);
  return `data:${b.length}:${(h >>> 0).toString(16)}`;
}

// --- The model ---

interface MFile { kind: 'file'; data: Uint8Array; nlink: number }
interface MLink { kind: 'link'; target: string; nlink: number }
interface MDir { kind: 'dir'; entries: Map<string, MNode>; parent: MDir }
type MNode = MFile | MLink | MDir;

class MErr { constructor(readonly code: string) {} }
const fail = (code: string): never => { throw new MErr(code); };
const encoder = new TextEncoder();

class Model {
  readonly root: MDir;
  constructor() {
    const root = { kind: 'dir', entries: new Map(), parent: null! } as MDir;
    root.parent = root;
    this.root = root;
  }

  /** namei: with parent, the directory and the (maybe missing) last name. */
  resolve(path: string, follow: boolean, parent = false): { dir: MDir; node: MNode | null; name: string } {
    let comps = path.split('/').filter(c => c);
    let dir = this.root;
    let links = 0;
    for (;;) {
      if (comps.length === 0) return { dir, node: dir, name: '.' };
      const comp = comps.shift()!;
      const last = comps.length === 0;
      const wantParent = last && parent && comp !== '.' && comp !== '..';
      let next: MNode | null = comp === '.' ? dir : comp === '..' ? dir.parent : dir.entries.get(comp) ?? null;
      if (!next && !wantParent) fail('ENOENT');
      if (next?.kind === 'link' && (!last || follow)) {
        if (++links > 40) fail('ELOOP');
        comps = [...next.target.split('/').filter(c => c), ...comps];
        if (next.target.startsWith('/')) dir = this.root;
        continue;
      }
      if (!last) {
        if (next!.kind !== 'dir') fail('ENOTDIR');
        dir = next as MDir;
        continue;
      }
      return { dir, node: next, name: comp };
    }
  }

  static nlink(n: MNode): number {
    return n.kind === 'dir' ? 2 + [...n.entries.values()].filter(c => c.kind === 'dir').length : n.nlink;
  }
  static size(n: MNode): number {
    return n.kind === 'dir' ? (n.entries.size + 2) * 20 : n.kind === 'link' ? encoder.encode(n.target).length : n.data.length;
  }
  static isAncestor(a: MDir, b: MDir): boolean {
    for (let d = b; ; d = d.parent) {
      if (d === a) return true;
      if (d.parent === d) return false;
    }
  }
  private newName(path: string): { dir: MDir; name: string } {
    const nd = this.resolve(path, false, true);
    if (nd.node) fail('EEXIST');
    return nd;
  }
  private file(path: string): MFile {
    const n = this.resolve(path, true).node!;
    if (n.kind === 'dir') fail('EISDIR');
    return n as MFile;
  }

  run(op: Op): string {
    switch (op.op) {
      case 'create': {
        const nd = this.resolve(op.path, !op.excl, true);
        if (nd.node && op.excl) fail('EEXIST');
        if (nd.node?.kind === 'dir') fail('EISDIR');
        if (!nd.node) nd.dir.entries.set(nd.name, { kind: 'file', data: new Uint8Array(0), nlink: 1 });
        else if (op.trunc) (nd.node as MFile).data = new Uint8Array(0);
        return 'OK';
      }
      case 'write': {
        const f = this.file(op.path);
        const end = op.offset + op.data.length;
        if (end > f.data.length) { const d = new Uint8Array(end); d.set(f.data); f.data = d; }
        f.data.set(op.data, op.offset);
        return `wrote:${op.data.length}`;
      }
      case 'truncate': {
        const f = this.file(op.path);
        const d = new Uint8Array(op.size);
        d.set(f.data.subarray(0, op.size));
        f.data = d;
        return 'OK';
      }
      case 'read': return digest(this.file(op.path).data);
      case 'mkdir': {
        const nd = this.newName(op.path);
        nd.dir.entries.set(nd.name, { kind: 'dir', entries: new Map(), parent: nd.dir });
        return 'OK';
      }
      case 'symlink': {
        const nd = this.newName(op.path);
        nd.dir.entries.set(nd.name, { kind: 'link', target: op.target, nlink: 1 });
        return 'OK';
      }
      case 'link': {
        const n = this.resolve(op.from, false).node!;
        if (n.kind === 'dir') fail('EPERM');
        const nd = this.newName(op.path);
        nd.dir.entries.set(nd.name, n);
        (n as MFile | MLink).nlink++;
        return 'OK';
      }
      case 'unlink': case 'rmdir': {
        const nd = this.resolve(op.path, false, true);
        if (!nd.node) fail('ENOENT');
        const n = nd.node!;
        if (op.op === 'unlink') {
          if (n.kind === 'dir') fail('EISDIR');
          (n as MFile | MLink).nlink--;
        } else {
          if (n.kind !== 'dir') fail('ENOTDIR');
          if ((n as MDir).entries.size > 0) fail('ENOTEMPTY');
        }
        nd.dir.entries.delete(nd.name);
        return 'OK';
      }
      case 'rename': {
        const f = this.resolve(op.from, false, true);
        const t = this.resolve(op.path, false, true);
        if (!f.node) fail('ENOENT');
        const fn = f.node!, tn = t.node;
        if (fn === tn) return 'OK';
        if (tn && fn.kind === 'dir' && tn.kind !== 'dir') fail('ENOTDIR');
        if (tn && fn.kind !== 'dir' && tn.kind === 'dir') fail('EISDIR');
        if (fn.kind === 'dir' && Model.isAncestor(fn, t.dir)) fail('EINVAL');
        if (tn?.kind === 'dir' && (Model.isAncestor(tn, f.dir) || tn.entries.size > 0)) fail('ENOTEMPTY');
        if (tn && tn.kind !== 'dir') tn.nlink--;
        t.dir.entries.delete(t.name);
        f.dir.entries.delete(f.name);
        t.dir.entries.set(t.name, fn);
        if (fn.kind === 'dir') fn.parent = t.dir;
        return 'OK';
      }
      case 'readdir': {
        const n = this.resolve(op.path, true).node!;
        if (n.kind !== 'dir') fail('ENOTDIR');
        return [...(n as MDir).entries].map(([name, c]) => `${name}:${c.kind}`).join(',');
      }
      case 'stat': {
        const n = this.resolve(op.path, op.follow).node!;
        return `${n.kind}:size=${Model.size(n)}:nlink=${Model.nlink(n)}`;
      }
      case 'readlink': {
        const n = this.resolve(op.path, false).node!;
        if (n.kind !== 'link') fail('EINVAL');
        return (n as MLink).target;
      }
    }
  }
}

// --- Operations, generated and run on tmpfs ---

type Op =
  | { op: 'create'; path: string; excl: boolean; trunc: boolean }
  | { op: 'write'; path: string; offset: number; data: Uint8Array }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'read' | 'mkdir' | 'unlink' | 'rmdir' | 'readdir' | 'readlink'; path: string }
  | { op: 'stat'; path: string; follow: boolean }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'link' | 'rename'; from: string; path: string };

const NAMES = ['a', 'b', 'c', 'd'];

function genPath(rng: Rng, base: string): string {
  const depth = 1 + rng.int(3);
  let p = base;
  for (let i = 0; i < depth; i++) p += '/' + rng.pick(NAMES);
  return p;
}

/** A random operation under base; symlink targets leave base only when `free`. */
function genOp(rng: Rng, base: string, free: boolean): Op {
  const path = genPath(rng, base);
  const r = rng.int(100);
  if (r < 14) return { op: 'create', path, excl: rng.int(3) === 0, trunc: rng.int(4) === 0 };
  if (r < 30) return { op: 'write', path, offset: rng.int(3 * 4096 + 100), data: rng.bytes(rng.int(5000)) };
  if (r < 36) return { op: 'truncate', path, size: rng.int(20000) };
  if (r < 46) return { op: 'read', path };
  if (r < 58) return { op: 'mkdir', path };
  if (r < 63) return { op: 'rmdir', path };
  if (r < 69) return { op: 'unlink', path };
  if (r < 79) return { op: 'rename', from: genPath(rng, base), path };
  if (r < 83) return { op: 'link', from: genPath(rng, base), path };
  if (r < 87) {
    const rel = genPath(rng, '').slice(1);
    const target = !free ? rel : rng.pick([rel, '/' + rel, '../' + rel, rng.pick(NAMES)]);
    return { op: 'symlink', path, target };
  }
  if (r < 92) return { op: 'readdir', path: rng.int(4) === 0 ? base || '/' : path };
  if (r < 97) return { op: 'stat', path, follow: rng.int(2) === 0 };
  return { op: 'readlink', path };
}

async function readAll(l: Lwp, path: string): Promise<Uint8Array> {
  const fp = await sys_open(l, path, O_RDONLY);
  try {
    const buf = new Uint8Array((await vn_fstat(l, fp)).size);
    return buf.subarray(0, await vn_read(l, fp, buf, 0));
  } finally {
    await vn_close(l, fp);
  }
}

const kinds: Partial<Record<VType, string>> = { [VType.VREG]: 'file', [VType.VDIR]: 'dir', [VType.VLNK]: 'link' };

async function runFs(l: Lwp, op: Op): Promise<string> {
  switch (op.op) {
    case 'create': {
      const fp = await sys_open(l, op.path, O_CREAT | O_WRONLY | (op.excl ? O_EXCL : 0) | (op.trunc ? O_TRUNC : 0), 0o644);
      await vn_close(l, fp);
      return 'OK';
    }
    case 'write': {
      const fp = await sys_open(l, op.path, O_WRONLY);
      try { return `wrote:${await vn_write(l, fp, op.data, op.offset)}`; } finally { await vn_close(l, fp); }
    }
    case 'truncate': await sys_setattr(l, op.path, { size: op.size }); return 'OK';
    case 'read': return digest(await readAll(l, op.path));
    case 'mkdir': await sys_mkdir(l, op.path, 0o755); return 'OK';
    case 'symlink': await sys_symlink(l, op.target, op.path); return 'OK';
    case 'link': await sys_link(l, op.from, op.path); return 'OK';
    case 'unlink': await sys_unlink(l, op.path); return 'OK';
    case 'rmdir': await sys_rmdir(l, op.path); return 'OK';
    case 'rename': await sys_rename(l, op.from, op.path); return 'OK';
    case 'readdir':
      return (await sys_readdir(l, op.path)).filter(d => d.name !== '.' && d.name !== '..')
        .map(d => `${d.name}:${kinds[d.type]}`).join(',');
    case 'stat': {
      const va = await sys_stat(l, op.path, op.follow);
      return `${kinds[va.type]}:size=${va.size}:nlink=${va.nlink}`;
    }
    case 'readlink': return sys_readlink(l, op.path);
  }
}

const describeOp = (op: Op) => JSON.stringify(op, (k, v) => (k === 'data' ? `<${v.length} bytes>` : v));

/** Run n operations under base, comparing each with the model; returns the op counts by outcome. */
async function exercise(model: Model, l: Lwp, rng: Rng, n: number, base: string, free: boolean): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const op = genOp(rng, base, free);
    const modelOp = base ? rebase(op, base) : op;
    let want: string;
    try { want = model.run(modelOp); } catch (e) { if (e instanceof MErr) want = e.code; else throw e; }
    let got: string;
    try { got = await runFs(l, op); } catch (e) { if (isKernError(e)) got = e.code; else throw e; }
    if (got !== want) expect.fail(`op ${i} ${describeOp(op)}: tmpfs gave ${got}, the model ${want}`);
    const key = `${op.op}:${/^E[A-Z]+$/.test(got) ? got : 'ok'}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  return outcomes;
}

/** The model of a thread sees its base directory as its root. */
function rebase(op: Op, base: string): Op {
  const strip = (p: string) => p.slice(base.length) || '/';
  const o = { ...op, path: strip(op.path) } as Op;
  if ('from' in o) o.from = strip(o.from);
  return o;
}

/** The whole tree under base, from tmpfs and from the model, in one comparable form. */
async function dumpFs(l: Lwp, dir: string, out: string[] = []): Promise<string[]> {
  for (const d of await sys_readdir(l, dir || '/')) {
    if (d.name === '.' || d.name === '..') continue;
    const p = `${dir}/${d.name}`;
    const va = await sys_stat(l, p, false);
    const what = va.type === VType.VREG ? digest(await readAll(l, p)) : va.type === VType.VLNK ? await sys_readlink(l, p) : '';
    out.push(`${p}:${kinds[va.type]}:nlink=${va.nlink}:${what}`);
    if (va.type === VType.VDIR) await dumpFs(l, p, out);
  }
  return out;
}

function dumpModel(dir: MDir, prefix: string, out: string[] = []): string[] {
  for (const [name, n] of dir.entries) {
    const p = `${prefix}/${name}`;
    const what = n.kind === 'file' ? digest(n.data) : n.kind === 'link' ? n.target : '';
    out.push(`${p}:${n.kind}:nlink=${Model.nlink(n)}:${what}`);
    if (n.kind === 'dir') dumpModel(n, p, out);
  }
  return out;
}

/** Remove everything under dir (depth first). */
async function rmTree(l: Lwp, dir: string): Promise<void> {
  for (const d of await sys_readdir(l, dir || '/')) {
    if (d.name === '.' || d.name === '..') continue;
    const p = `${dir}/${d.name}`;
    if (d.type === VType.VDIR) { await rmTree(l, p); await sys_rmdir(l, p); } else await sys_unlink(l, p);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no progress in ${ms} ms (deadlock?)`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

describe('tmpfs against a model', () => {
  it('6000 random operations, one after another, agree with the model (tiny vnode cache)', async () => {
    const mp = await mount();
    const l = new Lwp(Cred.root, mp.rootvp);
    const start = await sys_statvfs(l);
    const model = new Model();
    // A tiny vnode cache: nodes are reclaimed and loaded again all the time.
    const maxvnodes = vcache_stats().max;
    vcache_setmax(8);
    let outcomes: Map<string, number>;
    try {
      outcomes = await withTimeout(exercise(model, l, prng(0x7a3f5), 6000, '', true), 50_000, 'sequential run');
    } finally {
      vcache_setmax(maxvnodes);
    }
    // The seed must reach the interesting cases, not only errors.
    for (const k of ['create:ok', 'write:ok', 'read:ok', 'rename:ok', 'rename:ENOTEMPTY', 'rename:EINVAL', 'link:ok',
      'rmdir:ENOTEMPTY', 'symlink:ok', 'readdir:ok', 'truncate:ok', 'read:ELOOP']) {
      expect(outcomes.get(k) ?? 0, k).toBeGreaterThan(0);
    }
    expect(await dumpFs(l, '')).toEqual(dumpModel(model.root, ''));
    await rmTree(l, '');
    const end = await sys_statvfs(l);
    expect([end.bfree, end.ffree]).toEqual([start.bfree, start.ffree]);
  });

  it('concurrent threads on their own subtrees and shared renames stay consistent', async () => {
    const mp = await mount();
    const root = new Lwp(Cred.root, mp.rootvp);
    const start = await sys_statvfs(root);
    const THREADS = 4, OPS = 1500, SHARED = 6;
    for (const d of ['/shared', '/shared/A', '/shared/B']) await sys_mkdir(root, d, 0o755);
    const models: Model[] = [];
    const threads = Array.from({ length: THREADS }, async (_, k) => {
      const l = new Lwp(Cred.root, mp.rootvp);
      const rng = prng(1000 + k);
      const model = new Model();
      models[k] = model;
      const base = `/t${k}`;
      await sys_mkdir(l, base, 0o755);
      // Files and a directory of this thread's in the shared directories: where each should be.
      const where = new Map<string, 'A' | 'B'>();
      for (let i = 0; i < SHARED; i++) {
        const name = `f${k}_${i}`;
        const fp = await sys_open(l, `/shared/A/${name}`, O_CREAT | O_WRONLY, 0o644);
        try { await vn_write(l, fp, encoder.encode(name), 0); } finally { await vn_close(l, fp); }
        where.set(name, 'A');
      }
      await sys_mkdir(l, `/shared/A/d${k}`, 0o755);
      where.set(`d${k}`, 'A');
      for (let i = 0; i < OPS; i++) {
        if (rng.int(5) === 0) {
          const name = rng.pick([...where.keys()]);
          const from = where.get(name)!, to = from === 'A' ? 'B' : 'A';
          await sys_rename(l, `/shared/${from}/${name}`, `/shared/${to}/${name}`);
          where.set(name, to);
        } else {
          await exercise(model, l, rng, 1, base, false);
        }
        if (rng.int(50) === 0) await sys_readdir(l, rng.pick(['/shared/A', '/shared/B']));
      }
      return where;
    });
    const wheres = await withTimeout(Promise.all(threads), 50_000, 'concurrent run');

    for (let k = 0; k < THREADS; k++) {
      expect(await dumpFs(root, `/t${k}`)).toEqual(dumpModel(models[k].root, `/t${k}`));
      for (const [name, dir] of wheres[k]) {
        const other = dir === 'A' ? 'B' : 'A';
        expect(await sys_stat(root, `/shared/${other}/${name}`).catch(e => e.code)).toBe('ENOENT');
        if (name.startsWith('d')) {
          expect((await sys_stat(root, `/shared/${dir}/${name}/..`)).fileid).toBe((await sys_stat(root, `/shared/${dir}`)).fileid);
        } else {
          expect(new TextDecoder().decode(await readAll(root, `/shared/${dir}/${name}`))).toBe(name);
        }
      }
    }
    // Both shared directories' link counts agree with their subdirectories.
    for (const d of ['A', 'B']) {
      const subdirs = (await sys_readdir(root, `/shared/${d}`)).filter(e => e.type === VType.VDIR && e.name.startsWith('d')).length;
      expect((await sys_stat(root, `/shared/${d}`)).nlink).toBe(2 + subdirs);
    }
    await rmTree(root, '');
    const end = await sys_statvfs(root);
    expect([end.bfree, end.ffree]).toEqual([start.bfree, start.ffree]);
  });
});
