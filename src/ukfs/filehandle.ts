// An open file, as node:fs/promises' FileHandle: positional and sequential
// reads and writes, vectors, whole-file helpers and Node streams.
import { Readable, Writable } from 'node:stream';
import { createInterface, type Interface } from 'node:readline';
import { O_APPEND, vn_close, vn_fsetattr, vn_fstat, vn_fsync, vn_read, vn_write, type File, type Lwp } from '../kern/index.js';
import { syscall, throwIfAborted } from './errors.js';
import { statsOf, type BigIntStats, type Stats } from './stats.js';
import { toTimespec, type TimeLike } from './time.js';

export type Encoding = BufferEncoding | null | undefined;
export interface DataOptions { encoding?: Encoding; flag?: string; mode?: number; signal?: AbortSignal }
export type DataOpt = Encoding | DataOptions;

export function encodingOf(opt: DataOpt): Encoding {
  return typeof opt === 'object' && opt !== null ? opt.encoding : opt;
}
function signalOf(opt: DataOpt): AbortSignal | undefined {
  return typeof opt === 'object' && opt !== null ? opt.signal : undefined;
}

export type Data = string | Uint8Array | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>;

/** writeFile's data as byte chunks (strings, buffers, (async) iterables and streams, as Node takes). */
async function* chunksOf(data: Data, encoding: Encoding): AsyncGenerator<Uint8Array> {
  if (typeof data === 'string') yield Buffer.from(data, encoding ?? 'utf8');
  else if (data instanceof Uint8Array) yield data;
  else for await (const c of data as AsyncIterable<string | Uint8Array>)
    yield typeof c === 'string' ? Buffer.from(c, encoding ?? 'utf8') : c;
}

const CHUNK = 1 << 20;
/** What read() with no buffer allocates, as Node. */
const DEFAULT_READ = 16384;

interface ReadOptions { buffer?: Uint8Array; offset?: number; length?: number; position?: number | bigint | null }
interface WriteOptions { offset?: number; length?: number; position?: number | null }

export class FileHandle {
  private static nextFd = 3;
  readonly fd = FileHandle.nextFd++;
  /** Called once the handle is closed (the owning Ukfs forgets it). */
  onClose?: () => void;
  /** lwp: a request context per call, as each thread has its own: concurrent calls on one handle must not look like one caller taking its own lock twice. */
  constructor(private readonly lwp: () => Lwp, private readonly fp: File, private readonly path: string) {}

  /** Reads at position (and leaves the file offset), or at the file offset and advances it. */
  private async pread(buf: Uint8Array, position: number | bigint | null | undefined): Promise<number> {
    const at = position === null || position === undefined || position === -1 ? null : Number(position);
    const n = await syscall('read', undefined, () => vn_read(this.lwp(), this.fp, buf, at ?? this.fp.offset));
    if (at === null) this.fp.offset += n;
    return n;
  }

  /** One write(2), which may be short (a full volume), or with all set, until buf is written or an error. */
  private async pwrite(buf: Uint8Array, position: number | null | undefined, all = false): Promise<number> {
    const at = position === null || position === undefined ? null : position;
    const append = (this.fp.flags & O_APPEND) !== 0;
    let done = 0;
    do {
      const off = (at ?? this.fp.offset) + done;
      done += await syscall('write', undefined, () => vn_write(this.lwp(), this.fp, buf.subarray(done), off));
    } while (all && done < buf.length);
    if (at === null) this.fp.offset = append ? (await this.stat()).size : this.fp.offset + done;
    return done;
  }

  /**
   * read(), read(buffer, offset?, length?, position?), read(buffer, options),
   * read({ buffer, offset, length, position }).
   */
  async read(a?: Uint8Array | ReadOptions, b?: number | ReadOptions | null, c?: number | null, d?: number | bigint | null):
    Promise<{ bytesRead: number; buffer: Uint8Array }> {
    let o: ReadOptions;
    if (a instanceof Uint8Array) o = typeof b === 'object' && b !== null ? { ...b, buffer: a } : { buffer: a, offset: b ?? 0, length: c ?? undefined, position: d };
    else o = a ?? {};
    const buffer = o.buffer ?? Buffer.alloc(DEFAULT_READ);
    const offset = o.offset ?? 0;
    const length = o.length ?? buffer.byteLength - offset;
    if (offset < 0 || length < 0 || offset + length > buffer.byteLength) {
      const err = new RangeError(`The value of "length" is out of range. It must be >= 0 && <= ${buffer.byteLength - offset}. Received ${length}`) as RangeError & { code: string };
      err.code = 'ERR_OUT_OF_RANGE';
      throw err;
    }
    const bytesRead = length === 0 ? 0 : await this.pread(buffer.subarray(offset, offset + length), o.position);
    return { bytesRead, buffer };
  }

  /** write(buffer, offset?, length?, position?), write(buffer, options), write(string, position?, encoding?). */
  async write<T extends Uint8Array | string>(data: T, a?: number | null | WriteOptions, b?: number | BufferEncoding | null, c?: number | null):
    Promise<{ bytesWritten: number; buffer: T }> {
    let bytes: Uint8Array, position: number | null | undefined;
    if (typeof data === 'string') {
      bytes = Buffer.from(data, typeof b === 'string' ? b : 'utf8');
      position = typeof a === 'number' ? a : null;
    } else {
      const o: WriteOptions = typeof a === 'object' && a !== null ? a : { offset: a ?? 0, length: typeof b === 'number' ? b : undefined, position: c };
      const off = o.offset ?? 0;
      bytes = data.subarray(off, off + (o.length ?? data.length - off));
      position = o.position;
    }
    return { bytesWritten: await this.pwrite(bytes, position), buffer: data };
  }

  async readv<T extends Uint8Array[]>(buffers: T, position: number | null = null): Promise<{ bytesRead: number; buffers: T }> {
    let total = 0;
    for (const buf of buffers) {
      const n = await this.pread(buf, position === null ? null : position + total);
      total += n;
      if (n < buf.length) break;
    }
    return { bytesRead: total, buffers };
  }

  async writev<T extends Uint8Array[]>(buffers: T, position: number | null = null): Promise<{ bytesWritten: number; buffers: T }> {
    let total = 0;
    for (const buf of buffers) {
      const n = await this.pwrite(buf, position === null ? null : position + total);
      total += n;
      if (n < buf.length) break;
    }
    return { bytesWritten: total, buffers };
  }

  /** From the current offset to the end, as Node's FileHandle.readFile. */
  async readFile(opt?: DataOpt): Promise<Buffer | string> {
    const signal = signalOf(opt);
    const chunks: Buffer[] = [];
    for (;;) {
      throwIfAborted(signal);
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = await this.pread(buf, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
    }
    const all = Buffer.concat(chunks);
    const enc = encodingOf(opt);
    return enc ? all.toString(enc) : all;
  }

  /** From the current offset on (at the end with O_APPEND), as Node's FileHandle.writeFile. */
  async writeFile(data: Data, opt?: DataOpt): Promise<void> {
    const signal = signalOf(opt);
    for await (const bytes of chunksOf(data, encodingOf(opt))) {
      for (let done = 0; done < bytes.length; done += CHUNK) {
        throwIfAborted(signal);
        await this.pwrite(bytes.subarray(done, done + CHUNK), null, true);
      }
    }
  }

  /** Node: an alias of writeFile on a handle (the open flags decide appending). */
  appendFile(data: Data, opt?: DataOpt): Promise<void> { return this.writeFile(data, opt); }

  async stat(opt: { bigint: true }): Promise<BigIntStats>;
  async stat(opt?: { bigint?: false }): Promise<Stats>;
  async stat(opt?: { bigint?: boolean }): Promise<Stats | BigIntStats> {
    return statsOf(await syscall('fstat', undefined, () => vn_fstat(this.lwp(), this.fp)), opt);
  }
  truncate(len = 0): Promise<void> {
    return syscall('ftruncate', undefined, () => vn_fsetattr(this.lwp(), this.fp, { size: len }));
  }
  chmod(mode: number): Promise<void> {
    return syscall('fchmod', undefined, () => vn_fsetattr(this.lwp(), this.fp, { mode }));
  }
  chown(uid: number, gid: number): Promise<void> {
    return syscall('fchown', undefined, () => vn_fsetattr(this.lwp(), this.fp, { uid, gid }));
  }
  utimes(atime: TimeLike, mtime: TimeLike): Promise<void> {
    return syscall('futime', undefined, () => vn_fsetattr(this.lwp(), this.fp, { atime: toTimespec(atime), mtime: toTimespec(mtime) }));
  }
  sync(): Promise<void> { return syscall('fsync', undefined, () => vn_fsync(this.lwp(), this.fp)); }
  datasync(): Promise<void> { return this.sync(); }

  async close(): Promise<void> {
    if (this.fp.closed) return;
    try {
      await syscall('close', undefined, () => vn_close(this.lwp(), this.fp));
    } finally {
      this.onClose?.();
    }
  }
  [Symbol.asyncDispose](): Promise<void> { return this.close(); }

  /** A Node Readable over [start, end] (inclusive, as Node), closing the handle at the end unless autoClose is false. */
  createReadStream(o: { start?: number; end?: number; highWaterMark?: number; encoding?: BufferEncoding; autoClose?: boolean; emitClose?: boolean; signal?: AbortSignal } = {}): Readable {
    let pos = o.start ?? null;
    const end = o.end ?? Infinity;
    const hwm = o.highWaterMark ?? 64 * 1024;
    const autoClose = o.autoClose ?? true;
    const stream = new Readable({
      highWaterMark: hwm, encoding: o.encoding, emitClose: o.emitClose ?? true, signal: o.signal,
      read: (size) => {
        const remaining = end === Infinity ? size : Math.min(size, end - (pos ?? this.fp.offset) + 1);
        if (remaining <= 0) { stream.push(null); return; }
        const buf = Buffer.allocUnsafe(remaining);
        this.pread(buf, pos).then(
          (n) => { if (pos !== null) pos += n; stream.push(n === 0 ? null : buf.subarray(0, n)); },
          (e) => stream.destroy(e));
      },
      destroy: (err, cb) => {
        if (!autoClose) { cb(err); return; }
        this.close().then(() => cb(err), (e) => cb(err ?? e));
      },
    });
    return stream;
  }

  /** A Node Writable from start (or the file offset) on. */
  createWriteStream(o: { start?: number; highWaterMark?: number; encoding?: BufferEncoding; autoClose?: boolean; emitClose?: boolean; flush?: boolean; signal?: AbortSignal } = {}): Writable {
    let pos = o.start ?? null;
    const autoClose = o.autoClose ?? true;
    return new Writable({
      highWaterMark: o.highWaterMark ?? 16 * 1024, defaultEncoding: o.encoding, emitClose: o.emitClose ?? true, signal: o.signal,
      write: (chunk: Buffer, _enc, cb) => {
        this.pwrite(chunk, pos, true).then((n) => { if (pos !== null) pos += n; cb(); }, cb);
      },
      final: (cb) => { (o.flush ? this.sync() : Promise.resolve()).then(() => cb(), cb); },
      destroy: (err, cb) => {
        if (!autoClose) { cb(err); return; }
        this.close().then(() => cb(err), (e) => cb(err ?? e));
      },
    });
  }

  /** Lines of the file, as Node's FileHandle.readLines (a readline Interface). */
  readLines(o: { start?: number; end?: number; encoding?: BufferEncoding; autoClose?: boolean } = {}): Interface {
    return createInterface({ input: this.createReadStream(o), crlfDelay: Infinity });
  }

  readableWebStream(): ReadableStream {
    return Readable.toWeb(this.createReadStream({ autoClose: false })) as unknown as ReadableStream;
  }

  /** fd is the library's own number, not a host descriptor: say so when printed. */
  [Symbol.for('nodejs.util.inspect.custom')](): string { return `FileHandle { fd: ${this.fd}, path: ${JSON.stringify(this.path)} }`; }
}

