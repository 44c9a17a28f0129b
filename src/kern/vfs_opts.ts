// Checking mount option values, for every driver alike: a bad value is
// EINVAL naming the option.
import { kerr } from './errno.js';

type OptValue = string | number | boolean;

/** A non-negative integer (decimal, or octal with radix 8). */
export function vfs_intopt(name: string, v: OptValue, radix = 10): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && (radix === 8 ? /^0?[0-7]+$/ : /^\d+$/).test(v) ? parseInt(v, radix) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw kerr('EINVAL', `option ${name}=${String(v)}: not a valid number`);
  return n;
}

/** A switch given alone (or as true/false, 1/0). */
export function vfs_flagopt(name: string, v: OptValue): boolean {
  if (v === true || v === '' || v === 'true' || v === 1) return true;
  if (v === false || v === 'false' || v === 0) return false;
  throw kerr('EINVAL', `option ${name}=${String(v)}: takes no value`);
}
