// Output formats shared by the listing commands (ls, stat, find): mode
// strings, times as coreutils print them in the C locale, byte-order sorting.
import type { Stats } from '../../src/ukfs/index.js';

const TYPE_CHAR: [(s: Stats) => boolean, string][] = [
  [s => s.isDirectory(), 'd'], [s => s.isSymbolicLink(), 'l'], [s => s.isCharacterDevice(), 'c'],
  [s => s.isBlockDevice(), 'b'], [s => s.isFIFO(), 'p'], [s => s.isSocket(), 's'],
];

/** "drwxr-sr-t" as ls -l and stat %A show it. */
export function modeString(st: Stats): string {
  const m = st.mode;
  const t = TYPE_CHAR.find(([f]) => f(st))?.[1] ?? '-';
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return t + rwx((m >> 6) & 7, !!(m & 0o4000), 's') + rwx((m >> 3) & 7, !!(m & 0o2000), 's') + rwx(m & 7, !!(m & 0o1000), 't');
}

/** stat %F */
export function typeName(st: Stats): string {
  if (st.isFile()) return st.size === 0 ? 'regular empty file' : 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isCharacterDevice()) return 'character special file';
  if (st.isBlockDevice()) return 'block special file';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** ls -l's time: "Mar  5 14:02" within the last six months, else "Mar  5  2019" (local time). */
export function lsTime(d: Date, now = Date.now()): string {
  const recent = d.getTime() <= now && now - d.getTime() < (365.2425 * 24 * 3600 * 1000) / 2;
  const day = String(d.getDate()).padStart(2, ' ');
  return `${MONTHS[d.getMonth()]} ${day} ${recent ? `${two(d.getHours())}:${two(d.getMinutes())}` : ` ${d.getFullYear()}`}`;
}

/** stat's "2026-12-04 05:14:52.123456789 +0000" (local time). */
export function statTime(d: Date, ns: bigint): string {
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${two(Math.floor(Math.abs(off) / 60))}${two(Math.abs(off) % 60)}`;
  const frac = String(ns % 1_000_000_000n).padStart(9, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${frac} ${zone}`;
}

/** The C locale's order: bytes of the UTF-8 names. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** posix join that keeps the user's spelling of the first part ('.' stays out, 'd/' gets no double slash). */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}
