// Errors shaped like Node's fs errors: code, errno (negative), syscall, path.
import { isKernError } from '../kern/index.js';

export interface UkfsError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;
}

/** Run a call, turning kernel errnos into Node-style errors. */
export async function syscall<T>(name: string, path: string | undefined, fn: () => Promise<T>, dest?: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!isKernError(e)) throw e;
    // "ENOENT: no such file or directory (note), open '/x'": Node's shape, with the kernel's note kept.
    const text = e.message.replace(/^[A-Z0-9]+: /, '');
    const where = path === undefined ? '' : dest === undefined ? ` '${path}'` : ` '${path}' -> '${dest}'`;
    const err = new Error(`${e.code}: ${text}, ${name}${where}`) as UkfsError;
    err.code = e.code;
    err.errno = -e.errno;
    err.syscall = name;
    if (path !== undefined) err.path = path;
    if (dest !== undefined) err.dest = dest;
    throw err;
  }
}
