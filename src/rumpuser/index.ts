// rumpuser: the hypercall layer, the only code under src/ that touches the
// host. The kernel calls these; drivers never do.
import { writeSync } from 'node:fs';

/** Print to the console (stderr), as the kernel's printf. */
let logTag: string | null = null;

/**
 * From now on, each line is written with the time and tag in front: for a
 * background server whose standard error is a log shared with others.
 */
export function rumpuser_logtag(tag: string): void {
  logTag = tag;
}

export function rumpuser_putstr(s: string): void {
  if (logTag !== null) {
    const head = `${isoTime(Date.now())} ${logTag}: `;
    s = s.replace(/^(?=.)/gm, head);
  }
  try { writeSync(2, s); } catch { /* nowhere left to print */ }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * `Date.prototype.toISOString`'s text, from the UTC getters: toISOString
 * loads ICU's time zone data out of Node's binary (11 MB read from disk on a
 * cold start, ~1 ms warm) before it prints a time that needs none.
 */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** Abort the process: SIGABRT and a core dump where the system allows. */
export function rumpuser_abort(): never {
  process.abort();
}

// Wall-clock time: the epoch offset taken once, then the monotonic clock,
// so that time never runs backwards within a process. Seconds and
// nanoseconds as numbers, not a BigInt of nanoseconds to divide: files'
// times are set by the thousand (four BigInts each were a tenth of what an
// unlink allocated).
const [monoSec0, monoNsec0] = process.hrtime();
const epochMs0 = Date.now();
const epochSec0 = Math.floor(epochMs0 / 1000), epochNsec0 = (epochMs0 % 1000) * 1_000_000;

/** Wall-clock time since the epoch: seconds, and nanoseconds in [0, 1e9). */
export function rumpuser_clock_realtime(): { sec: number; nsec: number } {
  const [s, ns] = process.hrtime();
  let sec = epochSec0 + (s - monoSec0), nsec = epochNsec0 + (ns - monoNsec0);
  const carry = Math.floor(nsec / 1_000_000_000);
  sec += carry;
  nsec -= carry * 1_000_000_000;
  return { sec, nsec };
}

/** Monotonic milliseconds, for timeouts and ageing (not performance.now(): its first call loads perf_hooks, ten modules, into every server's start). */
export function rumpuser_clock_monotonic_ms(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A timer that never keeps the process alive on its own. */
export function rumpuser_timer(ms: number, fn: () => void): { cancel(): void } {
  const t = setInterval(fn, ms);
  t.unref();
  return { cancel: () => clearInterval(t) };
}

export function rumpuser_getenv(name: string): string | undefined {
  return process.env[name];
}
