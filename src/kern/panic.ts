import { rumpuser_abort, rumpuser_putstr } from '../rumpuser/index.js';

/**
 * An invariant of the kernel's or a driver's own memory does not hold.
 * Prints `panic: <message>` and aborts: the process dumps core, and the
 * mount it served answers ENOTCONN. Never use for bad on-disk data (EIO).
 */
export function panic(message: string): never {
  rumpuser_putstr(`panic: ${message}\n`);
  rumpuser_abort();
}

/** KASSERT: panic when a kernel invariant is false. */
export function KASSERT(cond: unknown, message: string): asserts cond {
  if (!cond) panic(`kernel assertion failed: ${message}`);
}

/** Kernel log line (driver complaints about corrupt media, for instance). */
export function log(message: string): void {
  rumpuser_putstr(`rumpfs: ${message}\n`);
}
