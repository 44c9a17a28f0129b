// In-memory nodes (iso_node) and the mount's private data, and what builds
// them from the medium: reading bytes through the buffer cache, walking a
// directory's records, and turning a record (plus Rock Ridge) into a node.
//
// Vnode keys are positions on the medium, unique by construction: a
// directory's is the byte offset of its extent (where its `.` record is), a
// file's the byte offset of its (first) directory record.
import {
  bincore, bread, bread_cluster, breadm, brelse, ifmtToVtype, kerr, log, VType,
  type BlockDevice, type BlockRef, type Buf, type Timespec, type Vattr,
} from '../../kern/index.js';
import {
  checkDirRecord, dataStart, ISO_FLAG_ASSOC, ISO_FLAG_DIR, ISO_FLAG_MULTI, ISO_SECTOR, isDotRecord, isoDate7, parseDirRecord, recDataLength,
  recDot, recFlags, recNameLen, recStart, recSuStart, type DirRecord,
} from './iso.js';
import { cd9660_rrip_analyze, newInfo, RRIP_ATTRS, RRIP_NAME, type AreaReader, type RripInfo, type Where, type Zisofs } from './cd9660_rrip.js';
import { isofntrans, jolietfntrans, type IsoMapping } from './cd9660_util.js';

/** A directory larger than this is taken as corrupt (the largest real ones are a few MiB). */
export const CD9660_MAXDIRSIZE = 256 << 20;
/** How far up `..` is followed when checking a relocation, before calling it a loop. */
export const CD9660_MAXDEPTH = 4096;

/**
 * What loadvnode needs besides a key to build its node: for a file, the
 * location of the directory holding its record; HINT_DIR for a directory.
 */
export const HINT_DIR = -1;
/**
 * A file whose record is at its key in a directory not known (VFS_VGET of an
 * id an earlier mount handed out): its records are read from the key on.
 */
export const HINT_RECORD = -2;

export interface IsoMount {
  dev: BlockDevice;
  /** Byte offset of the root directory's extent. */
  rootLoc: number;
  volumeSpaceSize: number;
  /** Names and attributes from Rock Ridge. */
  rrip: boolean;
  /** SUSP skip length from the root's SP entry. */
  suspSkip: number;
  /** Names from the Joliet tree (UCS-2). */
  joliet: boolean;
  map: IsoMapping;
  uid?: number;
  gid?: number;
  /** Permissions of files and directories without Rock Ridge. */
  fmode: number;
  dmode: number;
  hints: Map<number, number>;
  /** Relocations (CL) already checked: "dir:target". */
  relocOk: Set<string>;
  /** The medium never changes: each directory's head is read once. */
  dirHeads: Map<number, DirHead>;
  /** Reads Rock Ridge continuation areas (iso_read). */
  readArea: AreaReader;
}

export interface Extent { start: number; length: number }

export interface IsoNode {
  key: number;
  type: VType;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** File data, in order (several for a multi-extent file). */
  extents: Extent[];
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  birthtime: Timespec;
  rdev: number;
  symlink: string;
  /** Directories: the parent's location (PL for a relocated one). */
  parent: number;
  /** Set when the data is zisofs-compressed (size is then the uncompressed size). */
  zisofs?: Zisofs;
  /** Directories: name -> entry, built by the first lookup. */
  names?: Map<string, IsoEntry>;
  /** Directories: every entry, kept after the first whole walk (readdir and lookup read it). */
  entries?: IsoEntry[];
}

function corrupt(what: string): never {
  log(`cd9660: ${what}`);
  throw kerr('EIO', what);
}

/** `length` bytes at byte offset `offset`, through the buffer cache. */
export async function iso_read(imp: IsoMount, offset: number, length: number): Promise<Uint8Array> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > imp.dev.size) {
    corrupt(`${length} bytes at ${offset} are outside the image (${imp.dev.size} bytes)`);
  }
  const out = new Uint8Array(length);
  for (let done = 0; done < length;) {
    const pos = offset + done;
    const base = pos - (pos % ISO_SECTOR);
    const bp = await bread(imp.dev, base, ISO_SECTOR);
    const n = Math.min(length - done, base + ISO_SECTOR - pos);
    out.set(bp.data.subarray(pos - base, pos - base + n), done);
    brelse(bp);
    done += n;
  }
  return out;
}

/** The data of a record's extent: its location in bytes, after any extended attribute record. */
export function recordStart(r: DirRecord): number {
  return dataStart(r.extent, r.extAttrLen);
}

/** Check that an extent lies inside the image. */
export function checkExtent(imp: IsoMount, start: number, length: number, where: string): void {
  if (length > 0 && start + length > imp.dev.size) {
    corrupt(`${where}: extent of ${length} bytes at ${start} runs past the image (${imp.dev.size} bytes)`);
  }
}

/**
 * A directory walk's callback, per record: the record is b[p, p + b[p])
 * (checked: checkDirRecord), in a sector held for the visit, at `offset`
 * in the directory; `next` is the offset just past it. true stops the walk;
 * a Promise is waited for (the sector stays held). `where` names the record
 * for messages.
 */
type RecordVisit = (b: Uint8Array, p: number, offset: number, next: number, where: () => string) => boolean | void | Promise<boolean | void>;

/**
 * The records of the directory at `start` (size bytes), from offset `from`,
 * each handed to `visit`, read in place from the buffer cache (no copy of a
 * sector, no object per record). A zero length byte ends the records of a
 * sector; a record never crosses one. A sector's records are taken at once:
 * only a sector read or a visit that answers with a Promise waits.
 */
async function cd9660_walkrecords(imp: IsoMount, start: number, size: number, from: number, visit: RecordVisit): Promise<void> {
  let offset = 0;
  const where = () => `directory at ${start}, record at ${offset}`;
  for (let off = from; off < size;) {
    const secOff = off - (off % ISO_SECTOR);
    const bp = await iso_sector(imp, start + secOff);
    try {
      const b = bp.data;
      let p = off - secOff;
      while (p < ISO_SECTOR && secOff + p < size) {
        const len = b[p];
        if (len === 0) break;
        offset = secOff + p;
        if (p + len > ISO_SECTOR) corrupt(`${where()}: record of ${len} bytes crosses a sector boundary`);
        if (offset + len > size) corrupt(`${where()}: record runs past the directory's end (${size})`);
        checkDirRecord(b, p, where);
        const stop = visit(b, p, offset, offset + len, where);
        if (stop instanceof Promise ? await stop : stop) return;
        p += len;
      }
    } finally {
      brelse(bp);
    }
    off = secOff + ISO_SECTOR;
  }
}

/** The sector at byte offset `at` (a multiple of ISO_SECTOR), held: at once when cached. */
function iso_sector(imp: IsoMount, at: number): Buf | Promise<Buf> {
  if (!Number.isSafeInteger(at) || at < 0 || at + ISO_SECTOR > imp.dev.size) {
    corrupt(`${ISO_SECTOR} bytes at ${at} are outside the image (${imp.dev.size} bytes)`);
  }
  return breadm(imp.dev, at, ISO_SECTOR);
}

/**
 * The Rock Ridge entries of the checked record at b[p..] (empty when Rock
 * Ridge is not in use); want: what to decode (cd9660_rrip_analyze).
 */
export function cd9660_rripat(imp: IsoMount, b: Uint8Array, p: number, want: number, where: Where): RripInfo | Promise<RripInfo> {
  if (!imp.rrip) return newInfo();
  const end = p + b[p];
  const su = Math.min(end, recSuStart(b, p) + imp.suspSkip);
  return cd9660_rrip_analyze(b, su, end, imp.readArea, where, want);
}

/** The Rock Ridge entries of a record (empty when Rock Ridge is not in use). */
export function cd9660_rrip(imp: IsoMount, r: DirRecord, rootDot: boolean, where: Where): RripInfo | Promise<RripInfo> {
  if (!imp.rrip) return newInfo();
  // The root's `.` record holds the SP entry itself; every other record skips suspSkip bytes.
  const su = r.systemUse;
  return cd9660_rrip_analyze(su, rootDot ? 0 : Math.min(imp.suspSkip, su.length), su.length, imp.readArea, where);
}

/** The name the record at b[p..] shows under this mount's naming (Rock Ridge, Joliet, or ISO with map=). */
export function cd9660_name(imp: IsoMount, b: Uint8Array, p: number, ri: RripInfo): string {
  if (ri.name !== undefined) return ri.name;
  const raw = b.subarray(p + 33, p + 33 + recNameLen(b, p));
  return imp.joliet ? jolietfntrans(raw) : isofntrans(raw, imp.map);
}

/** What a directory's first sector says: its `.` record, size and parent. */
export interface DirHead { dot: DirRecord; size: number; parent: number }

export function cd9660_dirhead(imp: IsoMount, loc: number): DirHead | Promise<DirHead> {
  return imp.dirHeads.get(loc) ?? cd9660_readhead(imp, loc).then(head => {
    imp.dirHeads.set(loc, head);
    return head;
  });
}

/**
 * Bytes read ahead when a directory is first read: mastering tools write
 * the directories one after the other (genisoimage and xorriso in path
 * table order), so a walk's next directories come with this one's read,
 * not with a device read each (a cold find: 111 reads of 2 KiB become ~10).
 */
const DIR_READAHEAD = 64 << 10;

async function cd9660_readhead(imp: IsoMount, loc: number): Promise<DirHead> {
  const where = `directory at ${loc}`;
  // Not when this directory came with an earlier one's read-ahead (then its neighbours did too).
  if (loc % ISO_SECTOR === 0 && loc + ISO_SECTOR <= imp.dev.size && !bincore(imp.dev, loc, ISO_SECTOR)) {
    const blks: BlockRef[] = [];
    for (let o = loc; o < loc + DIR_READAHEAD && o + ISO_SECTOR <= imp.dev.size; o += ISO_SECTOR) blks.push({ offset: o, size: ISO_SECTOR });
    try {
      const got = bread_cluster(imp.dev, blks);
      for (const bp of got instanceof Promise ? await got : got) brelse(bp);
    } catch {
      // What cannot be read ahead is read (and its error reported) as it is needed.
    }
  }
  const first = await iso_read(imp, loc, ISO_SECTOR);
  if (first[0] === 0) corrupt(`${where}: no '.' record`);
  const dot = parseDirRecord(first.subarray(0, first[0]), where);
  if (isDotRecord(dot) !== 0 || !(dot.flags & ISO_FLAG_DIR) || recordStart(dot) !== loc) {
    corrupt(`${where}: first record is not its '.' entry`);
  }
  const size = dot.dataLength;
  if (size < 2 * 34 || size > CD9660_MAXDIRSIZE) corrupt(`${where}: directory size ${size} is not sane`);
  checkExtent(imp, loc, size, where);
  const p = dot.length;
  if (p >= ISO_SECTOR || first[p] === 0) corrupt(`${where}: no '..' record`);
  if (p + first[p] > ISO_SECTOR) corrupt(`${where}: '..' record crosses a sector boundary`);
  const dotdot = parseDirRecord(first.subarray(p, p + first[p]), where);
  if (isDotRecord(dotdot) !== 1) corrupt(`${where}: second record is not its '..' entry`);
  let parent = recordStart(dotdot);
  const ri = await cd9660_rrip(imp, dotdot, false, `${where} '..'`);
  if (ri.parentLink !== undefined) parent = ri.parentLink * ISO_SECTOR;
  if (loc === imp.rootLoc) parent = loc;
  return { dot, size, parent };
}

/**
 * A CL entry in directory dirLoc names the relocated directory at target.
 * Refuse one that is an ancestor of dirLoc (or dirLoc itself): the tree
 * would loop. Walks `..` up to the root, bounded.
 */
export async function cd9660_checkreloc(imp: IsoMount, dirLoc: number, target: number): Promise<void> {
  const key = `${dirLoc}:${target}`;
  if (imp.relocOk.has(key)) return;
  let cur = dirLoc;
  for (let depth = 0; cur !== imp.rootLoc; depth++) {
    if (cur === target) corrupt(`directory at ${dirLoc}: relocated directory at ${target} is its own ancestor`);
    if (depth > CD9660_MAXDEPTH) corrupt(`directory at ${dirLoc}: '..' does not lead to the root`);
    cur = (await cd9660_dirhead(imp, cur)).parent;
  }
  if (target === imp.rootLoc) corrupt(`directory at ${dirLoc}: relocated directory is the root`);
  imp.relocOk.add(key);
}

/** One visible entry of a directory: name, file id, type. */
export interface IsoEntry {
  name: string;
  key: number;
  type: VType;
  /** Offset just past the entry's last record (the readdir cookie). */
  next: number;
}

function fileType(ri: RripInfo): VType {
  const t = ri.mode === undefined ? VType.VREG : ifmtToVtype(ri.mode);
  return t === VType.VNON || t === VType.VDIR ? VType.VREG : t;
}

/**
 * The visible entries of directory `dir` from offset `from`, `.` and `..`
 * included, each handed to `emit` (true: stop): associated files, relocated
 * originals (RE) and the continuation records of multi-extent files left
 * out. The entries before a damaged record are emitted before its EIO is
 * thrown. A sector's records are taken at once; only a sector read, a
 * continuation area or a relocation check waits.
 */
export async function cd9660_walkentries(imp: IsoMount, dir: IsoNode, from: number, emit: (e: IsoEntry) => boolean | void): Promise<void> {
  // A multi-extent file's entry, until its final extent.
  let pending = null as IsoEntry | null;
  const entry = (flags: number, e: IsoEntry): boolean | void => {
    if (flags & ISO_FLAG_MULTI && !(flags & ISO_FLAG_DIR)) pending = e;
    else return emit(e);
  };
  // A record's entry, once its Rock Ridge is known.
  const named = (b: Uint8Array, p: number, ri: RripInfo, offset: number, next: number): boolean | void | Promise<boolean | void> => {
    if (ri.relocated) return;
    const name = cd9660_name(imp, b, p, ri);
    if (name === '' || name === '.' || name === '..') return;
    const flags = recFlags(b, p);
    if (ri.childLink !== undefined) {
      const target = ri.childLink * ISO_SECTOR;
      return cd9660_checkreloc(imp, dir.key, target).then(() => entry(flags, { name, key: target, type: VType.VDIR, next }));
    }
    if (flags & ISO_FLAG_DIR) return entry(flags, { name, key: recStart(b, p), type: VType.VDIR, next });
    return entry(flags, { name, key: dir.key + offset, type: fileType(ri), next });
  };
  await cd9660_walkrecords(imp, dir.key, dir.size, from, (b, p, offset, next, where) => {
    const flags = recFlags(b, p);
    if (pending) {
      // A continuation record of a multi-extent file: the entry ends with its final extent.
      if (flags & ISO_FLAG_MULTI) return;
      const e = { name: pending.name, key: pending.key, type: pending.type, next };
      pending = null;
      return emit(e);
    }
    const dot = recDot(b, p);
    if (dot !== null) {
      if (offset === 0 && dot === 0) return emit({ name: '.', key: dir.key, type: VType.VDIR, next });
      if (offset === 0 || dot === 0) corrupt(`directory at ${dir.key}: '.' or '..' record at ${offset}`);
      return emit({ name: '..', key: dir.parent, type: VType.VDIR, next });
    }
    if (flags & ISO_FLAG_ASSOC) return;
    const ri = cd9660_rripat(imp, b, p, RRIP_NAME, where);
    return ri instanceof Promise ? ri.then(x => named(b, p, x, offset, next)) : named(b, p, ri, offset, next);
  });
  if (pending) corrupt(`directory at ${dir.key}: multi-extent file '${pending.name}' has no final extent`);
}

/**
 * Every entry of directory `dir`, walked once and kept with its node. null
 * when the walk fails (a damaged record): callers then walk as far as they
 * can, as before.
 */
export async function cd9660_direntries(imp: IsoMount, dir: IsoNode): Promise<IsoEntry[] | null> {
  if (dir.entries) return dir.entries;
  const all: IsoEntry[] = [];
  try {
    await cd9660_walkentries(imp, dir, 0, e => { all.push(e); });
  } catch {
    return null;
  }
  dir.entries = all;
  return all;
}

/** A time equal to t as t itself: a node keeps one object for its usually equal times (nodes are kept by the thousand). */
function sameTime(a: Timespec | undefined, t: Timespec): Timespec {
  return a === undefined || (a.sec === t.sec && a.nsec === t.nsec) ? t : a;
}

function attrs(imp: IsoMount, key: number, type: VType, date: Timespec, ri: RripInfo, dirDefault: boolean): IsoNode {
  const t = ri.mtime ?? date;
  return {
    key, type,
    mode: ri.mode !== undefined ? ri.mode & 0o7777 : dirDefault ? imp.dmode : imp.fmode,
    nlink: Math.max(1, ri.nlink ?? 1),
    uid: imp.uid ?? ri.uid ?? 0,
    gid: imp.gid ?? ri.gid ?? 0,
    size: 0,
    extents: [],
    atime: sameTime(ri.atime, t),
    mtime: t,
    ctime: sameTime(ri.ctime, t),
    birthtime: sameTime(ri.birthtime, t),
    rdev: ri.rdev ?? 0,
    symlink: ri.symlink ?? '',
    parent: 0,
  };
}

/** The node of a single-extent file from its checked record at b[p..] and its Rock Ridge. */
function recordFileNode(imp: IsoMount, key: number, b: Uint8Array, p: number, ri: RripInfo): IsoNode {
  const n = attrs(imp, key, fileType(ri), ri.mtime ?? isoDate7(b, p + 18), ri, false);
  if (ri.zisofs && n.type === VType.VREG) n.zisofs = ri.zisofs;
  const length = recDataLength(b, p);
  // A literal of one: push onto [] would give the array room for 17.
  n.extents = [{ start: recStart(b, p), length }];
  n.size = length;
  return finish(n, key);
}

/**
 * The node of the single-extent file whose record is at key in directory
 * dirLoc, built at once from the buffer cache (its directory's head known,
 * its sector cached, no continuation area), as loadnode would build it; null
 * when it cannot be built at once or is anything else (loadnode then decides,
 * and says what is wrong). readdir's attributes and lookup's vnode come from
 * here: the walk keeps no parsed record.
 */
export function cd9660_quicknode(imp: IsoMount, dirLoc: number, key: number): IsoNode | null {
  const head = imp.dirHeads.get(dirLoc);
  const off = key - dirLoc;
  if (!head || off < 0 || off >= head.size) return null;
  const within = key % ISO_SECTOR;
  let got: Buf | Promise<Buf>;
  try {
    got = iso_sector(imp, key - within);
  } catch {
    return null;
  }
  if (got instanceof Promise) {
    got.then(brelse, () => {});
    return null;
  }
  try {
    const b = got.data, len = b[within];
    if (len === 0 || within + len > ISO_SECTOR || off + len > head.size) return null;
    const where = () => `directory at ${dirLoc}, record at ${off}`;
    checkDirRecord(b, within, where);
    if (recDot(b, within) !== null || (recFlags(b, within) & (ISO_FLAG_DIR | ISO_FLAG_MULTI))) return null;
    const ri = cd9660_rripat(imp, b, within, RRIP_ATTRS, where);
    if (ri instanceof Promise) {
      ri.catch(() => {});
      return null;
    }
    return recordFileNode(imp, key, b, within, ri);
  } catch {
    return null; // damaged: loadnode says why
  } finally {
    brelse(got);
  }
}

/** A node's attributes (getattr, and those of a file whose record is at hand: cd9660_recordattr). */
export function isoVattr(n: IsoNode): Vattr {
  let bytes = 0;
  // Indexed: for-of makes an iterator (and its results) in code not yet optimized.
  for (let i = 0; i < n.extents.length; i++) bytes += Math.ceil(n.extents[i].length / ISO_SECTOR) * ISO_SECTOR;
  return {
    type: n.type, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, fileid: n.key,
    size: n.size, bytes, blocksize: ISO_SECTOR,
    atime: n.atime, mtime: n.mtime, ctime: n.ctime, birthtime: n.birthtime,
    rdev: n.rdev, gen: 0,
  };
}

/**
 * The attributes of the single-extent file whose record is at key in
 * directory dirLoc, without a vnode, when cd9660_quicknode can build its
 * node at once (readdir's entries, VOP_LOOKUPATTR); else undefined.
 */
export function cd9660_recordattr(imp: IsoMount, dirLoc: number, key: number): Vattr | undefined {
  const n = cd9660_quicknode(imp, dirLoc, key);
  return n ? isoVattr(n) : undefined;
}

/**
 * Build the node for key (cd9660_vget_internal): at once for a file whose
 * record is cached (cd9660_quicknode), else by reading.
 */
export function cd9660_loadnode(imp: IsoMount, key: number): IsoNode | Promise<IsoNode> {
  const hint = imp.hints.get(key);
  // Keys come from lookup or readdir of this mount; any other is not a file here.
  if (hint === undefined) throw kerr('ESTALE', `cd9660: file id ${key} was not handed out by this mount`);
  if (hint >= 0) {
    const quick = cd9660_quicknode(imp, hint, key);
    if (quick) return quick;
  }
  return cd9660_loadnode_slow(imp, key, hint);
}

async function cd9660_loadnode_slow(imp: IsoMount, key: number, hint: number): Promise<IsoNode> {
  if (hint === HINT_DIR) {
    const head = await cd9660_dirhead(imp, key);
    const ri = await cd9660_rrip(imp, head.dot, key === imp.rootLoc, `directory at ${key} '.'`);
    const n = attrs(imp, key, VType.VDIR, head.dot.date, ri, true);
    n.size = head.size;
    n.extents = [{ start: key, length: head.size }];
    n.parent = head.parent;
    return n;
  }
  let n: IsoNode | null = null;
  let name: Uint8Array | null = null;
  let final = false;
  // A record found by its key alone: its directory is bounded only by the largest one.
  const start = hint === HINT_RECORD ? key - (key % ISO_SECTOR) : hint;
  const dirSize = hint === HINT_RECORD ? CD9660_MAXDIRSIZE : (await cd9660_dirhead(imp, hint)).size;
  await cd9660_walkrecords(imp, start, dirSize, key - start, async (b, p, offset) => {
    const where = `directory at ${start}, record at ${offset}`;
    const r = parseDirRecord(b.subarray(p, p + b[p]), where);
    if (!n) {
      if (start + offset !== key || isDotRecord(r) !== null || (r.flags & ISO_FLAG_DIR)) corrupt(`${where}: not a file record`);
      const ri = await cd9660_rrip(imp, r, false, where);
      n = attrs(imp, key, fileType(ri), r.date, ri, false);
      if (ri.zisofs && n.type === VType.VREG) n.zisofs = ri.zisofs;
      name = r.name.slice();
    } else if (r.name.length !== name!.length || r.name.some((c, i) => c !== name![i])) {
      corrupt(`${where}: multi-extent file continues with another name`);
    }
    n.extents.push({ start: recordStart(r), length: r.dataLength });
    n.size += r.dataLength;
    final = !(r.flags & ISO_FLAG_MULTI);
    return final;
  });
  if (!n) corrupt(`record at ${key}: not found in its directory`);
  if (!final) corrupt(`record at ${key}: multi-extent file has no final extent`);
  return finish(n, key);
}

/** What a file's size says once its records are read: zisofs's uncompressed size, a link's target length. */
function finish(n: IsoNode, key: number): IsoNode {
  if (n.zisofs) n.size = n.zisofs.size;
  if (n.type === VType.VLNK) {
    if (n.symlink === '') corrupt(`record at ${key}: symbolic link without a target`);
    n.size = new TextEncoder().encode(n.symlink).length;
  }
  return n;
}
