// The supervisor of a read-only mount: a crashed server comes back by itself.
//
// For a read-only mount (MNT_RDONLY) of a driver that finds a file by its id
// alone (VFS_VGET), the launcher starts this process instead of the server.
// It mounts FUSE itself (so it holds the session's /dev/fuse descriptor),
// makes a small shared memory region (p2k/fuse/inflight.ts), and starts the
// sandboxed server as the launcher would, handing it both descriptors (fds 4
// and 5). The server opens the image, mounts it in its kernel and serves.
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
// The supervisor never reads a request and never touches the image: it is a
// process of its own (servers/supervise.ts, its bundle dist/bin/supervise.js)
// that loads neither the kernel nor a driver, and parses nothing but its
// server's stderr lines, a ready line and the uniques in the region. As
// root it stays root (each new server needs root to sandbox itself: a
// network namespace, chroot, its own uid), with no network namespace of its
// own; it is small, and outside the sandbox. A server that exits 0 has seen
// its mount unmounted (umount, fusermount3 -u, rumpumount, SIGTERM): the
// supervisor then exits 0 too. Read-write mounts have no supervisor: a
// restarted server would have lost what the dead one had not written.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { errorReply, Inflight, INFLIGHT_BYTES } from '../p2k/fuse/inflight.js';
import { fuseMount, fuseUnmount, noteForUmount, type FuseMountSpec } from '../p2k/fuse/mount.js';
import { mapShared, memfdShared, writevFrom } from '../src/rumpuser/native.js';
import { rumpuser_logtag, rumpuser_putstr } from '../src/rumpuser/index.js';

/** What the launcher tells the supervisor (P2K_SUPERVISE_ARGS, JSON). */
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
/** The descriptors a supervised server finds: the FUSE session and the in-flight region. */
export const SUPERVISED_FUSE_FD = 4, SUPERVISED_INFLIGHT_FD = 5;

/**
 * How the launcher starts the supervisor: its own small program (beside
 * this module: dist/servers/supervise.js, or dist/bin/supervise.js beside a
 * bundle), with the mount point and program name on its command line for
 * ps, and the rest in its environment; readiness on fd 3 as a server's.
 */
export function supervisorCommand(a: SupervisorArgs): { argv: string[]; env: Record<string, string> } {
  const entry = fileURLToPath(new URL('./supervise.js', import.meta.url));
  return {
    argv: [process.execPath, '--max-semi-space-size=1', entry, a.prog, a.mountpoint],
    env: { P2K_SUPERVISE: '3', P2K_SUPERVISE_ARGS: JSON.stringify(a) },
  };
}

/** How a child ended, in words and as a shell's status. */
function how(code: number | null, sig: NodeJS.Signals | null): { text: string; status: number } {
  if (sig) return { text: `killed by ${sig}`, status: 128 + (constants.signals[sig] ?? 0) };
  return { text: `exited with status ${code}`, status: code ?? 1 };
}

/**
 * The supervisor's life (P2K_SUPERVISE=fd: readiness and errors go to the
 * launcher through that pipe, as a server's do).
 */
export async function superviseMain(): Promise<never> {
  const readyFd = Number(process.env.P2K_SUPERVISE);
  const tell = (line: string) => { try { writeSync(readyFd, line + '\n'); } catch { /* launcher gone */ } };
  let a: SupervisorArgs;
  try {
    a = JSON.parse(process.env.P2K_SUPERVISE_ARGS ?? '') as SupervisorArgs;
  } catch {
    tell('error the supervisor was started without its arguments');
    process.exit(32);
  }
  const mountpoint = a.mountpoint;
  if (process.env.P2K_LOG) rumpuser_logtag(`${a.prog}[${process.pid}]`);
  const say = (line: string) => rumpuser_putstr(`supervisor: ${line}\n`);
  const limit = a.restart;

  let fd: number, memfd: number, inflight: Inflight;
  try {
    memfd = memfdShared('rumpfs-inflight', INFLIGHT_BYTES);
    inflight = new Inflight(mapShared(memfd, INFLIGHT_BYTES));
    // The utab note (a `mount --fake`, ~50 ms) is made while the server starts.
    fd = fuseMount(a.fuse, { utab: false });
  } catch (e) {
    tell(`error cannot attach to ${mountpoint} through FUSE: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(32);
  }

  // The server, as the launcher starts it: as root in a new network namespace from its first instruction.
  const argv = process.geteuid?.() === 0 ? ['unshare', '--net', '--', ...a.server] : a.server;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.P2K_SUPERVISE;
  delete env.P2K_SUPERVISE_ARGS;
  Object.assign(env, {
    UV_USE_IO_URING: '0', P2K_READY_FD: '3', P2K_MOUNTPOINT: mountpoint,
    P2K_FUSE_FD: String(SUPERVISED_FUSE_FD), P2K_INFLIGHT_FD: String(SUPERVISED_INFLIGHT_FD),
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
      stdio: ['ignore', 'inherit', 'pipe', 'pipe', fd, memfd],
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

  let s = start();
  const noted = noteForUmount(a.fuse);
  const first = await s.ready;
  await noted;
  if (!first.startsWith('ready')) {
    const { code, sig } = await s.exited;
    tell(first.startsWith('error ') ? first.trim() : `error ${s.spawnError() || `the server ${how(code, sig).text} before the mount was ready`}`);
    // No server: the mount goes with us (the launcher would take it away too).
    try { fuseUnmount(mountpoint); } catch { /* the launcher's turn */ }
    process.exit(32);
  }
  tell('ready');
  closeSync(readyFd);
  if (process.env.P2K_LOG) say(`server ${s.c.pid} serves ${mountpoint}; restarts allowed: ${limit} in ${RESTART_WINDOW_MS / 1000} s`);

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
    if (!r.startsWith('ready')) say(`server ${s.c.pid} failed to start: ${r.replace(/^error /, '').trim() || s.spawnError() || 'no word'}`);
  }
}
