// The server runner shared by every rump_<fs> (NetBSD's p2k_run_diskfs):
// check the mount point, open the device, mount the file system in the
// kernel, attach it to the host through FUSE, enter the sandbox, report
// readiness, serve; on unmount (umount, fusermount -u) or SIGTERM/SIGINT:
// unmount in the kernel (flush, mark clean), close the device, exit 0.
//
// The command the user runs starts the launcher (src/rumpuser/launch.c,
// a small C program, so that a mount costs one Node start): it starts this
// program again as the server, detached, and waits until the server says on
// fd 3 that its mount is ready; then it exits 0 and the server stays. The
// server prints its own errors (exit 32, mount's "mount failure"; usage, 1)
// while its stderr is still the user's; once ready a background server
// writes to its log. With -f, P2K_NODETACH or P2K_DEBUG the launcher stays
// in front, passes signals on, and exits with the server's status.
//
// A server that dies (a driver panic aborts it) leaves its mount point
// answering ENOTCONN until someone unmounts it, as NetBSD's puffs does: the
// failure stays visible instead of an empty directory that looks mounted.
// Read-only mounts are the exception (restart=N, not 0, and a driver with
// VFS_VGET): the server mounts FUSE as always and hands its /dev/fuse
// descriptor, the in-flight region (p2k/fuse/inflight.ts) and its log to the
// launcher's small C supervisor ("supervise" on fd 3, launch.c), which
// answers a dead server's requests in flight EIO and starts a new server on
// the same descriptor (fds 4, 5, 6: P2K_FUSE_FD, P2K_INFLIGHT_FD,
// P2K_UNMOUNT_FD), a bounded number of times.
import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { constants, homedir } from 'node:os';
import path from 'node:path';
import { CallerGroups } from '../p2k/caller_groups.js';
import { Inflight, INFLIGHT_BYTES } from '../p2k/fuse/inflight.js';
import { DevChannel, fuseMount, fuseUnmount, type FuseMountSpec } from '../p2k/fuse/mount.js';
import { FuseSession } from '../p2k/fuse/session.js';
import { P2k, p2kWants } from '../p2k/p2k.js';
import {
  KernError, MNT_NOEXEC, MNT_RDONLY, blkdev_open, panic, vfs_getopsbyname, vfs_mount, vfs_unmount,
  type BlockDevice, type Mount, type MountOptions,
} from '../src/kern/index.js';
import { dup2, launcherPath, mapShared, memfdShared, openProcDir, sendFds, setCloexec } from '../src/rumpuser/native.js';
import { rumpuser_logtag, rumpuser_putstr } from '../src/rumpuser/index.js';
import { childProcess } from '../src/rumpuser/lazy.js';
import { sandbox } from '../src/rumpuser/sandbox.js';
import { checkWholeDisk } from './disk.js';
import { escapeMount, mountAt } from './mountinfo.js';
import { serverNodeFlags } from './programs.js';
import { utabAdd } from './utab.js';
import { UsageError } from './options.js';

export const EXIT_USAGE = 1, EXIT_MOUNT_FAILURE = 32;
/** restart=N when not given: restarts of a read-only mount's server allowed in a minute (the supervisor in launch.c counts). */
export const DEFAULT_RESTARTS = 3;

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
  /** restart=N: read-only mounts restart a crashed server up to N times a minute (the supervisor in launch.c). */
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
  if (readyFd === undefined) return launch(prog);
  // The server: what the launcher needs to know goes through the pipe.
  const fd = Number(readyFd);
  setCloexec(fd, true);
  const say = (line: string) => { try { writeSync(fd, line + '\n'); } catch { /* launcher gone */ } };
  const foreground = spec.foreground || envSet('P2K_NODETACH') || envSet('P2K_DEBUG');
  if (foreground) say('foreground');
  const restarts = supervised(spec) ? spec.restart ?? DEFAULT_RESTARTS : 0;
  try {
    await serve(spec, foreground, {
      mounted: (id, escapedPath) => say(`mounted ${id} ${escapedPath}`),
      ready: () => { say('ready'); closeSync(fd); },
      supervise: restarts > 0 ? (fds, mountpoint) => sendFds(fd, fds, `supervise ${restarts} ${escapeMount(mountpoint)}\n`) : undefined,
    });
  } catch (e) {
    process.stderr.write(`${prog}: ${describe(e)}\n`);
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

// Run as `node rump_<fs>.js` (not through an installed command): the
// launcher starts this program again as the server.
function launch(prog: string): Promise<never> {
  const child = childProcess().spawn(launcherPath(), [process.execPath, ...serverNodeFlags(prog), ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => child.kill(sig));
  return new Promise<never>(() => {
    child.on('error', e => { process.stderr.write(`cannot start the launcher: ${e.message}\n`); process.exit(EXIT_MOUNT_FAILURE); });
    child.on('close', (code, sig) => process.exit(sig ? 128 + constants.signals[sig] : code ?? EXIT_MOUNT_FAILURE));
  });
}

/**
 * Where a background server's messages go once it is ready (its panic,
 * above all): the file RUMPFS_LOG names, else /var/log/rumpfs.log for root
 * and $XDG_STATE_HOME/rumpfs.log (~/.local/state) for others; /dev/null
 * when none is writable. Opened before the sandbox.
 */
function openLog(): { fd: number; file: boolean; null: number } {
  const state = process.env.XDG_STATE_HOME || path.join(homedir(), '.local/state');
  const file = process.env.RUMPFS_LOG || (process.geteuid?.() === 0 ? '/var/log/rumpfs.log' : path.join(state, 'rumpfs.log'));
  const nul = openSync('/dev/null', 'r+');
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    return { fd: openSync(file, 'a', 0o640), file: true, null: nul };
  } catch {
    return { fd: nul, file: false, null: nul };
  }
}

// The server

/** The mount point as an absolute real path: it exists, is a directory, and nothing is mounted there yet. */
function checkMountpoint(mountpoint: string): string {
  let real: string;
  try {
    if (!statSync(mountpoint).isDirectory()) throw new MountFailure(`mount point ${mountpoint} is not a directory`);
    real = realpathSync.native(mountpoint);
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

/** The largest READ and WRITE: 256 pages, what the kernel allows by default (fs.fuse.max_pages_limit). */
const MAX_WRITE = 1 << 20;

/** What the server tells its launcher. */
interface LauncherLink {
  /** Its FUSE mount is there (mountinfo's id and escaped path): the launcher's to detach if the server dies before ready. */
  mounted(id: string, escapedPath: string): void;
  ready(): void;
  /**
   * A supervised mount: hand the launcher's supervisor the FUSE session, the
   * in-flight region and the log (copies; ours stay open). Before mounted().
   */
  supervise?(fds: number[], mountpoint: string): void;
}

/** What fuseMount needs. */
function fuseSpecOf(spec: ServerSpec, mountpoint: string): FuseMountSpec {
  return {
    mountpoint, fsname: spec.from, subtype: spec.fstype, readOnly: (spec.flags & MNT_RDONLY) !== 0,
    noexec: (spec.flags & MNT_NOEXEC) !== 0, allowOther: process.geteuid?.() === 0,
    kernelPermissions: !spec.serverPermissions,
  };
}

/** A root mount noted in utab, and the launcher told where it is. */
function noteMount(spec: ServerSpec, mountpoint: string, launcher: Pick<LauncherLink, 'mounted'>): void {
  if (process.geteuid?.() === 0) utabAdd(spec.from, mountpoint, 'uhelper=rump');
  const attached = mountAt(mountpoint);
  if (attached) launcher.mounted(attached.id, escapeMount(mountpoint));
}

/** Detached from the user's terminal (and from a caller's pipes): what it would have printed goes to the log. */
function detach(log: { fd: number; file: boolean; null: number }, prog: string): void {
  dup2(log.null, 0);
  dup2(log.fd, 1);
  dup2(log.fd, 2);
  if (log.file) rumpuser_logtag(`${prog}[${process.pid}]`);
}

/**
 * A read-only mount of an image whose driver finds files by id (VFS_VGET),
 * restart=N not 0, and not a server the supervisor restarted: this server
 * hands its mount to the launcher's supervisor.
 */
function supervised(spec: ServerSpec): boolean {
  if (process.env.P2K_FUSE_FD !== undefined) return false;
  if ((spec.flags & MNT_RDONLY) === 0 || spec.device === null || (spec.restart ?? DEFAULT_RESTARTS) <= 0) return false;
  try {
    return vfs_getopsbyname(spec.fstype).vget !== undefined;
  } catch {
    return false;
  }
}

/**
 * A restarted server's descriptors (from the supervisor, launch.c): the
 * FUSE session the first server mounted, and the region where requests in
 * flight are kept. Close-on-exec from now on: no program the server starts keeps them.
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

async function serve(spec: ServerSpec, foreground: boolean, launcher: LauncherLink): Promise<void> {
  // A restarted server: the FUSE mount is made, never look at the mount point
  // (nobody answers yet); and the supervisor writes what we print to its log.
  const given = supervisedFds();
  const supervising = !given && launcher.supervise !== undefined;
  const log = foreground || given ? null : openLog();
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
  // The sandboxed server cannot unmount itself: a signal asks the launcher's
  // unmounter (outside the sandbox) through this pipe to unmount from
  // outside; the FUSE session then ends as with umount. When files are still
  // open it detaches the mount lazily, and the server stops anyway 2 s later.
  const unmountFd = process.env.P2K_UNMOUNT_FD !== undefined ? Number(process.env.P2K_UNMOUNT_FD) : -1;
  if (unmountFd >= 0) setCloexec(unmountFd, true);
  const askUnmount = () => { try { writeSync(unmountFd, 'u\n'); } catch { /* no unmounter: the mount is left to its owner */ } };
  let fd: number;
  try {
    fd = given ? given.fuse : fuseMount(fuseSpecOf(spec, mountpoint));
  } catch (e) {
    await unmountKernel();
    throw new MountFailure(`cannot attach to ${mountpoint} through FUSE: ${describe(e)}`);
  }
  let inflight = given?.inflight;
  if (supervising) {
    // The supervisor takes the session, the region and the log; our stderr stays its pipe (its log).
    try {
      const memfd = memfdShared('rumpfs-inflight', INFLIGHT_BYTES);
      inflight = new Inflight(mapShared(memfd, INFLIGHT_BYTES));
      launcher.supervise!([fd, memfd, ...(log ? [log.fd] : [])], mountpoint);
      closeSync(memfd);
      if (log && log.fd !== log.null) closeSync(log.fd);
    } catch (e) {
      // Nobody knows of the mount yet: take it away ourselves (not sandboxed yet).
      try { fuseUnmount(mountpoint); } catch { /* left to its owner */ }
      await unmountKernel();
      throw new MountFailure(`cannot hand ${mountpoint} to its supervisor: ${describe(e)}`);
    }
  }
  if (!given) noteMount(spec, mountpoint, launcher);
  const debug = envSet('P2K_DEBUG');
  const session = new FuseSession(new DevChannel(fd), p2k, {
    want: p2kWants(readOnly), maxWrite: MAX_WRITE,
    // Anything but an errno escaping the kernel is a bug: panic (the mount then answers ENOTCONN).
    onError: (e, op) => panic(`p2k: ${op}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`),
    trace: debug ? line => rumpuser_putstr(line + '\n') : undefined,
    inflight, resume: given?.inflight.conn() ?? undefined,
  });

  let stopping = false;
  let fillCodeCache: (() => void) | undefined;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    if (debug) rumpuser_putstr(`p2k: ${why}: unmounting\n`);
    session.stop();
    session.quiesce()
      .then(() => p2k.shutdown())
      .then(() => dev?.close())
      .then(() => {
        fillCodeCache?.();
        if (log?.file || ((given || supervising) && !foreground)) rumpuser_putstr(`unmounted ${mountpoint}: clean\n`);
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
    askUnmount();
    setTimeout(() => stop(sig), 2000).unref();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => {});
  process.on('SIGUSR1', () => rumpuser_putstr(p2k.dumpVnodes()));
  process.on('SIGUSR2', () => { p2k.dumpStatus(mountpoint, session.counts).then(rumpuser_putstr, e => rumpuser_putstr(`${describe(e)}\n`)); });

  fillCodeCache = claimCodeCache();
  try {
    sandbox({ procDirFd: procDirFd >= 0 ? procDirFd : undefined, user: spec.sandboxUser, ids: serverIds(spec) });
  } catch (e) {
    // Refuse to serve unsandboxed; the launcher takes the mount away.
    session.stop();
    await p2k.shutdown().catch(() => {});
    await dev?.close().catch(() => {});
    throw new MountFailure(describe(e));
  }
  launcher.ready();
  // With the code of the sandbox and of the first requests (INIT, the launcher's GETATTR) in it.
  if (fillCodeCache) setTimeout(fillCodeCache, 200).unref();
  if (given || supervising) {
    // A supervised server's stderr is its supervisor's pipe, which goes to the log; the rest goes nowhere.
    if (!foreground) {
      if (log) { dup2(log.null, 0); dup2(log.null, 1); }
      rumpuser_logtag(`${spec.prog}[${process.pid}]`);
    }
  } else if (log) detach(log, spec.prog);
  // (A supervised server's supervisor says it: it may still be writing to the user's terminal.)
  if (log?.file && !supervising) rumpuser_putstr(`serving ${spec.from} on ${mountpoint}${readOnly ? ' (read-only)' : ''}\n`);
}

/**
 * A server's loader (scripts/bundle.mjs) that found no code cache it could
 * use leaves this hook: it claims the cache file now, while the server may
 * still open files, and returns what fills it (from the open descriptor)
 * once the mount has answered its first requests.
 */
function claimCodeCache(): (() => void) | undefined {
  return (globalThis as Record<symbol, (() => (() => void) | undefined) | undefined>)[Symbol.for('rumpfs.claimCodeCache')]?.();
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

