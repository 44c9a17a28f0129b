// In-memory nodes (NetBSD's ntnode/fnode in one): a file's type, times,
// names and data attribute, built from its MFT record(s); directory entries
// read from the $I30 index; symbolic links from reparse points and Interix
// symlink files.
import { kerr, log, VType, type MaybePromise, type Timespec } from '../../kern/index.js';
import {
  AT_DATA, AT_FILE_NAME, AT_REPARSE_POINT, AT_STANDARD_INFORMATION, corrupt, FILE_ATTR_I30_INDEX_PRESENT, FILE_ATTR_REPARSE_POINT, FILE_ATTR_SYSTEM, FILE_NAME_DOS,
  IO_REPARSE_TAG_LX_SYMLINK, IO_REPARSE_TAG_MOUNT_POINT, IO_REPARSE_TAG_SYMLINK, MFT_RECORD_IS_DIRECTORY, NTFS_FIRST_USER, NTFS_ROOTINO,
  ntfsTime, parseFileName, u16, u32, utf16, type FileName, type RecordHeader,
} from './ntfs.js';
import {
  findAttr, ntfs_dirindex, ntfs_indexentries, ntfs_loadattrs, ntfs_readattr, ntfs_upcase,
  type CuCache, type DirIndex, type LoadedRecord, type NtfsAttr, type NtfsMount,
} from './ntfs_subr.js';

/** Longest symlink target read (Interix files and reparse data are small). */
const MAX_LINK = 16384;
/** How far up the tree an absolute link target's depth is counted. */
const MAX_DEPTH = 1024;

export interface DirEntry { name: string; ino: number; seq: number; type: VType }

export interface NtfsNode {
  ino: number;
  seq: number;
  type: VType;
  nlink: number;
  size: number;
  bytes: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  birthtime: Timespec;
  /** Directories: the parent's record number (the root's own for the root). */
  parent: number;
  /** Regular files: the unnamed $DATA attribute. */
  data?: NtfsAttr;
  index?: DirIndex;
  symlink?: string;
  /** Directories, once read: entries in index order, and name -> entry for lookup. */
  entries?: DirEntry[];
  exact?: Map<string, DirEntry>;
  folded?: Map<string, DirEntry>;
  /** A reparse point that is not a link: its tag (reading the data is refused). */
  foreignTag?: number;
  /** The last decompressed compression unit. */
  cache: { cu?: CuCache };
}

/** The names of a file that are shown: every $FILE_NAME but DOS-only 8.3 ones. */
function shownNames(attrs: NtfsAttr[], where: string): FileName[] {
  return attrs.filter(a => a.type === AT_FILE_NAME).map(a => {
    if (!a.value) corrupt(`${where}: $FILE_NAME is not resident`);
    return parseFileName(a.value, where);
  }).filter(f => f.namespace !== FILE_NAME_DOS);
}

/**
 * Build the node for MFT record ino (ntfs_loadntnode): at once when its
 * record is cached and nothing more needs reading (a plain file or
 * directory; not an attribute list, a reparse point or a possible Interix
 * link).
 */
export function ntfs_loadnode(nmp: NtfsMount, ino: number): MaybePromise<NtfsNode> {
  const loaded = ntfs_loadattrs(nmp, ino);
  return loaded instanceof Promise ? loaded.then(l => nodeOf(nmp, ino, l)) : nodeOf(nmp, ino, loaded);
}

function nodeOf(nmp: NtfsMount, ino: number, { h, attrs }: LoadedRecord): MaybePromise<NtfsNode> {
  const where = `MFT record ${ino}`;
  const names = shownNames(attrs, where);
  const si = findAttr(attrs, AT_STANDARD_INFORMATION);
  if (!si?.value || si.value.length < 0x24) corrupt(`${where}: no usable $STANDARD_INFORMATION`);
  const v = si.value;
  const fileAttributes = u32(v, 0x20);
  const n: NtfsNode = {
    ino, seq: h.seq, type: VType.VREG, nlink: Math.max(1, names.length), size: 0, bytes: 0,
    birthtime: ntfsTime(v, 0), mtime: ntfsTime(v, 8), ctime: ntfsTime(v, 0x10), atime: ntfsTime(v, 0x18),
    parent: ino === NTFS_ROOTINO ? ino : names[0]?.parent ?? NTFS_ROOTINO, cache: {},
  };
  // A symlink or junction is a link even on a directory (junctions always are).
  const rp = findAttr(attrs, AT_REPARSE_POINT);
  return rp ? reparsedNode(nmp, n, h, attrs, fileAttributes, rp, where) : typedNode(nmp, n, h, attrs, fileAttributes, where);
}

async function reparsedNode(
  nmp: NtfsMount, n: NtfsNode, h: RecordHeader, attrs: NtfsAttr[], fileAttributes: number, rp: NtfsAttr, where: string,
): Promise<NtfsNode> {
  const r = await reparsePoint(nmp, n, rp, where);
  if (r.target !== undefined) {
    n.type = VType.VLNK;
    n.symlink = r.target;
    n.size = Buffer.byteLength(r.target);
    return n;
  }
  n.foreignTag = r.tag;
  return typedNode(nmp, n, h, attrs, fileAttributes, where);
}

/** A directory or a file (a system file may turn out to be an Interix link: that one reads its data). */
function typedNode(nmp: NtfsMount, n: NtfsNode, h: RecordHeader, attrs: NtfsAttr[], fileAttributes: number, where: string): MaybePromise<NtfsNode> {
  if (h.flags & MFT_RECORD_IS_DIRECTORY) {
    const ix = ntfs_dirindex(nmp, attrs, where);
    if (!ix) corrupt(`${where}: directory without a $I30 index`);
    n.type = VType.VDIR;
    n.index = ix;
    n.size = ix.alloc ? ix.alloc.dataSize : ix.root.length;
    n.bytes = ix.alloc ? ix.alloc.allocatedSize : 0;
    return n;
  }
  const data = findAttr(attrs, AT_DATA);
  n.data = data;
  n.size = data?.dataSize ?? 0;
  n.bytes = data ? (data.value ? 0 : data.compressedSize || data.allocatedSize) : 0;
  if (data && fileAttributes & FILE_ATTR_SYSTEM && data.dataSize >= 10 && data.dataSize <= MAX_LINK) return interixNode(nmp, n, data, where);
  return n;
}

async function interixNode(nmp: NtfsMount, n: NtfsNode, data: NtfsAttr, where: string): Promise<NtfsNode> {
  const target = await interixTarget(nmp, n, data, where);
  if (target !== null) {
    n.type = VType.VLNK;
    n.symlink = target;
    n.size = Buffer.byteLength(target);
    n.data = undefined;
  }
  return n;
}

/** ntfs-3g's symlinks: a system file holding "IntxLNK\1" and the target in UTF-16. */
async function interixTarget(nmp: NtfsMount, n: NtfsNode, data: NtfsAttr, where: string): Promise<string | null> {
  const b = new Uint8Array(data.dataSize);
  await ntfs_readattr(nmp, data, 0, b, where, n.cache);
  if (String.fromCharCode(...b.subarray(0, 8)) !== 'IntxLNK\x01' || data.dataSize & 1) return null;
  const t = utf16(b, 8, (b.length - 8) / 2);
  if (t === '' || t.includes('\0')) corrupt(`${where}: Interix symlink target is empty or holds NUL`);
  return t;
}

/**
 * Symbolic links and junctions from their reparse data, and WSL's symlinks.
 * Other reparse points (dedup, cloud files, WOF compression...) give only
 * their tag: their data is not (all) in the file's $DATA, so reading it is
 * refused rather than giving wrong bytes.
 */
async function reparsePoint(nmp: NtfsMount, n: NtfsNode, rp: NtfsAttr, where: string): Promise<{ tag: number; target?: string }> {
  if (rp.dataSize > MAX_LINK) corrupt(`${where}: reparse data of ${rp.dataSize} bytes`);
  const b = new Uint8Array(rp.dataSize);
  await ntfs_readattr(nmp, rp, 0, b, where, n.cache);
  if (b.length < 8) corrupt(`${where}: reparse data of ${b.length} bytes`);
  const tag = u32(b, 0), len = u16(b, 4);
  if (8 + len > b.length) corrupt(`${where}: reparse data length ${len}`);
  if (tag === IO_REPARSE_TAG_LX_SYMLINK) {
    // A version (2), then the target in UTF-8.
    const t = len > 4 ? Buffer.from(b.subarray(12, 8 + len)).toString('utf8') : '';
    if (t === '' || t.includes('\0')) corrupt(`${where}: WSL symlink target is empty or holds NUL`);
    return { tag, target: t };
  }
  if (tag !== IO_REPARSE_TAG_SYMLINK && tag !== IO_REPARSE_TAG_MOUNT_POINT) return { tag };
  return { tag, target: await linkTarget(nmp, n, tag, b.subarray(8, 8 + len), where) };
}

/** The target of a Windows symlink or junction (d: its reparse data after the 8-byte header). */
async function linkTarget(nmp: NtfsMount, n: NtfsNode, tag: number, d: Uint8Array, where: string): Promise<string> {
  const hdr = tag === IO_REPARSE_TAG_SYMLINK ? 12 : 8;
  if (d.length < hdr) corrupt(`${where}: reparse data length ${d.length}`);
  const substOfs = u16(d, 0), substLen = u16(d, 2);
  if (substLen === 0 || substLen & 1 || hdr + substOfs + substLen > d.length) corrupt(`${where}: reparse target (${substLen} bytes at ${substOfs}) does not fit`);
  const subst = utf16(d, hdr + substOfs, substLen / 2);
  if (subst.includes('\0')) corrupt(`${where}: reparse target holds NUL`);
  const relative = tag === IO_REPARSE_TAG_SYMLINK && (u32(d, 8) & 1) !== 0;
  if (relative) return subst.replace(/\\/g, '/');
  // "\??\C:\dir\file": a path on a drive. Taken as this volume, it is made
  // relative to the link, so it works wherever the volume is mounted
  // (ntfs-3g puts its own mount point in front instead). Other forms
  // (volume GUIDs, UNC) are shown as they are.
  const m = /^\\\?\?\\[A-Za-z]:(\\.*)?$/.exec(subst);
  if (!m) return subst.replace(/\\/g, '/');
  const rest = (m[1] ?? '').replace(/^\\+/, '').replace(/\\/g, '/');
  const depth = await dirDepth(nmp, n.parent, where);
  const up = depth === 0 ? '.' : Array(depth).fill('..').join('/');
  return rest ? `${up}/${rest}` : up;
}

/** How many directories lie between directory ino and the root. */
async function dirDepth(nmp: NtfsMount, ino: number, where: string): Promise<number> {
  let depth = 0;
  for (let cur = ino; cur !== NTFS_ROOTINO; depth++) {
    if (depth >= MAX_DEPTH) corrupt(`${where}: parent directories do not lead to the root`);
    const { attrs } = await ntfs_loadattrs(nmp, cur);
    const f = shownNames(attrs, `MFT record ${cur}`)[0];
    if (!f) corrupt(`MFT record ${cur}: no name`);
    cur = f.parent;
  }
  return depth;
}

/** Is this entry shown? DOS-only names and the system files (unless asked for) are not. */
function shown(nmp: NtfsMount, ino: number, f: FileName): boolean {
  if (f.namespace === FILE_NAME_DOS) return false;
  if (f.name === '.' || f.name === '..' || f.name.includes('/') || f.name.includes('\0')) return false;
  return nmp.showSysFiles || ino >= NTFS_FIRST_USER;
}

/** A directory's shown entries, read once and kept with its node (read-only: they never change). */
export async function ntfs_direntries(nmp: NtfsMount, dir: NtfsNode): Promise<DirEntry[]> {
  if (dir.entries) return dir.entries;
  const where = `directory ${dir.ino}`;
  const all = await ntfs_indexentries(nmp, dir.index!, where);
  const entries: DirEntry[] = [];
  const exact = new Map<string, DirEntry>(), folded = new Map<string, DirEntry>();
  for (const e of all) {
    const f = e.key!;
    if (f.parent !== dir.ino) {
      log(`ntfs: ${where}: entry '${f.name}' names directory ${f.parent} as its parent; skipped`);
      continue;
    }
    if (!shown(nmp, e.ino, f)) continue;
    // Reparse points (junctions too) and system files may be links: the node decides (VNON until then).
    const type = f.fileAttributes & (FILE_ATTR_REPARSE_POINT | FILE_ATTR_SYSTEM) ? VType.VNON
      : f.fileAttributes & FILE_ATTR_I30_INDEX_PRESENT ? VType.VDIR : VType.VREG;
    const d: DirEntry = { name: f.name, ino: e.ino, seq: e.seq, type };
    if (exact.has(f.name)) continue;
    entries.push(d);
    exact.set(f.name, d);
    const k = ntfs_upcase(nmp, f.name);
    if (!folded.has(k)) folded.set(k, d);
  }
  dir.entries = entries;
  dir.exact = exact;
  dir.folded = folded;
  return entries;
}

/**
 * The entry called name, its exact spelling first, then any spelling
 * $UpCase makes equal; undefined when there is none. At once when the
 * directory's entries are read.
 */
export function ntfs_findname(nmp: NtfsMount, dir: NtfsNode, name: string): MaybePromise<DirEntry | undefined> {
  if (!dir.exact) return ntfs_direntries(nmp, dir).then(() => ntfs_findname(nmp, dir, name));
  return dir.exact.get(name) ?? dir.folded!.get(ntfs_upcase(nmp, name));
}
