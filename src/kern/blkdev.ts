// Block devices: what the buffer cache and the drivers read and write.
// An image file or host block device (through rumpuser), a RAM disk, or a
// window onto another device (a partition). Every access is range-checked
// here, so nothing a driver computes from on-disk data can reach outside the
// device or partition it was given.
import { HostFile } from '../rumpuser/hostfile.js';
import { errnos, kerr, KernError, type ErrnoName } from './errno.js';
import { readPartitions } from './disklabel.js';

export interface BlockDevice {
  /** What was opened (for messages, fsname). */
  readonly path: string;
  /** 512 or 4096 (block devices: BLKSSZGET; files: 512 unless given). */
  readonly sectorSize: number;
  /** Bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fill the whole buffer or throw (EIO, also when out of range). */
  read(buf: Uint8Array, offset: number): Promise<void>;
  /** Write the whole buffer; EROFS when read-only, EIO when out of range. */
  write(buf: Uint8Array, offset: number): Promise<void>;
  /** Make written data durable (fsync the host file). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface BlkdevOpenOptions {
  readOnly?: boolean;
  exclusive?: boolean;
  /** For image files (default 512); a host block device reports its own. */
  sectorSize?: number;
  /** 1-based partition number, as Linux's sdb1; logical partitions from 5. */
  partition?: number;
}

function checkSectorSize(n: number): void {
  if (!Number.isInteger(n) || n < 512 || n > 65536 || (n & (n - 1)) !== 0) {
    throw kerr('EINVAL', `sector size ${n}: not a power of two from 512 to 65536`);
  }
}

function checkRange(dev: BlockDevice, op: string, buf: Uint8Array, offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + buf.length > dev.size) {
    throw kerr('EIO', `${dev.path}: ${op} of ${buf.length} bytes at ${offset} is outside the device (${dev.size} bytes)`);
  }
}

/** A host error (Node-style .code) as a KernError naming the device. */
function hostToKern(e: unknown, path: string): KernError {
  if (e instanceof KernError) return e;
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  const name: ErrnoName = typeof code === 'string' && code in errnos ? (code as ErrnoName) : 'EIO';
  return kerr(name, `${path}: ${message}`);
}

class HostBlockDevice implements BlockDevice {
  constructor(private readonly hf: HostFile, readonly sectorSize: number) {}
  get path(): string { return this.hf.path; }
  get size(): number { return this.hf.size; }
  get readOnly(): boolean { return this.hf.readOnly; }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    checkRange(this, 'read', buf, offset);
    try { await this.hf.pread(buf, offset); } catch (e) { throw hostToKern(e, this.path); }
  }

  async write(buf: Uint8Array, offset: number): Promise<void> {
    if (this.readOnly) throw kerr('EROFS', `${this.path}: read-only device`);
    checkRange(this, 'write', buf, offset);
    try { await this.hf.pwrite(buf, offset); } catch (e) { throw hostToKern(e, this.path); }
  }

  async flush(): Promise<void> {
    try { await this.hf.fsync(); } catch (e) { throw hostToKern(e, this.path); }
  }

  async close(): Promise<void> {
    try { await this.hf.close(); } catch (e) { throw hostToKern(e, this.path); }
  }
}

class MemoryBlockDevice implements BlockDevice {
  readonly path: string;
  readonly readOnly = false;
  private mem: Uint8Array | null;
  constructor(readonly size: number, readonly sectorSize: number) {
    this.mem = new Uint8Array(size);
    this.path = `memory:${size}`;
  }

  private storage(): Uint8Array {
    if (!this.mem) throw kerr('EIO', `${this.path}: closed`);
    return this.mem;
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    const mem = this.storage();
    checkRange(this, 'read', buf, offset);
    buf.set(mem.subarray(offset, offset + buf.length));
  }

  async write(buf: Uint8Array, offset: number): Promise<void> {
    const mem = this.storage();
    checkRange(this, 'write', buf, offset);
    mem.set(buf, offset);
  }

  async flush(): Promise<void> { this.storage(); }

  async close(): Promise<void> { this.mem = null; }
}

class SliceBlockDevice implements BlockDevice {
  readonly path: string;
  constructor(private readonly parent: BlockDevice, private readonly base: number, readonly size: number, label: string) {
    this.path = label;
  }
  get sectorSize(): number { return this.parent.sectorSize; }
  get readOnly(): boolean { return this.parent.readOnly; }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    checkRange(this, 'read', buf, offset);
    await this.parent.read(buf, this.base + offset);
  }

  async write(buf: Uint8Array, offset: number): Promise<void> {
    if (this.readOnly) throw kerr('EROFS', `${this.path}: read-only device`);
    checkRange(this, 'write', buf, offset);
    await this.parent.write(buf, this.base + offset);
  }

  flush(): Promise<void> { return this.parent.flush(); }
  close(): Promise<void> { return this.parent.close(); }
}

/** A RAM disk (tests, temporary images). */
/** A piece of a device to read: offset on the device, and the buffer its bytes go to. */
export interface BlockPiece { buf: Uint8Array; offset: number }

/**
 * Reads of several pieces of dev at once (a file's data, read around the
 * buffer cache). Every read has settled when this returns or throws the
 * first error: none is left writing into a buffer its caller then reuses.
 */
export async function blkdev_readall(dev: BlockDevice, pieces: readonly BlockPiece[]): Promise<void> {
  if (pieces.length === 1) return dev.read(pieces[0].buf, pieces[0].offset);
  for (const r of await Promise.allSettled(pieces.map(p => dev.read(p.buf, p.offset)))) if (r.status === 'rejected') throw r.reason;
}

export function blkdev_memory(size: number, sectorSize = 512): BlockDevice {
  checkSectorSize(sectorSize);
  if (!Number.isSafeInteger(size) || size < 0) throw kerr('EINVAL', `memory device size ${size}`);
  return new MemoryBlockDevice(size, sectorSize);
}

/** A window onto dev (a partition); closing it closes dev. */
export function blkdev_slice(dev: BlockDevice, offset: number, size: number, label?: string): BlockDevice {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > dev.size) {
    throw kerr('EINVAL', `${dev.path}: slice of ${size} bytes at ${offset} is outside the device (${dev.size} bytes)`);
  }
  return new SliceBlockDevice(dev, offset, size, label ?? `${dev.path}@${offset}+${size}`);
}

/**
 * Open an image file or host block device, optionally one partition of it.
 * `exclusive` refuses bytes that another exclusive opener holds, one of the
 * two for writing (EBUSY): the whole device, or only the partition's bytes
 * (two partitions of one disk open read-write at once), by whatever name
 * (an image and a loop device over it are the same bytes).
 */
export async function blkdev_open(path: string, opts: BlkdevOpenOptions = {}): Promise<BlockDevice> {
  if (opts.sectorSize !== undefined) checkSectorSize(opts.sectorSize);
  let hf: HostFile;
  try {
    hf = await HostFile.open(path, { readOnly: opts.readOnly, exclusive: opts.exclusive && opts.partition === undefined });
  } catch (e) {
    throw hostToKern(e, path);
  }
  // A host block device knows its own sector size; a file takes what it is told.
  const dev = new HostBlockDevice(hf, hf.sectorSize ?? opts.sectorSize ?? 512);
  if (opts.partition === undefined) return dev;
  try {
    const part = await openPartition(dev, opts.partition);
    if (opts.exclusive) await hf.claim(part.offset, part.dev.size).catch((e: unknown) => { throw hostToKern(e, part.dev.path); });
    return part.dev;
  } catch (e) {
    await dev.close();
    throw e;
  }
}

async function openPartition(dev: BlockDevice, n: number): Promise<{ dev: BlockDevice; offset: number }> {
  if (!Number.isInteger(n) || n < 1) throw kerr('EINVAL', `${dev.path}: partition ${n}: numbers start at 1`);
  const table = await readPartitions(dev);
  const p = table.partitions.find((q) => q.index === n);
  if (!p) {
    const have = table.partitions.map((q) => q.index).join(', ');
    const what = table.scheme === 'none' ? 'no partition table' : `${table.scheme} partitions: ${have || 'none'}`;
    throw kerr('ENXIO', `${dev.path}: no partition ${n} (${what})`);
  }
  return { dev: blkdev_slice(dev, p.offset, p.size, `${dev.path}:${n}`), offset: p.offset };
}
