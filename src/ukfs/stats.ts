// Node-shaped Stats, BigIntStats and Dirent built from the kernel's vnode attributes.
import { timespecToMs, vtypeToIfmt, VType, type Dirent as KDirent, type Timespec, type Vattr } from '../kern/index.js';

/** The is*() questions of Node's Stats and Dirent, from a vnode type. */
abstract class Typed {
  protected abstract readonly type: VType;
  isFile(): boolean { return this.type === VType.VREG; }
  isDirectory(): boolean { return this.type === VType.VDIR; }
  isSymbolicLink(): boolean { return this.type === VType.VLNK; }
  isBlockDevice(): boolean { return this.type === VType.VBLK; }
  isCharacterDevice(): boolean { return this.type === VType.VCHR; }
  isFIFO(): boolean { return this.type === VType.VFIFO; }
  isSocket(): boolean { return this.type === VType.VSOCK; }
}

const nsOf = (t: Timespec) => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);

export class Stats extends Typed {
  readonly dev: number; readonly ino: number; readonly mode: number; readonly nlink: number;
  readonly uid: number; readonly gid: number; readonly rdev: number; readonly size: number;
  readonly blksize: number; readonly blocks: number;
  readonly atimeMs: number; readonly mtimeMs: number; readonly ctimeMs: number; readonly birthtimeMs: number;
  readonly atime: Date; readonly mtime: Date; readonly ctime: Date; readonly birthtime: Date;
  protected readonly type: VType;
  constructor(va: Vattr, dev = 0) {
    super();
    this.dev = dev;
    this.ino = va.fileid;
    this.type = va.type;
    this.mode = vtypeToIfmt(va.type) | va.mode;
    this.nlink = va.nlink;
    this.uid = va.uid;
    this.gid = va.gid;
    this.rdev = va.rdev;
    this.size = va.size;
    this.blksize = va.blocksize;
    this.blocks = Math.ceil(va.bytes / 512);
    this.atimeMs = timespecToMs(va.atime);
    this.mtimeMs = timespecToMs(va.mtime);
    this.ctimeMs = timespecToMs(va.ctime);
    this.birthtimeMs = timespecToMs(va.birthtime);
    this.atime = new Date(this.atimeMs);
    this.mtime = new Date(this.mtimeMs);
    this.ctime = new Date(this.ctimeMs);
    this.birthtime = new Date(this.birthtimeMs);
  }
}

/** stat(path, { bigint: true }): every number a bigint, plus nanosecond times. */
export class BigIntStats extends Typed {
  readonly dev: bigint; readonly ino: bigint; readonly mode: bigint; readonly nlink: bigint;
  readonly uid: bigint; readonly gid: bigint; readonly rdev: bigint; readonly size: bigint;
  readonly blksize: bigint; readonly blocks: bigint;
  readonly atimeMs: bigint; readonly mtimeMs: bigint; readonly ctimeMs: bigint; readonly birthtimeMs: bigint;
  readonly atimeNs: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint; readonly birthtimeNs: bigint;
  readonly atime: Date; readonly mtime: Date; readonly ctime: Date; readonly birthtime: Date;
  protected readonly type: VType;
  constructor(va: Vattr, dev = 0) {
    super();
    this.dev = BigInt(dev);
    this.ino = BigInt(va.fileid);
    this.type = va.type;
    this.mode = BigInt(vtypeToIfmt(va.type) | va.mode);
    this.nlink = BigInt(va.nlink);
    this.uid = BigInt(va.uid);
    this.gid = BigInt(va.gid);
    this.rdev = BigInt(va.rdev);
    this.size = BigInt(va.size);
    this.blksize = BigInt(va.blocksize);
    this.blocks = BigInt(Math.ceil(va.bytes / 512));
    this.atimeNs = nsOf(va.atime);
    this.mtimeNs = nsOf(va.mtime);
    this.ctimeNs = nsOf(va.ctime);
    this.birthtimeNs = nsOf(va.birthtime);
    this.atimeMs = this.atimeNs / 1_000_000n;
    this.mtimeMs = this.mtimeNs / 1_000_000n;
    this.ctimeMs = this.ctimeNs / 1_000_000n;
    this.birthtimeMs = this.birthtimeNs / 1_000_000n;
    this.atime = new Date(Number(this.atimeMs));
    this.mtime = new Date(Number(this.mtimeMs));
    this.ctime = new Date(Number(this.ctimeMs));
    this.birthtime = new Date(Number(this.birthtimeMs));
  }
}

/** stat or bigint stat, as the caller's options ask. */
export function statsOf(va: Vattr, opt?: { bigint?: boolean }): Stats | BigIntStats {
  return opt?.bigint ? new BigIntStats(va) : new Stats(va);
}

export class Dirent extends Typed {
  readonly name: string;
  /** The directory that holds the entry, as the caller named it. */
  readonly parentPath: string;
  readonly ino: number;
  protected readonly type: VType;
  constructor(d: KDirent, parentPath: string) {
    super();
    this.name = d.name;
    this.parentPath = parentPath;
    this.ino = d.fileid;
    this.type = d.type;
  }
  /** Node 20's older name for parentPath. */
  get path(): string { return this.parentPath; }
}
