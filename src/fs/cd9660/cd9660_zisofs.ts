// zisofs (Rock Ridge ZF "pz"): file data compressed block by block with
// zlib, as mkzftree and libisofs write it, uncompressed on read like Linux's
// isofs/compress.c. Block pointers and compressed lengths are checked, and
// inflating stops at the block size, so a crafted block cannot blow up.
import { isKernError, kerr, log } from '../../kern/index.js';
import type { Zisofs } from './cd9660_rrip.js';

/** Reads the recorded (compressed) bytes at an offset; returns how many there were. */
export type RawReader = (buf: Uint8Array, offset: number) => Promise<number>;

function corrupt(what: string): never {
  log(`cd9660: zisofs: ${what}`);
  throw kerr('EIO', `zisofs: ${what}`);
}

async function rawExactly(raw: RawReader, length: number, offset: number, what: string): Promise<Uint8Array<ArrayBuffer>> {
  const b = new Uint8Array(length);
  if (await raw(b, offset) !== length) corrupt(`${what} (${length} bytes at ${offset}) is past the end of the file`);
  return b;
}

/** Inflate one zlib stream into at most `limit` bytes. */
async function inflate(data: Uint8Array<ArrayBuffer>, limit: number): Promise<Uint8Array> {
  const ds = new DecompressionStream('deflate');
  const writer = ds.writable.getWriter();
  // Failures show on the reading side; these would only repeat them.
  writer.write(data).catch(() => {});
  writer.close().catch(() => {});
  const reader = ds.readable.getReader();
  const out = new Uint8Array(limit);
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return out.subarray(0, n);
      if (n + value.length > limit) corrupt(`a block inflates past ${limit} bytes`);
      out.set(value, n);
      n += value.length;
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    if (isKernError(e)) throw e;
    corrupt(`bad compressed block: ${String(e)}`);
  }
}

/** Read uncompressed bytes [offset, offset + buf.length) of a zisofs file. */
export async function zisofs_read(raw: RawReader, z: Zisofs, buf: Uint8Array, offset: number): Promise<number> {
  if (z.blockShift < 15 || z.blockShift > 17) corrupt(`block size 2^${z.blockShift} is not 32, 64 or 128 KiB`);
  const bs = 2 ** z.blockShift;
  const want = Math.max(0, Math.min(buf.length, z.size - offset));
  if (want === 0) return 0;
  const first = Math.floor(offset / bs), last = Math.floor((offset + want - 1) / bs);
  const table = await rawExactly(raw, 4 * (last - first + 2), z.headerSize + 4 * first, 'block pointer table');
  const dv = new DataView(table.buffer);
  for (let b = first; b <= last; b++) {
    const start = dv.getUint32(4 * (b - first), true), end = dv.getUint32(4 * (b - first + 1), true);
    // zlib never needs much more than the input's size, so a longer block is damage.
    if (end < start || end - start > bs + (bs >> 3) + 64) corrupt(`block ${b} pointers ${start}..${end} are not sane`);
    const data = end === start ? new Uint8Array(0) : await inflate(await rawExactly(raw, end - start, start, `block ${b}`), bs);
    // A short (or empty) block reads as zeros past what it holds, as Linux's.
    const lo = Math.max(offset, b * bs), hi = Math.min(offset + want, (b + 1) * bs);
    buf.fill(0, lo - offset, hi - offset);
    const from = lo - b * bs;
    buf.set(data.subarray(from, Math.min(data.length, hi - b * bs)), lo - offset);
  }
  return want;
}
