// File entries (4/14.9) and extended file entries (4/14.17) -> in-memory
// nodes: attributes, the data's allocation descriptors (short, long,
// extended, continued in allocation extent descriptors, or the data embedded
// in the ICB), device numbers from the extended attributes, and the reading
// of a node's data through the partition maps.
import {
  bread, brelse, makedev, VType,
  type Timespec, type Vattr,
} from '../../kern/index.js';
import {
  AD_SIZE, EXT_NEXT, EXT_RECORDED, FT_BLK, FT_CHR, FT_DIR, FT_FIFO, FT_REALTIME, FT_REG, FT_SOCK, FT_SYMLINK,
  ICB_AD_EXT, ICB_AD_INICB, ICB_AD_LONG, ICB_AD_MASK, ICB_AD_SHORT, FILE_ENTRY_TAGS, TAG_AED, TAG_EAHD, TAG_EFE, TAG_IE,
  ext_ad, icbtag, long_ad, short_ad, u16, u32, u64, udf_corrupt, udf_perm_to_mode, udf_tag, udf_timestamp,
  type AllocDesc, type IcbTag,
} from './ecma167.js';
import type { UdfEntry } from './udf_dir.js';
import { udf_cs0 } from './udf_osta.js';
import { udf_contig, udf_key, udf_readblock, udf_readtagged, udf_tagged, udf_withblock, type UdfMount } from './udf_subr.js';

/** Indirect entries followed from one ICB (strategy 4096) before calling it a loop. */
const MAX_ICB_NESTING = 1024;
/** Allocation extent descriptors followed for one file before calling it a loop. */
const MAX_AEDS = 65536;
/** Path components of a symbolic link larger than this are taken as corrupt (PATH_MAX is 4096). */
const MAX_SYMLINK = 64 * 1024;

export interface UdfNode {
  key: number;
  /** Where the entry is: partition reference and block. */
  part: number;
  lb: number;
  icb: IcbTag;
  type: VType;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** Blocks recorded, in bytes. */
  bytes: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  birthtime: Timespec;
  rdev: number;
  /** The data, when embedded in the ICB. */
  inline: Uint8Array | null;
  /** The data's extents otherwise (covering at least size bytes). */
  extents: AllocDesc[];
  /** Symbolic links: the target. */
  symlink?: string;
  /** Directories: the entries, read once; name -> key, built by the first lookup; the parent's key. */
  entries?: UdfEntry[];
  names?: Map<string, number>;
  parent?: number;
}

export function vtypeOf(ft: number): VType {
  switch (ft) {
    case FT_DIR: return VType.VDIR;
    case FT_REG: case FT_REALTIME: return VType.VREG;
    case FT_BLK: return VType.VBLK;
    case FT_CHR: return VType.VCHR;
    case FT_FIFO: return VType.VFIFO;
    case FT_SOCK: return VType.VSOCK;
    case FT_SYMLINK: return VType.VLNK;
    default: return VType.VNON;
  }
}

/**
 * The device specification extended attribute (4/14.10.7, type 12): its
 * major and minor numbers, or 0. EAs follow the EA header descriptor.
 */
function udf_devspec(ea: Uint8Array, where: string): number {
  if (ea.length < 24) return 0;
  const t = udf_tag(ea.subarray(0, 24), null, `${where} EA header`);
  if (!t || t.ident !== TAG_EAHD) return 0;
  for (let o = 24, n = 0; o + 12 <= ea.length && n < 4096; n++) {
    const type = u32(ea, o), len = u32(ea, o + 8);
    if (len < 12 || o + len > ea.length) udf_corrupt(`${where}: extended attribute of ${len} bytes at ${o} (EA space ${ea.length})`);
    if (type === 12 && len >= 24) return makedev(u32(ea, o + 16), u32(ea, o + 20));
    o += len;
  }
  return 0;
}

/** The allocation descriptors of a file, following allocation extent descriptors, until they cover `size` bytes. */
async function udf_allocdescs(ump: UdfMount, adType: number, area: Uint8Array, part: number, size: number, where: string): Promise<AllocDesc[]> {
  const out: AllocDesc[] = [];
  const adSize = AD_SIZE[adType];
  if (adSize === undefined) udf_corrupt(`${where}: allocation descriptor type ${adType}`);
  let covered = 0;
  const seen = new Set<number>();
  for (let hops = 0; ; hops++) {
    let next: AllocDesc | null = null;
    for (let o = 0; o + adSize <= area.length && covered < size; o += adSize) {
      const ad = adType === ICB_AD_SHORT ? short_ad(area, o, part) : adType === ICB_AD_LONG ? long_ad(area, o) : ext_ad(area, o);
      if (ad.length === 0) break;
      if (ad.type === EXT_NEXT) { next = ad; break; }
      out.push(ad);
      covered += ad.length;
    }
    if (!next || covered >= size) return out;
    if (hops >= MAX_AEDS || seen.has(udf_key(next.part, next.lb))) udf_corrupt(`${where}: allocation extent descriptors loop`);
    seen.add(udf_key(next.part, next.lb));
    const { b } = await udf_readtagged(ump, next.part, next.lb, `${where} allocation extent`, TAG_AED);
    const len = u32(b, 20);
    if (24 + len > b.length || len > next.length) udf_corrupt(`${where}: allocation extent descriptor holds ${len} bytes`);
    area = b.subarray(24, 24 + len);
    // Short descriptors in the extent are relative to the extent's own partition.
    part = next.part;
  }
}

/**
 * Read the (extended) file entry at (part, lb), following the indirect
 * entries of strategy 4096 to the newest one (4/A.6), and build the node.
 */
export async function udf_loadnode(ump: UdfMount, part: number, lb: number, sys = false): Promise<UdfNode> {
  const key = udf_key(part, lb);
  for (let n = 0; ; n++) {
    const where = `file entry at ${part}:${lb}`;
    const node = await udf_withblock(ump, part, lb, where, async b => {
      const ident = udf_tagged(b, lb, where, FILE_ENTRY_TAGS);
      const newer = icbtag(b).strategy === 4096 ? await udf_indirect(ump, part, lb, where) : null;
      if (!newer) return udf_node(ump, key, part, lb, b, ident, where, sys);
      if (n >= MAX_ICB_NESTING) udf_corrupt(`${where}: indirect entries nest too deep`);
      part = newer.part; lb = newer.lb;
      return null;
    });
    if (node) return node;
  }
}

/** The newer entry a strategy 4096 ICB's next block points to with an indirect entry, if any. */
async function udf_indirect(ump: UdfMount, part: number, lb: number, where: string): Promise<AllocDesc | null> {
  let nb: Uint8Array;
  try {
    nb = await udf_readblock(ump, part, lb + 1, where);
  } catch {
    return null;
  }
  const t = udf_tag(nb, lb + 1, where);
  if (!t || t.ident !== TAG_IE) return null;
  const ie = long_ad(nb, 16 + 20);
  return ie.length === 0 ? null : ie;
}

/** The node of the checked file entry b (ident: FE or EFE) at (part, lb); nothing of b is kept. */
async function udf_node(ump: UdfMount, key: number, part: number, lb: number, b: Uint8Array, ident: number, where: string, sys: boolean): Promise<UdfNode> {
  const efe = ident === TAG_EFE;
  const base = efe ? 216 : 176;
  const icb = icbtag(b);
  const lea = u32(b, base - 8), lad = u32(b, base - 4);
  if (base + lea + lad > b.length) udf_corrupt(`${where}: extended attributes (${lea}) and allocation descriptors (${lad}) overflow the block`);
  const size = u64(b, 56, `${where} information length`);
  const t = (o: number, what: string) => udf_timestamp(b, o, `${where} ${what}`);
  const mtime = t(efe ? 92 : 84, 'modification time');
  const type = vtypeOf(icb.fileType);
  // The VAT and the metadata files (sys) are read as data, whatever their type.
  if (type === VType.VNON && !sys) udf_corrupt(`${where}: file type ${icb.fileType}`);
  const uid = u32(b, 36), gid = u32(b, 40);
  const isDir = type === VType.VDIR;
  const node: UdfNode = {
    key, part, lb, icb, type,
    mode: (isDir ? ump.dmode : ump.mode) ?? udf_perm_to_mode(u32(b, 44), icb.flags),
    nlink: Math.max(1, u16(b, 48)),
    // 2^32-1: no owner recorded (UDF 3.3.3.1); the mount's uid=/gid= (else nobody) stand in.
    uid: uid === 0xffffffff ? ump.uid ?? 65534 : uid,
    gid: gid === 0xffffffff ? ump.gid ?? 65534 : gid,
    size,
    bytes: Math.min(Number.MAX_SAFE_INTEGER, u64(b, efe ? 72 : 64, `${where} blocks recorded`) * ump.bsize),
    atime: t(efe ? 80 : 72, 'access time'),
    mtime,
    ctime: t(efe ? 116 : 96, 'attribute time'),
    birthtime: efe ? t(104, 'creation time') : mtime,
    rdev: type === VType.VBLK || type === VType.VCHR ? udf_devspec(b.subarray(base, base + lea), where) : 0,
    inline: null,
    extents: [],
  };
  const area = b.subarray(base + lea, base + lea + lad);
  const adType = icb.flags & ICB_AD_MASK;
  if (adType === ICB_AD_INICB) {
    if (size > lad) udf_corrupt(`${where}: ${size} bytes of embedded data in ${lad}`);
    node.inline = area.slice(0, size);
  } else if (adType === ICB_AD_SHORT || adType === ICB_AD_LONG || adType === ICB_AD_EXT) {
    node.extents = await udf_allocdescs(ump, adType, area, part, size, where);
  } else {
    udf_corrupt(`${where}: allocation descriptor type ${adType}`);
  }
  if (type === VType.VLNK) node.symlink = udf_pathcomponents(await udf_readall(ump, node, MAX_SYMLINK, 'symbolic link'), where);
  return node;
}

/** A node's attributes, as VOP_GETATTR gives them. */
export function udf_vattr(ump: UdfMount, n: UdfNode): Vattr {
  return {
    type: n.type, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, fileid: n.key,
    size: n.symlink !== undefined ? new TextEncoder().encode(n.symlink).length : n.size,
    bytes: n.bytes, blocksize: ump.bsize,
    atime: n.atime, mtime: n.mtime, ctime: n.ctime, birthtime: n.birthtime,
    rdev: n.rdev, gen: 0,
  };
}

/** Bytes read from the device at once for file data (as genfs reads in large transfers). */
const CLUSTER = 128 * 1024;

/**
 * Read node's data into buf from offset; returns the bytes read. Recorded
 * extents are read through the buffer cache: in clusters keyed from the
 * extent's start where its blocks lie in a row (`cluster`: regular files),
 * otherwise a block at a time. Unrecorded and sparse extents read as zeros.
 */
export async function udf_readdata(ump: UdfMount, n: UdfNode, buf: Uint8Array, offset: number, cluster: boolean): Promise<number> {
  const want = Math.max(0, Math.min(buf.length, n.size - offset));
  if (n.inline) {
    buf.set(n.inline.subarray(offset, offset + want));
    return want;
  }
  const where = `file ${n.part}:${n.lb}`;
  const bs = ump.bsize;
  let done = 0;
  let base = 0;
  for (const e of n.extents) {
    if (done >= want) break;
    for (let rel = offset + done - base; done < want && rel >= 0 && rel < e.length;) {
      const cnt = Math.min(want - done, e.length - rel);
      if (e.type !== EXT_RECORDED) {
        buf.fill(0, done, done + cnt);
      } else {
        const nblk = Math.ceil(e.length / bs);
        const start = cluster ? udf_contig(ump, e.part, e.lb, nblk, where) : null;
        if (start !== null) {
          await readClusters(ump, start * bs, nblk * bs, rel, buf.subarray(done, done + cnt), where);
        } else {
          for (let got = 0; got < cnt;) {
            const r = rel + got;
            const blk = await udf_readblock(ump, e.part, e.lb + Math.floor(r / bs), where);
            const k = Math.min(cnt - got, bs - (r % bs));
            buf.set(blk.subarray(r % bs, r % bs + k), done + got);
            got += k;
          }
        }
      }
      done += cnt;
      rel += cnt;
    }
    base += e.length;
  }
  if (done < want) udf_corrupt(`${where}: allocation descriptors cover ${base} of ${n.size} bytes`);
  return done;
}

/** out <- bytes [rel, rel+out.length) of the extent at byte `start` (extLen bytes, whole blocks). */
async function readClusters(ump: UdfMount, start: number, extLen: number, rel: number, out: Uint8Array, where: string): Promise<void> {
  const jobs: Promise<void>[] = [];
  for (let done = 0; done < out.length;) {
    const r = rel + done;
    const crel = r - (r % CLUSTER);
    // A cluster stops at the medium's end: a truncated image keeps what it still has.
    const avail = Math.floor((ump.dev.size - start - crel) / ump.bsize) * ump.bsize;
    const clen = Math.min(CLUSTER, extLen - crel, avail);
    const cnt = Math.min(out.length - done, crel + Math.min(CLUSTER, extLen - crel) - r);
    const at = done;
    if (r - crel + cnt > clen) udf_corrupt(`${where}: data at ${start + r} runs past the medium`);
    jobs.push((async () => {
      const bp = await bread(ump.dev, start + crel, clen);
      out.set(bp.data.subarray(r - crel, r - crel + cnt), at);
      brelse(bp);
    })());
    done += cnt;
  }
  await Promise.all(jobs);
}

/** All of a node's data, for metadata (directories, symlinks, the VAT): at most `max` bytes, else EIO. */
export async function udf_readall(ump: UdfMount, n: UdfNode, max: number, what: string): Promise<Uint8Array> {
  if (n.size > max) udf_corrupt(`${what} at ${n.part}:${n.lb}: ${n.size} bytes is more than ${max}`);
  const b = new Uint8Array(n.size);
  await udf_readdata(ump, n, b, 0, false);
  return b;
}

/** Path components (4/14.16) of a symbolic link -> its target, as Linux's udf shows it. */
export function udf_pathcomponents(d: Uint8Array, where: string): string {
  let out = '';
  for (let o = 0; o < d.length;) {
    if (o + 4 > d.length) udf_corrupt(`${where}: path component at ${o} is cut short`);
    const type = d[o], len = d[o + 1];
    if (o + 4 + len > d.length) udf_corrupt(`${where}: path component at ${o} runs past the data`);
    const ident = d.subarray(o + 4, o + 4 + len);
    switch (type) {
      // 1 with an identifier names a root outside this file system: not something a path can say.
      case 1: case 2:
        if (type === 1 && len) udf_corrupt(`${where}: path component names another root`);
        out = '/';
        break;
      case 3: out += '../'; break;
      case 4: out += './'; break;
      case 5: {
        const name = udf_cs0(ident, where);
        if (name === '' || name.includes('/') || name.includes('\0')) udf_corrupt(`${where}: path component '${name}'`);
        out += name + '/';
        break;
      }
      default: udf_corrupt(`${where}: path component type ${type}`);
    }
    o += 4 + len;
  }
  if (out.length > 1) out = out.slice(0, -1);
  if (out === '') udf_corrupt(`${where}: symbolic link without a target`);
  return out;
}
