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

/**
 * The 32-bit words of b's memory (the host's order: little-endian, as
 * everywhere in this transport): a field is one typed-array load or store,
 * not a call and four byte operations (a cost per field per request, largest
 * while a fresh server still runs its code unoptimized). The views of the
 * last two memories are kept: a session alternates between its request and
 * reply buffers. Structures sit at multiples of 8 in buffers that start
 * aligned (Buffer.alloc, a large allocUnsafe, the pool's 8-byte slots).
 */
let memA: ArrayBufferLike | null = null, memB: ArrayBufferLike | null = null;
let wordsA: Uint32Array = new Uint32Array(0), wordsB = wordsA;
function words(b: Uint8Array): Uint32Array {
  const mem = b.buffer;
  if (mem === memA) return wordsA;
  if (mem !== memB) {
    memB = mem;
    wordsB = new Uint32Array(mem, 0, mem.byteLength >>> 2);
  }
  // The most recent first (plain swaps: a destructuring swap allocates an array).
  const m = memA, w = wordsA;
  memA = memB;
  wordsA = wordsB;
  memB = m;
  wordsB = w;
  return wordsA;
}

/** The index of the word at byte off of b. */
function at32(b: Uint8Array, off: number): number {
  const o = b.byteOffset + off;
  if (o & 3) throw new ProtocolError(`a field at byte ${off} is not 4-byte aligned`);
  return o >>> 2;
}

/** The fixed header of a request of n bytes in buf. */
export function decodeHeader(buf: Buffer, n: number): InHeader {
  if (n < IN_HEADER_SIZE) throw new ProtocolError(`request of ${n} bytes, shorter than its header`);
  const w = words(buf), i = at32(buf, 0);
  const len = w[i];
  if (len !== n) throw new ProtocolError(`request says ${len} bytes, ${n} were read`);
  return {
    len, opcode: w[i + 1], unique: w[i + 2] + w[i + 3] * TWO32, nodeid: w[i + 4] + w[i + 5] * TWO32,
    uid: w[i + 6], gid: w[i + 7], pid: w[i + 8],
  };
}

/** A cursor over a request's arguments (after the header), bounds-checked. */
export class ArgReader {
  private pos = IN_HEADER_SIZE;
  constructor(private buf: Buffer = Buffer.alloc(0), private end = 0) {}

  /** Read the request of end bytes in buf from its arguments' start on. */
  reset(buf: Buffer, end: number): this {
    this.buf = buf;
    this.end = end;
    this.pos = IN_HEADER_SIZE;
    return this;
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw new ProtocolError(`request too short: ${n} bytes wanted at ${at} of ${this.end}`);
    this.pos += n;
    return at;
  }

  u32(): number { return words(this.buf)[at32(this.buf, this.need(4))]; }
  u64(): number { const w = words(this.buf), i = at32(this.buf, this.need(8)); return w[i] + w[i + 1] * TWO32; }
  /** fuse's u64 seconds that carry an s64 (times before 1970). */
  i64(): number { const w = words(this.buf), i = at32(this.buf, this.need(8)); return w[i] + (w[i + 1] | 0) * TWO32; }
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

/** A u64 field at word i: v an integer below 2^53 (negative or fractional would be a server bug: clamped, not garbage). */
function put64(w: Uint32Array, i: number, v: number): void {
  const n = v > 0 ? Math.floor(v) : 0;
  w[i] = n;
  // Not divided when below 2^32 (nearly always): a fraction is a heap number each in unoptimized code.
  w[i + 1] = n < TWO32 ? 0 : n / TWO32;
}

/** A timeout in seconds as fuse's (seconds u64, nanoseconds u32) pair at words sec and nsec. */
function putValid(w: Uint32Array, sec: number, nsec: number, seconds: number): void {
  const s = Math.max(0, seconds);
  const whole = Math.floor(s);
  put64(w, sec, whole);
  w[nsec] = Math.min(999_999_999, Math.round((s - whole) * 1e9));
}

function putTime(w: Uint32Array, sec: number, nsec: number, t: Timespec): void {
  // fuse_attr's seconds are u64 carrying an s64: times before 1970 as two's complement.
  const s = Math.trunc(t.sec);
  w[sec] = s;
  w[sec + 1] = s >= 0 && s < TWO32 ? 0 : Math.floor(s / TWO32);
  w[nsec] = Math.min(999_999_999, Math.max(0, Math.trunc(t.nsec)));
}

/** struct fuse_attr at word i. */
function putAttr(w: Uint32Array, i: number, a: FuseAttr): void {
  put64(w, i, a.ino);
  put64(w, i + 2, a.size);
  put64(w, i + 4, a.blocks);
  putTime(w, i + 6, i + 12, a.atime);
  putTime(w, i + 8, i + 13, a.mtime);
  putTime(w, i + 10, i + 14, a.ctime);
  w[i + 15] = a.mode;
  w[i + 16] = a.nlink;
  w[i + 17] = a.uid;
  w[i + 18] = a.gid;
  w[i + 19] = a.rdev;
  w[i + 20] = a.blksize;
  w[i + 21] = 0;
}

function putEntry(w: Uint32Array, i: number, e: EntryOut): void {
  put64(w, i, e.nodeid);
  put64(w, i + 2, e.generation);
  putValid(w, i + 4, i + 8, e.entryValid);
  putValid(w, i + 6, i + 9, e.attrValid);
  putAttr(w, i + 10, e.attr);
}

/** struct fuse_attr at off. */
export function encodeAttr(buf: Buffer, off: number, a: FuseAttr): void {
  putAttr(words(buf), at32(buf, off), a);
}

/** struct fuse_entry_out at off (ENTRY_OUT_SIZE bytes). */
export function encodeEntry(buf: Buffer, off: number, e: EntryOut): void {
  putEntry(words(buf), at32(buf, off), e);
}

export function encodeAttrOut(buf: Buffer, off: number, a: AttrOut): void {
  const w = words(buf), i = at32(buf, off);
  putValid(w, i, i + 2, a.attrValid);
  w[i + 3] = 0;
  putAttr(w, i + 4, a.attr);
}

export function encodeOpen(buf: Buffer, off: number, o: OpenOut): void {
  const w = words(buf), i = at32(buf, off);
  put64(w, i, o.fh);
  w[i + 2] = o.openFlags;
  w[i + 3] = 0;
}

export function encodeStatfs(buf: Buffer, off: number, s: StatfsOut): void {
  const w = words(buf), i = at32(buf, off);
  put64(w, i, s.blocks);
  put64(w, i + 2, s.bfree);
  put64(w, i + 4, s.bavail);
  put64(w, i + 6, s.files);
  put64(w, i + 8, s.ffree);
  w[i + 10] = s.bsize;
  w[i + 11] = s.namelen;
  w[i + 12] = s.frsize;
  buf.fill(0, off + 52, off + 80);
}

/** fuse_write_out (and fuse_getxattr_out, alike): a count and padding. */
export function encodeCount(buf: Buffer, off: number, n: number): void {
  const w = words(buf), i = at32(buf, off);
  w[i] = n;
  w[i + 1] = 0;
}

/** fuse_out_header: len covers header and payload; error is 0 or -errno (or a notify code with unique 0). */
export function encodeOutHeader(buf: Buffer, len: number, error: number, unique: number): void {
  const w = words(buf), i = at32(buf, 0);
  w[i] = len;
  w[i + 1] = error;
  put64(w, i + 2, unique);
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
    const buf = this.buf, w = words(buf);
    let at = this.pos;
    if (this.plus) {
      if (entry) putEntry(w, at32(buf, at), entry);
      at += ENTRY_OUT_SIZE;
    }
    const i = at32(buf, at);
    put64(w, i, ino);
    put64(w, i + 2, off);
    w[i + 4] = nameLen;
    w[i + 5] = direntType(mode);
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

