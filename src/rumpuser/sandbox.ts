// The sandbox a rump_<fs> server enters once its device is open and its
// FUSE mount attached (ARCHITECTURE.md, "Isolation", step 5).
//
// As root: an empty root directory; a new network namespace; no
// supplementary groups; an unprivileged uid/gid (which also clears every
// capability); core dumps on; no new privileges; a seccomp filter on every
// thread. As an ordinary user: no new privileges and the seccomp filter.
//
// The server must be started with UV_USE_IO_URING=0 in its environment:
// libuv reads it when the loop starts, and a ring set up before the filter
// would keep working outside it (the filter denies io_uring, so file
// operations would then fail instead). sandbox() checks it.
//
// Every step that fails throws a SandboxError naming the step: a server must
// refuse to serve rather than run unsandboxed.
//
// Consequences for the server after sandbox(): no file can be opened (only
// descriptors opened before remain usable, plus read-only openat() below
// procDirFd), no program can be run, no socket made, no mount changed, and
// signals go only to itself. The server cannot unmount itself (umount2 and
// spawning fusermount3 are refused); unmounting is done from outside
// (umount, fusermount3 -u), after which the server sees the FUSE channel
// close. Time zones fall back to UTC (no /usr/share/zoneinfo). libuv's
// thread pool and worker_threads keep working (clone with CLONE_THREAD is
// allowed). The network namespace holds the main thread and the threads it
// creates later; threads created before (V8's) stay in the host's, where
// the filter's socket ban (on every thread) is what keeps them off the net.
// A server the launcher started (launch.c) is in the launcher's new network
// namespace from its start, all its threads, and keeps it: RUMPFS_NETNS,
// from the launcher, names it.
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import { childProcess } from './lazy.js';
import * as native from './native.js';

export interface SandboxOptions {
  /** User to become when root: default 'rumpfs' if it exists, else 'nobody'. */
  user?: string;
  /**
   * Or ids to become when root, with no user entry: a uid of its own per
   * server keeps servers from reading each other's /proc/<pid> files.
   */
  ids?: { uid: number; gid: number };
  /** We are root: chroot, network namespace, setuid. Default: euid is 0. */
  root?: boolean;
  /**
   * Keep read-only, O_NOFOLLOW openat() relative to this directory fd (to read
   * /proc/<pid>/status of FUSE callers). It must come from openProcDir(): a
   * plain /proc fd would let openat(fd, "../etc/passwd") leave the sandbox,
   * so any fd whose ".." is not itself is refused.
   */
  procDirFd?: number;
  /** RLIMIT_NOFILE (soft and hard) after sandboxing; default 4096. */
  maxFiles?: number;
}

export interface SandboxReport {
  user: string;
  uid: number;
  gid: number;
  /** In an empty root directory (EMPTY_ROOT). */
  chrooted: boolean;
  /** The main thread (and threads it creates later) is in a new, empty network namespace. */
  netns: boolean;
  seccomp: boolean;
  noNewPrivs: boolean;
  /** Threads whose credentials and capabilities were checked. */
  threadsChecked: number;
}

export class SandboxError extends Error {
  constructor(readonly step: string, cause: unknown) {
    super(`sandbox: ${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'SandboxError';
  }
}

function step<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw e instanceof SandboxError ? e : new SandboxError(name, e);
  }
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

interface Passwd { name: string; uid: number; gid: number }

function lookupUser(name: string): Passwd | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** A /proc status file's "Key:" field, its value trimmed; '' when absent. (Seven lookups, not a parse of its ~55 lines: this runs once per thread at every start.) */
function statusField(status: string, key: string): string {
  const at = status.indexOf(`\n${key}:`);
  if (at < 0) return '';
  const end = status.indexOf('\n', at + key.length + 2);
  return status.slice(at + key.length + 2, end < 0 ? undefined : end).trim();
}

const ZERO_CAPS = '0000000000000000';

/** Every thread has no capabilities and, when given, these ids and no supplementary groups. */
function checkThreads(taskFd: number, ids?: { uid: number; gid: number }): number {
  const threads = native.threadFiles(taskFd, 'status');
  check(threads.length > 0, 'no threads listed');
  for (const [tid, s] of threads) {
    const field = (k: string) => statusField(s, k);
    if (ids) {
      for (const [k, v] of [['Uid', ids.uid], ['Gid', ids.gid]] as const)
        check(field(k).split(/\s+/).every((x) => Number(x) === v), `thread ${tid}: ${k} is ${field(k)}, want ${v}`);
      check(field('Groups') === '', `thread ${tid}: supplementary groups ${field('Groups')}`);
    }
    for (const k of ['CapEff', 'CapPrm', 'CapInh', 'CapAmb'])
      check(field(k) === ZERO_CAPS, `thread ${tid}: ${k} is ${field(k)}`);
  }
  return threads.length;
}

export function sandbox(opts: SandboxOptions = {}): SandboxReport {
  const root = opts.root ?? process.geteuid?.() === 0;
  const procDirFd = opts.procDirFd ?? -1;

  step('environment check', () => {
    check(process.platform === 'linux', 'Linux only');
    check(process.env.UV_USE_IO_URING === '0', 'the server must be started with UV_USE_IO_URING=0 (libuv reads it at start)');
  });
  // The addon's file must be mapped before the root directory goes away.
  step('loading the native addon', () => native.loadNative());
  if (procDirFd >= 0)
    step('procDirFd check', () => check(native.isRootDir(procDirFd), `fd ${procDirFd} is not the root of its tree; use openProcDir()`));

  let user = '', uid = process.getuid?.() ?? -1, gid = process.getgid?.() ?? -1;
  let chrooted = false, netns = false, threadsChecked = 0;
  const taskFd = step('opening /proc/self/task', () => openSync('/proc/self/task', 'r'));
  try {
    if (root) {
      const pw = step('user lookup', () => {
        const p = opts.ids ? { name: `uid ${opts.ids.uid}`, ...opts.ids }
          : opts.user !== undefined ? lookupUser(opts.user) : lookupUser('rumpfs') ?? lookupUser('nobody');
        check(p !== undefined, `no such user: ${opts.user ?? 'rumpfs or nobody'}`);
        check(p!.uid !== 0 && p!.gid !== 0, `user ${p!.name} is root`);
        return p!;
      });
      ({ name: user, uid, gid } = pw);

      netns = step('unshare(CLONE_NEWNET)', () => {
        const before = readlinkSync('/proc/thread-self/ns/net');
        // The launcher made one before it started Node (launch.c), every thread in it: kept.
        if (process.env.RUMPFS_NETNS === before) return true;
        native.unshareNet();
        check(readlinkSync('/proc/thread-self/ns/net') !== before, 'network namespace unchanged');
        return true;
      });

      chrooted = step(`chroot into ${EMPTY_ROOT}`, () => {
        emptyRoot();
        native.chroot(EMPTY_ROOT);
        process.chdir('/'); // Node caches the current directory
        check(readdirSync('/').length === 0, 'the new root is not empty');
        return true;
      });

      step('setrlimit', () => limits(opts.maxFiles));
      step('setgroups([])', () => native.setgroups([]));
      step('setresgid', () => native.setresgid(gid, gid, gid));
      step('setresuid', () => native.setresuid(uid, uid, uid));
      step('credential check', () => {
        check(native.getresuid().every((x) => x === uid), `uids are ${native.getresuid()}`);
        check(native.getresgid().every((x) => x === gid), `gids are ${native.getresgid()}`);
        // From root to non-root without KEEPCAPS: every capability is gone.
        threadsChecked = checkThreads(taskFd, { uid, gid });
        // Regaining root must be impossible now.
        let regained = true;
        try { native.setresuid(0, 0, 0); } catch { regained = false; }
        check(!regained, 'setresuid(0) succeeded after the drop');
      });
    } else {
      user = String(uid);
      step('setrlimit', () => limits(opts.maxFiles));
      // An ordinary user cannot drop capabilities on every thread: refuse.
      step('capability check', () => {
        threadsChecked = checkThreads(taskFd);
      });
    }
    // After the uid change, which resets it: core dumps for post-mortems.
    step('prctl(PR_SET_DUMPABLE)', () => native.setDumpable(true));
  } finally {
    closeSync(taskFd);
  }

  step('prctl(PR_SET_NO_NEW_PRIVS)', () => native.setNoNewPrivs());
  step('seccomp', () => native.installSeccomp(procDirFd));
  step('seccomp check', () => {
    check(native.getNoNewPrivs(), 'no_new_privs not set');
    let code = 'SUCCEEDED';
    try { closeSync(openSync('/', 'r')); } catch (e) { code = (e as NodeJS.ErrnoException).code ?? String(e); }
    check(code === 'EPERM', `open("/") gave ${code}, want EPERM`);
  });

  return { user, uid, gid, chrooted, netns, seccomp: true, noNewPrivs: true, threadsChecked };
}

/**
 * The empty root, shared by all servers (as sshd's /run/sshd): root's, not
 * writable by anyone else, empty. (A deleted temporary directory would leave
 * nothing behind, but getcwd() then fails with ENOENT, and Node's workers
 * need it.)
 */
export const EMPTY_ROOT = '/run/rumpfs-empty';

function emptyRoot(): void {
  try {
    mkdirSync(EMPTY_ROOT, 0o555);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(EMPTY_ROOT);
  check(st.isDirectory(), `${EMPTY_ROOT} is not a directory`);
  check(st.uid === 0 && (st.mode & 0o7222) === 0, `${EMPTY_ROOT} must be owned by root, mode 0555 (is uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`);
  check(readdirSync(EMPTY_ROOT).length === 0, `${EMPTY_ROOT} is not empty`);
}

/** Core dumps unlimited (or as large as the hard limit allows); few descriptors. */
function limits(maxFiles = 4096): void {
  try {
    native.setrlimit('core', Infinity, Infinity);
  } catch {
    const [, hard] = native.getrlimit('core');
    native.setrlimit('core', hard, hard);
  }
  const [, hard] = native.getrlimit('nofile');
  const n = Math.min(maxFiles, hard);
  native.setrlimit('nofile', n, n);
}

function outcome(fn: () => unknown): string {
  try {
    const r = fn();
    return r === undefined ? 'SUCCEEDED' : String(r);
  } catch (e) {
    // A SystemError (uv_* failure) may carry only a positive errno number.
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_SYSTEM_ERROR' && typeof err.errno === 'number') {
      const name = Object.entries(os.constants.errno).find(([, v]) => v === Math.abs(err.errno!))?.[0];
      if (name) return name;
    }
    return err.code ?? err.message;
  }
}

/**
 * Try to get out: for each attempt, the error code, or 'SUCCEEDED'. For a
 * debugging aid and the tests; a sandboxed server should see no 'SUCCEEDED'
 * (except 'network interfaces', which reports 'NONE' when none are visible).
 */
export async function probeEscapes(): Promise<Record<string, string>> {
  const tmp = `/tmp/rumpfs-probe-${process.pid}`;
  const r: Record<string, string> = {
    'open /etc/passwd': outcome(() => { readFileSync('/etc/passwd'); }),
    'stat /etc': outcome(() => { statSync('/etc'); }),
    'spawn /bin/true': outcome(() => {
      const s = childProcess().spawnSync('/bin/true', { stdio: 'ignore' }); // no pipes: reaches fork/exec
      if (s.error) throw s.error;
    }),
    'write /tmp': outcome(() => { writeFileSync(tmp, 'x'); unlinkSync(tmp); }),
    'network interfaces': outcome(() => (Object.keys(os.networkInterfaces()).length > 0 ? undefined : 'NONE')),
    'signal parent': outcome(() => { process.kill(process.ppid, 0); }),
  };
  // Loaded here, not with the module: node:net costs every server ~4 ms of start-up.
  const net = await import('node:net');
  r['tcp 127.0.0.1'] = await new Promise<string>((resolve) => {
    try {
      const s = net.connect({ host: '127.0.0.1', port: 9 });
      s.on('connect', () => { s.destroy(); resolve('SUCCEEDED'); });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    } catch (e) {
      resolve((e as NodeJS.ErrnoException).code ?? String(e));
    }
  });
  return r;
}
