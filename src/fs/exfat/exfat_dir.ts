// Directories: scanning entry sets (each one checked: its SetChecksum, the
// order of its entries, its name and NameHash), the name index lookups use
// (keys up-cased through the volume's up-case table, so lookups ignore case
// while names keep theirs), and adding and removing entry sets.
import { bread, brelse, kerr } from '../../kern/index.js';
import {
  ATTR_DIRECTORY, DENTRY_SIZE, EntrySet, NAME_PER_ENTRY, set_checksum, T_BENIGN, T_BITMAP, T_FILE, T_INUSE, T_LABEL, T_NAME,
  T_SECONDARY, T_STREAM, T_UPCASE,
} from './exfat.js';
import { units_of } from './exfat_upcase.js';
import { write_entries, type ExNode } from './exfat_node.js';

/** A live file's entry set in a directory. */
export interface DirEnt {
  /** Index of its File entry in the directory. */
  slot: number;
  /** Device offset of the File entry: the file id. */
  key: number;
  offs: number[];
  set: EntrySet;
  name: Uint16Array;
}

export interface DirIndex {
  /** Up-cased name -> file id. */
  names: Map<string, number>;
  subdirs: number;
  /** Slot of the end of directory mark (= total when there is none). */
  end: number;
  total: number;
  /** Unused slots before end (where new sets may go). */
  deleted: number;
}

export interface ScanOpts {
  from?: number;
  onFree?: (slot: number) => void;
  /** Root directory: bitmap, up-case and label entries. */
  onSpecial?: (type: number, entry: Uint8Array) => void;
}

const PER_SET_MAX = 19;

/**
 * Call visit for every live file from slot `from` on, until it returns true.
 * Entries of a set that begins before `from` are skipped. Returns where the
 * directory ends. A damaged entry set is EIO (and the mount's errors= policy).
 */
export async function dir_scan(dn: ExNode, visit: (e: DirEnt) => boolean | void, opts: ScanOpts = {}): Promise<{ end: number; total: number }> {
  const emp = dn.emp, bsize = emp.bsize;
  const bytes = dn.nclus * emp.cs;
  const total = bytes / DENTRY_SIZE;
  const from = opts.from ?? 0;
  let pending: { slot: number; n: number; got: number; b: Uint8Array; offs: number[]; skip: boolean } | null = null;
  const bad = (what: string) => emp.error(`${dn.describe()}: ${what}`);
  for (let bpos = Math.floor(from * DENTRY_SIZE / bsize) * bsize; bpos < bytes; bpos += bsize) {
    const devoff = dn.devOff(bpos);
    const bp = await bread(emp.dev, devoff, bsize, emp.meta);
    try {
      const d = bp.data;
      for (let o = bpos < from * DENTRY_SIZE ? from * DENTRY_SIZE - bpos : 0; o < bsize; o += DENTRY_SIZE) {
        const slot = (bpos + o) / DENTRY_SIZE, t = d[o];
        if (pending) {
          if ((t & (T_INUSE | T_SECONDARY)) !== (T_INUSE | T_SECONDARY)) throw bad(`entry set at slot ${pending.slot} is cut short at slot ${slot}`);
          if (!pending.skip) {
            pending.b.set(d.subarray(o, o + DENTRY_SIZE), pending.got * DENTRY_SIZE);
            pending.offs.push(devoff + o);
          }
          if (++pending.got < pending.n) continue;
          const p = pending;
          pending = null;
          if (p.skip) continue;
          const e = checkSet(dn, p.slot, p.b, p.offs, bad);
          if (visit(e)) return { end: -1, total };
          continue;
        }
        if (t === 0) return { end: slot, total };
        if (!(t & T_INUSE)) { opts.onFree?.(slot); continue; }
        if (t === T_FILE) {
          const n = d[o + 1] + 1;
          if (n < 3 || n > PER_SET_MAX) throw bad(`File entry at slot ${slot} has SecondaryCount ${n - 1}`);
          pending = { slot, n, got: 1, b: new Uint8Array(n * DENTRY_SIZE), offs: [devoff + o], skip: false };
          pending.b.set(d.subarray(o, o + DENTRY_SIZE), 0);
        } else if (t & T_SECONDARY) {
          // A secondary without its primary: left from a set we started inside of, or stray; not a file.
        } else if (dn.isRoot && (t === T_BITMAP || t === T_UPCASE || t === T_LABEL)) {
          opts.onSpecial?.(t, d.subarray(o, o + DENTRY_SIZE));
        } else if (t & T_BENIGN) {
          // A benign primary we do not know (volume GUID, TexFAT padding): skipped with its secondaries.
          if (d[o + 1] > 0) pending = { slot, n: d[o + 1] + 1, got: 1, b: new Uint8Array(0), offs: [], skip: true };
        } else {
          throw bad(`unknown critical entry type 0x${t.toString(16)} at slot ${slot}`);
        }
      }
    } finally {
      brelse(bp);
    }
  }
  if (pending && !pending.skip) throw bad(`entry set at slot ${pending.slot} runs past the end of the directory`);
  return { end: total, total };
}

/** Is the set whole: checksum, Stream Extension, File Name entries, name and its hash? */
function checkSet(dn: ExNode, slot: number, b: Uint8Array, offs: number[], bad: (w: string) => Error): DirEnt {
  const s = new EntrySet(b);
  const what = `entry set at slot ${slot}`;
  if (set_checksum(b) !== s.checksum) throw bad(`${what}: SetChecksum mismatch`);
  if (b[DENTRY_SIZE] !== T_STREAM) throw bad(`${what}: no Stream Extension entry`);
  const nl = s.nameLength, nn = Math.ceil(nl / NAME_PER_ENTRY);
  if (nl < 1 || 2 + nn > s.count) throw bad(`${what}: NameLength ${nl}`);
  for (let i = 2; i < 2 + nn; i++) if (b[i * DENTRY_SIZE] !== T_NAME) throw bad(`${what}: entry ${i} is not a File Name entry`);
  for (let i = 2 + nn; i < s.count; i++) if (!(b[i * DENTRY_SIZE] & T_BENIGN)) throw bad(`${what}: unknown critical entry in the set`);
  const name = s.nameUnits();
  if (name.some(u => u === 0 || u === 0x2f)) throw bad(`${what}: name contains NUL or '/'`);
  if (dn.emp.upcase.hash(name) !== s.nameHash) throw bad(`${what}: NameHash does not match the name`);
  return { slot, key: offs[0], offs, set: s, name };
}

/** Build (once) the index lookups and creates use. */
export async function dir_index(dn: ExNode): Promise<DirIndex> {
  if (dn.dir) return dn.dir;
  const up = dn.emp.upcase;
  const names = new Map<string, number>();
  let subdirs = 0, deleted = 0;
  const r = await dir_scan(dn, (e) => {
    const k = up.key(e.name);
    // The first in directory order wins, as a scan would find it.
    if (!names.has(k)) names.set(k, e.key);
    if (e.set.attr & ATTR_DIRECTORY) subdirs++;
  }, { onFree: () => { deleted++; } });
  // Built aside and kept by the first to finish: lookups run under a shared lock.
  dn.dir ??= { names, subdirs, end: r.end, total: r.total, deleted };
  return dn.dir;
}

export async function dir_lookup(dn: ExNode, name: string): Promise<number | null> {
  const idx = await dir_index(dn);
  return idx.names.get(dn.emp.upcase.key(units_of(name))) ?? null;
}

/** The directory slot of the entry at device offset off, or -1. */
export function dir_slotof(dn: ExNode, off: number): number {
  const emp = dn.emp, cs = emp.cs;
  const rel = off - emp.bs.heapOffset;
  if (rel < 0 || rel % DENTRY_SIZE !== 0) return -1;
  const c = Math.floor(rel / cs) + 2;
  let ci = 0;
  for (const e of dn.ext) {
    if (c >= e.start && c < e.start + e.len) return ((ci + c - e.start) * cs + (rel % cs)) / DENTRY_SIZE;
    ci += e.len;
  }
  return -1;
}

/** The entry set whose File entry is at device offset key in dn; ESTALE when there is none. */
export async function dir_readset(dn: ExNode, key: number): Promise<DirEnt> {
  const slot = dir_slotof(dn, key);
  if (slot < 0) throw kerr('ESTALE', `no entry at ${key}`);
  let found: DirEnt | null = null;
  await dir_scan(dn, (e) => {
    if (e.slot === slot) found = e;
    return true;
  }, { from: slot });
  if (!found) throw kerr('ESTALE', `no entry at ${key}`);
  return found;
}

/**
 * Write a new entry set into directory dn: into unused slots when a run is
 * long enough, else at the end, growing the directory (ENOSPC, or EIO past
 * 256 MiB). Returns the device offsets of its entries.
 */
export async function dir_add(dn: ExNode, set: EntrySet, name: Uint16Array): Promise<number[]> {
  const emp = dn.emp, idx = await dir_index(dn);
  const n = set.count;
  let start = -1;
  if (idx.deleted >= n) {
    let runStart = -1, runLen = 0;
    await dir_scan(dn, () => start >= 0, {
      onFree: (s) => {
        if (start >= 0) return;
        if (s === runStart + runLen) runLen++;
        else { runStart = s; runLen = 1; }
        if (runLen === n) start = runStart;
      },
    });
  }
  const reused = start >= 0;
  if (!reused) {
    start = idx.end;
    if (start + n > idx.total) {
      const more = Math.ceil((start + n - idx.total) * DENTRY_SIZE / emp.cs);
      await dn.extend(more);
      await dn.update();
      idx.total = dn.nclus * emp.cs / DENTRY_SIZE;
    }
  }
  const offs: number[] = [];
  for (let i = 0; i < n; i++) offs.push(dn.devOff((start + i) * DENTRY_SIZE));
  set.seal();
  await write_entries(emp, offs, (i) => set.b.subarray(i * DENTRY_SIZE, (i + 1) * DENTRY_SIZE));
  if (reused) idx.deleted -= n;
  else idx.end = start + n;
  idx.names.set(emp.upcase.key(name), offs[0]);
  if (set.attr & ATTR_DIRECTORY) idx.subdirs++;
  return offs;
}

/** Mark the node's entry set unused (its InUse bits cleared). */
export async function dir_remove(dn: ExNode, node: ExNode): Promise<void> {
  const emp = dn.emp, s = node.set!;
  const b = s.b.slice();
  for (let i = 0; i < s.count; i++) b[i * DENTRY_SIZE] &= ~T_INUSE;
  await write_entries(emp, node.offs, (i) => b.subarray(i * DENTRY_SIZE, (i + 1) * DENTRY_SIZE));
  const idx = dn.dir;
  if (!idx) return;
  const k = emp.upcase.key(s.nameUnits());
  if (idx.names.get(k) === node.key) idx.names.delete(k);
  idx.deleted += s.count;
  if (s.attr & ATTR_DIRECTORY) idx.subdirs--;
}
