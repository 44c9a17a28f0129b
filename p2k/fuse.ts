// The FUSE transport under p2k and barefs: fuse-native (libfuse 2, path
// API) as rebuilt by patch-fuse-native.mjs, with the mount options it cannot
// express itself, the caller of the request being dispatched, and the
// notice that the kernel ended the mount.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const fuseDir = path.dirname(require.resolve('fuse-native/package.json'));

/** A reply to libfuse: res (0, a count, or -errno), then the operation's values. */
export type Signal = (res: number, ...values: unknown[]) => void;

interface FuseNativeClass {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): FuseNativeInstance;
}
interface FuseNativeInstance {
  mnt: string;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

const FuseNative = require('fuse-native') as FuseNativeClass;
// The same module object fuse-native loaded (node-gyp-build prefers build/Release: the patched build).
const binding = require('node-gyp-build')(fuseDir) as { fuse_native_context?: () => [number, number, number] };
if (typeof binding.fuse_native_context !== 'function') {
  throw new Error('fuse-native is not the patched build (run: node p2k/patch-fuse-native.mjs)');
}

/** uid, gid and pid of the process whose request is being dispatched (call synchronously in a handler). */
export function fuseCaller(): [number, number, number] {
  return binding.fuse_native_context!();
}

/** Every operation p2k serves (fuse-native's names). */
export const FUSE_OPS = [
  'init', 'access', 'statfs', 'fgetattr', 'getattr', 'flush', 'fsync', 'fsyncdir', 'readdir',
  'truncate', 'ftruncate', 'utimens', 'readlink', 'chown', 'chmod', 'mknod', 'setxattr', 'getxattr',
  'listxattr', 'removexattr', 'open', 'opendir', 'read', 'write', 'release', 'releasedir', 'create',
  'unlink', 'rename', 'link', 'symlink', 'mkdir', 'rmdir',
] as const;

export interface FuseMountOptions {
  /** What the mount table shows as the source (the device, "tmpfs"). */
  fsname: string;
  /** The mount table shows fuse.<subtype>. */
  subtype: string;
  /** Let every user in (only root may ask; no default_permissions: the server decides). */
  allowOther: boolean;
  readOnly: boolean;
  noexec?: boolean;
  /** Bypass the page cache (P2K_NOCACHE_PAGE). */
  directIo: boolean;
  /** Seconds the kernel may keep names and attributes (0: ask every time; P2K_NOCACHE_NAME). */
  entryTimeout: number;
  attrTimeout: number;
  /** libfuse prints every request (P2K_DEBUG=2). */
  debug?: boolean;
}

/**
 * The options every server mounts with. Names are cached for a second:
 * every change goes through this mount, and the kernel drops the names it
 * changes. Attributes are not cached: libfuse 2 gives each name of a
 * hard-linked file its own kernel inode, and the kernel refreshes only the
 * one it changed (after `ln a b`, `stat a` would show nlink 1 and tar would
 * miss the link). A read-only mount changes nothing, so there both are
 * cached for a minute (a walk then costs one request per name, not three).
 * nocachePage: no page cache (direct_io); nocacheName: no name or attribute
 * cache (P2K_NOCACHE_PAGE, P2K_NOCACHE_NAME).
 */
export function serverMountOptions(fsname: string, subtype: string,
  o: { readOnly?: boolean; noexec?: boolean; nocachePage?: boolean; nocacheName?: boolean; debug?: boolean } = {}): FuseMountOptions {
  return {
    fsname, subtype, allowOther: process.geteuid?.() === 0, readOnly: !!o.readOnly, noexec: !!o.noexec,
    directIo: !!o.nocachePage, debug: !!o.debug,
    entryTimeout: o.nocacheName ? 0 : o.readOnly ? 60 : 1, attrTimeout: o.nocacheName || !o.readOnly ? 0 : 60,
  };
}

/** Options for libfuse's -o: commas and backslashes in values escaped as libfuse wants. */
export function fuseOptionString(o: FuseMountOptions): string {
  const esc = (s: string) => s.replace(/[\\,]/g, c => '\\' + c);
  const opts = [
    // Inode numbers are the file ids the driver reports.
    'use_ino',
    // 128 KiB writes instead of 4 KiB (libfuse 2 caps requests there).
    'big_writes', 'max_write=131072',
    // An unlinked open file stays reachable by its handle; no .fuse_hidden files.
    'hard_remove',
    `fsname=${esc(o.fsname)}`, `subtype=${esc(o.subtype)}`,
    // The page cache survives opens while the file's size and mtime are
    // unchanged: libfuse 2 gives each hard link its own kernel inode, so
    // kernel_cache could serve one name stale data written through another.
    o.directIo ? 'direct_io' : 'auto_cache',
    // Given explicitly: 0 must reach libfuse too.
    `entry_timeout=${o.entryTimeout}`, `attr_timeout=${o.attrTimeout}`, 'negative_timeout=0',
  ];
  if (o.allowOther) opts.push('allow_other');
  if (o.readOnly) opts.push('ro');
  if (o.noexec) opts.push('noexec');
  if (o.debug) opts.push('debug');
  const s = '-o' + opts.join(',');
  if (Buffer.byteLength(s) >= 1024) throw new Error(`FUSE option string too long (${Buffer.byteLength(s)} bytes)`);
  return s;
}

/**
 * A FUSE mount. Subclasses serve requests by defining `_op_<name>(signal,
 * ...args)` for the operations listed in FUSE_OPS (fuse-native calls them
 * with the arguments of the patched binding).
 */
export class FuseMount extends (FuseNative as unknown as new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => FuseNativeInstance) {
  /** Called once when the kernel ends the mount (umount, fusermount -u). */
  onEnded: () => void = () => {};

  constructor(mnt: string, readonly mountOptions: FuseMountOptions) {
    // fuse-native registers an operation when ops has a truthy entry for it:
    // those the subclasses define (the others answer EPERM).
    const defined = new Set<string>();
    for (let p = new.target.prototype; p && p !== FuseMount.prototype; p = Object.getPrototypeOf(p)) {
      for (const k of Object.getOwnPropertyNames(p)) defined.add(k);
    }
    super(mnt, Object.fromEntries(FUSE_OPS.filter(n => defined.has(`_op_${n}`)).map(n => [n, true])), { timeout: false });
  }

  _fuseOptions(): string {
    return fuseOptionString(this.mountOptions);
  }

  /** Called by the patched binding on the JS thread after the FUSE loop ended. */
  _fuseEnded(): void {
    this.onEnded();
  }

  /** Attach to the mount point; resolves after libfuse's init. */
  attach(): Promise<void> {
    return new Promise((resolve, reject) => this.mount(err => (err ? reject(err) : resolve())));
  }
}

/** fuse-native's stat array (18 uint32): mode, uid, gid, size(2), dev, nlink, ino, rdev, blksize, blocks(2), a/m/ctime in ms (2 each). */
export interface StatFields {
  mode: number; uid: number; gid: number; size: number; nlink: number; ino: number;
  rdev: number; blksize: number; blocks: number; atimeMs: number; mtimeMs: number; ctimeMs: number;
}

function set64(a: Uint32Array, i: number, n: number): void {
  a[i] = n % 4294967296;
  a[i + 1] = Math.floor(n / 4294967296);
}

export function statArray(s: StatFields): Uint32Array {
  const a = new Uint32Array(18);
  a[0] = s.mode; a[1] = s.uid; a[2] = s.gid; set64(a, 3, s.size);
  a[6] = s.nlink; a[7] = s.ino; a[8] = s.rdev; a[9] = s.blksize; set64(a, 10, s.blocks);
  set64(a, 12, s.atimeMs); set64(a, 14, s.mtimeMs); set64(a, 16, s.ctimeMs);
  return a;
}

/** A stat array carrying only the file type and number (readdir). */
export function direntStat(mode: number, ino: number): Uint32Array {
  const a = new Uint32Array(18);
  a[0] = mode;
  a[7] = ino;
  return a;
}

export interface StatfsFields {
  bsize: number; frsize: number; blocks: number; bfree: number; bavail: number;
  files: number; ffree: number; favail: number; flag: number; namemax: number;
}

const U32 = 4294967295;
export function statfsArray(s: StatfsFields): Uint32Array {
  const a = new Uint32Array(11);
  const c = (n: number) => Math.min(Math.max(0, Math.floor(n)), U32);
  a[0] = c(s.bsize); a[1] = c(s.frsize); a[2] = c(s.blocks); a[3] = c(s.bfree); a[4] = c(s.bavail);
  a[5] = c(s.files); a[6] = c(s.ffree); a[7] = c(s.favail); a[9] = c(s.flag); a[10] = c(s.namemax);
  return a;
}

/** UTIME_NOW and UTIME_OMIT as the nanoseconds of a utimens time. */
export const UTIME_NOW = (1 << 30) - 1, UTIME_OMIT = (1 << 30) - 2;

/** 64-bit offsets and sizes arrive as two uint32. */
export function u64(lo: number, hi: number): number {
  return lo + hi * 4294967296;
}
