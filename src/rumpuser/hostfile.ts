// Host file I/O for the kernel's block devices: an image file or a host block
// device. Errors are Node-style (an Error with .code such as 'ENOENT', 'EBUSY',
// 'EIO'); the kernel converts them to errnos. This module must not import
// src/kern: the kernel imports rumpuser, never the reverse.
import { constants, readSync } from 'node:fs';
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { blkdevSectorSize, blkdevSize, flock } from './native.js';
import { fsPromises } from './lazy.js';
import { claimRange, underlying, type RangeClaim } from './rangelock.js';

export interface HostFileOptions {
  readOnly?: boolean;
  /**
   * No second exclusive opener (and for files, no writer beside readers) of
   * the whole file or device, and claim() of all of it.
   */
  exclusive?: boolean;
}

/** Largest read done synchronously; larger (file data) ones go through the thread pool. */
const SYNC_READ_MAX = 64 * 1024;

function hosterr(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

export class HostFile {
  private closed = false;
  private readonly claims: RangeClaim[] = [];
  /** An image file's flock is held (exclusive for a writer of the whole file, else shared). */
  private flocked = false;

  private constructor(
    private readonly fh: FileHandle,
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
    // stat first: O_EXCL means "exclusive" only for block devices, and on a
    // regular file it would be meaningless (without O_CREAT) or harmful.
    const st = await fsPromises().stat(path);
    const isBlockDevice = st.isBlockDevice();
    if (!isBlockDevice && !st.isFile()) {
      throw hosterr('ENODEV', `${path}: not a regular file or block device`);
    }
    let flags = readOnly ? constants.O_RDONLY : constants.O_RDWR;
    if (isBlockDevice && opts.exclusive) flags |= constants.O_EXCL;
    const fh = await fsPromises().open(path, flags);
    let hf: HostFile | null = null;
    try {
      if (isBlockDevice) {
        hf = new HostFile(fh, st, path, readOnly, true, blkdevSize(fh.fd), blkdevSectorSize(fh.fd));
      } else {
        if (opts.exclusive) lockFile(fh.fd, path, readOnly);
        hf = new HostFile(fh, st, path, readOnly, false, (await fh.stat()).size, undefined);
        hf.flocked = !!opts.exclusive;
      }
      if (opts.exclusive) await hf.claim(0, hf.size);
      return hf;
    } catch (e) {
      if (hf) await hf.close();
      else await fh.close();
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
      lockFile(this.fh.fd, this.path, true);
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
   * SYNC_READ_MAX bytes are read with a synchronous pread: a metadata block
   * in the host's page cache costs ~2 us so, ~19 us through the thread pool.
   */
  async pread(buf: Uint8Array, offset: number): Promise<void> {
    this.checkOpen();
    let done = 0;
    while (done < buf.length) {
      const bytesRead = buf.length <= SYNC_READ_MAX
        ? readSync(this.fh.fd, buf, done, buf.length - done, offset + done)
        : (await this.fh.read(buf, done, buf.length - done, offset + done)).bytesRead;
      if (bytesRead === 0) {
        throw hosterr('EIO', `${this.path}: short read at ${offset + done} (end of file)`);
      }
      done += bytesRead;
    }
  }

  /** Write all of buf at offset, looping over short writes. */
  async pwrite(buf: Uint8Array, offset: number): Promise<void> {
    this.checkOpen();
    if (this.readOnly) throw hosterr('EROFS', `${this.path}: opened read-only`);
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, offset + done);
      if (bytesWritten === 0) {
        throw hosterr('EIO', `${this.path}: write made no progress at ${offset + done}`);
      }
      done += bytesWritten;
    }
  }

  async fsync(): Promise<void> {
    this.checkOpen();
    if (!this.readOnly) await this.fh.sync();
  }

  /** Closing releases the flock or O_EXCL claim with the descriptor. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.claims.splice(0)) c.release();
    await this.fh.close();
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
