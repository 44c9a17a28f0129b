// Node's time arguments (Date, seconds as number or numeric string) as kernel timespecs.
import { errnos, KernError, timespecFromMs, type Timespec } from '../kern/index.js';

export type TimeLike = Date | number | string;

export function toTimespec(t: TimeLike): Timespec {
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Number(t) * 1000 : t * 1000;
  if (!Number.isFinite(ms)) throw new KernError(errnos.EINVAL, `bad time ${String(t)}`);
  return timespecFromMs(ms);
}
