// The server runner shared by every rump_<fs> (NetBSD's p2k_run_diskfs):
// check the mount point, open the device, mount the file system in the
// kernel, attach it to the host through FUSE, enter the sandbox, report
// readiness, serve; on unmount (umount, fusermount -u) or SIGTERM/SIGINT:
// unmount in the kernel (flush, mark clean), close the device, exit 0.
//
// The command the user runs is a launcher: it starts the real server as a
// child (with UV_USE_IO_URING=0, which the sandbox needs from process start;
// as root inside a new network namespace from its first instruction, through
// util-linux unshare, so that no thread of it ever sees the host's network)
// and waits until the child reports readiness on a pipe (fd 3) and a stat of
// the mount point works; then it exits 0 (the child stays, detached), or it
// prints the child's error and exits 32, mount's "mount failure", after
// taking away a FUSE mount that the failed server left. With -f,
// P2K_NODETACH or P2K_DEBUG the launcher stays in front, passes signals on,
// and exits with the server's status (128 + the signal that killed it).
//
// A server that dies (a driver panic aborts it) leaves its mount point
// answering ENOTCONN until someone unmounts it, as NetBSD's puffs does: the
// failure stays visible instead of an empty directory that looks mounted.
// Read-only mounts are the exception: there the launcher's child is a
// supervisor (supervisor.ts) that holds the FUSE session and starts the
// server, and a new one when it dies, a bounded number of times (restart=N).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { constants } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CallerGroups } from '../p2k/caller_groups.js';
import { DevChannel, fuseMount, type FuseMountSpec } from '../p2k/fuse/mount.js';
import { FuseSession } from '../p2k/fuse/session.js';
import { P2k, p2kWants } from '../p2k/p2k.js';
import {
  KernError, MNT_NOEXEC, MNT_RDONLY, blkdev_open, panic, vfs_getopsbyname, vfs_mount, vfs_unmount,
  type BlockDevice, type Mount, type MountOptions,
} from '../src/kern/index.js';
import { mapShared, openProcDir, setCloexec } from '../src/rumpuser/native.js';
import { rumpuser_logtag, rumpuser_putstr } from '../src/rumpuser/index.js';
import { sandbox } from '../src/rumpuser/sandbox.js';
import { checkWholeDisk } from './disk.js';
import { mountAt, type MountInfo } from './mountinfo.js';
import { UsageError } from './options.js';
import { DEFAULT_RESTARTS, supervisorCommand } from './supervisor.js';
import { Inflight, INFLIGHT_BYTES } from '../p2k/fuse/inflight.js';

export const EXIT_USAGE = 1, EXIT_MOUNT_FAILURE = 32;

/** How long the launcher waits for the server to be mounted. */
const READY_TIMEOUT_MS = 60_000;

export interface ServerSpec {
  /** rump_tmpfs, for messages. */
  prog: string;
  /** Kernel file system type. */
  fstype: string;
  /** Device or image to open; null for tmpfs. */
  device: string | null;
  /** 1-based partition of the device. */
  partition?: number;
  /** The source the mount table shows. */
  from: string;
  mountpoint: string;
  /** MNT_RDONLY, MNT_SYNCHRONOUS, MNT_NOEXEC. */
  flags: number;
  /** Options for the driver. */
  options: MountOptions;
  /** -f */
  foreground: boolean;
  /** rumpuser=NAME: whom the sandboxed server becomes. */
  sandboxUser?: string;
  /**
   * The server alone decides permissions (no default_permissions): for
   * options that loosen the owner rules the host kernel would apply first.
   */
  serverPermissions?: boolean;
  /** restart=N: read-only mounts restart a crashed server up to N times a minute (servers/supervisor.ts). */
  restart?: number;
}

/** A mount that cannot be made: the message goes to the user, exit 32. */
class MountFailure extends Error {}

function envSet(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0';
}

/**
 * The whole life of a rump_<fs> command. main() builds the spec (a
 * UsageError there exits 1 with the usage text); the rest happens here.
 */
export async function serverMain(prog: string, usage: string, parse: (argv: string[]) => ServerSpec): Promise<never> {
  let spec: ServerSpec;
  try {
    spec = parse(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${prog}: ${e.message}\n${usage}\n`);
    process.exit(EXIT_USAGE);
  }
  const readyFd = process.env.P2K_READY_FD;
  if (readyFd === undefined) return launch(spec);
  // The server: readiness and errors go to the launcher through the pipe.
  const fd = Number(readyFd);
  const say = (line: string) => { try { writeSync(fd, line + '\n'); } catch { /* launcher gone */ } };
  try {
    await serve(spec, () => { say('ready'); closeSync(fd); });
  } catch (e) {
    say(`error ${describe(e)}`);
    process.exit(EXIT_MOUNT_FAILURE);
  }
  // Serving: the FUSE handle keeps the process alive until unmount or a signal.
  return new Promise<never>(() => {});
}

function describe(e: unknown): string {
  if (e instanceof MountFailure) return e.message;
  if (e instanceof KernError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

// The launcher

async function launch(spec: ServerSpec): Promise<never> {
  const foreground = spec.foreground || envSet('P2K_NODETACH') || envSet('P2K_DEBUG');
  const log = foreground ? null : openLog();
  const mountedBefore = mountAtPath(spec.mountpoint)?.id ?? null;
  // A small young generation: a quarter less peak memory at no CPU cost (measured, shared/NOTES).
  const server = [process.execPath, '--max-semi-space-size=1', ...process.execArgv, ...process.argv.slice(1)];
  // unshare execs the server: the child's pid is the server's.
  // A read-only mount gets a supervisor that starts (and restarts) the server.
  const supervisor = supervisorFor(spec, server);
  const argv = supervisor?.argv ?? (process.geteuid?.() === 0 ? ['unshare', '--net', '--', ...server] : server);
  const child = spawn(argv[0], argv.slice(1), {
    // P2K_MOUNTPOINT lets rumpumount find this server: its cwd and relative
    // operands say nothing once it is chrooted.
    env: { ...serverEnv(), UV_USE_IO_URING: '0', ...(supervisor?.env ?? { P2K_READY_FD: '3' }), P2K_MOUNTPOINT: absolute(spec.mountpoint), ...(log ? { P2K_LOG: log.path } : {}) },
    stdio: foreground ? ['inherit', 'inherit', 'inherit', 'pipe'] : ['ignore', log?.fd ?? 'ignore', log?.fd ?? 'ignore', 'pipe'],
    detached: !foreground,
  });
  if (log) closeSync(log.fd);
  let spawnError = '';
  child.on('error', e => { spawnError = `cannot start ${argv[0]}: ${e.message}`; });
  const status = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>(resolve =>
    child.on('close', (code, sig) => resolve({ code, sig })));
  const exited = status.then(({ code, sig }) => (sig ? `killed by ${sig}` : `exited with status ${code}`));
  const pipe = child.stdio[3] as Readable;
  pipe.setEncoding('utf8');
  let text = '';
  pipe.on('data', (d: string) => { text += d; });
  const closed = new Promise<void>(resolve => pipe.on('close', () => resolve()));
  const timer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
  await closed;
  clearTimeout(timer);

  let failure: string | null = null;
  if (!text.startsWith('ready')) {
    const why = await exited;
    failure = text.startsWith('error ') ? text.slice(6).trim() : spawnError || `the server ${why} before the mount was ready`;
  } else {
    failure = checkMounted(spec);
    if (failure) child.kill('SIGTERM');
  }
  if (failure) {
    process.stderr.write(`${spec.prog}: ${failure}\n`);
    await Promise.race([exited, new Promise(r => setTimeout(r, 5000))]);
    removeLeftMount(spec, mountedBefore);
    process.exit(EXIT_MOUNT_FAILURE);
  }
  if (!foreground) {
    child.unref();
    process.exit(0);
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) {
    process.on(sig, () => child.kill(sig));
  }
  // As a shell reports it; re-raising would make the launcher dump core too.
  const { code, sig } = await status;
  process.exit(sig ? 128 + constants.signals[sig] : code ?? 1);
}

/**
 * Where a background server's messages go (its panic, above all): the file
 * RUMPFS_LOG names, else /var/log/rumpfs.log for root and
 * $XDG_STATE_HOME/rumpfs.log (~/.local/state) for others. null: nowhere
 * writable, as before.
 */
function openLog(): { path: string; fd: number } | null {
  const state = process.env.XDG_STATE_HOME || path.join(homedir(), '.local/state');
  const file = process.env.RUMPFS_LOG || (process.geteuid?.() === 0 ? '/var/log/rumpfs.log' : path.join(state, 'rumpfs.log'));
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    return { path: file, fd: openSync(file, 'a', 0o640) };
  } catch {
    return null;
  }
}

/**
 * The server's environment: ours, less what makes Node load what a server
 * never uses (Node 20 parses NODE_EXTRA_CA_CERTS at start-up, ~50 ms; the
 * server makes no TLS connection).
 */
function serverEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_OPTIONS']) delete env[k];
  return env;
}

/** The topmost mount at dir, found even when dir is a dead FUSE mount (which any stat of it fails). */
function mountAtPath(dir: string): MountInfo | null {
  const abs = path.resolve(dir);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    try {
      real = path.join(realpathSync(path.dirname(abs)), path.basename(abs));
    } catch {
      return null;
    }
  }
  return mountAt(real);
}

/**
 * A server that failed after attaching (refused by the sandbox, or killed)
 * leaves its FUSE mount, dead or about to be: detach it lazily. Only a mount
 * of our type that was not there before is touched.
 */
function removeLeftMount(spec: ServerSpec, before: string | null): void {
  const m = mountAtPath(spec.mountpoint);
  if (!m || m.id === before || m.fstype !== `fuse.${spec.fstype}`) return;
  const [cmd, ...args] = process.geteuid?.() === 0 ? ['umount', '-l'] : ['fusermount3', '-u', '-z'];
  spawnSync(cmd, [...args, spec.mountpoint], { stdio: 'ignore' });
}

/** After "ready": the mount point answers and is our FUSE mount. */
function checkMounted(spec: ServerSpec): string | null {
  try {
    statSync(spec.mountpoint);
  } catch (e) {
    return `mounted, but ${spec.mountpoint} does not answer: ${(e as Error).message}`;
  }
  const m = mountAt(realpathSync(spec.mountpoint));
  return m?.fstype === `fuse.${spec.fstype}` ? null : `${spec.mountpoint}: the FUSE mount is missing after start-up`;
}

// The server


/** The mount point as an absolute real path: it exists, is a directory, and nothing is mounted there yet. */
function checkMountpoint(mountpoint: string): string {
  let real: string;
  try {
    if (!statSync(mountpoint).isDirectory()) throw new MountFailure(`mount point ${mountpoint} is not a directory`);
    real = realpathSync(mountpoint);
  } catch (e) {
    if (e instanceof MountFailure) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MountFailure(`mount point ${mountpoint} does not exist`);
    if (code === 'ENOTCONN') throw new MountFailure(`mount point ${mountpoint} is in use (a dead FUSE mount: unmount it first)`);
    throw new MountFailure(`mount point ${mountpoint}: ${(e as Error).message}`);
  }
  const m = mountAt(real);
  if (m) throw new MountFailure(`mount point ${mountpoint} is in use (${m.source}, ${m.fstype}, is mounted there)`);
  return real;
}

/** What fuseMount needs: the same for a server and a supervisor. */
function fuseSpecOf(spec: ServerSpec, mountpoint: string): FuseMountSpec {
  return {
    mountpoint, fsname: spec.from, subtype: spec.fstype, readOnly: (spec.flags & MNT_RDONLY) !== 0,
    noexec: (spec.flags & MNT_NOEXEC) !== 0, allowOther: process.geteuid?.() === 0,
    kernelPermissions: !spec.serverPermissions,
  };
}

/**
 * A read-only mount of an image whose driver finds files by id (VFS_VGET),
 * restart=N not 0: how to start its supervisor (servers/supervisor.ts),
 * which mounts FUSE and starts the server. The launcher checks the mount
 * point first (exit 32 as a server would). null: start the server itself.
 */
function supervisorFor(spec: ServerSpec, server: string[]): { argv: string[]; env: Record<string, string> } | null {
  const restart = spec.restart ?? DEFAULT_RESTARTS;
  if ((spec.flags & MNT_RDONLY) === 0 || spec.device === null || restart <= 0) return null;
  try {
    if (!vfs_getopsbyname(spec.fstype).vget) return null;
  } catch {
    return null;
  }
  let mountpoint: string;
  try {
    mountpoint = checkMountpoint(path.resolve(spec.mountpoint));
  } catch (e) {
    process.stderr.write(`${spec.prog}: ${describe(e)}\n`);
    process.exit(EXIT_MOUNT_FAILURE);
  }
  return supervisorCommand({ prog: spec.prog, mountpoint, fuse: fuseSpecOf(spec, mountpoint), restart, server });
}

/**
 * A supervised server's descriptors (servers/supervisor.ts): the FUSE
 * session the supervisor mounted, and the region where requests in flight
 * are kept. Close-on-exec from now on: no program the server starts keeps them.
 */
function supervisedFds(): { fuse: number; inflight: Inflight } | null {
  const f = process.env.P2K_FUSE_FD, i = process.env.P2K_INFLIGHT_FD;
  if (f === undefined || i === undefined) return null;
  const fuse = Number(f), mem = Number(i);
  setCloexec(fuse, true);
  setCloexec(mem, true);
  const inflight = new Inflight(mapShared(mem, INFLIGHT_BYTES));
  closeSync(mem);
  return { fuse, inflight };
}

/** The largest READ and WRITE: 256 pages, what the kernel allows by default (fs.fuse.max_pages_limit). */
const MAX_WRITE = 1 << 20;

async function serve(spec: ServerSpec, ready: () => void): Promise<void> {
  if (process.env.P2K_LOG) rumpuser_logtag(`${spec.prog}[${process.pid}]`);
  // Under a supervisor the FUSE mount is made: never look at the mount point (nobody answers yet).
  const given = supervisedFds();
  const mountpoint = given ? process.env.P2K_MOUNTPOINT ?? path.resolve(spec.mountpoint) : checkMountpoint(path.resolve(spec.mountpoint));
  const readOnly = (spec.flags & MNT_RDONLY) !== 0;
  // Everything that can be refused is refused before the device is opened: a
  // refusal after vfs_mount would leave the volume marked dirty.
  const wizard = process.env.P2K_WIZARDUID;
  if (wizard !== undefined && !/^\d+$/.test(wizard)) throw new MountFailure(`P2K_WIZARDUID=${wizard}: not a uid`);
  const nocache = envSet('P2K_NOCACHE');
  const nocacheName = nocache || envSet('P2K_NOCACHE_NAME');
  let dev: BlockDevice | null = null;
  let mp: Mount;
  try {
    if (spec.device !== null) dev = await blkdev_open(spec.device, { readOnly, exclusive: true, partition: spec.partition });
    if (dev && spec.partition === undefined) await checkWholeDisk(dev);
    mp = await vfs_mount(spec.fstype, { dev, from: spec.from, flags: spec.flags, options: spec.options });
  } catch (e) {
    await dev?.close().catch(() => {});
    throw new MountFailure(`${spec.device ?? spec.from}: ${describe(e)}`);
  }
  const unmountKernel = async () => {
    await vfs_unmount(mp, true).catch(() => {});
    await dev?.close().catch(() => {});
  };

  // Callers' groups come from /proc; only root can make the private procfs the sandbox allows.
  const procDirFd = process.geteuid?.() === 0 ? openProcDir() : -1;
  // Names and attributes are cached by the host: every change comes through
  // this mount, and a node id is one file, hard links included. A read-only
  // medium never changes, so there they are kept for a minute.
  const timeout = nocacheName ? 0 : readOnly ? 60 : 1;
  const p2k = new P2k(mp, {
    readOnly, groups: procDirFd >= 0 ? new CallerGroups(procDirFd) : null,
    wizardUid: wizard !== undefined ? Number(wizard) : undefined,
    entryTimeout: timeout, attrTimeout: timeout, directIo: nocache || envSet('P2K_NOCACHE_PAGE'),
    // Node ids from file ids on read-only mounts: a restarted server knows the host's ids.
    stableIds: readOnly, generation: Number(process.env.P2K_GENERATION ?? 0) || 0,
  });
  // The sandboxed server cannot unmount itself: a signal asks this helper,
  // started now outside the sandbox, to unmount from outside; the FUSE
  // session then ends as with umount. When files are still open it detaches
  // the mount lazily, and the server stops anyway 2 s later. It exits when
  // its stdin (our end) closes; /dev/fuse is close-on-exec, so it never
  // keeps a crashed server's mount alive.
  // As root it goes through util-linux's umount (-i: not our own helper),
  // which also drops the mount's utab note.
  const unmount = process.geteuid?.() === 0 ? 'umount -i "$0" || umount -i -l "$0"' : 'fusermount3 -u "$0" || fusermount3 -u -z "$0"';
  const unmounter = spawn('/bin/sh', ['-c', `read x || exit; ${unmount}`, mountpoint],
    { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  unmounter.on('error', () => {});
  unmounter.stdin!.on('error', () => {});
  unmounter.unref();
  let fd: number;
  try {
    fd = given ? given.fuse : fuseMount(fuseSpecOf(spec, mountpoint));
  } catch (e) {
    unmounter.stdin!.end();
    await unmountKernel();
    throw new MountFailure(`cannot attach to ${mountpoint} through FUSE: ${describe(e)}`);
  }
  const debug = envSet('P2K_DEBUG');
  const session = new FuseSession(new DevChannel(fd), p2k, {
    want: p2kWants(readOnly), maxWrite: MAX_WRITE,
    // Anything but an errno escaping the kernel is a bug: panic (the mount then answers ENOTCONN).
    onError: (e, op) => panic(`p2k: ${op}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`),
    trace: debug ? line => rumpuser_putstr(line + '\n') : undefined,
    inflight: given?.inflight, resume: given?.inflight.conn() ?? undefined,
  });

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    if (debug) rumpuser_putstr(`p2k: ${why}: unmounting\n`);
    session.stop();
    session.quiesce()
      .then(() => p2k.shutdown())
      .then(() => dev?.close())
      .then(() => {
        if (process.env.P2K_LOG) rumpuser_putstr(`unmounted ${mountpoint}: clean\n`);
        process.exit(0);
      }, e => {
        rumpuser_putstr(`${spec.prog}: unmount failed: ${describe(e)}\n`);
        process.exit(1);
      });
  };
  session.onEnded = () => stop('unmounted by the host');
  session.start();
  const onSignal = (sig: string) => {
    if (stopping) return;
    unmounter.stdin!.write('u\n');
    setTimeout(() => stop(sig), 2000).unref();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => {});
  process.on('SIGUSR1', () => rumpuser_putstr(p2k.dumpVnodes()));
  process.on('SIGUSR2', () => { p2k.dumpStatus(mountpoint, session.counts).then(rumpuser_putstr, e => rumpuser_putstr(`${describe(e)}\n`)); });

  try {
    sandbox({ procDirFd: procDirFd >= 0 ? procDirFd : undefined, user: spec.sandboxUser, ids: serverIds(spec) });
  } catch (e) {
    // Refuse to serve unsandboxed; the launcher takes the mount away.
    session.stop();
    await p2k.shutdown().catch(() => {});
    await dev?.close().catch(() => {});
    throw new MountFailure(describe(e));
  }
  if (process.env.P2K_LOG) rumpuser_putstr(`serving ${spec.from} on ${mountpoint}${readOnly ? ' (read-only)' : ''}\n`);
  ready();
}

/** First uid of the range that servers take one each of (uid = base + pid). */
const SERVER_UID_BASE = 0x70000000;

/**
 * As root, with no rumpuser= given: a uid of this server's own, unique while
 * it lives (pids are), in the rumpfs group; so that no server can read
 * another's /proc/<pid> files (its memory) through the procfs it keeps.
 */
function serverIds(spec: ServerSpec): { uid: number; gid: number } | undefined {
  if (spec.sandboxUser !== undefined || process.geteuid?.() !== 0) return undefined;
  const groups = readFileSync('/etc/group', 'utf8').split('\n').map(l => l.split(':'));
  const group = groups.find(f => f[0] === 'rumpfs') ?? groups.find(f => f[0] === 'nogroup');
  return { uid: SERVER_UID_BASE + process.pid, gid: group ? Number(group[2]) : 65534 };
}

/** The mount point as the mount table will show it (real path when it exists). */
function absolute(p: string): string {
  try { return realpathSync(p); } catch { return path.resolve(p); }
}
