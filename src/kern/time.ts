import { rumpuser_clock_realtime } from '../rumpuser/index.js';

/** Seconds and nanoseconds since the epoch, as struct timespec. */
export interface Timespec { sec: number; nsec: number }

export function nanotime(): Timespec {
  return rumpuser_clock_realtime();
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
