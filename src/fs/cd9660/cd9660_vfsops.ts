// VFS operations (cd9660_vfsops.c): options, finding the session and its
// volume descriptors, choosing the tree (Rock Ridge, Joliet or plain ISO
// 9660), and loading vnodes by key.
import {
  vfs_intopt, vfs_flagopt, kerr, MNT_RDONLY, vcache_get,
  type Mount, type MountArgs, type MountOptions, type Statvfs, type Vnode, type VfsOps,
} from '../../kern/index.js';
import {
  ISO_FLAG_DIR, ISO_SECTOR, ISO_VD_END, ISO_VD_MAX, ISO_VD_PRIMARY, ISO_VD_START, ISO_VD_SUPPLEMENTARY,
  isDotRecord, isVolumeDescriptor, parseDirRecord, parseVolumeDescriptor, type VolumeDescriptor,
} from './iso.js';
import { cd9660_loadnode, cd9660_rrip, HINT_DIR, HINT_RECORD, iso_read, recordStart, type IsoMount, type IsoNode } from './cd9660_node.js';
import { cd9660_susp_sp } from './cd9660_rrip.js';
import type { IsoMapping } from './cd9660_util.js';
import { cd9660_vnodeops } from './cd9660_vnops.js';

export interface Cd9660Args {
  norrip: boolean;
  nojoliet: boolean;
  map: IsoMapping;
  uid?: number;
  gid?: number;
  mode: number;
  dmode: number;
  /** Session number (1-based); 0: the last one. */
  session: number;
  /** Start sector of the session whose volume descriptors to read, or undefined. */
  sbsector?: number;
}

/** Sessions that libisoburn appends to an image start on multiples of this (its emulated TOC). */
const SESSION_ALIGN = 32;
const MAX_SESSIONS = 100;

function bad(note: string): never {
  throw kerr('EINVAL', note);
}

/** Options as NetBSD's mount_cd9660 and Linux's iso9660 name them. Unknown ones: EINVAL. */
export function cd9660_parse_options(o: MountOptions): Cd9660Args {
  const a: Cd9660Args = { norrip: false, nojoliet: false, map: 'normal', mode: 0o555, dmode: 0o555, session: 0 };
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'norrip': case 'norock': a.norrip = vfs_flagopt(k, v); break;
      case 'nojoliet': a.nojoliet = vfs_flagopt(k, v); break;
      case 'nocasetrans': if (vfs_flagopt(k, v)) a.map = 'off'; break;
      case 'map': {
        const m = String(v);
        const map = ({ off: 'off', o: 'off', normal: 'normal', n: 'normal', acorn: 'acorn', a: 'acorn' } as const)[m];
        if (!map) bad(`option map=${m}: use off, normal or acorn`);
        a.map = map;
        break;
      }
      case 'uid': a.uid = vfs_intopt(k, v); break;
      case 'gid': a.gid = vfs_intopt(k, v); break;
      case 'mode': a.mode = vfs_intopt(k, v, 8) & 0o7777; break;
      case 'dmode': a.dmode = vfs_intopt(k, v, 8) & 0o7777; break;
      case 'session': a.session = vfs_intopt(k, v); break;
      case 'sbsector': a.sbsector = vfs_intopt(k, v); break;
      default: bad(`unknown option '${k}' for cd9660`);
    }
  }
  if (a.session && a.sbsector !== undefined) bad('options session= and sbsector= exclude each other');
  return a;
}

async function readSector(imp: IsoMount, sector: number): Promise<Uint8Array | null> {
  if ((sector + 1) * ISO_SECTOR > imp.dev.size) return null;
  return iso_read(imp, sector * ISO_SECTOR, ISO_SECTOR);
}

/**
 * The start sectors of the sessions of an image grown by libisoburn
 * (xorriso -dev img.iso ... -commit): the first at 32, each with a copy of its
 * volume descriptors, whose volume space size is the session's length; the
 * next starts at the following multiple of 32. Other images: one session at 0.
 */
async function cd9660_sessions(imp: IsoMount): Promise<number[]> {
  const out: number[] = [];
  for (let lba = SESSION_ALIGN; out.length < MAX_SESSIONS;) {
    const s = await readSector(imp, lba + ISO_VD_START);
    if (!s || !isVolumeDescriptor(s) || s[0] !== ISO_VD_PRIMARY) break;
    out.push(lba);
    const size = parseVolumeDescriptor(s).volumeSpaceSize;
    const next = Math.ceil((lba + size) / SESSION_ALIGN) * SESSION_ALIGN;
    if (next <= lba) break;
    lba = next;
  }
  return out.length ? out : [0];
}

/** The primary and (Joliet) supplementary descriptors of the set starting at `sector`. */
async function cd9660_vdset(imp: IsoMount, sector: number): Promise<{ pvd: VolumeDescriptor; svd: VolumeDescriptor | null }> {
  let pvd: VolumeDescriptor | null = null, svd: VolumeDescriptor | null = null;
  for (let i = 0; i < ISO_VD_MAX; i++) {
    const s = await readSector(imp, sector + i);
    if (!s || !isVolumeDescriptor(s)) {
      if (i === 0) bad(`not an ISO 9660 file system: no volume descriptor at sector ${sector}`);
      break;
    }
    if (s[0] === ISO_VD_END) break;
    if (s[0] === ISO_VD_PRIMARY && !pvd) pvd = parseVolumeDescriptor(s);
    if (s[0] === ISO_VD_SUPPLEMENTARY && !svd) {
      const vd = parseVolumeDescriptor(s);
      if (vd.joliet) svd = vd;
    }
  }
  if (!pvd) bad(`not an ISO 9660 file system: no primary volume descriptor from sector ${sector}`);
  return { pvd, svd };
}

/** The root directory's location from a descriptor, checked. */
function rootOf(imp: IsoMount, vd: VolumeDescriptor, what: string): number {
  if (vd.logicalBlockSize !== ISO_SECTOR) bad(`${what}: logical block size ${vd.logicalBlockSize} is not supported`);
  let r;
  try {
    r = parseDirRecord(vd.root, `${what} root record`);
  } catch {
    bad(`not an ISO 9660 file system: ${what} has a bad root directory record`);
  }
  const loc = recordStart(r);
  if (!(r.flags & ISO_FLAG_DIR) || r.dataLength === 0 || loc + r.dataLength > imp.dev.size) {
    bad(`not an ISO 9660 file system: ${what} root directory (${r.dataLength} bytes at ${loc}) is not inside the image`);
  }
  return loc;
}

async function cd9660_mount(mp: Mount, args: MountArgs): Promise<void> {
  const opts = cd9660_parse_options(args.options);
  if (!args.dev) bad('cd9660 needs a device');
  // A CD is read-only, whatever was asked.
  mp.flags |= MNT_RDONLY;
  const imp: IsoMount = {
    dev: args.dev, rootLoc: 0, volumeSpaceSize: 0, rrip: false, suspSkip: 0, joliet: false,
    map: opts.map, uid: opts.uid, gid: opts.gid, fmode: opts.mode, dmode: opts.dmode,
    hints: new Map(), relocOk: new Set(), dirHeads: new Map(), readArea: (off, len) => iso_read(imp, off, len),
  };
  let start = opts.sbsector ?? 0;
  if (opts.session) {
    const sessions = await cd9660_sessions(imp);
    if (opts.session > sessions.length) bad(`session ${opts.session}: the image has ${sessions.length}`);
    start = sessions[opts.session - 1];
  }
  const { pvd, svd } = await cd9660_vdset(imp, start + ISO_VD_START);
  imp.volumeSpaceSize = pvd.volumeSpaceSize;
  imp.rootLoc = rootOf(imp, pvd, 'primary volume descriptor');
  if (!opts.norrip) {
    // Rock Ridge: an SP entry in the root's `.` record, and RRIP entries or an RRIP ER.
    const first = await iso_read(imp, imp.rootLoc, ISO_SECTOR);
    if (first[0] > 0) {
      const dot = parseDirRecord(first.subarray(0, first[0]), 'root directory');
      const skip = cd9660_susp_sp(dot.systemUse);
      if (skip !== null) {
        imp.rrip = true;
        imp.suspSkip = skip;
        const ri = await cd9660_rrip(imp, dot, true, 'root directory');
        imp.rrip = ri.present || ri.er;
      }
    }
  }
  if (!imp.rrip && svd && !opts.nojoliet) {
    imp.joliet = true;
    imp.rootLoc = rootOf(imp, svd, 'Joliet volume descriptor');
  }
  imp.hints.set(imp.rootLoc, HINT_DIR);
  mp.data = imp;
}

async function cd9660_root(mp: Mount): Promise<Vnode> {
  return vcache_get(mp, mp.priv<IsoMount>().rootLoc);
}

async function cd9660_statvfs(mp: Mount): Promise<Statvfs> {
  const imp = mp.priv<IsoMount>();
  return {
    bsize: ISO_SECTOR, frsize: ISO_SECTOR, blocks: imp.volumeSpaceSize, bfree: 0, bavail: 0,
    files: 0, ffree: 0, favail: 0, namemax: 255, flag: mp.flags,
  };
}

/** At once for a file whose record is cached (a lookup or readdirplus right after its directory's walk). */
function cd9660_loadvnode(mp: Mount, vp: Vnode, key: number): void | Promise<void> {
  const got = cd9660_loadnode(mp.priv<IsoMount>(), key);
  if (got instanceof Promise) return got.then(node => setvnode(vp, node));
  setvnode(vp, got);
}

function setvnode(vp: Vnode, node: IsoNode): void {
  vp.type = node.type;
  vp.ops = cd9660_vnodeops;
  vp.data = node;
}

/**
 * VFS_VGET (cd9660_vget): the file an id handed out by an earlier mount of
 * this image names (a crashed server's: the host still holds it). A
 * directory's id is its extent, which starts with its `.` record; a file's
 * is the position of its record: the record there says which.
 */
async function cd9660_vget(mp: Mount, fileid: number): Promise<Vnode> {
  const imp = mp.priv<IsoMount>();
  if (!imp.hints.has(fileid)) {
    const within = fileid % ISO_SECTOR;
    if (fileid + ISO_SECTOR - within > imp.dev.size) throw kerr('ESTALE', `cd9660: file id ${fileid} is past the image`);
    const sector = await iso_read(imp, fileid - within, ISO_SECTOR);
    const len = sector[within];
    if (len === 0 || within + len > ISO_SECTOR) throw kerr('ESTALE', `cd9660: no record at file id ${fileid}`);
    const r = parseDirRecord(sector.subarray(within, within + len), `record at ${fileid}`);
    const dir = within === 0 && isDotRecord(r) === 0 && (r.flags & ISO_FLAG_DIR) !== 0 && recordStart(r) === fileid;
    imp.hints.set(fileid, dir ? HINT_DIR : HINT_RECORD);
  }
  return vcache_get(mp, fileid);
}

export const cd9660_vfsops: VfsOps = {
  name: 'cd9660',
  readOnlyFormat: true,
  aliases: ['iso9660'],
  mount: cd9660_mount,
  unmount: async (mp) => { mp.data = null; },
  root: cd9660_root,
  statvfs: cd9660_statvfs,
  sync: async () => {},
  loadvnode: cd9660_loadvnode,
  vget: cd9660_vget,
};
