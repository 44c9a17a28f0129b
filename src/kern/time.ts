import { rumpuser_clock_realtime } from '../rumpuser/index.js';

/** Seconds and nanoseconds since the epoch, as struct timespec. */
export interface Timespec { sec: number; nsec: number }

export function nanotime(): Timespec {
  return rumpuser_clock_realtime();
}

/**
 * a / b rounded down, for integers, without a fractional step between:
 * code not yet optimized makes a heap number of each one.
 */
function floorDiv(a: number, b: number): number {
  const r = a % b;
  return (a - r) / b - (r < 0 ? 1 : 0);
}

/**
 * Seconds since the epoch of a UTC calendar date (proleptic Gregorian,
 * month 1-12; a day, hour, minute or second past its range carries over,
 * as with Date.UTC), by arithmetic (Hinnant's days_from_civil): drivers
 * convert every record's dates, and Date costs a call into the runtime each.
 */
export function timegm(year: number, month: number, day: number, h: number, m: number, s: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = floorDiv(y, 400);
  const yoe = y - era * 400;
  const doy = floorDiv(153 * (month > 2 ? month - 3 : month + 9) + 2, 5);
  const doe = yoe * 365 + floorDiv(yoe, 4) - floorDiv(yoe, 100) + doy;
  const days = era * 146097 + doe - 719468;
  return (days + day - 1) * 86400 + h * 3600 + m * 60 + s;
}

export function timespecFromMs(ms: number): Timespec {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.round((ms - sec * 1000) * 1e6) };
}

export function timespecToMs(t: Timespec): number {
  return t.sec * 1000 + t.nsec / 1e6;
}

export function timespecCmp(a: Timespec, b: Timespec): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.nsec - b.nsec;
}
