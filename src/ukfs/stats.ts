// Node-shaped Stats and Dirent built from the kernel's vnode attributes.
import { timespecToMs, vtypeToIfmt, VType, type Dirent as KDirent, type Vattr } from '../kern/index.js';

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

export class Stats extends Typed {
  readonly dev: number; readonly ino: number; readonly mode: number; readonly nlink: number;
  readonly uid: number; readonly gid: number; readonly rdev: number; readonly size: number;
  readonly blksize: number; readonly blocks: number;
  readonly atimeMs: number; readonly mtimeMs: number; readonly ctimeMs: number; readonly birthtimeMs: number;
  readonly atime: Date; readonly mtime: Date; readonly ctime: Date; readonly birthtime: Date;
  readonly atimeNs: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint; readonly birthtimeNs: bigint;
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
    const ns = (t: { sec: number; nsec: number }) => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
    this.atimeNs = ns(va.atime);
    this.mtimeNs = ns(va.mtime);
    this.ctimeNs = ns(va.ctime);
    this.birthtimeNs = ns(va.birthtime);
  }
}

export class Dirent extends Typed {
  readonly name: string;
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
}
