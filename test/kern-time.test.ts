// The kernel's calendar arithmetic (no Date on a request's path) says what Date says.
import { expect, it } from 'vitest';
import { timegm, timespec2fattime } from '../src/kern/index.js';

/** The same conversion through Date, as the drivers did it. */
function viaDate(sec: number, nsec: number, gmtoff: number) {
  let ms = (sec + gmtoff) * 1000 + Math.floor(nsec / 1e6);
  ms = Math.min(Math.max(ms, Date.UTC(1980, 0, 1)), Date.UTC(2107, 11, 31, 23, 59, 59, 999));
  const d = new Date(ms), s = d.getUTCSeconds();
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (s >> 1),
    centis: (s & 1) * 100 + Math.floor(d.getUTCMilliseconds() / 10),
  };
}

it('timegm: every month of 1800-2300, and days, hours and seconds past their range, as Date.UTC', () => {
  for (let y = 1800; y <= 2300; y++) {
    for (let mo = 1; mo <= 12; mo++) {
      for (const [d, h, s] of [[1, 0, 0], [28, 23, 59], [31, 13, 7], [32, 25, 61]]) {
        expect(timegm(y, mo, d, h, 7, s)).toBe(Date.UTC(y, mo - 1, d, h, 7, s) / 1000);
      }
    }
  }
});

it('timespec2fattime: clamped to 1980..2107, in any zone, as Date gives it', () => {
  const edges = [-1e10, -1, 0, 315532799, 315532800, 951782400, 1700000000, 4107542400, 4354819199, 4354819200, 1e11];
  const cases: [number, number][] = [];
  for (const e of edges) for (const d of [-7200, -1, 0, 1, 3600]) cases.push([e + d, 0], [e + d, 999_999_999], [e + d, 5e8]);
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 20000; i++) cases.push([Math.floor(rnd() * 4.5e9) - 1e8, Math.floor(rnd() * 1e9)]);
  for (const [sec, nsec] of cases) {
    for (const gmtoff of [0, 3600, -18000, 20700]) expect(timespec2fattime({ sec, nsec }, gmtoff)).toEqual(viaDate(sec, nsec, gmtoff));
  }
});
