// tmpfs's in-memory structures (NetBSD's tmpfs.h): nodes, directory
// entries, the per-mount state, and the limits the driver enforces.
import type { Timespec, VType } from '../../kern/index.js';

/** File data lives in pages of this size; a page never written is a hole. */
export const TMPFS_PAGE_SIZE = 4096;
/**
 * Largest file size: 2^48 bytes (256 TiB). Offsets stay exact in a double
 * and page indices stay small integers; writes or truncates past it: EFBIG.
 */
export const TMPFS_MAXFILESIZE = 2 ** 48;
/** Bits needed for TMPFS_MAXFILESIZE as a signed number (_PC_FILESIZEBITS). */
export const TMPFS_FILESIZE_BITS = 49;
export const TMPFS_NAME_MAX = 255;
export const TMPFS_LINK_MAX = 32767;
/** Longest symbolic link target in bytes (PATH_MAX less the NUL). */
export const TMPFS_SYMLINK_MAX = 4095;
/** Size a directory reports per entry, `.` and `..` included (Linux's BOGO_DIRENT_SIZE). */
export const TMPFS_DIRENT_SIZE = 20;
/** The root directory's file id; ids are never reused within a mount. */
export const TMPFS_ROOT_ID = 2;
/** Readdir cookies of `.` and `..`; real entries count on from 3. */
export const TMPFS_COOKIE_DOT = 1, TMPFS_COOKIE_DOTDOT = 2;

/** One name in a directory. Cookies grow with each insertion, so they order the entries. */
export interface TmpfsDirent {
  readonly name: string;
  readonly node: TmpfsNode;
  readonly cookie: number;
}

/** What only a directory has. */
export interface TmpfsDir {
  /** Entries by name; the Map's insertion order is cookie order. */
  readonly entries: Map<string, TmpfsDirent>;
  /** The directory `..` names (the root is its own parent). */
  parent: TmpfsNode;
  nextCookie: number;
}

/** A file of any type. Exactly one of pages/dir/target is set, by type. */
export interface TmpfsNode {
  readonly id: number;
  readonly type: VType;
  /** Permission bits and setuid/setgid/sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Names (and for directories, `.` and subdirectories' `..`) referring to it. 0: removed. */
  nlink: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  birthtime: Timespec;
  /** VBLK/VCHR device number. */
  rdev: number;
  /** VREG: data pages by page index (null until the first write); missing pages read as zeros. */
  pages: Map<number, Uint8Array> | null;
  /** VDIR */
  readonly dir: TmpfsDir | null;
  /** VLNK */
  readonly target: string | null;
}

/** The mount's state: every node by id, the limits and what is in use. */
export interface TmpfsMount {
  readonly nodes: Map<number, TmpfsNode>;
  nextId: number;
  /** Data pages allowed; Infinity when mounted with size=0. */
  readonly maxPages: number;
  /** Nodes allowed (the root included); Infinity when mounted with nodes=0. */
  readonly maxNodes: number;
  pagesUsed: number;
}
