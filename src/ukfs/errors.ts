// Errors shaped like Node's fs errors: code, errno (negative), syscall, path;
// and Node's own codes for calls we do not have and for aborted calls.
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

/** A Node error with a code of Node's own (ERR_*), not an errno. */
export function nodeError(code: string, message: string, name = 'Error'): Error & { code: string } {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  err.name = name;
  return err;
}

/** What Node itself throws for fs calls a platform lacks (lchmod on Linux). */
export function notImplemented(method: string): never {
  throw nodeError('ERR_METHOD_NOT_IMPLEMENTED', `The ${method} method is not implemented`);
}

/** Node's AbortError for an aborted signal option. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const err = nodeError('ABORT_ERR', 'The operation was aborted', 'AbortError');
  (err as Error & { cause?: unknown }).cause = signal.reason;
  throw err;
}
