// LZNT1, NTFS's compression (NetBSD's ntfs_uncompunit, Linux's
// ntfs_decompress): a compression unit's data is a sequence of chunks of at
// most 4096 uncompressed bytes, each with a 16-bit header (bit 15:
// compressed; low 12 bits: chunk bytes - 3). A compressed chunk is groups of
// a flag byte and eight tokens: a literal byte, or a 16-bit back reference
// whose split between offset and length depends on the position in the
// chunk. Output past what the chunks give is zeros. Every back reference and
// length is checked: a crafted unit cannot read before the chunk or write
// past the unit.
import { corrupt } from './ntfs.js';

const CHUNK = 4096;

/** Decompress `src` into `out` (one compression unit, zero-filled past the data). */
export function lznt1_decompress(src: Uint8Array, out: Uint8Array, where: string): void {
  let sp = 0, op = 0;
  while (op < out.length && sp + 2 <= src.length) {
    const h = src[sp] | (src[sp + 1] << 8);
    if (h === 0) break;
    const clen = (h & 0x0fff) + 1;
    sp += 2;
    if (sp + clen > src.length) corrupt(`${where}: LZNT1 chunk of ${clen} bytes runs past the compressed data`);
    const cend = sp + clen;
    const chunkStart = op;
    const chunkEnd = Math.min(out.length, op + CHUNK);
    if (!(h & 0x8000)) {
      // Stored chunk: the bytes as they are.
      if (op + clen > out.length) corrupt(`${where}: LZNT1 stored chunk runs past the compression unit`);
      out.set(src.subarray(sp, cend), op);
      op += clen;
      sp = cend;
      continue;
    }
    while (sp < cend && op < chunkEnd) {
      const tags = src[sp++];
      for (let bit = 0; bit < 8 && sp < cend && op < chunkEnd; bit++) {
        if (!(tags & (1 << bit))) {
          out[op++] = src[sp++];
          continue;
        }
        if (sp + 2 > cend) corrupt(`${where}: LZNT1 back reference cut off`);
        const t = src[sp] | (src[sp + 1] << 8);
        sp += 2;
        const pos = op - chunkStart;
        if (pos === 0) corrupt(`${where}: LZNT1 back reference at the start of a chunk`);
        let lmask = 0xfff, dshift = 12;
        for (let i = pos - 1; i >= 0x10; i >>= 1) { lmask >>= 1; dshift--; }
        const back = (t >> dshift) + 1;
        const len = (t & lmask) + 3;
        if (back > pos) corrupt(`${where}: LZNT1 back reference ${back} bytes before a chunk position of ${pos}`);
        if (op + len > chunkEnd) corrupt(`${where}: LZNT1 back reference runs past the chunk`);
        // Overlapping copies repeat the bytes just written, so byte by byte.
        for (let i = 0; i < len; i++, op++) out[op] = out[op - back];
      }
    }
    sp = cend;
    // A chunk that ends short of 4096 bytes is padded with zeros, unless it is the last one.
    if (op < chunkEnd && sp + 2 <= src.length && (src[sp] | (src[sp + 1] << 8)) !== 0) {
      out.fill(0, op, chunkEnd);
      op = chunkEnd;
    }
  }
  out.fill(0, op);
}
