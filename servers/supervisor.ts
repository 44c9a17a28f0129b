// The supervisor of a read-only mount: a crashed server comes back by itself.
//
// For a read-only mount (MNT_RDONLY) of a driver that finds a file by its id
// alone (VFS_VGET), the process the launcher starts (rumpfs_launch runs the
// server program) becomes the supervisor instead of the server: it mounts
// FUSE itself (so it holds the session's /dev/fuse descriptor), makes a small
// shared memory region (p2k/fuse/inflight.ts), and starts the sandboxed
// server, the same program, handing it both descriptors (fds 4 and 5) and
// the unmounter's pipe (fd 6). The server opens the image, mounts it in its
// kernel and serves.
// When the server dies by a signal (a panic aborts) or fails, the supervisor
//   1. answers EIO, on the FUSE descriptor, every request the server had
//      read and not answered (their uniques are in the shared region), so
//      no caller waits forever;
//   2. starts a fresh sandboxed server on the same descriptor and image; it
//      takes the INIT the first one settled from the shared region, and
//      resolves the node ids and file handles the host still holds from the
//      ids alone (p2k's stable ids: node id = file id + 2).
// At most `restart=N` restarts (default 3) in 60 s; past that, or with
// restart=0, the mount fails as it always did: the descriptor closes and
// the mount point answers ENOTCONN until unmounted. Every death and restart
// goes to the log with the server's panic message.
//
// The supervisor never reads a request and never touches the image: it runs
// no driver code (the program has the drivers loaded, nothing calls them
// here), and parses nothing but its server's stderr lines, its ready lines
// and the uniques in the region. As root it stays root (each new server needs
// root to sandbox itself: chroot, its own uid), in the network namespace the
// launcher made; it is outside the sandbox. (It is the launcher's child
// itself, not a program of its own: a read-only mount then costs two Node
// start-ups, not three.) A server that exits 0 has seen
// its mount unmounted (umount, fusermount3 -u, rumpumount, SIGTERM): the
// supervisor then exits 0 too. Read-write mounts have no supervisor: a
// restarted server would have lost what the dead one had not written.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { errorReply, Inflight, INFLIGHT_BYTES } from '../p2k/fuse/inflight.js';
import { fuseMount, fuseUnmount, type FuseMountSpec } from '../p2k/fuse/mount.js';
import { mapShared, memfdShared, writevFrom } from '../src/rumpuser/native.js';
import { rumpuser_putstr } from '../src/rumpuser/index.js';

/** What the supervisor needs of the runner's ServerSpec, checked. */
export interface SupervisorArgs {
  /** rump_cd9660, for messages. */
  prog: string;
  /** Checked by the launcher: absolute, a directory, nothing mounted there. */
  mountpoint: string;
  fuse: FuseMountSpec;
  /** restart=N: restarts allowed in RESTART_WINDOW_MS. */
  restart: number;
  /** The server's command line as the launcher would run it (node, its flags, the script, the arguments). */
  server: string[];
}

export const DEFAULT_RESTARTS = 3;
export const RESTART_WINDOW_MS = 60_000;
/** How long a restarted server may take to be ready before it counts as failed. */
const READY_TIMEOUT_MS = 60_000;
/** The descriptors a supervised server finds: the FUSE session, the in-flight region, the unmounter's pipe. */
export const SUPERVISED_FUSE_FD = 4, SUPERVISED_INFLIGHT_FD = 5, SUPERVISED_UNMOUNT_FD = 6;

/** What the supervisor tells the launcher, and how it leaves the user's terminal. */
export interface SupervisorLink {
  /** The FUSE mount is made: the launcher notes it (and starts the unmounter). */
  mounted(): void;
  ready(): void;
  /** In the background: once ready, stdio goes to the log (detach). */
  background: boolean;
  detach(): void;
  /** The launcher's pipe to the unmounter, -1 without one. */
  unmountFd: number;
}

/** How a child ended, in words and as a shell's status. */
function how(code: number | null, sig: NodeJS.Signals | null): { text: string; status: number } {
  if (sig) return { text: `killed by ${sig}`, status: 128 + (constants.signals[sig] ?? 0) };
  return { text: `exited with status ${code}`, status: code ?? 1 };
}

/**
 * The supervisor's life. Errors before the mount is ready go to stderr (the
 * user's terminal still) with exit 32, as a server's do.
 */
export async function supervise(a: SupervisorArgs, link: SupervisorLink): Promise<never> {
  const fail = (msg: string): never => {
    process.stderr.write(`${a.prog}: ${msg}\n`);
    process.exit(32);
  };
  const mountpoint = a.mountpoint;
  const say = (line: string) => rumpuser_putstr(`supervisor: ${line}\n`);
  const limit = a.restart;

  let fd: number, memfd: number, inflight: Inflight;
  try {
    memfd = memfdShared('rumpfs-inflight', INFLIGHT_BYTES);
    inflight = new Inflight(mapShared(memfd, INFLIGHT_BYTES));
    fd = fuseMount(a.fuse);
  } catch (e) {
    return fail(`cannot attach to ${mountpoint} through FUSE: ${e instanceof Error ? e.message : String(e)}`);
  }
  link.mounted();

  // The server: this program again, in the launcher's network namespace (its
  // sandbox then gives it one of its own).
  const argv = a.server;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.P2K_UNMOUNT_FD;
  Object.assign(env, {
    UV_USE_IO_URING: '0', P2K_READY_FD: '3', P2K_MOUNTPOINT: mountpoint,
    P2K_FUSE_FD: String(SUPERVISED_FUSE_FD), P2K_INFLIGHT_FD: String(SUPERVISED_INFLIGHT_FD),
    ...(link.unmountFd >= 0 ? { P2K_UNMOUNT_FD: String(SUPERVISED_UNMOUNT_FD) } : {}),
  });
  const always = /:always$/.test(env.RUMPFS_FAULT ?? '');

  let child: ChildProcess | null = null;
  let generation = 0;
  let stopping = false;
  const restarts: number[] = [];

  /** Start a server; resolves with its fate once it is ready or gone. */
  const start = () => {
    const c = spawn(argv[0], argv.slice(1), {
      env: { ...env, P2K_GENERATION: String(generation) },
      // Its stdout would hold the user's terminal (or a caller's pipe) past our detach: servers write only to stderr.
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', fd, memfd, link.unmountFd >= 0 ? link.unmountFd : 'ignore'],
    });
    child = c;
    let lastPanic = '';
    let partial = '';
    c.stderr?.on('data', (d: Buffer) => {
      // Passed on as is (the server tags its own lines); its panic is kept for the record.
      try { writeSync(2, d); } catch { /* nowhere to write */ }
      const text = partial + d.toString('utf8');
      const lines = text.split('\n');
      // A line without its end is kept only in part: the server's output cannot fill our memory.
      partial = (lines.pop() ?? '').slice(-4096);
      for (const l of lines) {
        const m = /panic: (.*)$/.exec(l);
        if (m) lastPanic = m[1].slice(0, 4096);
      }
    });
    let spawnError = '';
    const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>(resolve => {
      c.on('close', (code, sig) => resolve({ code, sig }));
      // Not started at all (no 'close' may follow): a failure like any other.
      c.on('error', e => { spawnError = `cannot start ${argv[0]}: ${e.message}`; if (c.pid === undefined) resolve({ code: 127, sig: null }); });
    });
    const pipe = c.stdio[3] as Readable | null;
    let text = '';
    const ready = new Promise<string>(resolve => {
      if (!pipe) return resolve('');
      pipe.setEncoding('utf8');
      pipe.on('data', (d: string) => { if (text.length < 4096) text += d; });
      pipe.on('close', () => resolve(text));
    });
    const timer = setTimeout(() => c.kill('SIGKILL'), READY_TIMEOUT_MS);
    void ready.then(() => clearTimeout(timer));
    return { c, ready, exited, panic: () => lastPanic + (partial.includes('panic: ') ? partial.slice(partial.indexOf('panic: ') + 7) : ''), spawnError: () => spawnError };
  };

  const stopNow = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill(sig);
    } else {
      // Between two servers: take the mount away ourselves.
      try { fuseUnmount(mountpoint); } catch (e) { say(`unmount: ${e instanceof Error ? e.message : String(e)}`); }
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => stopNow('SIGTERM'));
  process.on('SIGINT', () => stopNow('SIGINT'));
  process.on('SIGHUP', () => {});
  for (const sig of ['SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => child?.kill(sig));

  const isReady = (lines: string) => /^ready$/m.test(lines);
  let s = start();
  const first = await s.ready;
  if (!isReady(first)) {
    const { code, sig } = await s.exited;
    // No server: the mount goes with us (the launcher would take it away too).
    try { fuseUnmount(mountpoint); } catch { /* the launcher's turn */ }
    // A server that exits says why itself (its stderr is passed on); a killed one cannot.
    if (code !== null && code !== 0 && !s.spawnError()) process.exit(code);
    return fail(s.spawnError() || `the server ${how(code, sig).text} before the mount was ready`);
  }
  link.ready();
  if (link.background) {
    link.detach();
    say(`server ${s.c.pid} serves ${mountpoint}; restarts allowed: ${limit} in ${RESTART_WINDOW_MS / 1000} s`);
  }

  for (;;) {
    const { code, sig } = await s.exited;
    const fate = how(code, sig);
    if (code === 0 || stopping) {
      // Unmounted (or stopped by a signal we passed on): done. A server
      // killed before it could unmount leaves the mount to us.
      if (code !== 0) try { fuseUnmount(mountpoint); } catch { /* gone already */ }
      closeSync(fd);
      process.exit(fate.status);
    }
    const panic = s.panic();
    say(`server ${s.c.pid} ${fate.text}${panic ? `: panic: ${panic}` : ''}`);
    // Whoever waits for an answer the dead server owed gets EIO.
    let answered = 0;
    const untracked = inflight.untracked;
    if (untracked > 0) say(`${untracked} request${untracked === 1 ? ' was' : 's were'} in flight beyond the region's slots: unanswered`);
    for (const u of inflight.takePending()) if (writevFrom(fd, [errorReply(u, constants.errno.EIO)]) > 0) answered++;
    if (answered > 0) say(`${answered} request${answered === 1 ? '' : 's'} in flight answered EIO`);
    const now = Date.now();
    while (restarts.length > 0 && now - restarts[0] > RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length >= limit) {
      say(`${limit === 0 ? 'restarts disabled' : `${restarts.length} restart${restarts.length === 1 ? '' : 's'} in ${RESTART_WINDOW_MS / 1000} s already`}: ` +
        `giving up; ${mountpoint} answers ENOTCONN until unmounted`);
      closeSync(fd);
      closeSync(memfd);
      process.exit(fate.status);
    }
    restarts.push(now);
    // An injected fault fires once per mount, unless it says :always.
    if (!always && /RUMPFS_FAULT: injected/.test(panic)) delete env.RUMPFS_FAULT;
    generation++;
    s = start();
    say(`restart ${restarts.length} of ${limit} in ${RESTART_WINDOW_MS / 1000} s: server ${s.c.pid}`);
    const r = await s.ready;
    if (!isReady(r)) say(`server ${s.c.pid} failed to start${s.spawnError() ? `: ${s.spawnError()}` : ''}`);
  }
}
