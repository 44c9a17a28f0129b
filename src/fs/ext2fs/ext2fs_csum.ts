// Checksums of ext4's metadata_csum: crc32c, as the kernel's crc32c_le (no
// inversion at either end; the caller seeds it).

const table32 = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** crc32c_le(crc, buf): the raw update, as ext4_chksum uses it. */
export function crc32c(crc: number, buf: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = table32[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

export function le32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
