// Mounting and unmounting the targets, and never leaving one behind: every
// mount made here is registered until it is unmounted and its server has
// exited; cleanupAll() (on the way out, on failure, on Ctrl-C) finishes
// whatever is left.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const isRoot = process.geteuid?.() === 0;

/** How a target's command mounts: a launcher that exits 0 once mounted (the rump servers, fusefat), a server that stays in front, or the kernel (mount(8)). */
export type ServerKind = 'launcher' | 'foreground' | 'kernel';

export interface Live {
  mountpoint: string;
  kind: ServerKind;
  /** The FUSE server's process; null for kernel mounts. */
  pid: number | null;
}

const live = new Set<Live>();

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function mounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] !== undefined && unescapeMount(l.split(' ')[4]) === dir);
}

export function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
  } catch {
    return true;
  }
}

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

export async function waitUntil(what: string, cond: () => boolean, timeoutMs = 30_000, stepMs = 1): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** The process serving a FUSE mount started by a launcher: it names the mount point and holds /dev/fuse; not the fusermount helpers, not a supervisor. */
function serverOf(mountpoint: string): number | null {
  const found: { pid: number; ppid: number }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(mountpoint) || /fusermount|^sh$/.test(readFileSync(`/proc/${name}/comm`, 'utf8').trim())) continue;
      const fuse = readdirSync(`/proc/${name}/fd`).some(fd => {
        try { return readlinkSync(`/proc/${name}/fd/${fd}`) === '/dev/fuse'; } catch { return false; }
      });
      const ppid = Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1] ?? 0);
      if (fuse && !processGone(Number(name))) found.push({ pid: Number(name), ppid });
    } catch { /* gone meanwhile */ }
  }
  // A read-only mount's supervisor (the C launcher, launch.c) holds /dev/fuse too: it is the server's parent.
  const servers = found.filter(p => !found.some(q => q.ppid === p.pid)).map(p => p.pid);
  if (servers.length > 1) throw new Error(`${servers.length} servers found for ${mountpoint}: ${servers.join(' ')}`);
  return servers[0] ?? null;
}

function mountAnswers(dir: string, parentDev: number): boolean {
  if (!mounted(dir)) return false;
  try {
    return statSync(dir).dev !== parentDev;
  } catch {
    return false;
  }
}

export interface MountResult { live: Live; ms: number }

/**
 * Milliseconds Node takes to start on an empty script and exit, spawned as
 * mountWith spawns a command: the part of a server's mount latency that no
 * server code can remove, on this machine at this moment.
 */
export async function nodeStartMs(work: string, flags: readonly string[]): Promise<number> {
  const script = path.join(work, 'empty.cjs');
  writeFileSync(script, '');
  // The environment a server gets from its launcher (launch.c server_env):
  // NODE_EXTRA_CA_CERTS alone would add ~50 ms here.
  const env: NodeJS.ProcessEnv = { ...process.env, UV_USE_IO_URING: '0' };
  for (const v of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_OPTIONS']) delete env[v];
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const c = spawn(process.execPath, [...flags, script], { stdio: 'ignore', env });
    c.on('error', reject);
    c.on('exit', () => resolve());
  });
  return performance.now() - t0;
}

/**
 * Run a target's mount command; resolves when the mount answers (a stat of
 * the mount point reaches the new file system), with the milliseconds from
 * the command's start.
 */
export async function mountWith(kind: ServerKind, argv: readonly string[], mountpoint: string, env: NodeJS.ProcessEnv = {}): Promise<MountResult> {
  if (mounted(mountpoint)) throw new Error(`${mountpoint} is already a mount point`);
  const parentDev = statSync(mountpoint).dev;
  let stderr = '';
  let exited: number | null | undefined;
  const t0 = performance.now();
  // Detached: a Ctrl-C at the terminal reaches the bench, which unmounts in order.
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exit = new Promise<void>(resolve => child.on('exit', (code, signal) => { exited = code ?? (signal ? -1 : null); resolve(); }));
  child.on('error', e => { stderr += String(e); });
  const failed = () => exited !== undefined && (kind === 'foreground' || exited !== 0);
  try {
    // A command that returns once mounted is not polled meanwhile: a poll every
    // millisecond takes CPU from the server starting beside it (2 cores here).
    if (kind !== 'foreground') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exit, new Promise(r => { timer = setTimeout(r, 60_000); })]);
      clearTimeout(timer);
    }
    await waitUntil(`${argv.join(' ')} to mount`, () => failed() || (mountAnswers(mountpoint, parentDev) && (kind === 'foreground' || exited !== undefined)), 60_000);
  } catch (e) {
    if (child.pid && exited === undefined) child.kill('SIGKILL');
    if (mounted(mountpoint)) await forceUnmount(mountpoint);
    throw e;
  }
  const ms = performance.now() - t0;
  if (failed()) {
    if (mounted(mountpoint)) await forceUnmount(mountpoint);
    throw new Error(`${argv.join(' ')}: exit ${exited}: ${stderr.trim()}`);
  }
  if (kind !== 'foreground') await exit;
  child.unref();
  const pid = kind === 'kernel' ? null : kind === 'foreground' ? child.pid! : serverOf(mountpoint);
  if (kind === 'launcher' && pid === null) throw new Error(`${argv.join(' ')}: mounted, but no server process found`);
  const l: Live = { mountpoint, kind, pid };
  live.add(l);
  return { live: l, ms };
}

async function forceUnmount(dir: string): Promise<void> {
  await runQuiet(isRoot ? ['umount', dir] : ['fusermount3', '-u', dir]);
  if (mounted(dir)) await runQuiet(isRoot ? ['umount', '-l', dir] : ['fusermount3', '-uz', dir]);
}

function runQuiet(argv: readonly string[]): Promise<number | null> {
  return new Promise(resolve => {
    const c = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    c.on('error', () => resolve(-1));
    c.on('exit', code => resolve(code));
  });
}

/** Unmount as a user would, then wait until the mount is gone and the server has exited (killing it if it will not). */
export async function unmount(l: Live): Promise<void> {
  try {
    const code = await runQuiet(isRoot || l.kind === 'kernel' ? ['umount', l.mountpoint] : ['fusermount3', '-u', l.mountpoint]);
    if (code !== 0) throw new Error(`umount ${l.mountpoint}: exit ${code}`);
    await waitUntil(`${l.mountpoint} to be unmounted`, () => !mounted(l.mountpoint), 10_000, 5);
    if (l.pid !== null) await waitUntil(`server ${l.pid} to exit`, () => processGone(l.pid!), 10_000, 5);
  } finally {
    if (l.pid !== null && !processGone(l.pid)) {
      try { process.kill(l.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (mounted(l.mountpoint)) await forceUnmount(l.mountpoint);
    live.delete(l);
  }
}

/** Everything still mounted or running goes. */
export async function cleanupAll(): Promise<void> {
  for (const l of [...live].reverse()) await unmount(l).catch(() => {});
}

/** Drop the host's page, dentry and inode caches (root only): reads after it reach the file system. */
export function dropCaches(): boolean {
  if (!isRoot) return false;
  // sync(1) first: dirty pages cannot be dropped.
  spawnSync('sync', [], { stdio: 'ignore' });
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  return true;
}

export interface Memory { rssMiB: number; hwmMiB: number }

/** VmRSS and VmHWM of a process, in MiB. */
export function memoryOf(pid: number): Memory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string) => Number(/^\w+:\s+(\d+) kB$/m.exec(status.split('\n').find(l => l.startsWith(k + ':')) ?? '')?.[1]);
    const m = { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
    return Number.isFinite(m.rssMiB) && Number.isFinite(m.hwmMiB) ? m : null;
  } catch {
    return null;
  }
}
