// Reading requests and writing replies of the FUSE protocol: no I/O, no
// state, so that it can be tested and fuzzed on plain buffers. A request that
// does not hold what its opcode needs throws ProtocolError (answered EINVAL
// by the session), never anything else.
import { DIRENT_SIZE, ENTRY_OUT_SIZE, IN_HEADER_SIZE, OUT_HEADER_SIZE } from './abi.js';

const TWO32 = 4294967296;

/** A request the kernel should never send: too short, a name without its NUL, a length that lies. */
export class ProtocolError extends Error {}

export interface Timespec { sec: number; nsec: number }

/** struct fuse_attr, as the server fills it. */
export interface FuseAttr {
  ino: number; size: number; blocks: number;
  atime: Timespec; mtime: Timespec; ctime: Timespec;
  /** File type bits and permissions (st_mode). */
  mode: number; nlink: number; uid: number; gid: number; rdev: number; blksize: number;
}

/** A LOOKUP-style answer: the node the kernel now holds one more lookup of, with timeouts in seconds. */
export interface EntryOut {
  nodeid: number; generation: number; entryValid: number; attrValid: number; attr: FuseAttr;
}

export interface AttrOut { attrValid: number; attr: FuseAttr }
export interface OpenOut { fh: number; openFlags: number }
export interface StatfsOut {
  blocks: number; bfree: number; bavail: number; files: number; ffree: number;
  bsize: number; namelen: number; frsize: number;
}

/** fuse_in_header */
export interface InHeader {
  len: number; opcode: number; unique: number; nodeid: number; uid: number; gid: number; pid: number;
}

/** The fixed header of a request of n bytes in buf. */
export function decodeHeader(buf: Buffer, n: number): InHeader {
  if (n < IN_HEADER_SIZE) throw new ProtocolError(`request of ${n} bytes, shorter than its header`);
  const len = buf.readUInt32LE(0);
  if (len !== n) throw new ProtocolError(`request says ${len} bytes, ${n} were read`);
  return {
    len, opcode: buf.readUInt32LE(4), unique: u64(buf, 8), nodeid: u64(buf, 16),
    uid: buf.readUInt32LE(24), gid: buf.readUInt32LE(28), pid: buf.readUInt32LE(32),
  };
}

function u64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO32;
}

/** A cursor over a request's arguments (after the header), bounds-checked. */
export class ArgReader {
  private pos = IN_HEADER_SIZE;
  constructor(private readonly buf: Buffer, private readonly end: number) {}

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw new ProtocolError(`request too short: ${n} bytes wanted at ${at} of ${this.end}`);
    this.pos += n;
    return at;
  }

  u32(): number { return this.buf.readUInt32LE(this.need(4)); }
  u64(): number { return u64(this.buf, this.need(8)); }
  /** fuse's u64 seconds that carry an s64 (times before 1970). */
  i64(): number { const at = this.need(8); return this.buf.readUInt32LE(at) + this.buf.readInt32LE(at + 4) * TWO32; }
  skip(n: number): void { this.need(n); }

  /** A NUL-terminated name. */
  name(): string {
    const at = this.pos;
    const nul = this.buf.indexOf(0, at);
    if (nul < 0 || nul >= this.end) throw new ProtocolError('name without its terminating NUL');
    this.pos = nul + 1;
    return this.buf.toString('utf8', at, nul);
  }

  /** n bytes, as a view into the request buffer (valid until the buffer is read into again). */
  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  get remaining(): number { return this.end - this.pos; }
}

/**
 * A 32-bit value at off, little-endian, as bytes: v is an integer in
 * [-2^31, 2^32) (negative ones as two's complement). Every reply field goes
 * through here: byte stores, without Buffer.writeUInt32LE's argument checks
 * (a cost per field per reply, largest while a fresh server runs cold).
 */
function put32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v;
  buf[off + 1] = v >>> 8;
  buf[off + 2] = v >>> 16;
  buf[off + 3] = v >>> 24;
}

function putU64(buf: Buffer, off: number, v: number): void {
  // Negative or fractional values would be a server bug; clamp rather than write garbage.
  const n = v > 0 ? Math.floor(v) : 0;
  put32(buf, off, n % TWO32);
  put32(buf, off + 4, Math.floor(n / TWO32) % TWO32);
}

/** A timeout in seconds as fuse's (seconds u64, nanoseconds u32) pair. */
function putValid(buf: Buffer, secOff: number, nsecOff: number, seconds: number): void {
  const s = Math.max(0, seconds);
  const whole = Math.floor(s);
  putU64(buf, secOff, whole);
  put32(buf, nsecOff, Math.min(999_999_999, Math.round((s - whole) * 1e9)));
}

function putTime(buf: Buffer, secOff: number, nsecOff: number, t: Timespec): void {
  // fuse_attr's seconds are u64 carrying an s64: times before 1970 as two's complement.
  const sec = Math.trunc(t.sec);
  if (sec >= 0) putU64(buf, secOff, sec);
  else { put32(buf, secOff, sec | 0); put32(buf, secOff + 4, -1); }
  put32(buf, nsecOff, Math.min(999_999_999, Math.max(0, Math.trunc(t.nsec))));
}

/** struct fuse_attr at off. */
export function encodeAttr(buf: Buffer, off: number, a: FuseAttr): void {
  putU64(buf, off, a.ino);
  putU64(buf, off + 8, a.size);
  putU64(buf, off + 16, a.blocks);
  putTime(buf, off + 24, off + 48, a.atime);
  putTime(buf, off + 32, off + 52, a.mtime);
  putTime(buf, off + 40, off + 56, a.ctime);
  put32(buf, off + 60, a.mode >>> 0);
  put32(buf, off + 64, a.nlink >>> 0);
  put32(buf, off + 68, a.uid >>> 0);
  put32(buf, off + 72, a.gid >>> 0);
  put32(buf, off + 76, a.rdev >>> 0);
  put32(buf, off + 80, a.blksize >>> 0);
  put32(buf, off + 84, 0);
}

/** struct fuse_entry_out at off (ENTRY_OUT_SIZE bytes). */
export function encodeEntry(buf: Buffer, off: number, e: EntryOut): void {
  putU64(buf, off, e.nodeid);
  putU64(buf, off + 8, e.generation);
  putValid(buf, off + 16, off + 32, e.entryValid);
  putValid(buf, off + 24, off + 36, e.attrValid);
  encodeAttr(buf, off + 40, e.attr);
}

export function encodeAttrOut(buf: Buffer, off: number, a: AttrOut): void {
  putValid(buf, off, off + 8, a.attrValid);
  put32(buf, off + 12, 0);
  encodeAttr(buf, off + 16, a.attr);
}

export function encodeOpen(buf: Buffer, off: number, o: OpenOut): void {
  putU64(buf, off, o.fh);
  buf.writeUInt32LE(o.openFlags >>> 0, off + 8);
  buf.writeUInt32LE(0, off + 12);
}

export function encodeStatfs(buf: Buffer, off: number, s: StatfsOut): void {
  putU64(buf, off, s.blocks);
  putU64(buf, off + 8, s.bfree);
  putU64(buf, off + 16, s.bavail);
  putU64(buf, off + 24, s.files);
  putU64(buf, off + 32, s.ffree);
  buf.writeUInt32LE(s.bsize >>> 0, off + 40);
  buf.writeUInt32LE(s.namelen >>> 0, off + 44);
  buf.writeUInt32LE(s.frsize >>> 0, off + 48);
  buf.fill(0, off + 52, off + 80);
}

/** fuse_out_header: len covers header and payload; error is 0 or -errno (or a notify code with unique 0). */
export function encodeOutHeader(buf: Buffer, len: number, error: number, unique: number): void {
  put32(buf, 0, len >>> 0);
  put32(buf, 4, error | 0);
  putU64(buf, 8, unique);
}

const align8 = (n: number) => (n + 7) & ~7;

/** Buffer.byteLength(s) (UTF-8), counted here for an ASCII name (nearly every one). */
export function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

/** Size of one fuse_dirent (or fuse_direntplus) for a name of nameLen bytes, padded to 8. */
export function direntSize(nameLen: number, plus: boolean): number {
  return align8((plus ? ENTRY_OUT_SIZE : 0) + DIRENT_SIZE + nameLen);
}

/** DT_* of an st_mode. */
export const direntType = (mode: number) => (mode >>> 12) & 0o17;

/** Reply buffers DirentWriter.recycle gave back, all zero. */
const direntBuffers: Buffer[] = [];
const DIRENT_BUFFERS = 4;

/**
 * Fills a READDIR or READDIRPLUS reply up to the size the kernel asked for.
 * add() returns false, writing nothing, once an entry would not fit: the
 * caller must then not count that entry as looked up.
 */
export class DirentWriter {
  readonly buf: Buffer;
  private pos = OUT_HEADER_SIZE;

  constructor(readonly size: number, readonly plus: boolean) {
    // A buffer an earlier reply of this size gave back (zeroed again), else a new one:
    // a fresh 4 KiB buffer per READDIR is an ArrayBuffer to allocate and collect each time.
    const n = OUT_HEADER_SIZE + size, last = direntBuffers[direntBuffers.length - 1];
    this.buf = last?.length === n ? direntBuffers.pop()! : Buffer.alloc(n);
  }

  /**
   * The reply has been written: the buffer, zeroed where entries went, serves
   * a later writer. Nothing may use this writer or its reply afterwards.
   */
  recycle(): void {
    if (direntBuffers.length >= DIRENT_BUFFERS) return;
    this.buf.fill(0, 0, this.pos);
    direntBuffers.push(this.buf);
  }

  /** Would an entry with this name fit? */
  fits(name: string): boolean {
    return this.pos + direntSize(utf8Length(name), this.plus) <= this.buf.length;
  }

  /**
   * One entry; off is the offset the kernel passes back to continue after
   * it. entry: READDIRPLUS's lookup result (null: no attributes, no lookup).
   */
  add(name: string, ino: number, mode: number, off: number, entry: EntryOut | null = null): boolean {
    const nameLen = utf8Length(name);
    const size = direntSize(nameLen, this.plus);
    if (this.pos + size > this.buf.length) return false;
    // The buffer starts zeroed and each byte is written once at most: a bare
    // entry's entry_out and the name's padding stay zero (no fill per entry).
    const buf = this.buf;
    let at = this.pos;
    if (this.plus) {
      if (entry) encodeEntry(buf, at, entry);
      at += ENTRY_OUT_SIZE;
    }
    putU64(buf, at, ino);
    putU64(buf, at + 8, off);
    put32(buf, at + 16, nameLen);
    put32(buf, at + 20, direntType(mode));
    at += DIRENT_SIZE;
    if (nameLen === name.length) {
      // ASCII (nearly every name): its bytes are its char codes.
      for (let i = 0; i < nameLen; i++) buf[at + i] = name.charCodeAt(i);
    } else {
      buf.write(name, at, nameLen, 'utf8');
    }
    this.pos += size;
    return true;
  }

  get count(): number { return this.pos - OUT_HEADER_SIZE; }
  /** Bytes left for entries. */
  get room(): number { return this.buf.length - this.pos; }

  /** The reply (header to be filled by the session) as a view. */
  reply(): Buffer { return this.buf.subarray(0, this.pos); }
}

