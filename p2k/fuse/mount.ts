// Attaching a FUSE session to a mount point, and the /dev/fuse channel.
// As root: open /dev/fuse and mount(2) with fd=N, as go-fuse's DirectMount
// and fuser do. An ordinary user: fusermount3 (the fuse3 package, setuid)
// mounts and hands the descriptor back over a unix socket (_FUSE_COMMFD).
import { closeSync, constants as fsc, openSync } from 'node:fs';
import {
  MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, mount, pollStart, pollStop, readInto, recvFd, socketpair,
  umount2, writevFrom, type PollHandle,
} from '../../src/rumpuser/native.js';
import { childProcess } from '../../src/rumpuser/lazy.js';
import type { FuseChannel } from './session.js';

export interface FuseMountSpec {
  mountpoint: string;
  /** What the mount table shows as the source (the device, "tmpfs"). */
  fsname: string;
  /** The mount table shows fuse.<subtype>. */
  subtype: string;
  readOnly: boolean;
  noexec: boolean;
  /** Let every user in (root's mounts; an ordinary user needs user_allow_other in /etc/fuse.conf). */
  allowOther: boolean;
  /**
   * The kernel checks permissions from the attributes (default_permissions:
   * FIFOs, devices and access(2) too, which never reach the server
   * otherwise). Default true; false leaves every decision to the server.
   */
  kernelPermissions?: boolean;
}

/** A mount that could not be made, with the reason in words. */
export class FuseMountError extends Error {}

/** The mount options the kernel's FUSE understands, as fusermount3 wants them (commas in values escaped). */
export function fuseOptions(s: FuseMountSpec): string {
  const esc = (v: string) => v.replace(/[\\,]/g, c => '\\' + c);
  return [
    s.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev', ...(s.noexec ? ['noexec'] : []),
    ...(s.kernelPermissions === false ? [] : ['default_permissions']), ...(s.allowOther ? ['allow_other'] : []),
    `fsname=${esc(s.fsname)}`, `subtype=${esc(s.subtype)}`,
  ].join(',');
}

/** Mount and return the session's /dev/fuse descriptor (non-blocking). */
export function fuseMount(s: FuseMountSpec): number {
  return process.geteuid?.() === 0 ? mountDirect(s) : mountFusermount(s);
}

function mountDirect(s: FuseMountSpec): number {
  let fd: number;
  try {
    fd = openSync('/dev/fuse', fsc.O_RDWR | fsc.O_NONBLOCK);
  } catch (e) {
    throw new FuseMountError(`cannot open /dev/fuse: ${(e as Error).message} (is the fuse module loaded?)`);
  }
  const data = [
    `fd=${fd}`, 'rootmode=40000', `user_id=${process.getuid!()}`, `group_id=${process.getgid!()}`,
    ...(s.kernelPermissions === false ? [] : ['default_permissions']), ...(s.allowOther ? ['allow_other'] : []),
  ].join(',');
  const flags = MS_NOSUID | MS_NODEV | (s.readOnly ? MS_RDONLY : 0) | (s.noexec ? MS_NOEXEC : 0);
  try {
    mount(s.fsname, s.mountpoint, `fuse.${s.subtype}`, flags, data);
  } catch (e) {
    closeSync(fd);
    throw new FuseMountError(`mount on ${s.mountpoint}: ${reason(e)}`);
  }
  return fd;
}

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EPERM') return 'permission denied (mount(2) needs root)';
  if (code === 'ENODEV') return 'the kernel has no FUSE (modprobe fuse)';
  if (code === 'ENOTDIR') return 'not a directory';
  if (code === 'ENOENT') return 'no such directory';
  return (e as Error).message;
}

function mountFusermount(s: FuseMountSpec): number {
  const [ours, theirs] = socketpair();
  let r;
  try {
    r = childProcess().spawnSync('fusermount3', ['-o', fuseOptions(s), '--', s.mountpoint], {
      stdio: ['ignore', 'ignore', 'pipe', theirs],
      env: { ...process.env, _FUSE_COMMFD: '3', _FUSE_COMMVERS: '2' },
      encoding: 'utf8',
      timeout: 30_000,
    });
  } finally {
    closeSync(theirs);
  }
  try {
    if (r.error) throw new FuseMountError(`cannot run fusermount3: ${r.error.message} (install the fuse3 package)`);
    if (r.status !== 0) {
      const said = (r.stderr ?? '').trim().replace(/^fusermount3: /, '');
      throw new FuseMountError(said || `fusermount3 exited with status ${r.status}`);
    }
    // fusermount3 has sent the descriptor and exited; it waits in our end of the socket.
    return recvFd(ours);
  } finally {
    closeSync(ours);
  }
}

/** Detach the mount (lazily: open files keep it alive until closed). */
export function fuseUnmount(mountpoint: string): void {
  if (process.geteuid?.() === 0) {
    umount2(mountpoint, MNT_DETACH);
    return;
  }
  const r = childProcess().spawnSync('fusermount3', ['-u', '-z', mountpoint], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new FuseMountError((r.stderr ?? '').trim() || `fusermount3 -u exited with status ${r.status}`);
}

/** The session's /dev/fuse descriptor, polled by the event loop. */
export class DevChannel implements FuseChannel {
  private poll: PollHandle | null = null;
  private open = true;

  constructor(readonly fd: number) {}

  read(buf: Buffer): number {
    return readInto(this.fd, buf);
  }

  writev(bufs: Uint8Array[]): number {
    return writevFrom(this.fd, bufs);
  }

  watch(ready: () => void): void {
    this.poll = pollStart(this.fd, ready);
  }

  close(): void {
    if (this.poll) pollStop(this.poll);
    this.poll = null;
    if (this.open) closeSync(this.fd);
    this.open = false;
  }
}
