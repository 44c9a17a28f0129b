// Per-mount state (NetBSD msdosfsmount.h): the BPB, the FAT, the options,
// and where things are on the device.
import { bwrite, kerr, mount_bwrite, type BlockDevice, type Buf, type Mount, type MountOptions } from '../../kern/index.js';
import type { Bpb } from './bpb.js';
import { codepage_byname, cp437, type Codepage } from './msdosfs_conv.js';
import type { Fat } from './fat.js';

export type ShortnameMode = 'lower' | 'win95' | 'winnt' | 'mixed';

export interface MsdosfsArgs {
  uid: number;
  gid: number;
  /** Permission bits files may have. */
  mask: number;
  /** Permission bits directories may have. */
  dirmask: number;
  /** Seconds east of UTC of the times stored on the medium (local time). */
  gmtoff: number;
  shortname: ShortnameMode;
  codepage: Codepage;
  /** Linux vfat's showexec: execute bits only for .EXE, .COM and .BAT files. */
  showexec: boolean;
  /** Linux's quiet: a chown the format cannot store succeeds without effect. */
  quiet: boolean;
  /** Directory changes are written through (Linux's dirsync). */
  dirsync: boolean;
  /** Closing a file written through it writes its data and entry back (Linux vfat's flush). */
  flush: boolean;
  /** Linux vfat's allow_utime: which of group (020) and others (002) may set times. */
  allowUtime: number;
  /** The read-only attribute takes away write permission from directories too (Linux's rodir). */
  rodir: boolean;
  /** Try a generated short name without ~N first (Linux's nonumtail). */
  nonumtail: boolean;
}

/** The root directory's file id (as Linux's MSDOS_ROOT_INO); no entry lies at byte 1. */
export const ROOT_KEY = 1;
/** File ids of removed files still in use: above any byte offset of a device. */
export const ORPHAN_BASE = 2 ** 52;

function intOpt(k: string, v: string | number | boolean, radix: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[-+]?[0-9a-fA-F]+$/.test(v) ? parseInt(v, radix) : NaN;
  if (!Number.isInteger(n) || Math.abs(n) > max) throw kerr('EINVAL', `msdos: bad value for ${k}: ${String(v)}`);
  return n;
}

export function msdosfs_parseargs(o: MountOptions): MsdosfsArgs {
  const a: MsdosfsArgs = {
    uid: 0, gid: 0, mask: 0o755, dirmask: -1, gmtoff: 0, shortname: 'mixed', codepage: cp437,
    showexec: false, quiet: false, dirsync: false, flush: false, allowUtime: -1, rodir: false, nonumtail: false,
  };
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'uid': a.uid = intOpt(k, v, 10, 0xffffffff); break;
      case 'gid': a.gid = intOpt(k, v, 10, 0xffffffff); break;
      case 'mask': a.mask = intOpt(k, v, 8, 0o777) & 0o777; break;
      case 'dirmask': a.dirmask = intOpt(k, v, 8, 0o777) & 0o777; break;
      case 'gmtoff': a.gmtoff = intOpt(k, v, 10, 24 * 3600); break;
      case 'utc': if (v !== false) a.gmtoff = 0; break;
      case 'codepage': a.codepage = codepage_byname(String(v)); break;
      case 'shortname':
        if (v !== 'lower' && v !== 'win95' && v !== 'winnt' && v !== 'mixed') throw kerr('EINVAL', `msdos: shortname=${String(v)}: lower, win95, winnt or mixed`);
        a.shortname = v;
        break;
      case 'allow_utime': a.allowUtime = intOpt(k, v, 8, 0o777) & 0o022; break;
      case 'showexec': case 'quiet': case 'dirsync': case 'flush': case 'rodir': case 'nonumtail':
        a[k] = v !== false;
        break;
      default: throw kerr('EINVAL', `msdos: unknown option '${k}'`);
    }
  }
  if (o.utc !== undefined && o.utc !== false) a.gmtoff = 0;
  if (a.dirmask < 0) a.dirmask = a.mask;
  // As Linux: by default, whoever the directory permissions let write.
  if (a.allowUtime < 0) a.allowUtime = a.dirmask & 0o022;
  return a;
}

export class Msdosfsmount {
  orphanSeq = 0;
  label = '';
  constructor(readonly mp: Mount, readonly dev: BlockDevice, readonly bpb: Bpb, readonly fat: Fat,
    readonly args: MsdosfsArgs,
    /** Owner of metadata buffers (FAT, directories), for fsync. */
    readonly meta: object) {}

  get fat32(): boolean { return this.bpb.fatType === 32; }

  /** Device byte offset of a data cluster. */
  cntobyte(c: number): number {
    return this.bpb.dataOffset + (c - 2) * this.bpb.clusterSize;
  }

  /** The directory block (offset, size) holding the byte at device offset off. */
  blockOf(off: number): { off: number; size: number } {
    const b = this.bpb;
    if (off < b.dataOffset) {
      const s = b.bytesPerSec;
      return { off: b.rootOffset + Math.floor((off - b.rootOffset) / s) * s, size: s };
    }
    const cs = b.clusterSize;
    return { off: b.dataOffset + Math.floor((off - b.dataOffset) / cs) * cs, size: cs };
  }

  /** Write a directory block: through with dirsync, else as the mount writes. */
  async dirWrite(bp: Buf): Promise<void> {
    if (this.args.dirsync) await bwrite(bp);
    else await mount_bwrite(this.mp, bp);
  }

  newOrphanKey(): number {
    return ORPHAN_BASE + ++this.orphanSeq;
  }
}
