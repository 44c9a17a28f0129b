// File name translation (NetBSD's cd9660_util.c): ISO 9660 identifiers as
// Linux shows them with map=normal/off, and Joliet's UCS-2 names.
import { utf16be } from '../../kern/index.js';

/** map= option: how plain ISO 9660 names are shown (Linux isofs). */
export type IsoMapping = 'normal' | 'off' | 'acorn';

const utf8 = new TextDecoder('utf-8');

/** A name as a POSIX file name: no `/`, no NUL (media may hold either). */
function sanitize(s: string): string {
  return s.replace(/[/\0]/g, '_');
}

/** Drop a `;N` version and then trailing dots (Linux: "FOO.;1" -> "FOO"). */
function stripVersion(s: string): string {
  const semi = s.lastIndexOf(';');
  if (semi >= 0 && /^\d*$/.test(s.slice(semi + 1))) s = s.slice(0, semi);
  return s.replace(/\.+$/, '') || s;
}

/** A plain ISO 9660 identifier (d-characters, bytes taken as Latin-1). */
export function isofntrans(raw: Uint8Array, map: IsoMapping): string {
  let s = String.fromCharCode(...raw);
  // map=off and map=acorn (whose Archimedes attributes are not interpreted) show names as recorded.
  if (map === 'normal') s = stripVersion(s).toLowerCase().replace(/;/g, '.');
  return sanitize(s);
}

/** A Joliet identifier: UCS-2 big-endian (surrogate pairs kept, lone ones replaced). */
export function jolietfntrans(raw: Uint8Array): string {
  return sanitize(stripVersion(utf16be(raw)));
}

/** A Rock Ridge NM name: bytes, shown as UTF-8. */
export function rripfntrans(raw: Uint8Array): string {
  return rripfntransAt(raw, 0, raw.length);
}

/** rripfntrans of b[start, end), read in place. */
export function rripfntransAt(b: Uint8Array, start: number, end: number): string {
  // One decoder call: ~2.5 times quicker than building an ASCII name a
  // character at a time, and without a string of garbage per character
  // (a cold stat of 10,000 names allocated 10 MB there). Nearly every name
  // then has no `/` or NUL to replace.
  const s = utf8.decode(b.subarray(start, end));
  return s.indexOf('/') < 0 && s.indexOf('\0') < 0 ? s : sanitize(s);
}
