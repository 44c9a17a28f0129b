// Plain data types of the vnode interface: file types, attributes, directory
// entries, flags. No behaviour here, so every layer can import them.
import type { Timespec } from './time.js';

/** An answer given at once or later: `await` takes both. */
export type MaybePromise<T> = T | Promise<T>;

export enum VType { VNON = 0, VREG = 1, VDIR = 2, VBLK = 3, VCHR = 4, VLNK = 5, VSOCK = 6, VFIFO = 7 }

/** S_IF* bits of st_mode, by vnode type. */
export const S_IFMT = 0o170000;
const typeToIfmt: Record<VType, number> = {
  [VType.VNON]: 0, [VType.VREG]: 0o100000, [VType.VDIR]: 0o040000, [VType.VBLK]: 0o060000,
  [VType.VCHR]: 0o020000, [VType.VLNK]: 0o120000, [VType.VSOCK]: 0o140000, [VType.VFIFO]: 0o010000,
};
export function vtypeToIfmt(t: VType): number { return typeToIfmt[t]; }
export function ifmtToVtype(mode: number): VType {
  switch (mode & S_IFMT) {
    case 0o100000: return VType.VREG;
    case 0o040000: return VType.VDIR;
    case 0o060000: return VType.VBLK;
    case 0o020000: return VType.VCHR;
    case 0o120000: return VType.VLNK;
    case 0o140000: return VType.VSOCK;
    case 0o010000: return VType.VFIFO;
    default: return VType.VNON;
  }
}
/** DT_* values for readdir d_type. */
export function vtypeToDtype(t: VType): number {
  return [0, 8, 4, 6, 2, 10, 12, 1][t];
}

/** struct vattr: what VOP_GETATTR returns. */
export interface Vattr {
  type: VType;
  /** Permission bits and setuid/setgid/sticky (0o7777), no S_IFMT. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** File id, unique within the mount: the inode number. */
  fileid: number;
  size: number;
  /** Bytes allocated on the medium. */
  bytes: number;
  blocksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  birthtime: Timespec;
  /** Device number for VBLK/VCHR (Linux encoding: makedev). */
  rdev: number;
  /** Generation number, when the file system keeps one. */
  gen: number;
}

/** What VOP_SETATTR may change; absent fields are left alone. */
export interface VattrSet {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Timespec;
  mtime?: Timespec;
  birthtime?: Timespec;
  /** Both times are being set to "now" (utimes(NULL)): write access suffices. */
  utimesNow?: boolean;
}

/** What create/mkdir/mknod/symlink are given for the new file. */
export interface VattrCreate {
  type: VType;
  /** Permission bits, already masked by the caller's umask. */
  mode: number;
  rdev?: number;
}

/** One directory entry from VOP_READDIR. */
export interface Dirent {
  name: string;
  fileid: number;
  type: VType;
  /** Cookie to pass to VOP_READDIR to continue after this entry. */
  cookie: number;
  /**
   * The entry's attributes, exactly as VOP_GETATTR of its vnode gives them,
   * where the driver has them at hand without loading the vnode (a read-only
   * medium's directory records). Optional: a caller that needs attributes
   * (FUSE readdirplus) may use them instead of a lookup per entry.
   */
  attr?: Vattr;
}

/** statvfs(2) */
export interface Statvfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
  /** Mount flags: MNT_RDONLY and friends. */
  flag: number;
}

/** open(2) flags, Linux values. */
export const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_ACCMODE = 3;
export const O_CREAT = 0o100, O_EXCL = 0o200, O_NOCTTY = 0o400, O_TRUNC = 0o1000,
  O_APPEND = 0o2000, O_NONBLOCK = 0o4000, O_SYNC = 0o4010000, O_DIRECTORY = 0o200000,
  O_NOFOLLOW = 0o400000;

/** ioflag bits for VOP_READ/VOP_WRITE. */
export const IO_APPEND = 1, IO_SYNC = 2;

/** Mount flags. */
export const MNT_RDONLY = 1, MNT_SYNCHRONOUS = 2, MNT_NOEXEC = 4, MNT_NOSUID = 8, MNT_NODEV = 16;

/** fsync flags */
export const FSYNC_WAIT = 1, FSYNC_DATAONLY = 2;

/** makedev / major / minor, Linux encoding. */
export function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12);
}
export function major(dev: number): number { return (dev >>> 8) & 0xfff; }
export function minor(dev: number): number { return (dev & 0xff) | ((dev >>> 12) & ~0xff); }
