// Directories: the file identifier descriptors (4/14.4) of a directory's
// data, each tag checked, deleted ones skipped, hidden ones skipped unless
// the mount says unhide, the parent entry taken as `..`. A directory is read
// and parsed once and kept with its node (the medium does not change).
import { kerr, vcache_get, VType, type Lwp, type Vattr, type Vnode } from '../../kern/index.js';
import {
  FID_DELETED, FID_DIR, FID_HIDDEN, FID_METADATA, FID_PARENT, FILE_ENTRY_TAGS, TAG_FID, icbtag, long_ad, u16, udf_corrupt, udf_tag,
} from './ecma167.js';
import { udf_filename } from './udf_osta.js';
import { udf_loadnode, udf_readall, udf_vattr, vtypeOf, type UdfNode } from './udf_node.js';
import { udf_key, udf_key_lb, udf_key_part, udf_scanblocks, udf_tagged, type UdfMount } from './udf_subr.js';

/** A directory larger than this is taken as corrupt (a million entries of 60 bytes). */
const UDF_MAXDIRSIZE = 64 << 20;

export interface UdfEntry {
  name: string;
  key: number;
  /** VDIR from the FID; other types from the file entry once udf_entrytypes read it (VNON: DT_UNKNOWN). */
  type: VType;
  /** Offset just past the FID in the directory's data. */
  next: number;
}

/** The logical block holding byte `off` of a directory's data, for the FID tag's location. */
function blockAt(ump: UdfMount, dir: UdfNode, off: number): number {
  if (dir.inline) return dir.lb;
  let base = 0;
  for (const e of dir.extents) {
    if (off < base + e.length) return e.lb + Math.floor((off - base) / ump.bsize);
    base += e.length;
  }
  return -1;
}

/** The visible entries of a directory, `..` first if it has a parent entry (no `.`). */
export async function udf_dirents(ump: UdfMount, dir: UdfNode): Promise<UdfEntry[]> {
  if (dir.entries) return dir.entries;
  const d = await udf_readall(ump, dir, UDF_MAXDIRSIZE, 'directory');
  const out: UdfEntry[] = [];
  for (let o = 0; o < d.length;) {
    const where = `directory ${dir.part}:${dir.lb}, entry at ${o}`;
    if (o + 38 > d.length) udf_corrupt(`${where}: cut short`);
    const lfi = d[o + 19], liu = u16(d, o + 36);
    const end = o + 38 + liu + lfi;
    if (end > d.length) udf_corrupt(`${where}: identifier runs past the directory's end`);
    const padded = Math.min(d.length, (end + 3) & ~3);
    const t = udf_tag(d.subarray(o, padded), blockAt(ump, dir, o), where);
    if (!t || t.ident !== TAG_FID) udf_corrupt(`${where}: not a file identifier descriptor`);
    const chars = d[o + 18];
    const icb = long_ad(d, o + 20);
    const key = udf_key(icb.part, icb.lb);
    o = padded;
    if (chars & (FID_DELETED | FID_METADATA)) continue;
    if (chars & FID_PARENT) {
      if (dir.parent === undefined) {
        dir.parent = key;
        out.push({ name: '..', key, type: VType.VDIR, next: o });
      }
      continue;
    }
    if (chars & FID_HIDDEN && !ump.unhide) continue;
    if (lfi === 0) udf_corrupt(`${where}: entry without a name`);
    const name = udf_filename(d.subarray(end - lfi, end), where);
    if (name === '' || name === '.' || name === '..') continue;
    out.push({ name, key, type: chars & FID_DIR ? VType.VDIR : VType.VNON, next: o });
  }
  dir.entries = out;
  return out;
}

/**
 * Read the file type of entries not known to be directories from their file
 * entries, so readdir gives d_type (find and ls need no stat then); the
 * file entries are scanned together, past the buffer cache. One that cannot
 * be read stays DT_UNKNOWN: stat reports its error.
 */
export async function udf_entrytypes(ump: UdfMount, ents: UdfEntry[]): Promise<void> {
  const unknown = ents.filter(e => e.type === VType.VNON);
  await udf_scanblocks(ump, unknown.map(e => ({ part: udf_key_part(e.key), lb: udf_key_lb(e.key) })), (i, b) => {
    const e = unknown[i];
    try {
      udf_tagged(b, udf_key_lb(e.key), 'file entry', FILE_ENTRY_TAGS);
      e.type = vtypeOf(icbtag(b).fileType);
    } catch {
      // Left unknown.
    }
  });
}

export async function udf_lookup(dvp: Vnode, name: string, _l: Lwp): Promise<Vnode> {
  const ump = dvp.mount.priv<UdfMount>();
  const dir = dvp.node<UdfNode>();
  if (dvp.type !== VType.VDIR) throw kerr('ENOTDIR');
  if (name === '..') {
    await udf_dirents(ump, dir);
    if (dir.parent === undefined) udf_corrupt(`directory ${dir.part}:${dir.lb}: no parent entry`);
    return vcache_get(dvp.mount, dir.parent);
  }
  const key = await udf_namekey(ump, dir, name);
  if (key === undefined) throw kerr('ENOENT');
  return vcache_get(dvp.mount, key);
}

/**
 * VOP_LOOKUPATTR: the attributes of what a name names, from its file entry,
 * with no vnode (a stat of every file of a directory then loads none);
 * undefined for `..`, which the lookup resolves.
 */
export async function udf_lookupattr(dvp: Vnode, name: string, _l: Lwp): Promise<Vattr | null | undefined> {
  if (name === '..' || dvp.type !== VType.VDIR) return undefined;
  const ump = dvp.mount.priv<UdfMount>();
  const key = await udf_namekey(ump, dvp.node<UdfNode>(), name);
  if (key === undefined) return null;
  return udf_vattr(ump, await udf_loadnode(ump, udf_key_part(key), udf_key_lb(key)));
}

/** The key of the file a name of directory dir names, if any. */
async function udf_namekey(ump: UdfMount, dir: UdfNode, name: string): Promise<number | undefined> {
  const ents = await udf_dirents(ump, dir);
  if (!dir.names) {
    dir.names = new Map();
    // The first of two entries with one name wins, as a scan would find it.
    for (const e of ents) if (e.name !== '..' && !dir.names.has(e.name)) dir.names.set(e.name, e.key);
  }
  return dir.names.get(name);
}
