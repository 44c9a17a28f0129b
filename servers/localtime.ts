// The host's offset from UTC, for media that keep local times (FAT, exFAT).
// Asking Date (getTimezoneOffset) makes V8 load ICU's time zone data out of
// Node's binary: 7 MB read from disk when a server starts on a cold cache.
// The TZif file behind /etc/localtime (RFC 8536) answers the same question
// from a few KB; Date answers what the file cannot (a TZ variable, a time
// past the file's last transition under daylight-saving rules).
import { readFileSync } from 'node:fs';

const LOCALTIME = '/etc/localtime';

/** Seconds east of UTC at `ms` (ms since the epoch) in the host's time zone. */
export function hostGmtoff(ms = Date.now()): number {
  if (!process.env.TZ) {
    let tzif: Buffer;
    try {
      tzif = readFileSync(LOCALTIME);
    } catch {
      return 0; // no /etc/localtime: the C library's local time is UTC
    }
    const off = tzifGmtoff(tzif, ms);
    if (off !== null) return off;
  }
  return -new Date(ms).getTimezoneOffset() * 60;
}

/** A TZif file's offset (seconds east of UTC) at `ms`, or null where the file alone cannot say. */
export function tzifGmtoff(f: Buffer, ms: number): number | null {
  const HEADER = 44;
  if (f.length < HEADER || f.toString('latin1', 0, 4) !== 'TZif' || f[4] < 0x32 /* '2' */) return null;
  const counts = (at: number) => ({
    isut: f.readUInt32BE(at + 20), isstd: f.readUInt32BE(at + 24), leap: f.readUInt32BE(at + 28),
    time: f.readUInt32BE(at + 32), type: f.readUInt32BE(at + 36), char: f.readUInt32BE(at + 40),
  });
  // Version 2+ repeats the data with 64-bit times after the 32-bit block.
  const v1 = counts(0);
  const h = HEADER + v1.time * 5 + v1.type * 6 + v1.char + v1.leap * 8 + v1.isstd + v1.isut;
  if (f.length < h + HEADER || f.toString('latin1', h, h + 4) !== 'TZif') return null;
  const c = counts(h);
  const times = h + HEADER, idx = times + c.time * 8, types = idx + c.time;
  const footer = types + c.type * 6 + c.char + c.leap * 12 + c.isstd + c.isut;
  if (c.type === 0 || f.length < footer) return null;
  const t = BigInt(Math.floor(ms / 1000));
  let i = c.time - 1;
  while (i >= 0 && f.readBigInt64BE(times + i * 8) > t) i--;
  // Past the last transition the footer's TZ string rules; one with DST rules needs a calendar.
  if (i === c.time - 1 && f.toString('latin1', footer, f.length).includes(',')) return null;
  const type = i < 0 ? 0 : f[idx + i];
  return type < c.type ? f.readInt32BE(types + type * 6) : null;
}
