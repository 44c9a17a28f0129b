// The FUSE kernel protocol (linux/fuse.h, protocol 7.x): opcodes, flags and
// the sizes of the structures this transport reads and writes. The ABI is
// the kernel's and stable: old minors keep working, new fields are appended.

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor this transport speaks; the kernel's own minor is used when older. */
export const FUSE_KERNEL_MINOR_VERSION = 40;
export const FUSE_ROOT_ID = 1;

export const enum Op {
  LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, SYMLINK = 6, MKNOD = 8, MKDIR = 9,
  UNLINK = 10, RMDIR = 11, RENAME = 12, LINK = 13, OPEN = 14, READ = 15, WRITE = 16, STATFS = 17,
  RELEASE = 18, FSYNC = 20, SETXATTR = 21, GETXATTR = 22, LISTXATTR = 23, REMOVEXATTR = 24, FLUSH = 25,
  INIT = 26, OPENDIR = 27, READDIR = 28, RELEASEDIR = 29, FSYNCDIR = 30, GETLK = 31, SETLK = 32,
  SETLKW = 33, ACCESS = 34, CREATE = 35, INTERRUPT = 36, BMAP = 37, DESTROY = 38, IOCTL = 39, POLL = 40,
  NOTIFY_REPLY = 41, BATCH_FORGET = 42, FALLOCATE = 43, READDIRPLUS = 44, RENAME2 = 45, LSEEK = 46,
  COPY_FILE_RANGE = 47, SYNCFS = 50, TMPFILE = 51, STATX = 52,
}

/** Opcode names, for traces and counters. */
export const opName: Record<number, string> = {
  1: 'lookup', 2: 'forget', 3: 'getattr', 4: 'setattr', 5: 'readlink', 6: 'symlink', 8: 'mknod', 9: 'mkdir',
  10: 'unlink', 11: 'rmdir', 12: 'rename', 13: 'link', 14: 'open', 15: 'read', 16: 'write', 17: 'statfs',
  18: 'release', 20: 'fsync', 21: 'setxattr', 22: 'getxattr', 23: 'listxattr', 24: 'removexattr', 25: 'flush',
  26: 'init', 27: 'opendir', 28: 'readdir', 29: 'releasedir', 30: 'fsyncdir', 31: 'getlk', 32: 'setlk',
  33: 'setlkw', 34: 'access', 35: 'create', 36: 'interrupt', 37: 'bmap', 38: 'destroy', 39: 'ioctl', 40: 'poll',
  41: 'notify_reply', 42: 'batch_forget', 43: 'fallocate', 44: 'readdirplus', 45: 'rename2', 46: 'lseek',
  47: 'copy_file_range', 50: 'syncfs', 51: 'tmpfile', 52: 'statx',
};

/** fuse_init_in/out flags (the low 32 bits; flags2 holds the rest). */
export const INIT = {
  ASYNC_READ: 1 << 0, POSIX_LOCKS: 1 << 1, FILE_OPS: 1 << 2, ATOMIC_O_TRUNC: 1 << 3, EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5, DONT_MASK: 1 << 6, SPLICE_WRITE: 1 << 7, SPLICE_MOVE: 1 << 8, SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10, HAS_IOCTL_DIR: 1 << 11, AUTO_INVAL_DATA: 1 << 12, DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14, ASYNC_DIO: 1 << 15, WRITEBACK_CACHE: 1 << 16, NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18, HANDLE_KILLPRIV: 1 << 19, POSIX_ACL: 1 << 20, ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22, CACHE_SYMLINKS: 1 << 23, NO_OPENDIR_SUPPORT: 1 << 24, EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26, SUBMOUNTS: 1 << 27, HANDLE_KILLPRIV_V2: 1 << 28, SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
} as const;

/** fuse_setattr_in.valid */
export const FATTR = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5, FH: 1 << 6,
  ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8, LOCKOWNER: 1 << 9, CTIME: 1 << 10, KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags */
export const FOPEN = { DIRECT_IO: 1 << 0, KEEP_CACHE: 1 << 1, NONSEEKABLE: 1 << 2, CACHE_DIR: 1 << 3 } as const;

export const FUSE_GETATTR_FH = 1;
export const FUSE_WRITE_CACHE = 1, FUSE_WRITE_KILL_SUIDGID = 4;
export const FUSE_FSYNC_FDATASYNC = 1;
/** rename2 flags (renameat2). */
export const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2, RENAME_WHITEOUT = 4;

/** Notification codes (fuse_out_header.error with unique 0). */
export const NOTIFY_INVAL_INODE = 2, NOTIFY_INVAL_ENTRY = 3;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
/** fuse_write_out, and fuse_getxattr_out alike. */
export const COUNT_OUT_SIZE = 8;
export const STATFS_OUT_SIZE = 80;
export const INIT_OUT_SIZE = 64;
export const DIRENT_SIZE = 24;
/** The kernel refuses a read buffer smaller than this. */
export const MIN_READ_BUFFER = 8192;
