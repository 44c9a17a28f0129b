// OSTA Compressed Unicode (UDF 2.1.1): a compression id, then 8-bit
// characters (Latin-1 code points) or big-endian 16-bit units. Names are
// shown as POSIX names: no `/` and no NUL (media may hold either).
import { utf16be } from '../../kern/index.js';
import { udf_corrupt } from './ecma167.js';

/** CS0 bytes (compression id first) -> a string. A bad compression id is EIO. */
export function udf_cs0(b: Uint8Array, where: string): string {
  if (b.length === 0) return '';
  const id = b[0];
  const body = b.subarray(1);
  // 254 and 255 (UDF 2.60) are 8 and 16 bits as well.
  if (id === 8 || id === 254) return String.fromCharCode(...body);
  if (id === 16 || id === 255) {
    if (body.length & 1) udf_corrupt(`${where}: 16-bit name of odd length ${body.length}`);
    return utf16be(body);
  }
  udf_corrupt(`${where}: name with compression id ${id}`);
}

/** A dstring (1/7.2.12): CS0 whose used length is in the last byte. */
export function udf_dstring(b: Uint8Array, where: string): string {
  const n = b[b.length - 1];
  if (n === 0) return '';
  if (n > b.length - 1) udf_corrupt(`${where}: dstring length ${n} in a field of ${b.length}`);
  return udf_cs0(b.subarray(0, n), where).replace(/\0+$/, '');
}

/** A file identifier as a POSIX file name. */
export function udf_filename(b: Uint8Array, where: string): string {
  return udf_cs0(b, where).replace(/[/\0]/g, '_');
}
