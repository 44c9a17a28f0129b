// errno values (Linux numbering, since the host and FUSE speak it) carried by
// one error type. Drivers throw KernError for every expected condition.

export const errnos = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7,
  EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, EBUSY: 16,
  EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22,
  ENFILE: 23, EMFILE: 24, ENOTTY: 25, EFBIG: 27, ENOSPC: 28, ESPIPE: 29,
  EROFS: 30, EMLINK: 31, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36,
  ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENODATA: 61, EOVERFLOW: 75,
  EOPNOTSUPP: 95, ENOTSUP: 95, ENOTCONN: 107, ETIMEDOUT: 110, ESTALE: 116,
  EDQUOT: 122,
} as const;

export type ErrnoName = keyof typeof errnos;

const names = new Map<number, ErrnoName>();
for (const [k, v] of Object.entries(errnos)) if (!names.has(v)) names.set(v, k as ErrnoName);

export function errnoName(errno: number): string {
  return names.get(errno) ?? `E${errno}`;
}

const messages: Partial<Record<ErrnoName, string>> = {
  EPERM: 'operation not permitted', ENOENT: 'no such file or directory',
  EIO: 'i/o error', EBADF: 'bad file descriptor', EACCES: 'permission denied',
  EBUSY: 'resource busy', EEXIST: 'file already exists', EXDEV: 'cross-device link',
  ENOTDIR: 'not a directory', EISDIR: 'is a directory', EINVAL: 'invalid argument',
  EFBIG: 'file too large', ENOSPC: 'no space left on device', EROFS: 'read-only file system',
  EMLINK: 'too many links', ENAMETOOLONG: 'file name too long', ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many levels of symbolic links', ENOTSUP: 'operation not supported',
  ENOSYS: 'function not implemented', ENXIO: 'no such device or address',
  ENODEV: 'no such device', ENODATA: 'no data available', ERANGE: 'result too large',
  ENOTCONN: 'not connected', EDEADLK: 'resource deadlock avoided',
};

/** The one error type: an errno, with an optional note for logs. */
export class KernError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, note?: string) {
    const code = errnoName(errno);
    const text = messages[code as ErrnoName] ?? code;
    // An expected outcome, not a bug: no stack trace (every negative lookup makes one).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(note ? `${code}: ${text} (${note})` : `${code}: ${text}`);
    Error.stackTraceLimit = limit;
    this.errno = errno;
    this.code = code;
  }
}

/** `throw kerr('ENOENT')` */
export function kerr(name: ErrnoName, note?: string): KernError {
  return new KernError(errnos[name], note);
}

export function isKernError(e: unknown): e is KernError {
  return e instanceof KernError;
}
