// A server's time zone offset and log times come without Date's ICU time
// zone data (servers/localtime.ts, rumpuser isoTime): they must still be
// exactly what Date would have said.
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { hostGmtoff, tzifGmtoff } from '../servers/localtime.js';
import { isoTime } from '../src/rumpuser/index.js';

const savedTz = process.env.TZ;
afterEach(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

// Half-hour and 45-minute offsets, a DST of 30 minutes, DST abolished, the southern hemisphere.
const ZONES = ['Etc/UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu',
  'Australia/Lord_Howe', 'America/Sao_Paulo', 'Pacific/Chatham'];
// (+ 0: Date gives UTC as -0.)
const dateGmtoff = (ms: number) => -new Date(ms).getTimezoneOffset() * 60 + 0;
const INSTANTS = ['1960-01-01', '1985-07-01T12:00Z', '2021-03-28T00:59:59Z', '2021-03-28T01:00:00Z',
  '2026-01-15T12:00Z', '2026-07-15T12:00Z', '2037-07-01T12:00Z', '2045-07-01T12:00Z'].map(s => Date.parse(s));

it('the TZif offset is Date\'s own, in every zone at every instant it answers for', () => {
  let answered = 0;
  for (const zone of ZONES) {
    // tzdata is a dependency of the system (scripts/setup installs it).
    const tzif = readFileSync(`/usr/share/zoneinfo/${zone}`);
    process.env.TZ = zone;
    for (const ms of INSTANTS) {
      const off = tzifGmtoff(tzif, ms);
      // Past the file's last transition under DST rules, it leaves the answer to Date.
      if (off === null) continue;
      expect([zone, new Date(ms).toISOString(), off]).toEqual([zone, new Date(ms).toISOString(), dateGmtoff(ms)]);
      answered++;
    }
  }
  // Debian's tzdata carries transitions to 2037: only the later instant of DST zones falls back.
  expect(answered).toBeGreaterThanOrEqual(ZONES.length * (INSTANTS.length - 1));
  expect(tzifGmtoff(Buffer.from('TZif1 not a version 2 file'), 0)).toBeNull();
  expect(tzifGmtoff(Buffer.alloc(0), 0)).toBeNull();
});

it('the host offset follows /etc/localtime, and TZ when it is set', () => {
  delete process.env.TZ;
  const now = Date.now();
  const want = existsSync('/etc/localtime') ? dateGmtoff(now) : 0;
  expect(hostGmtoff(now)).toBe(want);
  process.env.TZ = 'Asia/Kolkata';
  expect(hostGmtoff(now)).toBe(5.5 * 3600);
  process.env.TZ = 'America/New_York';
  expect(hostGmtoff(Date.parse('2026-07-15T12:00Z'))).toBe(-4 * 3600);
});

it('log times read as toISOString', () => {
  for (const ms of [0, 1, 999, 951782400000 /* 2000-02-29 */, Date.parse('2026-12-31T23:59:59.999Z'), Date.now(), 253402300799999]) {
    expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  }
});
