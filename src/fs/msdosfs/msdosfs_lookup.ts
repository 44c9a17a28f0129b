// Directories (NetBSD msdosfs_lookup.c): scanning entries and assembling
// long names (deleted and orphaned long entries ignored, as Windows and
// Linux do), name matching, short-name generation with ~N tails, making and
// removing entries.
import { brelse, bread, kerr, log, type Buf } from '../../kern/index.js';
import { Denode } from './denode.js';
import {
  ATTR_DIRECTORY, ATTR_LFN, ATTR_VOLUME, CASE_LOWER_BASE, CASE_LOWER_EXT, DIRENT_SIZE, LFN_CHARS, LFN_LAST,
  SLOT_DELETED, SLOT_E5, SLOT_EMPTY, direntry_decode, direntry_encode, lfn_count, lfn_encode, lfn_units, LFN_MAX_PIECES, winChksum,
  winChksumAt, type Direntry,
} from './direntry.js';
import { name_fold, vfat_striptail, type Codepage } from './msdosfs_conv.js';
import { FreeSlots, ShortNames, type DirLayout } from './msdosfs_dircache.js';
import { ROOT_KEY, type ShortnameMode } from './msdosfsmount.js';

/** A live entry of a directory. */
export interface DirSlot {
  /** Index of the short entry in the directory. */
  slot: number;
  /** Index of its first long-name entry (= slot without a long name). */
  first: number;
  /** Device byte offset of the short entry: the file id. */
  off: number;
  de: Direntry;
  longName: string | null;
}

export interface ScanEnd {
  /** Slot of the end-of-directory mark (= total when there is none). */
  end: number;
  total: number;
}

/** Whether the 11-byte name at b[o] is `.` or `..`. */
export const isDotName = (b: Uint8Array, o: number) => b[o] === 0x2e && (b[o + 1] === 0x20 || (b[o + 1] === 0x2e && b[o + 2] === 0x20));
export const isDot = (de: Direntry) => isDotName(de.name, 0);

/**
 * A live file entry as readdir needs it, undecoded: its 32 bytes at d[o]
 * (held for the call only), its slot, its device offset (the file id), and
 * its long name if it has one. true stops the scan.
 */
export type NameVisit = (d: Uint8Array, o: number, slot: number, off: number, longName: string | null) => boolean | void;

/**
 * Call visit for every live file entry (dot entries included, volume labels
 * and long-name pieces not) from slot `from` on, until it returns true.
 * onFree sees deleted slots. Without visit, onName (if given) sees each
 * live file entry with its long name but not decoded (NameVisit: no
 * Direntry or DirSlot per entry); without either, only the free slots and
 * the end are found, and onBytes sees each live file entry's 32 bytes at
 * d[o] (no entry is decoded, no long name assembled).
 */
export async function dir_scan(dep: Denode, visit: ((e: DirSlot) => boolean | void) | null,
  opts: {
    from?: number; onFree?: (slot: number) => void; onLabel?: (de: Direntry) => void; onBytes?: (d: Uint8Array, o: number) => void;
    onName?: NameVisit;
  } = {},
): Promise<ScanEnd> {
  const dmp = dep.dmp;
  const blocks = dep.dirBlocks();
  if (blocks.length === 0) throw kerr('EIO', `${dep.describe()}: directory without clusters`);
  const per = blocks[0].size / DIRENT_SIZE;
  const total = blocks.length * per;
  const from = opts.from ?? 0;
  // The long name being assembled: its checksum, the piece expected next, its UTF-16 units (in `units`), its first slot.
  let lfn: { chk: number; next: number; len: number; first: number } | null = null;
  const onName = visit ? undefined : opts.onName;
  const names = visit !== null || onName !== undefined;
  const units = names ? new Uint16Array(LFN_MAX_PIECES * LFN_CHARS) : null;
  for (let bi = Math.floor(from / per); bi < blocks.length; bi++) {
    const bp = await bread(dmp.dev, blocks[bi].off, blocks[bi].size, dmp.meta);
    try {
      const d = bp.data;
      for (let i = bi === Math.floor(from / per) ? from % per : 0; i < per; i++) {
        const slot = bi * per + i, o = i * DIRENT_SIZE;
        const c = d[o];
        if (c === SLOT_EMPTY) return { end: slot, total };
        if (c === SLOT_DELETED) {
          lfn = null;
          opts.onFree?.(slot);
          continue;
        }
        const attr = d[o + 11];
        if (!names) {
          if (opts.onBytes && (attr & 0x3f) !== ATTR_LFN && !(attr & ATTR_VOLUME)) opts.onBytes(d, o);
          continue;
        }
        if ((attr & 0x3f) === ATTR_LFN) {
          const ord = c & 0x3f;
          if ((c & LFN_LAST) && ord >= 1 && ord <= LFN_MAX_PIECES) {
            lfn = { chk: d[o + 13], next: ord - 1, len: ord * LFN_CHARS, first: slot };
            lfn_units(d, o, units!, (ord - 1) * LFN_CHARS);
          } else if (lfn && ord === lfn.next && ord >= 1 && d[o + 13] === lfn.chk) {
            lfn_units(d, o, units!, (ord - 1) * LFN_CHARS);
            lfn.next--;
          } else {
            lfn = null;
          }
          continue;
        }
        if (attr & ATTR_VOLUME) {
          lfn = null;
          if (dep.isRoot) opts.onLabel?.(direntry_decode(d, o, dmp.fat32));
          continue;
        }
        let longName: string | null = null;
        if (lfn && lfn.next === 0 && winChksumAt(d, o) === lfn.chk) {
          let z = 0;
          while (z < lfn.len && units![z] !== 0) z++;
          longName = String.fromCharCode.apply(null, units!.subarray(0, z) as unknown as number[]);
          if (longName.length === 0) longName = null;
        }
        const first = longName !== null ? lfn!.first : slot;
        lfn = null;
        if (onName) {
          if (onName(d, o, slot, blocks[bi].off + o, longName)) return { end: -1, total };
          continue;
        }
        const de = direntry_decode(d, o, dmp.fat32);
        if (visit!({ slot, first, off: blocks[bi].off + o, de, longName })) return { end: -1, total };
      }
    } finally {
      brelse(bp);
    }
  }
  return { end: total, total };
}

/** The name of an entry as shown to users. */
export function dir_name(e: DirSlot, mode: ShortnameMode, cp: Codepage): string {
  return e.longName ?? shortname_display(e.de.name, e.de.ntcase, mode, cp);
}

export function shortname_display(name: Uint8Array, ntcase: number, mode: ShortnameMode, cp: Codepage): string {
  return shortname_displayAt(name, 0, ntcase, mode, cp);
}

/** shortname_display of the 11-byte name at b[o], read in place. */
export function shortname_displayAt(b: Uint8Array, o: number, ntcase: number, mode: ShortnameMode, cp: Codepage): string {
  // Trailing spaces pad base and extension (only the byte 0x20 shows as a space).
  let be = o + 8, ee = o + 11;
  while (be > o && b[be - 1] === 0x20) be--;
  while (ee > o + 8 && b[ee - 1] === 0x20) ee--;
  let base = be > o && b[o] === SLOT_E5 ? cp.char(SLOT_DELETED) + cp.decode(b, o + 1, be) : cp.decode(b, o, be);
  let ext = cp.decode(b, o + 8, ee);
  if (mode === 'lower') {
    base = base.toLowerCase();
    ext = ext.toLowerCase();
  } else if (mode !== 'win95') {
    if (ntcase & CASE_LOWER_BASE) base = base.toLowerCase();
    if (ntcase & CASE_LOWER_EXT) ext = ext.toLowerCase();
  }
  return ext ? `${base}.${ext}` : base;
}

/**
 * The keys an entry is found by: its long name and its short name, folded.
 * A long name another system stored with trailing dots or spaces is found
 * as lookups ask for it (without them, as vfat_checkname makes names):
 * else readdir lists a name that no lookup finds.
 */
function nameKeys(longName: string | null, short: Uint8Array, cp: Codepage): string[] {
  const k = name_fold(shortname_display(short, 0, 'win95', cp));
  return longName !== null ? [name_fold(vfat_striptail(longName) || longName), k] : [k];
}

/**
 * Find name (case-insensitively, long or short form) in directory dep: the
 * device offset of its short entry. The first lookup scans the directory
 * into dep.names (built aside: lookups run concurrently under a shared lock).
 */
export async function dir_lookup(dep: Denode, name: string): Promise<number | null> {
  if (!dep.names) {
    const cp = dep.dmp.args.codepage;
    const names = new Map<string, number>();
    let dup = false;
    await dir_scan(dep, (e) => {
      if (isDot(e.de)) return;
      for (const k of nameKeys(e.longName, e.de.name, cp)) {
        // The first in directory order wins, as a scan would find it.
        if (!names.has(k)) names.set(k, e.off);
        else if (names.get(k) !== e.off) dup = true;
      }
    });
    dep.names = names;
    dep.namesDup = dup;
  }
  return dep.names.get(name_fold(vfat_striptail(name))) ?? null;
}

/** The entry whose short entry is at device offset off. */
export async function dir_findoff(dep: Denode, off: number): Promise<DirSlot | null> {
  const slot = dep.dirSlotOf(off);
  if (slot < 0) return null;
  let found: DirSlot | null = null;
  // Its long name starts at most 20 slots before it.
  await dir_scan(dep, (e) => {
    if (e.off !== off) return e.slot > slot;
    found = e;
    return true;
  }, { from: Math.max(0, slot - 20) });
  return found;
}

/** Entries other than `.` and `..`: whether any, and how many are directories. */
export async function dir_contents(dep: Denode): Promise<{ entries: number; subdirs: number }> {
  // Counted from the entries' bytes (a directory's load counts its subdirectories): nothing decoded.
  let entries = 0, subdirs = 0;
  await dir_scan(dep, null, {
    onBytes: (d, o) => {
      if (isDotName(d, o)) return;
      entries++;
      if (d[o + 11] & ATTR_DIRECTORY) subdirs++;
    },
  });
  return { entries, subdirs };
}

/** The volume label entry of the root directory, if any. */
export async function dir_label(root: Denode): Promise<Uint8Array | null> {
  let label: Uint8Array | null = null;
  await dir_scan(root, () => false, { onLabel: (de) => { label ??= de.name; } });
  return label;
}

/** The cluster that `..` of directory dep names (0: the root). */
export async function dir_dotdot(dep: Denode): Promise<number> {
  let cl = -1;
  await dir_scan(dep, (e) => {
    if (e.slot === 1 && e.de.name[0] === 0x2e && e.de.name[1] === 0x2e && (e.de.attr & ATTR_DIRECTORY)) cl = e.de.cluster;
    return true;
  }, { from: 1 });
  if (cl < 0) throw corruptDir(dep, `no '..' entry`);
  return cl;
}

/**
 * The file id of directory dep's parent: `..` gives its cluster, the
 * grandparent (its own `..`) holds the entry naming that cluster.
 */
export async function dir_parentkey(dep: Denode): Promise<number> {
  if (dep.isRoot) return ROOT_KEY;
  const dmp = dep.dmp;
  const pcl = await dir_dotdot(dep);
  const parent = Denode.dirAt(dmp, pcl);
  if (parent.isRoot) return ROOT_KEY;
  if (!dmp.fat.validCluster(pcl)) throw corruptDir(dep, `'..' names cluster ${pcl}`);
  const grand = Denode.dirAt(dmp, await dir_dotdot(parent));
  let key = -1;
  await dir_scan(grand, (e) => {
    if (isDot(e.de) || !(e.de.attr & ATTR_DIRECTORY) || e.de.cluster !== pcl) return false;
    key = e.off;
    return true;
  });
  if (key < 0) throw corruptDir(dep, `parent directory at cluster ${pcl} is not in its own parent`);
  return key;
}

function corruptDir(dep: Denode, what: string): Error {
  log(`msdosfs: ${dep.dmp.dev.path}: ${dep.describe()}: ${what}`);
  return kerr('EIO', what);
}

/** Rewrite `..` of directory dep to name cluster cl (0 for the root). */
export async function dir_set_dotdot(dep: Denode, cl: number): Promise<void> {
  const dmp = dep.dmp;
  const blk = dep.dirBlock(0);
  const bp = await bread(dmp.dev, blk.off, blk.size, dmp.meta);
  const de = direntry_decode(bp.data, DIRENT_SIZE, dmp.fat32);
  direntry_encode(bp.data, DIRENT_SIZE, { ...de, cluster: cl });
  await dmp.dirWrite(bp);
}

// ---- short names ----

const SHORT_OK = /^[A-Za-z0-9!#$%&'()\-@^_`{}~]$/;

function upperCaseLetters(s: string): boolean { return !/[a-z]/.test(s); }
function lowerCaseLetters(s: string): boolean { return !/[A-Z]/.test(s); }

function pad(s: number[], n: number): number[] {
  return [...s, ...new Array<number>(n - s.length).fill(0x20)];
}

function toBytes(base: number[], ext: number[]): Uint8Array {
  const b = new Uint8Array([...pad(base, 8), ...pad(ext, 3)]);
  if (b[0] === SLOT_DELETED) b[0] = SLOT_E5;
  return b;
}

/**
 * The short entry name for long name `name` (already checked), and whether a
 * long-name entry is needed. Names that are 8.3 in upper case are stored
 * short; with shortname=mixed or winnt, 8.3 names whose base and extension
 * are each in one case too, with the NT lower-case flags. Others get a
 * generated short name: upper case, invalid characters as `_`, and a `~N`
 * tail when it was shortened, lossy (unless nonumtail) or taken.
 */
export function shortname_make(name: string, mode: ShortnameMode, cp: Codepage, taken: ShortNames, nonumtail = false):
  { name: Uint8Array; ntcase: number; lfn: boolean } {
  const dot = name.lastIndexOf('.');
  if (!name.startsWith('.') && name.indexOf('.') === dot) {
    const base = dot < 0 ? name : name.slice(0, dot), ext = dot < 0 ? '' : name.slice(dot + 1);
    if (base.length >= 1 && base.length <= 8 && ext.length <= 3 && [...base + ext].every(c => SHORT_OK.test(c))) {
      const enc = (s: string) => [...s.toUpperCase()].map(c => c.charCodeAt(0));
      const bytes = toBytes(enc(base), enc(ext));
      if (!taken.has(bytes)) {
        if (upperCaseLetters(base) && upperCaseLetters(ext)) return { name: bytes, ntcase: 0, lfn: false };
        if ((mode === 'mixed' || mode === 'winnt') && (upperCaseLetters(base) || lowerCaseLetters(base)) &&
            (upperCaseLetters(ext) || lowerCaseLetters(ext))) {
          const ntcase = (upperCaseLetters(base) ? 0 : CASE_LOWER_BASE) | (upperCaseLetters(ext) ? 0 : CASE_LOWER_EXT);
          return { name: bytes, ntcase, lfn: false };
        }
      }
    }
  }
  // A generated name. Leading dots and all spaces are dropped; the
  // extension is what follows the last dot (unless only dots precede it).
  let lossy = false;
  let baseStr = name, extStr = '';
  if (dot > 0 && /[^. ]/.test(name.slice(0, dot))) {
    baseStr = name.slice(0, dot);
    extStr = name.slice(dot + 1);
  }
  const conv = (s: string, max: number): number[] => {
    const out: number[] = [];
    for (const ch of s) {
      if (ch === '.' || ch === ' ') { lossy = true; continue; }
      const u = ch.toUpperCase();
      let b: number;
      if (u.length === 1 && u.charCodeAt(0) < 0x80) b = SHORT_OK.test(u) ? u.charCodeAt(0) : -1;
      else b = cp.encodeChar(u) >= 0x80 ? cp.encodeChar(u) : cp.encodeChar(ch) >= 0x80 ? cp.encodeChar(ch) : -1;
      if (b < 0) { b = 0x5f; lossy = true; }
      if (out.length === max) { lossy = true; break; }
      out.push(b);
    }
    return out;
  };
  let base = conv(baseStr, 8);
  const ext = conv(extStr, 3);
  if (base.length === 0) { base = [0x5f]; lossy = true; }
  // nonumtail: a shortened or lossy name, too, without ~N while it is free.
  if (!lossy || nonumtail) {
    const bytes = toBytes(base, ext);
    if (!taken.has(bytes)) return { name: bytes, ntcase: 0, lfn: true };
  }
  const bytes = taken.freeTail(base, b => toBytes(b, ext));
  if (!bytes) throw kerr('ENOSPC', 'no free short name');
  return { name: bytes, ntcase: 0, lfn: true };
}

// ---- making and removing entries ----

/** Write first byte / whole entries of slots, block by block. */
async function dir_write_slots(dep: Denode, slots: number[], fill: (d: Uint8Array, o: number, slot: number) => void): Promise<void> {
  const dmp = dep.dmp;
  const per = dep.dirBlock(0).size / DIRENT_SIZE;
  for (let i = 0; i < slots.length;) {
    const bi = Math.floor(slots[i] / per);
    const blk = dep.dirBlock(bi);
    const bp: Buf = await bread(dmp.dev, blk.off, blk.size, dmp.meta);
    // Synchronous from here to the write: nobody sees the block half done.
    for (; i < slots.length && Math.floor(slots[i] / per) === bi; i++) {
      fill(bp.data, (slots[i] % per) * DIRENT_SIZE, slots[i]);
    }
    await dmp.dirWrite(bp);
  }
}

/**
 * Make an entry for name (checked, stripped) in directory dep from the
 * template (its name and NT case are chosen here). Returns the device offset
 * of the short entry. The directory grows by a cluster when full (a
 * FAT12/16 root cannot: ENOSPC). `replacing`: an entry of dep the caller
 * removes next (a rename to its own name in other case), whose short name
 * the new entry may take over and whose names then find the new entry.
 */
export async function dir_create(dep: Denode, name: string, tmpl: Direntry, replacing?: DirSlot): Promise<number> {
  const dmp = dep.dmp;
  const { shorts, free } = dep.layout ??= await dir_layout(dep);
  if (replacing) shorts.remove(replacing.de.name);
  let short: ReturnType<typeof shortname_make>;
  try {
    short = shortname_make(name, dmp.args.shortname, dmp.args.codepage, shorts, dmp.args.nonumtail);
  } finally {
    if (replacing) shorts.add(replacing.de.name);
  }
  const need = short.lfn ? lfn_count(name) + 1 : 1;
  const found = free.find(need);
  if (found + need > free.total) {
    if (dep.fixedRoot) throw kerr('ENOSPC', 'root directory full');
    const per = dmp.bpb.clusterSize / DIRENT_SIZE;
    const more = Math.ceil((found + need - free.total) / per);
    if (free.total + more * per > 65536) throw kerr('ENOSPC', 'directory has 65536 entries');
    await dep.extend(more, dmp.meta);
    free.total += more * per;
  }
  const { end, total } = free;
  const chk = winChksum(short.name);
  const nl = need - 1;
  const slots = [...Array(need).keys()].map(i => found + i);
  // Past the old end mark, the slot after ours must end the directory.
  if (found + need > end && found + need < total) slots.push(found + need);
  await namesChange(dep, () => dir_write_slots(dep, slots, (d, o, s) => {
    const k = s - found;
    if (k < nl) lfn_encode(d, o, name, nl - k, k === 0, chk);
    else if (k === nl) direntry_encode(d, o, { ...tmpl, name: short.name, ntcase: short.ntcase });
    else d[o] = SLOT_EMPTY;
  }));
  free.take(found, need);
  const s = found + nl;
  const blk = dep.dirBlock(Math.floor(s / (dep.dirBlock(0).size / DIRENT_SIZE)));
  const off = blk.off + (s * DIRENT_SIZE) % blk.size;
  shorts.add(short.name);
  // The caller found no entry by this name, and the short name is not taken.
  for (const k of nameKeys(short.lfn ? name : null, short.name, dmp.args.codepage)) {
    if (replacing || !dep.names?.has(k)) dep.names?.set(k, off);
  }
  return off;
}

/** Scan a directory for its short names and free slots. */
async function dir_layout(dep: Denode): Promise<DirLayout> {
  const shorts = new ShortNames();
  const runs: [number, number][] = [];
  let last = -2;
  const scan = await dir_scan(dep, (e) => { shorts.add(e.de.name); }, {
    onFree: (s) => {
      if (s === last + 1) runs[runs.length - 1][1]++;
      else runs.push([s, 1]);
      last = s;
    },
  });
  return { shorts, free: new FreeSlots(runs, scan.end, scan.total) };
}

/** Change the directory's entries: a failure half way leaves the names to be scanned again. */
async function namesChange(dep: Denode, change: () => Promise<void>): Promise<void> {
  try {
    await change();
  } catch (err) {
    dep.names = null;
    dep.layout = null;
    throw err;
  }
}

/** Mark the entry (its long-name slots and short slot) deleted. */
export async function dir_remove(dep: Denode, e: DirSlot): Promise<void> {
  const slots: number[] = [];
  for (let s = e.first; s <= e.slot; s++) slots.push(s);
  await namesChange(dep, () => dir_write_slots(dep, slots, (d, o) => { d[o] = SLOT_DELETED; }));
  dep.layout?.shorts.remove(e.de.name);
  dep.layout?.free.release(e.first, e.slot - e.first + 1);
  if (!dep.names) return;
  // Another entry by one of these names would take its place: scan again.
  if (dep.namesDup) { dep.names = null; return; }
  for (const k of nameKeys(e.longName, e.de.name, dep.dmp.args.codepage)) {
    if (dep.names.get(k) === e.off) dep.names.delete(k);
  }
}
