// rumpuser native addon: typed loader and wrappers.
//
// The addon (rumpuser.c, built by build.mjs into build/Release) is loaded on
// first use, so importing this module never fails; a missing build throws a
// clear error naming the fix. Every function throws Node-style errors:
// .code (errno name), .errno (negative errno), .syscall.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Caps { effective: bigint; permitted: bigint; inheritable: bigint }
export type RlimitResource = 'core' | 'nofile' | 'nproc' | 'fsize';

interface Addon {
  flock(fd: number, op: number): void;
  dup2(from: number, to: number): void;
  blkdevSize(fd: number): number;
  blkdevSectorSize(fd: number): number;
  chroot(path: string): void;
  openProcDir(): number;
  isRootDir(fd: number): boolean;
  openat(dirfd: number, path: string): number;
  threadFiles(taskDirFd: number, name: string): [number, string][];
  unshareNet(): void;
  setgroups(gids: number[]): void;
  setresuid(r: number, e: number, s: number): void;
  setresgid(r: number, e: number, s: number): void;
  getresuid(): [number, number, number];
  getresgid(): [number, number, number];
  capget(): Caps;
  setrlimit(resource: RlimitResource, soft: number, hard: number): void;
  getrlimit(resource: RlimitResource): [number, number];
  setDumpable(on: boolean): void;
  setNoNewPrivs(): void;
  getNoNewPrivs(): boolean;
  seccomp(procDirFd: number): void;
  threadTest(): boolean;
  pollStart(fd: number, cb: (events: number) => void): PollHandle;
  pollStop(h: PollHandle): void;
  readInto(fd: number, buf: Uint8Array): number;
  preadNowait(fd: number, buf: Uint8Array, offset: number): number;
  writevFrom(fd: number, bufs: Uint8Array[]): number;
  socketpair(): [number, number];
  recvFd(sock: number): number;
  sendFds(sock: number, fds: number[], text: string): void;
  mount(source: string, target: string, type: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  memfdShared(name: string, size: number): number;
  mapShared(fd: number, size: number): ArrayBuffer;
  setCloexec(fd: number, on: boolean): void;
}

/** A descriptor watched by the event loop (pollStart). */
export interface PollHandle { readonly __poll: unique symbol }

// From src/rumpuser (vitest), dist/src/rumpuser (compiled), a directory
// beside Release under src/rumpuser/build (tests' transpiled copies) or
// dist/bin (bundles): the addon is built in the source tree.
const candidates = [
  new URL('./build/Release/rumpuser.node', import.meta.url),
  new URL('../../../src/rumpuser/build/Release/rumpuser.node', import.meta.url),
  new URL('../Release/rumpuser.node', import.meta.url),
  // From a one-file bundle in dist/bin.
  new URL('../../src/rumpuser/build/Release/rumpuser.node', import.meta.url),
].map((u) => fileURLToPath(u));

let addon: Addon | undefined;

function native(): Addon {
  if (addon) return addon;
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new Error(`rumpuser: native addon not built (run: node src/rumpuser/build.mjs); looked in ${candidates.join(', ')}`);
  // dlopen as require() does for a .node file, without its module resolution (~1 ms of a server's start).
  const m = { exports: {} };
  process.dlopen(m, file);
  addon = m.exports as Addon;
  return addon;
}

/** Load the addon now (before a chroot makes its file unreachable). */
export function loadNative(): void {
  native();
}

/** The server launcher (launch.c), built beside the addon. */
export function launcherPath(): string {
  const file = candidates.map((f) => path.join(path.dirname(f), 'rumpfs_launch')).find((f) => existsSync(f));
  if (!file) throw new Error('rumpuser: rumpfs_launch not built (run: node src/rumpuser/build.mjs)');
  return file;
}

export function dup2(from: number, to: number): void {
  native().dup2(from, to);
}

const FLOCK_OPS = { sh: 0, ex: 1, un: 2 } as const;

/**
 * Non-blocking flock(2). Throws with .code 'EWOULDBLOCK' (Linux: the same
 * value as EAGAIN, named 'EAGAIN') when the lock is held elsewhere.
 */
export function flock(fd: number, op: 'sh' | 'ex' | 'un'): void {
  native().flock(fd, FLOCK_OPS[op]);
}

/** Size in bytes of a block device (ioctl BLKGETSIZE64); ENOTTY on a regular file. */
export function blkdevSize(fd: number): number {
  return native().blkdevSize(fd);
}

/** Logical sector size of a block device (ioctl BLKSSZGET); ENOTTY on a regular file. */
export function blkdevSectorSize(fd: number): number {
  return native().blkdevSectorSize(fd);
}

/** chroot(path) then chdir("/"). Root only. */
export function chroot(path: string): void {
  native().chroot(path);
}

/**
 * A private, read-only, detached procfs (subset=pid) as a directory fd: ".."
 * cannot leave it, unlike a plain /proc fd. Root only; call before sandboxing
 * and pass it as SandboxOptions.procDirFd to read /proc/<pid>/status later.
 */
export function openProcDir(): number {
  return native().openProcDir();
}

/** True when the directory fd is the root of its tree ("..", is itself). */
export function isRootDir(fd: number): boolean {
  return native().isRootDir(fd);
}

/** openat(dirfd, path, O_RDONLY|O_NOFOLLOW|O_CLOEXEC): the only open the sandbox can allow. */
export function openat(dirfd: number, path: string): number {
  return native().openat(dirfd, path);
}

/** [tid, contents of <tid>/<name>] for every thread of an open /proc/<pid>/task directory fd. */
export function threadFiles(taskDirFd: number, name: string): [number, string][] {
  return native().threadFiles(taskDirFd, name);
}

/** unshare(CLONE_NEWNET) for the calling thread (and threads it creates later). Root only. */
export function unshareNet(): void {
  native().unshareNet();
}

/** setgroups(2) through libc: applies to every thread. */
export function setgroups(gids: number[]): void {
  native().setgroups(gids);
}

/** setresuid(2) through libc: applies to every thread. */
export function setresuid(r: number, e: number, s: number): void {
  native().setresuid(r, e, s);
}

/** setresgid(2) through libc: applies to every thread. */
export function setresgid(r: number, e: number, s: number): void {
  native().setresgid(r, e, s);
}

export function getresuid(): [number, number, number] {
  return native().getresuid();
}

export function getresgid(): [number, number, number] {
  return native().getresgid();
}

/** capget(2) of the calling thread. */
export function capget(): Caps {
  return native().capget();
}

/** setrlimit(2); Infinity means RLIM_INFINITY. */
export function setrlimit(resource: RlimitResource, soft: number, hard: number): void {
  native().setrlimit(resource, soft, hard);
}

/** getrlimit(2) as [soft, hard]; Infinity means RLIM_INFINITY. */
export function getrlimit(resource: RlimitResource): [number, number] {
  return native().getrlimit(resource);
}

/** prctl(PR_SET_DUMPABLE). A uid change resets it: call after setresuid. */
export function setDumpable(on: boolean): void {
  native().setDumpable(on);
}

/** prctl(PR_SET_NO_NEW_PRIVS, 1) for the calling thread (seccomp's TSYNC extends it). */
export function setNoNewPrivs(): void {
  native().setNoNewPrivs();
}

export function getNoNewPrivs(): boolean {
  return native().getNoNewPrivs();
}

/**
 * Install the rumpfs seccomp filter on every thread (SECCOMP_FILTER_FLAG_TSYNC).
 * Needs no_new_privs (or CAP_SYS_ADMIN). procDirFd >= 0 keeps read-only,
 * O_NOFOLLOW openat() relative to that fd (see openProcDir); -1 denies all opens.
 * Irreversible.
 */
export function installSeccomp(procDirFd = -1): void {
  native().seccomp(procDirFd);
}

/** Create, cancel and join a pthread (what libfuse's mt loop does); true when cancelled. */
export function threadTest(): boolean {
  return native().threadTest();
}

/**
 * Watch fd on the event loop (uv_poll): cb runs on the main thread when fd is
 * readable (events > 0) or failed (-errno); promise reactions run after each call.
 */
export function pollStart(fd: number, cb: (events: number) => void): PollHandle {
  return native().pollStart(fd, cb);
}

export function pollStop(h: PollHandle): void {
  native().pollStop(h);
}

/** read(2) into buf: bytes read, or -errno (EAGAIN on an empty non-blocking fd is not thrown). */
export function readInto(fd: number, buf: Uint8Array): number {
  return native().readInto(fd, buf);
}

/** A pread of what the host's page cache holds (RWF_NOWAIT): bytes read (0 at the end), or -1 when it would wait. */
export function preadNowait(fd: number, buf: Uint8Array, offset: number): number {
  return native().preadNowait(fd, buf, offset);
}

/** One writev(2) of up to 8 buffers: bytes written, or -errno. */
export function writevFrom(fd: number, bufs: Uint8Array[]): number {
  return native().writevFrom(fd, bufs);
}

/** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC). */
export function socketpair(): [number, number] {
  return native().socketpair();
}

/** Receive one descriptor over a unix socket (SCM_RIGHTS); it comes back non-blocking and close-on-exec. */
export function recvFd(sock: number): number {
  return native().recvFd(sock);
}

/** Send text with descriptors over a unix socket (SCM_RIGHTS, at most 8): the receiver gets copies. */
export function sendFds(sock: number, fds: number[], text: string): void {
  native().sendFds(sock, fds, text);
}

export const MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8;
export const MNT_DETACH = 2;

/** mount(2). Root only. */
export function mount(source: string, target: string, type: string, flags: number, data: string): void {
  native().mount(source, target, type, flags, data);
}

/** umount2(2). Root only (an ordinary user's FUSE mounts go through fusermount3 -u). */
export function umount2(target: string, flags = 0): void {
  native().umount2(target, flags);
}

/** A zeroed memfd of size bytes (close-on-exec, sealable): memory a server shares with its supervisor. */
export function memfdShared(name: string, size: number): number {
  return native().memfdShared(name, size);
}

/** mmap(MAP_SHARED) of the first size bytes of fd, read-write: what one process writes, the others see. */
export function mapShared(fd: number, size: number): ArrayBuffer {
  return native().mapShared(fd, size);
}

/** Set or clear FD_CLOEXEC on fd. */
export function setCloexec(fd: number, on: boolean): void {
  native().setCloexec(fd, on);
}
