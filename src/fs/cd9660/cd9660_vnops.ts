// Vnode operations (cd9660_vnops.c): read-only, so every operation that
// would change the medium fails with EROFS.
import {
  bread_cluster, brelse, genfs_rdonly_vnodeops, kerr, O_ACCMODE, O_RDONLY, O_TRUNC, VType,
  type Dirent, type Lwp, type Vattr, type Vnode, type VnodeOps,
} from '../../kern/index.js';
import { ISO_SECTOR } from './iso.js';
import {
  cd9660_direntries, cd9660_recordattr, cd9660_walkentries, checkExtent, HINT_DIR, isoVattr, type IsoEntry, type IsoMount, type IsoNode,
} from './cd9660_node.js';
import { cd9660_lookup, cd9660_lookupattr } from './cd9660_lookup.js';
import { zisofs_read } from './cd9660_zisofs.js';

/** Directory entries handed out per readdir call (more follow from the cookie). */
const READDIR_BATCH = 128;


async function cd9660_open(vp: Vnode, flags: number, _l: Lwp): Promise<void> {
  if ((vp.type === VType.VREG || vp.type === VType.VDIR || vp.type === VType.VLNK) &&
      ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC))) throw kerr('EROFS');
}

function cd9660_getattr(vp: Vnode, _l: Lwp): Vattr {
  return isoVattr(vp.node<IsoNode>());
}

/** Clusters read from the device at once by one read. */
const READ_WINDOW = 8;
/**
 * File data goes through the buffer cache in clusters of this many bytes (as
 * genfs reads pages in large transfers), not sector by sector: a device read
 * per 2048 bytes costs far more than the copy. Clusters are keyed by their
 * offset from the start of the extent, so their keys are never those of the
 * 2048-byte directory blocks of a well-formed image. 128 KiB is what FUSE
 * asks for at once: a read is then one cluster.
 */
const CLUSTER = 128 * 1024;

/** The recorded bytes of a file, through the buffer cache a cluster at a time, a window of clusters at once. */
async function cd9660_rawread(imp: IsoMount, n: IsoNode, buf: Uint8Array, offset: number): Promise<number> {
  const size = n.extents.reduce((s, e) => s + e.length, 0);
  const want = Math.max(0, Math.min(buf.length, size - offset));
  // [cluster on the medium, its length, offset in it, bytes, offset in buf]
  const pieces: [number, number, number, number, number][] = [];
  let done = 0;
  let base = 0;
  for (const ext of n.extents) {
    const sectors = Math.ceil(ext.length / ISO_SECTOR) * ISO_SECTOR;
    for (let rel = offset + done - base; done < want && rel < ext.length;) {
      const crel = rel - (rel % CLUSTER);
      const cnt = Math.min(want - done, ext.length - rel, crel + CLUSTER - rel);
      // Checked sector by sector: a truncated image keeps what it still has readable.
      const first = ext.start + rel - (rel % ISO_SECTOR);
      checkExtent(imp, first, Math.ceil((ext.start + rel + cnt - first) / ISO_SECTOR) * ISO_SECTOR, `file ${n.key}`);
      const cstart = ext.start + crel;
      const clen = Math.min(CLUSTER, sectors - crel, Math.floor((imp.dev.size - cstart) / ISO_SECTOR) * ISO_SECTOR);
      pieces.push([cstart, clen, rel - crel, cnt, done]);
      done += cnt;
      rel += cnt;
    }
    base += ext.length;
  }
  // Cached clusters at once; missing ones with a device read per adjacent run.
  for (let i = 0; i < pieces.length; i += READ_WINDOW) {
    const win = pieces.slice(i, i + READ_WINDOW);
    const got = bread_cluster(imp.dev, win.map(([offset, size]) => ({ offset, size })));
    const bufs = got instanceof Promise ? await got : got;
    win.forEach(([, , at, cnt, to], k) => {
      buf.set(bufs[k].data.subarray(at, at + cnt), to);
      brelse(bufs[k]);
    });
  }
  return done;
}

async function cd9660_read(vp: Vnode, buf: Uint8Array, offset: number, _ioflag: number, _l: Lwp): Promise<number> {
  if (vp.type !== VType.VREG) throw kerr('EINVAL');
  const n = vp.node<IsoNode>();
  const imp = vp.mount.priv<IsoMount>();
  if (n.zisofs) return zisofs_read((b, off) => cd9660_rawread(imp, n, b, off), n.zisofs, buf, offset);
  return cd9660_rawread(imp, n, buf, offset);
}

/**
 * A file's entry: its attributes (what getattr of its vnode gives) are
 * built from its record the first time they are asked for (FUSE
 * readdirplus), not for every entry listed (find asks for none), when the
 * record is at hand in the buffer cache (cd9660_quicknode); else none, and
 * the caller looks the name up.
 */
class FileDirent implements Dirent {
  readonly name: string;
  readonly fileid: number;
  readonly type: VType;
  readonly cookie: number;
  private va: Vattr | null | undefined;

  constructor(private readonly imp: IsoMount, e: IsoEntry, private readonly dirLoc: number) {
    this.name = e.name;
    this.fileid = e.key;
    this.type = e.type;
    this.cookie = e.next;
  }

  get attr(): Vattr | undefined {
    if (this.va === undefined) this.va = cd9660_recordattr(this.imp, this.dirLoc, this.fileid) ?? null;
    return this.va ?? undefined;
  }
}

/** The first entry not yet returned at cookie (the `next` of the last one returned): `next` grows along the directory. */
function firstAfter(all: readonly IsoEntry[], cookie: number): number {
  let lo = 0, hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (all[mid].next > cookie) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

async function cd9660_readdir(vp: Vnode, cookie: number, _l: Lwp): Promise<{ entries: Dirent[]; eof: boolean }> {
  const n = vp.node<IsoNode>();
  const imp = vp.mount.priv<IsoMount>();
  const entries: Dirent[] = [];
  const add = (e: IsoEntry): boolean => {
    // A file: its attributes without a vnode (FUSE readdirplus), when asked.
    entries.push(e.type !== VType.VDIR ? new FileDirent(imp, e, n.key) : { name: e.name, fileid: e.key, type: e.type, cookie: e.next });
    // A client may load a file by the id readdir gave (FUSE readdirplus).
    imp.hints.set(e.key, e.type === VType.VDIR ? HINT_DIR : n.key);
    return entries.length >= READDIR_BATCH;
  };
  const all = await cd9660_direntries(imp, n);
  if (all) {
    // From the kept entries.
    for (let i = firstAfter(all, cookie); i < all.length; i++) if (add(all[i])) return { entries, eof: false };
    return { entries, eof: true };
  }
  // A damaged directory: its records walked as far as they go.
  let full = false;
  await cd9660_walkentries(imp, n, cookie, e => (full = add(e)));
  return { entries, eof: !full };
}

async function cd9660_readlink(vp: Vnode, _l: Lwp): Promise<string> {
  if (vp.type !== VType.VLNK) throw kerr('EINVAL');
  return vp.node<IsoNode>().symlink;
}

export const cd9660_vnodeops: VnodeOps = genfs_rdonly_vnodeops({
  lookup: cd9660_lookup,
  lookupattr: cd9660_lookupattr,
  open: cd9660_open,
  getattr: cd9660_getattr,
  read: cd9660_read,
  readdir: cd9660_readdir,
  readlink: cd9660_readlink,
});
