// Conversions (NetBSD msdosfs_conv.c): DOS dates and times <-> Unix time,
// the OEM codepage of short names <-> Unicode, and the name rules of vfat.
import { kerr, timegm, timespec2fattime, type Timespec } from '../../kern/index.js';

// ---- codepage ----

/** Bytes 0x80..0xFF of IBM code page 437, as Unicode. */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐' +
  '└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

export class Codepage {
  private readonly toUni: string[] = [];
  private readonly fromUni = new Map<string, number>();
  constructor(readonly name: string, high: string) {
    for (let i = 0; i < 256; i++) {
      const c = i < 0x80 ? String.fromCharCode(i) : high[i - 0x80];
      this.toUni.push(c);
      if (!this.fromUni.has(c)) this.fromUni.set(c, i);
    }
  }
  decode(b: Uint8Array, from = 0, to = b.length): string {
    let s = '';
    for (let i = from; i < to; i++) s += this.toUni[b[i]];
    return s;
  }
  /** The character of one byte. */
  char(x: number): string {
    return this.toUni[x];
  }
  /** The byte for a character, or -1 when the codepage lacks it. */
  encodeChar(c: string): number {
    return this.fromUni.get(c) ?? -1;
  }
}

export const cp437 = new Codepage('437', CP437_HIGH);

export function codepage_byname(name: string): Codepage {
  if (name === '437' || name.toLowerCase() === 'cp437') return cp437;
  throw kerr('EINVAL', `codepage ${name}: only 437 is known`);
}

// ---- times ----

/** Unix seconds (UTC) + gmtoff -> DOS date and time (2 s units), clamped to 1980..2107. */
export function unix2dostime(t: Timespec, gmtoff: number): { date: number; time: number; tenth: number } {
  const f = timespec2fattime(t, gmtoff);
  return { date: f.date, time: f.time, tenth: f.centis };
}

/** DOS date/time (+ creation hundredths) in local time -> Unix time. A zero date is the epoch. */
export function dos2unixtime(date: number, time: number, tenth: number, gmtoff: number): Timespec {
  if (date === 0) return { sec: 0, nsec: 0 };
  const month = Math.min(Math.max((date >> 5) & 15, 1), 12);
  const day = Math.max(date & 31, 1);
  const ms = timegm(1980 + (date >> 9), month, day, (time >> 11) & 31, (time >> 5) & 63, (time & 31) * 2) * 1000 +
    Math.min(tenth, 199) * 10;
  const sec = Math.floor(ms / 1000) - gmtoff;
  return { sec, nsec: (ms % 1000) * 1e6 };
}

// ---- names ----

export const LFN_MAX = 255;

/**
 * vfat's rule for a name given by a user: no control characters nor
 * `"*\/:<>?\|`; trailing dots and spaces dropped, as Windows does.
 * Returns the name as stored.
 */
export function vfat_checkname(name: string): string {
  const s = vfat_striptail(name);
  if (s.length === 0) throw kerr('EINVAL', `name '${name}' is empty once trailing dots and spaces go`);
  if (s.length > LFN_MAX) throw kerr('ENAMETOOLONG');
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || '"*/:<>?\\|'.includes(s[i])) throw kerr('EINVAL', `character ${JSON.stringify(s[i])} not allowed on FAT`);
  }
  return s;
}

export function vfat_striptail(name: string): string {
  let n = name.length;
  while (n > 0 && (name[n - 1] === '.' || name[n - 1] === ' ')) n--;
  return name.slice(0, n);
}

/** Case folding for name comparison (FAT names are case-insensitive). */
export function name_fold(s: string): string {
  return s.toUpperCase();
}
