// Per-mount state: the boot sector's geometry, the allocator, the up-case
// table, the options, and which directory holds each file the kernel knows.
import { kerr, log, MNT_RDONLY, panic, type BlockDevice, type Mount, type MountOptions } from '../../kern/index.js';
import type { ExAlloc } from './exfat_alloc.js';
import type { BootSector } from './exfat.js';
import type { Upcase } from './exfat_upcase.js';

export type ErrorsMode = 'continue' | 'remount-ro' | 'panic';

export interface ExfatArgs {
  uid: number;
  gid: number;
  /** Permission bits files and directories show (before the read-only attribute). */
  fmode: number;
  dmode: number;
  /** Minutes east of UTC for times written, and for times read without an offset. */
  timeOffset: number;
  /** What corrupt metadata found while mounted does, as Linux's errors=. */
  errors: ErrorsMode;
}

/** The root directory's file id; every other file's is the device offset of its File entry. */
export const ROOT_KEY = 1;
/** File ids of removed files still in use: above any device offset. */
export const ORPHAN_BASE = 2 ** 52;
/** I/O unit of the cluster heap (a cluster, or a part of a big one). */
const MAX_BSIZE = 64 << 10;

function intOpt(k: string, v: string | number | boolean, max: number, radix = 10): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[-+]?[0-9]+$/.test(v) ? parseInt(v, radix) : NaN;
  if (!Number.isInteger(n) || Math.abs(n) > max) throw kerr('EINVAL', `exfat: bad value for ${k}: ${String(v)}`);
  return n;
}

export function exfat_parseargs(o: MountOptions): ExfatArgs {
  const a: ExfatArgs = { uid: 0, gid: 0, fmode: 0o755, dmode: 0o755, timeOffset: 0, errors: 'remount-ro' };
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'uid': a.uid = intOpt(k, v, 0xffffffff); break;
      case 'gid': a.gid = intOpt(k, v, 0xffffffff); break;
      case 'fmode': a.fmode = intOpt(k, v, 0o777, 8); break;
      case 'dmode': a.dmode = intOpt(k, v, 0o777, 8); break;
      case 'time_offset': a.timeOffset = intOpt(k, v, 24 * 60); break;
      case 'errors':
        if (v !== 'continue' && v !== 'remount-ro' && v !== 'panic') throw kerr('EINVAL', `exfat: errors=${String(v)}: continue, remount-ro or panic`);
        a.errors = v;
        break;
      default: throw kerr('EINVAL', `exfat: unknown option '${k}'`);
    }
  }
  if (a.timeOffset % 15 !== 0) throw kerr('EINVAL', 'exfat: time_offset must be a multiple of 15 minutes');
  return a;
}

export class Exfatmount {
  /** Directory file id of each file id handed out (the kernel reloads files by id). */
  readonly parentOf = new Map<number, number>();
  label = '';
  orphanSeq = 0;
  /** The volume was dirty when mounted: left so for fsck. */
  wasDirty = false;
  readonly bsize: number;

  constructor(readonly mp: Mount, readonly dev: BlockDevice, readonly bs: BootSector, readonly alloc: ExAlloc,
    readonly upcase: Upcase, readonly args: ExfatArgs,
    /** Owner of metadata buffers (FAT, bitmap, directories), for fsync. */
    readonly meta: object) {
    this.bsize = Math.min(bs.clusterSize, MAX_BSIZE);
  }

  get cs(): number { return this.bs.clusterSize; }

  /** Device byte offset of a cluster. */
  clusterOff(c: number): number {
    return this.bs.heapOffset + (c - 2) * this.bs.clusterSize;
  }

  /** The heap block holding device offset off. */
  blockOf(off: number): number {
    const h = this.bs.heapOffset;
    return h + Math.floor((off - h) / this.bsize) * this.bsize;
  }

  newOrphanKey(): number {
    return ORPHAN_BASE + ++this.orphanSeq;
  }

  /** Corrupt metadata found while mounted: a log line, the errors= policy, and EIO for the caller. */
  error(what: string): Error {
    log(`exfat: ${this.dev.path}: ${what}`);
    if (this.args.errors === 'panic') panic(`exfat: ${this.dev.path}: ${what} (errors=panic)`);
    if (this.args.errors === 'remount-ro' && !this.mp.readOnly) {
      log(`exfat: ${this.dev.path}: now read-only (errors=remount-ro)`);
      this.mp.flags |= MNT_RDONLY;
    }
    return kerr('EIO', what);
  }
}
