// Host file I/O for the kernel's block devices: an image file or a host block
// device. Errors are Node-style (an Error with .code such as 'ENOENT', 'EBUSY',
// 'EIO'); the kernel converts them to errnos. This module must not import
// src/kern: the kernel imports rumpuser, never the reverse.
import { close, closeSync, constants, fstatSync, fsync, openSync, read, readSync, statSync, write, writeSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { blkdevSectorSize, blkdevSize, flock, preadNowait } from './native.js';
import { claimRange, underlying, type RangeClaim } from './rangelock.js';

export interface HostFileOptions {
  readOnly?: boolean;
  /**
   * No second exclusive opener (and for files, no writer beside readers) of
   * the whole file or device, and claim() of all of it.
   */
  exclusive?: boolean;
}

// node:fs's calls on a descriptor, as Promises: node:fs and node:util are
// loaded with Node itself, node:fs/promises would cost every server's start
// its compile time (~5 ms, a dozen modules).
const fsAsync = { read: promisify(read), write: promisify(write), fsync: promisify(fsync), close: promisify(close) };

/** Largest read or write done synchronously; larger (file data) ones go through the thread pool. */
const SYNC_IO_MAX = 64 * 1024;

function hosterr(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

export class HostFile {
  private closed = false;
  private readonly claims: RangeClaim[] = [];
  /** An image file's flock is held (exclusive for a writer of the whole file, else shared). */
  private flocked = false;

  private constructor(
    private readonly fd: number,
    private readonly st: Stats,
    readonly path: string,
    readonly readOnly: boolean,
    readonly isBlockDevice: boolean,
    /** Bytes; fixed at open (a kernel does not see an image grow under it). */
    readonly size: number,
    /** The device's logical sector size, or undefined for a regular file. */
    readonly sectorSize: number | undefined,
  ) {}

  static async open(path: string, opts: HostFileOptions = {}): Promise<HostFile> {
    const readOnly = opts.readOnly ?? false;
    // Synchronous calls: they are quick, and a server's start (which opens
    // its device first) then waits on no thread pool round trips (~2 ms).
    // stat first: O_EXCL means "exclusive" only for block devices, and on a
    // regular file it would be meaningless (without O_CREAT) or harmful.
    const st = statSync(path);
    const isBlockDevice = st.isBlockDevice();
    if (!isBlockDevice && !st.isFile()) {
      throw hosterr('ENODEV', `${path}: not a regular file or block device`);
    }
    let flags = readOnly ? constants.O_RDONLY : constants.O_RDWR;
    if (isBlockDevice && opts.exclusive) flags |= constants.O_EXCL;
    const fd = openSync(path, flags);
    let hf: HostFile | null = null;
    try {
      if (isBlockDevice) {
        hf = new HostFile(fd, st, path, readOnly, true, blkdevSize(fd), blkdevSectorSize(fd));
      } else {
        if (opts.exclusive) lockFile(fd, path, readOnly);
        hf = new HostFile(fd, st, path, readOnly, false, fstatSync(fd).size, undefined);
        hf.flocked = !!opts.exclusive;
      }
      if (opts.exclusive) await hf.claim(0, hf.size);
      return hf;
    } catch (e) {
      if (hf) await hf.close();
      else closeSync(fd);
      throw e;
    }
  }

  /**
   * Claim bytes [offset, offset + length) as this opener's (read-only: to
   * read beside other readers), by whatever name the same bytes are opened
   * (another partition's claim does not conflict): EBUSY when a writer, or
   * for a writer any opener, holds some of them. An image file is also
   * flocked shared, against openers of the whole file that only flock.
   * Released by close().
   */
  async claim(offset: number, length: number): Promise<void> {
    if (!this.isBlockDevice && !this.flocked) {
      lockFile(this.fd, this.path, true);
      this.flocked = true;
    }
    try {
      this.claims.push(await claimRange(underlying(this.st), offset, length, !this.readOnly));
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw code === 'EBUSY' ? e : hosterr(typeof code === 'string' ? code : 'EIO', `${this.path}: cannot claim: ${String(e)}`);
    }
  }

  /**
   * Fill buf from offset; a short read (past the end of file) is EIO. Up to
   * SYNC_IO_MAX bytes are read with a synchronous pread: a metadata block
   * in the host's page cache costs ~2 us so, ~19 us through the thread pool.
   * A larger read takes what the page cache holds at once (RWF_NOWAIT) and
   * waits in the thread pool only for the rest.
   */
  async pread(buf: Uint8Array, offset: number): Promise<void> {
    this.checkOpen();
    let done = 0;
    while (done < buf.length) {
      let bytesRead = buf.length <= SYNC_IO_MAX
        ? readSync(this.fd, buf, done, buf.length - done, offset + done)
        : preadNowait(this.fd, done === 0 ? buf : buf.subarray(done), offset + done);
      if (bytesRead < 0) bytesRead = (await fsAsync.read(this.fd, buf, done, buf.length - done, offset + done)).bytesRead;
      if (bytesRead === 0) {
        throw hosterr('EIO', `${this.path}: short read at ${offset + done} (end of file)`);
      }
      done += bytesRead;
    }
  }

  /**
   * Write all of buf at offset, looping over short writes. Up to SYNC_IO_MAX
   * bytes synchronously, as reads: a metadata block goes to the host's page
   * cache in microseconds, and a server's start (which marks a volume
   * dirty) then starts no thread pool before its sandbox: four threads fewer
   * for the sandbox to change and check.
   */
  async pwrite(buf: Uint8Array, offset: number): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw hosterr('EROFS', `${this.path}: opened read-only`);
    let done = 0;
    while (done < buf.length) {
      const bytesWritten = buf.length <= SYNC_IO_MAX
        ? writeSync(this.fd, buf, done, buf.length - done, offset + done)
        : (await fsAsync.write(this.fd, buf, done, buf.length - done, offset + done)).bytesWritten;
      if (bytesWritten === 0) {
        throw hosterr('EIO', `${this.path}: write made no progress at ${offset + done}`);
      }
      done += bytesWritten;
    }
  }

  async fsync(): Promise<void> {
    this.checkOpen();
    if (!this.readOnly) await fsAsync.fsync(this.fd);
  }

  /** Closing releases the flock or O_EXCL claim with the descriptor. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.claims.splice(0)) c.release();
    await fsAsync.close(this.fd);
  }

  private checkOpen(): void {
    if (this.closed) throw hosterr('EBADF', `${this.path}: closed`);
  }
}

/** Readers share an image file; a writer excludes everyone else. */
function lockFile(fd: number, path: string, readOnly: boolean): void {
  try {
    flock(fd, readOnly ? 'sh' : 'ex');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') {
      throw hosterr('EBUSY', `${path}: in use (locked by another process or mount)`);
    }
    throw e;
  }
}
