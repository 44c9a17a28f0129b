// Rock Ridge (RRIP) over the System Use Sharing Protocol (SUSP): the entries
// of one directory record's system use area and its continuation areas,
// gathered into POSIX attributes. Every entry length is checked against its
// area; continuation chains are bounded, so a looping chain is EIO.
import { kerr, log, makedev, type Timespec } from '../../kern/index.js';
import { ISO_SECTOR, isoDate17, isoDate7, isonum_733 } from './iso.js';
import { rripfntrans, rripfntransAt } from './cd9660_util.js';

/** At most this many continuation areas (CE) per record, and this many bytes in them. */
export const RRIP_MAX_CE = 32;
export const RRIP_MAX_CE_BYTES = 64 * 1024;

/** ER identifiers that announce Rock Ridge. */
const RRIP_IDS = new Set(['RRIP_1991A', 'IEEE_P1282', 'IEEE_1282']);

/** What Rock Ridge says about one file; absent fields were not recorded. */
export interface RripInfo {
  /** Any Rock Ridge entry at all (PX, NM, SL, TF, PN, CL, PL, RE, RR). */
  present: boolean;
  /** An ER entry naming RRIP (root `.` record). */
  er: boolean;
  name?: string;
  mode?: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  birthtime?: Timespec;
  mtime?: Timespec;
  atime?: Timespec;
  ctime?: Timespec;
  symlink?: string;
  rdev?: number;
  /** CL: the relocated directory's first logical block. */
  childLink?: number;
  /** PL: the real parent's first logical block (in a relocated directory's `..`). */
  parentLink?: number;
  /** RE: this record is a relocated directory's hidden original entry. */
  relocated: boolean;
  /** ZF "pz": the file's data is zisofs-compressed. */
  zisofs?: Zisofs;
}

/**
 * An empty RripInfo with every field present (undefined until an entry sets
 * it): one object shape, its fields inside the object, rather than a
 * property store grown field by field for every record analysed.
 */
export function newInfo(): RripInfo {
  return {
    present: false, er: false, name: undefined, mode: undefined, nlink: undefined, uid: undefined, gid: undefined,
    birthtime: undefined, mtime: undefined, atime: undefined, ctime: undefined, symlink: undefined, rdev: undefined,
    childLink: undefined, parentLink: undefined, relocated: false, zisofs: undefined,
  };
}

/** A zisofs file: header length, log2 of the block size, uncompressed size. */
export interface Zisofs { headerSize: number; blockShift: number; size: number }

/** Reads `length` bytes at a byte offset of the device (range-checked by the caller). */
export type AreaReader = (offset: number, length: number) => Promise<Uint8Array>;

/** SL component flags. */
const SL_CONTINUE = 0x01, SL_CURRENT = 0x02, SL_PARENT = 0x04, SL_ROOT = 0x08;
/** NM flags. */
const NM_CONTINUE = 0x01, NM_CURRENT = 0x02, NM_PARENT = 0x04;

/**
 * The SUSP skip length announced by an SP entry at the start of the root
 * `.` record's system use area, or null when there is no SUSP.
 */
export function cd9660_susp_sp(su: Uint8Array): number | null {
  if (su.length >= 7 && su[0] === 0x53 && su[1] === 0x50 && su[2] >= 7 && su[4] === 0xbe && su[5] === 0xef) return su[6];
  return null;
}

/** Where a record is, for messages: a string, or made only when there is something to say. */
export type Where = string | (() => string);

function corrupt(where: Where, what: string): never {
  const w = typeof where === 'string' ? where : where();
  log(`cd9660: ${w}: Rock Ridge: ${what}`);
  throw kerr('EIO', `${w}: Rock Ridge: ${what}`);
}

/** Two-letter signatures as numbers (first letter in the high byte). */
const sig = (s: string) => (s.charCodeAt(0) << 8) | s.charCodeAt(1);
const CE = sig('CE'), ST = sig('ST'), ER = sig('ER'), RR = sig('RR'), PX = sig('PX'), PN = sig('PN'), NM = sig('NM'),
  SL = sig('SL'), TF = sig('TF'), CL = sig('CL'), PL = sig('PL'), RE = sig('RE'), ZF = sig('ZF');

/** What the areas of one record have said so far. */
interface Gathered {
  info: RripInfo;
  /** The name when one NM entry holds it all: its bytes are area[nmStart, nmEnd) (decoded at the end). */
  nmArea: Uint8Array | null;
  nmStart: number;
  nmEnd: number;
  /** The pieces of a name in several NM entries (copies). */
  name: Uint8Array[] | null;
  nameDone: boolean;
  link: string;
  linkGlue: boolean;
  linkDone: boolean;
  /** What to decode (RRIP_NAME, RRIP_ATTRS); what is not wanted is still checked. */
  want: number;
}

/**
 * What cd9660_rrip_analyze decodes. RRIP_NAME: what a directory's walk needs
 * (the name, PX's mode for the type, CL, PL, RE). RRIP_ATTRS: everything a
 * node needs but the name (times, link target, device, ZF).
 */
export const RRIP_NAME = 1, RRIP_ATTRS = 2, RRIP_ALL = RRIP_NAME | RRIP_ATTRS;

/** The entries of area[start, end) into g; the continuation area it names, if any. */
function scanArea(area: Uint8Array, start: number, end: number, g: Gathered, where: Where): { offset: number; length: number } | null {
  const info = g.info, light = !(g.want & RRIP_ATTRS), noName = !(g.want & RRIP_NAME);
  let next: { offset: number; length: number } | null = null;
  for (let p = start; p + 4 <= end;) {
    const s1 = area[p], s2 = area[p + 1], len = area[p + 2];
    if (s1 === 0 && s2 === 0) break; // padding
    if (len < 4 || p + len > end) corrupt(where, `entry ${String.fromCharCode(s1, s2)} length ${len} at ${p - start} exceeds its area (${end - start})`);
    // The entry is area[q .. q + len).
    const q = p;
    p += len;
    switch ((s1 << 8) | s2) {
      case CE:
        if (len < 28) corrupt(where, `CE entry length ${len}`);
        next = { offset: isonum_733(area, q + 4) * ISO_SECTOR + isonum_733(area, q + 12), length: isonum_733(area, q + 20) };
        break;
      case ST:
        p = end;
        break;
      case ER: {
        if (len < 8 || 8 + area[q + 4] > len) corrupt(where, 'ER entry too short');
        info.er ||= RRIP_IDS.has(String.fromCharCode(...area.subarray(q + 8, q + 8 + area[q + 4])));
        break;
      }
      case RR:
        info.present = true;
        break;
      case PX:
        if (len < 36) corrupt(where, `PX entry length ${len}`);
        info.present = true;
        info.mode = isonum_733(area, q + 4);
        info.nlink = isonum_733(area, q + 12);
        info.uid = isonum_733(area, q + 20);
        info.gid = isonum_733(area, q + 28);
        break;
      case PN: {
        if (len < 20) corrupt(where, `PN entry length ${len}`);
        info.present = true;
        const high = isonum_733(area, q + 4), low = isonum_733(area, q + 12);
        info.rdev = high === 0 ? low : makedev(high, low);
        break;
      }
      case NM: {
        if (len < 5) corrupt(where, `NM entry length ${len}`);
        info.present = true;
        const flags = area[q + 4];
        if (noName || g.nameDone || (flags & (NM_CURRENT | NM_PARENT))) break;
        g.nameDone = !(flags & NM_CONTINUE);
        if (g.nameDone && !g.name) {
          // The whole name in this entry (nearly always): read from the area when done.
          g.nmArea = area;
          g.nmStart = q + 5;
          g.nmEnd = q + len;
        } else {
          (g.name ??= []).push(area.slice(q + 5, q + len));
        }
        break;
      }
      case SL: {
        if (len < 5) corrupt(where, `SL entry length ${len}`);
        info.present = true;
        if (g.linkDone) break;
        for (let c = 5; c < len;) {
          if (c + 2 > len || c + 2 + area[q + c + 1] > len) corrupt(where, 'SL component runs past its entry');
          const cflags = area[q + c], textAt = q + c + 2, textEnd = textAt + area[q + c + 1];
          c += 2 + area[q + c + 1];
          if (light) continue;
          if (cflags & SL_ROOT) {
            g.link += '/';
            g.linkGlue = true;
            continue;
          }
          const piece = cflags & SL_CURRENT ? '.' : cflags & SL_PARENT ? '..' : rripfntrans(area.subarray(textAt, textEnd));
          if (!g.linkGlue && g.link !== '') g.link += '/';
          g.link += piece;
          g.linkGlue = (cflags & SL_CONTINUE) !== 0;
        }
        g.linkDone = !(area[q + 4] & 1);
        break;
      }
      case TF: {
        if (len < 5) corrupt(where, `TF entry length ${len}`);
        info.present = true;
        const flags = area[q + 4];
        const size = flags & 0x80 ? 17 : 7;
        let at = 5;
        for (let bit = 0; bit < 7; bit++) {
          if (!(flags & (1 << bit))) continue;
          if (at + size > len) corrupt(where, 'TF entry shorter than its flags say');
          if (light) {
            at += size;
            continue;
          }
          const t = size === 17 ? isoDate17(area, q + at) : isoDate7(area, q + at);
          at += size;
          if (bit === 0) info.birthtime = t;
          else if (bit === 1) info.mtime = t;
          else if (bit === 2) info.atime = t;
          else if (bit === 3) info.ctime = t;
        }
        break;
      }
      case CL:
        if (len < 12) corrupt(where, `CL entry length ${len}`);
        info.present = true;
        info.childLink = isonum_733(area, q + 4);
        break;
      case PL:
        if (len < 12) corrupt(where, `PL entry length ${len}`);
        info.present = true;
        info.parentLink = isonum_733(area, q + 4);
        break;
      case RE:
        info.present = true;
        info.relocated = true;
        break;
      case ZF:
        if (len < 16) corrupt(where, `ZF entry length ${len}`);
        // Other algorithms (zisofs2 "PZ") are left alone: the data reads as recorded.
        if (!light && area[q + 4] === 0x70 && area[q + 5] === 0x7a) info.zisofs = { headerSize: area[q + 6] * 4, blockShift: area[q + 7], size: isonum_733(area, q + 8) };
        break;
      default:
        break; // SP, PD, ES, AA/AL (xattrs), SF...: not interpreted
    }
  }
  return next;
}

function gathered(g: Gathered): RripInfo {
  const info = g.info, name = g.name;
  if (g.nmArea) {
    info.name = rripfntransAt(g.nmArea, g.nmStart, g.nmEnd);
  } else if (name) {
    let all = name[0];
    if (name.length > 1) {
      all = new Uint8Array(name.reduce((n, a) => n + a.length, 0));
      let o = 0;
      for (const a of name) { all.set(a, o); o += a.length; }
    }
    info.name = rripfntrans(all);
  }
  if (g.link !== '') info.symlink = g.link;
  return info;
}

/**
 * Analyse the system use area su[start, end) (after the SP skip) of the
 * record at `where`: at once, unless a continuation area has to be read.
 * want: what to decode (RRIP_NAME, RRIP_ATTRS); the other
 * entries are checked as in a full analysis, so a damaged one fails both.
 */
export function cd9660_rrip_analyze(su: Uint8Array, start: number, end: number, read: AreaReader, where: Where, want = RRIP_ALL): RripInfo | Promise<RripInfo> {
  const g: Gathered = {
    info: newInfo(), nmArea: null, nmStart: 0, nmEnd: 0, name: null, nameDone: false,
    link: '', linkGlue: false, linkDone: false, want,
  };
  const next = scanArea(su, start, end, g, where);
  if (!next) return gathered(g);
  return (async () => {
    const seen = new Set<number>();
    let ceBytes = 0;
    for (let ce: { offset: number; length: number } | null = next; ce;) {
      if (seen.has(ce.offset) || seen.size >= RRIP_MAX_CE) corrupt(where, 'continuation areas loop or are too many');
      seen.add(ce.offset);
      ceBytes += ce.length;
      if (ce.length === 0 || ceBytes > RRIP_MAX_CE_BYTES) corrupt(where, `continuation area of ${ce.length} bytes`);
      const area = await read(ce.offset, ce.length);
      ce = scanArea(area, 0, area.length, g, where);
    }
    return gathered(g);
  })();
}
