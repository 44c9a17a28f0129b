// The up-case table: how names compare (case-insensitively) and hash. Stored
// compressed: 0xFFFF followed by a count skips that many identity mappings.
import { kerr, log } from '../../kern/index.js';
import { name_hash, table_checksum } from './exfat.js';

export class Upcase {
  private constructor(private readonly map: Uint16Array) {}

  /** Decode the table; its checksum must match the one in its directory entry. */
  static parse(raw: Uint8Array, checksum: number, what: string): Upcase {
    const sum = table_checksum(raw);
    if (sum !== checksum) {
      log(`exfat: ${what}: up-case table checksum ${sum.toString(16)} != ${checksum.toString(16)}`);
      throw kerr('EIO', 'up-case table checksum mismatch');
    }
    const map = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) map[i] = i;
    let c = 0;
    for (let o = 0; o + 1 < raw.length && c < 65536; o += 2) {
      const u = raw[o] | (raw[o + 1] << 8);
      if (u === 0xffff && o + 3 < raw.length) {
        o += 2;
        c += raw[o] | (raw[o + 1] << 8);
      } else {
        map[c++] = u;
      }
    }
    return new Upcase(map);
  }

  up(units: ArrayLike<number>): Uint16Array {
    const out = new Uint16Array(units.length);
    for (let i = 0; i < units.length; i++) out[i] = this.map[units[i]];
    return out;
  }

  /** The key names are found by: up-cased, as a string. */
  key(units: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < units.length; i++) s += String.fromCharCode(this.map[units[i]]);
    return s;
  }

  hash(units: ArrayLike<number>): number {
    return name_hash(this.up(units));
  }
}

/** UTF-16 units of a JavaScript string. */
export function units_of(s: string): Uint16Array {
  const u = new Uint16Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}

export function string_of(u: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
  return s;
}
