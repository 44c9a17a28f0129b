// Real mounts for tests: start a rump_<fs> server (built into dist/ by tsc),
// find its process, unmount in each of the ways a user can, wait for the
// server to exit, and clean up whatever a failing test left behind.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountAt } from '../../servers/mountinfo.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Only RUMPFS_SKIP_FUSE=1 may skip mount tests (machines without /dev/fuse). */
export const SKIP_FUSE = process.env.RUMPFS_SKIP_FUSE === '1';

/** dist/ is what the servers run: rebuild it when a source is newer (tsc emits despite others' type errors). */
export function ensureBuilt(): void {
  const out = path.join(ROOT, 'dist/servers/runner.js');
  const newest = (dir: string): number => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile() && e.name.endsWith('.ts')) t = Math.max(t, statSync(path.join(e.parentPath, e.name)).mtimeMs);
    }
    return t;
  };
  const src = Math.max(...['src', 'p2k', 'servers', 'scripts'].map(d => newest(path.join(ROOT, d))));
  if (!existsSync(out) || statSync(out).mtimeMs < src) {
    spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', ROOT], { stdio: 'ignore' });
  }
}

export function serverScript(prog: string): string {
  return path.join(ROOT, 'dist/servers', `${prog}.js`);
}

const temps: string[] = [];

/** A temporary directory, removed by cleanupMounts(). */
export function tempDir(prefix = 'rumpfs-test-'): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

export { mountAt, type MountInfo as MountEntry } from '../../servers/mountinfo.js';

/**
 * The processes of a mount started by a launcher: the servers' command
 * line names it, their environment has P2K_READY_FD. A read-only mount's
 * supervisor is a server's parent that is the C launcher (rumpfs_launch,
 * src/rumpuser/launch.c) and holds /dev/fuse; an unsupervised server's
 * launcher is gone by the time the mount command returns.
 */
export function mountProcesses(mountpoint: string): { supervisors: number[]; servers: number[] } {
  const servers: number[] = [], supervisors = new Set<number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!argv.some(a => a.includes('/dist/servers/') || a.includes('/dist/bin/')) || !argv.includes(mountpoint)) continue;
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (!env.some(e => e.startsWith('P2K_READY_FD='))) continue;
      if (processGone(Number(name))) continue;
      servers.push(Number(name));
      const ppid = Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1] ?? 0);
      if (readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() === 'rumpfs_launch' && holdsDevFuse(ppid)) supervisors.add(ppid);
    } catch { /* gone meanwhile */ }
  }
  return { supervisors: [...supervisors], servers };
}

/** Whether pid has /dev/fuse open. */
export function holdsDevFuse(pid: number): boolean {
  return readdirSync(`/proc/${pid}/fd`).some(fd => {
    try { return readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse'; } catch { return false; }
  });
}

/** Servers (not launchers, not supervisors) serving mountpoint. */
export function serverPids(mountpoint: string): number[] {
  return mountProcesses(mountpoint).servers;
}

/** Exited (or a zombie nobody reaped: servers are detached). */
export function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
  } catch {
    return true;
  }
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise(r => setTimeout(r, 20));
  }
}

export interface RunResult { status: number | null; signal: string | null; stdout: string; stderr: string }

/** Run a command to completion, never throwing on failure. */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeout?: number } = {}): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, cwd: opts.cwd, timeout: opts.timeout ?? 120_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

export function sh(script: string, opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {}): RunResult {
  return run('/bin/sh', ['-c', script], opts);
}

/** A mounted rump server. */
export interface Mounted {
  prog: string;
  mountpoint: string;
  pid: number;
}

const live = new Set<Mounted>();

/**
 * Mount with rump_<prog> in the background (the default). Throws with the
 * launcher's message when it fails.
 */
export function rumpMount(prog: string, args: readonly string[], mountpoint: string, env: NodeJS.ProcessEnv = {}): Mounted {
  const r = run(process.execPath, [serverScript(prog), ...args], { env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${prog} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  const pids = serverPids(mountpoint);
  if (pids.length !== 1) throw new Error(`${prog}: expected one server for ${mountpoint}, found ${pids.length}`);
  const m = { prog, mountpoint, pid: pids[0] };
  live.add(m);
  return m;
}

/** A foreground server (-f): the child process is the launcher, which reports the server's exit status. */
export function rumpMountForeground(prog: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [serverScript(prog), '-f', ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exit = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)));
  return { child, exit, stderr: () => stderr };
}

export type UnmountWay = 'umount' | 'fusermount' | 'SIGTERM';

/** Unmount one of the ways a user can, then wait until the mount is gone and the server has exited. */
export async function rumpUnmount(m: Mounted, way: UnmountWay = 'umount'): Promise<void> {
  if (way === 'umount') execFileSync('umount', [m.mountpoint]);
  else if (way === 'fusermount') execFileSync('fusermount3', ['-u', m.mountpoint]);
  else process.kill(m.pid, 'SIGTERM');
  await waitFor(`server ${m.pid} to exit`, () => processGone(m.pid));
  await waitFor(`${m.mountpoint} to be unmounted`, () => mountAt(m.mountpoint) === null);
  live.delete(m);
}

/** afterEach/afterAll: whatever is still mounted or running goes, by force if need be; temporary directories too. */
export async function cleanupMounts(): Promise<void> {
  for (const m of [...live]) {
    live.delete(m);
    if (mountAt(m.mountpoint)) spawnSync('umount', [m.mountpoint]);
    await waitFor('server exit', () => processGone(m.pid), 5000).catch(() => {
      try { process.kill(m.pid, 'SIGKILL'); } catch { /* gone */ }
    });
    if (mountAt(m.mountpoint)) spawnSync('umount', ['-l', m.mountpoint]);
  }
  for (const d of temps.splice(0)) {
    // Never recurse into something still mounted.
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map(l => l.split(' ')[4]).filter(p => p?.startsWith(d));
    for (const p of mounted.sort().reverse()) spawnSync('umount', ['-l', p]);
    rmSync(d, { recursive: true, force: true });
  }
}

/** A kernel tmpfs to compare with (unmounted by cleanupMounts through its temporary directory). */
export function kernelTmpfs(dir: string, options = 'size=64m,mode=1777'): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
}

/** Deterministic bytes (xorshift): the same data for every run and every target. */
export function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
