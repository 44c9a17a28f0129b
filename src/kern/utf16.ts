// UCS-2 / UTF-16 big-endian names (Joliet, UDF's 16-bit OSTA CS0).
// Not TextDecoder('utf-16be'): making one loads an ICU converter out of
// Node's binary (5.6 MB read from disk when a server starts on a cold cache),
// where Node's own UTF-16LE decoder needs nothing.

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Big-endian UTF-16 (an odd last byte ignored) -> a string; lone surrogates become U+FFFD, a BOM stays a character. */
export function utf16be(b: Uint8Array): string {
  const le = Buffer.from(b.subarray(0, b.length & ~1)).swap16();
  return le.toString('utf16le').replace(LONE_SURROGATE, '\ufffd');
}
