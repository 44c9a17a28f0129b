// The sandbox, entered by a child Node process per test (never by vitest's
// own process): credentials, capabilities, no_new_privs, seccomp on every
// thread, the empty root, the network namespace, blocked escapes, and that
// ordinary work (timers, reads, threads, workers, abort) still functions.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = path.dirname(fileURLToPath(import.meta.url));
const rumpuser = path.join(here, '..', 'src', 'rumpuser');
const fixture = path.join(here, 'fixtures', 'sandbox-child.mjs');
const isRoot = process.geteuid?.() === 0;
const hasSetpriv = fs.existsSync('/usr/bin/setpriv');
let jsDir = '';
let tmp = '';
let dataFile = '';

beforeAll(() => {
  execFileSync(process.execPath, [path.join(rumpuser, 'build.mjs')], { stdio: 'inherit' });
  // Node 20 cannot run TypeScript: transpile sandbox.ts and what it imports beside
  // the addon's build (native.ts finds ../Release/rumpuser.node from there).
  jsDir = path.join(rumpuser, 'build', `ts-${process.pid}`);
  fs.mkdirSync(jsDir, { recursive: true });
  for (const f of ['native', 'sandbox', 'lazy']) {
    const src = fs.readFileSync(path.join(rumpuser, `${f}.ts`), 'utf8');
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    fs.writeFileSync(path.join(jsDir, `${f}.js`), js.outputText);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rumpfs-sandbox-'));
  fs.chmodSync(tmp, 0o755); // readable by the unprivileged child too
  dataFile = path.join(tmp, 'data');
  fs.writeFileSync(dataFile, 'hello from before the sandbox', { mode: 0o644 });
  return () => {
    fs.rmSync(jsDir, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  };
});

interface ChildOut {
  pid: number;
  error?: string;
  report?: { user: string; uid: number; gid: number; chrooted: boolean; netns: boolean; seccomp: boolean; noNewPrivs: boolean; threadsChecked: number };
  pread?: string; timer?: string; asyncRead?: string; pthread?: unknown; worker?: unknown; readdirRoot?: string;
  probes?: Record<string, string>;
  procStatus?: string; procEscape?: string; procSys?: string; procFdLink?: string; procRoot?: string; otherDirfd?: string;
}

interface Run { child: ChildProcess; out: ChildOut; finish(): Promise<number | null> }

/** Start the fixture; resolve with its JSON report while it waits on stdin. */
async function run(cfg: Record<string, unknown>, opts: { setpriv?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const argv = [fixture, jsDir, JSON.stringify({ dataFile, end: 'wait', ...cfg })];
  const [cmd, args] = opts.setpriv
    ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...argv]]
    : [process.execPath, argv];
  const child = spawn(cmd, args, {
    env: opts.env ?? { ...process.env, UV_USE_IO_URING: '0' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    once(lines, 'line').then(([l]) => String(l)),
    exited.then(([code, sig]) => { throw new Error(`child exited (${code ?? sig}) without a report`); }),
  ]);
  return {
    child,
    out: JSON.parse(first) as ChildOut,
    finish: async () => {
      // A child that has already exited (a refusal) makes the pipe EPIPE.
      child.stdin!.on('error', () => {});
      child.stdin!.end('\n');
      const [code] = await exited;
      return code;
    },
  };
}

/** /proc/<pid>/task/<tid>/status of every (still living) thread, as key -> value maps. */
function threadStatuses(pid: number): Record<string, string>[] {
  const all: Record<string, string>[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // e.g. the worker's thread, ending
      throw e;
    }
    const m: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) m[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    all.push(m);
  }
  return all;
}

function expectedUser(): { uid: number; gid: number; name: string } {
  const users = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  const u = users.find((f) => f[0] === 'rumpfs') ?? users.find((f) => f[0] === 'nobody')!;
  return { name: u[0], uid: Number(u[2]), gid: Number(u[3]) };
}

const ZERO = '0000000000000000';

describe.skipIf(!isRoot)('sandbox as root', () => {
  it('makes its own network namespace unless RUMPFS_NETNS names the one it is in (the launcher\'s)', async () => {
    const host = fs.readlinkSync('/proc/self/ns/net');
    // A name that is not its namespace's (stale, or another's) changes nothing.
    const r = await run({}, { env: { ...process.env, UV_USE_IO_URING: '0', RUMPFS_NETNS: 'net:[1]' } });
    try {
      expect(r.out.error).toBeUndefined();
      expect(r.out.report?.netns).toBe(true);
      expect(fs.readlinkSync(`/proc/${r.out.pid}/ns/net`)).not.toBe(host);
    } finally {
      await r.finish();
    }
    // Its own namespace's name: kept (the launcher made it, with every thread in it).
    const k = await run({}, { env: { ...process.env, UV_USE_IO_URING: '0', RUMPFS_NETNS: host } });
    try {
      expect(k.out.error).toBeUndefined();
      expect(k.out.report?.netns).toBe(true);
      expect(fs.readlinkSync(`/proc/${k.out.pid}/ns/net`)).toBe(host);
    } finally {
      await k.finish();
    }
  });

  it('drops to the unprivileged user on every thread, with no capabilities, in an empty root and a new netns', async () => {
    const r = await run({});
    try {
      const { out } = r;
      const want = expectedUser();
      expect(out.error).toBeUndefined();
      expect(out.report).toMatchObject({ user: want.name, uid: want.uid, gid: want.gid, chrooted: true, netns: true, seccomp: true, noNewPrivs: true });
      expect(want.uid).not.toBe(0);
      expect(want.gid).not.toBe(0);

      // Every thread, seen from outside.
      const threads = threadStatuses(out.pid);
      expect(threads.length).toBeGreaterThan(1);
      for (const s of threads) {
        expect(s.Uid.split(/\s+/).map(Number)).toEqual([want.uid, want.uid, want.uid, want.uid]);
        expect(s.Gid.split(/\s+/).map(Number)).toEqual([want.gid, want.gid, want.gid, want.gid]);
        expect(s.Groups).toBe('');
        expect([s.CapEff, s.CapPrm, s.CapInh, s.CapAmb]).toEqual([ZERO, ZERO, ZERO, ZERO]);
        expect(s.NoNewPrivs).toBe('1');
        expect(s.Seccomp).toBe('2');
      }

      // The root is the empty directory; the main thread is in another netns.
      expect(fs.readlinkSync(`/proc/${out.pid}/root`)).toBe('/run/rumpfs-empty');
      expect(fs.readdirSync(`/proc/${out.pid}/root/`)).toEqual([]);
      expect(fs.readlinkSync(`/proc/${out.pid}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
      // Dumpable again after the uid change (/proc/<pid> belongs to it), core size unlimited.
      expect(fs.statSync(`/proc/${out.pid}`).uid).toBe(want.uid);
      expect(fs.readFileSync(`/proc/${out.pid}/limits`, 'utf8')).toMatch(/^Max core file size\s+unlimited\s+unlimited/m);
      expect(fs.readFileSync(`/proc/${out.pid}/limits`, 'utf8')).toMatch(/^Max open files\s+4096\s+4096/m);

      // Ordinary work still functions.
      expect(out.pread).toBe('hello from before the sandbox');
      expect(out.asyncRead).toBe('hello from before the sandbox'); // libuv thread pool
      expect(out.timer).toBe('fired');
      expect(out.pthread).toBe(true); // pthread_create/cancel/join, as fuse_loop_mt
      expect(out.worker).toBe(42);

      // And escapes do not.
      expect(out.readdirRoot).toBe('EPERM');
      expect(out.probes).toEqual({
        'open /etc/passwd': 'EPERM',
        'stat /etc': 'ENOENT',
        'spawn /bin/true': 'EPERM',
        'write /tmp': 'EPERM',
        'network interfaces': 'EPERM',
        'signal parent': 'EPERM',
        'tcp 127.0.0.1': 'EPERM',
      });
      expect(await r.finish()).toBe(0);
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('procDirFd from openProcDir allows read-only opens of /proc/<pid>/ files and nothing beyond', async () => {
    const r = await run({ procDir: true });
    try {
      const { out } = r;
      expect(out.error).toBeUndefined();
      expect(out.procStatus).toBe('Name:\tnode');
      expect(out.procEscape).toBe('ENOENT'); // ".." stays in the detached proc mount
      expect(out.procSys).toBe('ENOENT'); // subset=pid
      expect(out.procFdLink).toBe('ELOOP'); // O_NOFOLLOW: no magic links at the end
      expect(out.procRoot).toBe('EACCES'); // another user's root link
      expect(out.otherDirfd).toBe('EPERM'); // any other dirfd
      expect(out.probes!['open /etc/passwd']).toBe('EPERM');
      expect(await r.finish()).toBe(0);
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('refuses a plain /proc fd as procDirFd (its ".." is the host root)', async () => {
    const r = await run({ procDir: 'plain' });
    expect(r.out.error).toMatch(/^sandbox: procDirFd check failed: fd \d+ is not the root of its tree/);
    expect(r.out.report).toBeUndefined();
    expect(await r.finish()).toBe(3);
  });

  it('refuses to serve when a thread keeps a capability (root taken for an ordinary user)', async () => {
    const r = await run({ options: { root: false } });
    expect(r.out.error).toMatch(/^sandbox: capability check failed: thread \d+: CapEff is [0-9a-f]{16}$/);
    expect(r.out.error).not.toContain(ZERO);
    expect(r.out.report).toBeUndefined();
    expect(await r.finish()).toBe(3);
  });

  it('refuses to start without UV_USE_IO_URING=0', async () => {
    const env = { ...process.env };
    delete env.UV_USE_IO_URING;
    const child = spawn(process.execPath, [fixture, jsDir, JSON.stringify({ dataFile, end: 'wait' })], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const [code] = await once(child, 'exit');
    expect(code).toBe(3);
    expect(JSON.parse(Buffer.concat(chunks).toString()).error).toMatch(/^sandbox: environment check failed: .*UV_USE_IO_URING=0/);
  });

  it('still dies by SIGABRT (core dumps stay possible) after sandboxing', async () => {
    const child = spawn(process.execPath, [fixture, jsDir, JSON.stringify({ dataFile, end: 'abort' })], {
      env: { ...process.env, UV_USE_IO_URING: '0' }, stdio: ['ignore', 'ignore', 'ignore'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await once(child, 'exit');
    clearTimeout(timer);
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGABRT' });
  });
});

describe.skipIf(!isRoot || !hasSetpriv)('sandbox as an ordinary user', () => {
  it('keeps the uid, no chroot, but no_new_privs and seccomp on every thread', async () => {
    const r = await run({}, { setpriv: true });
    try {
      const { out } = r;
      expect(out.error).toBeUndefined();
      expect(out.report).toMatchObject({ uid: 65534, gid: 65534, chrooted: false, netns: false, seccomp: true, noNewPrivs: true });
      for (const s of threadStatuses(out.pid)) {
        expect(s.Uid.split(/\s+/)[0]).toBe('65534');
        expect(s.CapEff).toBe(ZERO);
        expect(s.NoNewPrivs).toBe('1');
        expect(s.Seccomp).toBe('2');
      }
      expect(fs.readlinkSync(`/proc/${out.pid}/root`)).toBe('/');
      expect(out.pread).toBe('hello from before the sandbox');
      expect(out.asyncRead).toBe('hello from before the sandbox');
      expect(out.pthread).toBe(true);
      expect(out.worker).toBe(42);
      const p = out.probes!;
      expect(p['open /etc/passwd']).toBe('EPERM');
      expect(p['spawn /bin/true']).toBe('EPERM');
      expect(p['write /tmp']).toBe('EPERM');
      expect(p['tcp 127.0.0.1']).toBe('EPERM');
      expect(p['network interfaces']).toBe('EPERM');
      expect(p['signal parent']).toBe('EPERM');
      expect(p['stat /etc']).toBe('SUCCEEDED'); // no chroot without root: names stay visible
      expect(await r.finish()).toBe(0);
    } finally {
      r.child.kill('SIGKILL');
    }
  });
});
