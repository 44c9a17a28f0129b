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

/** Seconds since the epoch of the earliest and latest times FAT and exFAT store (1980-01-01, 2107-12-31 23:59:59). */
const FAT_FIRST = 315532800, FAT_LAST = 4354819199;

/**
 * A time as FAT and exFAT store it (FreeBSD's timespec2fattime): the DOS
 * date, the time in 2-second units and the hundredths past it, in a zone
 * gmtoff seconds east of UTC, clamped to 1980-01-01..2107-12-31 23:59:59.99.
 * By arithmetic (Hinnant's civil_from_days), not Date: drivers stamp a time
 * on every create and removal.
 */
export function timespec2fattime(t: Timespec, gmtoff: number): { date: number; time: number; centis: number } {
  let sec = t.sec + gmtoff, centis = floorDiv(Math.min(999_999_999, Math.max(0, t.nsec)), 10_000_000);
  if (sec < FAT_FIRST) { sec = FAT_FIRST; centis = 0; }
  if (sec > FAT_LAST) { sec = FAT_LAST; centis = 99; }
  const days = floorDiv(sec, 86400), inDay = sec - days * 86400;
  const z = days + 719468;
  const era = floorDiv(z, 146097);
  const doe = z - era * 146097;
  const yoe = floorDiv(doe - floorDiv(doe, 1460) + floorDiv(doe, 36524) - floorDiv(doe, 146096), 365);
  const doy = doe - (365 * yoe + floorDiv(yoe, 4) - floorDiv(yoe, 100));
  const mp = floorDiv(5 * doy + 2, 153);
  const day = doy - floorDiv(153 * mp + 2, 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = floorDiv(inDay, 3600), m = floorDiv(inDay - h * 3600, 60), s = inDay - h * 3600 - m * 60;
  return {
    date: ((year - 1980) << 9) | (month << 5) | day,
    time: (h << 11) | (m << 5) | (s >> 1),
    centis: (s & 1) * 100 + centis,
  };
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
