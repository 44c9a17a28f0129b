// Directories (NetBSD ext2fs_lookup.c): blocks of variable-length entries,
// each checked before use. Hashed (dir_index) directories read as linear
// ones: their index blocks look like empty entries. A directory this
// driver changes loses its index flag, which e2fsck accepts (and -D
// rebuilds); the blocks stay a valid linear directory.
import { brelse, getblk, kerr, mount_bwrite, VType, type Buf } from '../../kern/index.js';
import { MAXNAMLEN } from './ext2fs.js';
import { ext2fs_balloc, ext2fs_bmap } from './ext2fs_bmap.js';
import { EXT2_INDEX_FL } from './ext2fs_dinode.js';
import type { E2node } from './ext2fs_inode.js';

export interface Dent {
  /** Byte offset in the directory. */
  off: number;
  ino: number;
  reclen: number;
  name: Uint8Array;
  /** EXT2_FT_* (0 without the filetype feature). */
  ftype: number;
}

/** EXT2_FT_* by vnode type, and back. */
const FT: Partial<Record<VType, number>> = {
  [VType.VREG]: 1, [VType.VDIR]: 2, [VType.VCHR]: 3, [VType.VBLK]: 4, [VType.VFIFO]: 5, [VType.VSOCK]: 6, [VType.VLNK]: 7,
};
const FT_VTYPE = [VType.VNON, VType.VREG, VType.VDIR, VType.VCHR, VType.VBLK, VType.VFIFO, VType.VSOCK, VType.VLNK];
export function ftToVtype(ft: number): VType { return FT_VTYPE[ft] ?? VType.VNON; }
export function vtypeToFt(t: VType): number { return FT[t] ?? 0; }

const enc = new TextEncoder();
export const nameBytes = (s: string): Uint8Array => enc.encode(s);
const dec = new TextDecoder();
export const nameString = (b: Uint8Array): string => dec.decode(b);

/** Bytes an entry with a name of n bytes needs. */
const DIRSIZ = (n: number): number => (8 + n + 3) & ~3;

function sameName(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The entries of directory block lbn (data in bp), checked. */
function parseBlock(dp: E2node, lbn: number, data: Uint8Array): Dent[] {
  const ump = dp.ump, bs = ump.bsize, ft = ump.sb.hasFiletype;
  const dv = new DataView(data.buffer, data.byteOffset, bs);
  const out: Dent[] = [];
  for (let at = 0; at < bs;) {
    const where = `directory inode ${dp.ino}, block ${lbn}, offset ${at}`;
    if (at + 8 > bs) throw ump.corrupt(`${where}: entry runs past the block`);
    const ino = dv.getUint32(at, true);
    let reclen = dv.getUint16(at + 4, true);
    if (bs === 65536) reclen = reclen === 65535 || reclen === 0 ? bs : (reclen & 65532) | ((reclen & 3) << 16);
    const namelen = data[at + 6];
    if (reclen < 12 || reclen % 4 || at + reclen > bs || 8 + namelen > reclen) {
      throw ump.corrupt(`${where}: bad entry length ${reclen} (name ${namelen})`);
    }
    if (ino !== 0 && (ino > ump.sb.inodes || namelen === 0)) throw ump.corrupt(`${where}: bad entry (inode ${ino}, name length ${namelen})`);
    out.push({ off: lbn * bs + at, ino, reclen, name: data.subarray(at + 8, at + 8 + namelen), ftype: ft ? data[at + 7] : 0 });
    at += reclen;
  }
  return out;
}

/** Directory block lbn, held, and its entries. */
async function dirBlock(dp: E2node, lbn: number): Promise<{ bp: Buf; ents: Dent[] }> {
  const pbn = await ext2fs_bmap(dp, lbn);
  if (!pbn) throw dp.ump.corrupt(`directory inode ${dp.ino}: hole at block ${lbn}`);
  const bp = await dp.ump.bread(pbn);
  try {
    return { bp, ents: parseBlock(dp, lbn, bp.data) };
  } catch (e) {
    brelse(bp);
    throw e;
  }
}

function nblocks(dp: E2node): number { return dp.size / dp.bsize; }

/** Call fn for each in-use entry from byte offset `from` on, until it returns true. */
export async function dir_scan(dp: E2node, from: number, fn: (e: Dent) => boolean | void): Promise<boolean> {
  for (let lbn = Math.floor(from / dp.bsize); lbn < nblocks(dp); lbn++) {
    const { bp, ents } = await dirBlock(dp, lbn);
    try {
      for (const e of ents) if (e.ino !== 0 && e.off >= from && fn(e)) return true;
    } finally {
      brelse(bp);
    }
  }
  return false;
}

/** A name's key in the directory's name cache. */
const nameKey = (b: Uint8Array): string => String.fromCharCode(...b);

/** The inode name refers to in dp, or null. The first lookup reads the whole directory into its name cache. */
export async function dir_lookup(dp: E2node, name: Uint8Array): Promise<number | null> {
  if (!dp.names) {
    const names = new Map<string, { ino: number; lbn: number }>();
    await dir_scan(dp, 0, (e) => { names.set(nameKey(e.name), { ino: e.ino, lbn: Math.floor(e.off / dp.bsize) }); });
    dp.names = names;
  }
  return dp.names.get(nameKey(name))?.ino ?? null;
}

/** Only `.` and `..` left? */
export async function dir_isempty(dp: E2node): Promise<boolean> {
  const stray = await dir_scan(dp, 0, (e) => {
    const n = e.name;
    return !(n.length === 1 && n[0] === 0x2e) && !(n.length === 2 && n[0] === 0x2e && n[1] === 0x2e);
  });
  return !stray;
}

/** The directory changes: times, and it is no longer a valid hashed directory. */
function modified(dp: E2node): void {
  if (dp.di.flags & EXT2_INDEX_FL) dp.di.flags = dp.di.flags & ~EXT2_INDEX_FL;
  dp.touch('mtime', 'ctime');
}

function putEntry(dp: E2node, data: Uint8Array, at: number, ino: number, reclen: number, name: Uint8Array, ftype: number): void {
  const dv = new DataView(data.buffer, data.byteOffset);
  dv.setUint32(at, ino, true);
  dv.setUint16(at + 4, reclen === 65536 ? 65535 : reclen, true);
  data[at + 6] = name.length;
  data[at + 7] = dp.ump.sb.hasFiletype ? ftype : 0;
  data.set(name, at + 8);
}

/** Add name -> ino: in the first gap big enough, else in a new block at the end (NetBSD ext2fs_direnter). */
export async function dir_enter(dp: E2node, name: Uint8Array, ino: number, type: VType): Promise<void> {
  if (name.length > MAXNAMLEN) throw kerr('ENAMETOOLONG');
  const need = DIRSIZ(name.length), bs = dp.bsize, ft = vtypeToFt(type);
  for (let lbn = Math.min(dp.roomFrom, nblocks(dp)); lbn < nblocks(dp); lbn++) {
    const { bp, ents } = await dirBlock(dp, lbn);
    for (const e of ents) {
      const at = e.off - lbn * bs;
      if (e.ino === 0 && e.reclen >= need) {
        putEntry(dp, bp.data, at, ino, e.reclen, name, ft);
      } else if (e.ino !== 0 && e.reclen - DIRSIZ(e.name.length) >= need) {
        const keep = DIRSIZ(e.name.length);
        new DataView(bp.data.buffer, bp.data.byteOffset).setUint16(at + 4, keep, true);
        putEntry(dp, bp.data, at + keep, ino, e.reclen - keep, name, ft);
      } else {
        continue;
      }
      await mount_bwrite(dp.ump.mp, bp);
      modified(dp);
      dp.roomFrom = lbn;
      dp.names?.set(nameKey(name), { ino, lbn });
      return;
    }
    brelse(bp);
  }
  const lbn = nblocks(dp);
  const last = lbn > 0 ? await ext2fs_bmap(dp, lbn - 1) : 0;
  const { pbn } = await ext2fs_balloc(dp, lbn, last ? last + 1 : 0);
  const bp = await getblk(dp.ump.dev, pbn * bs, bs, dp.ump.meta);
  bp.data.fill(0);
  putEntry(dp, bp.data, 0, ino, bs, name, ft);
  await mount_bwrite(dp.ump.mp, bp);
  dp.di.size = (lbn + 1) * bs;
  dp.roomFrom = lbn;
  dp.names?.set(nameKey(name), { ino, lbn });
  modified(dp);
}

/** Find name's entry and change it (its inode), or remove it; false if absent. */
async function dir_change(dp: E2node, name: Uint8Array, how: { ino: number; type: VType } | 'remove'): Promise<boolean> {
  const bs = dp.bsize, key = nameKey(name);
  // The block the name cache knows first, then all of them.
  const known = dp.names?.get(key)?.lbn;
  const order = known !== undefined && known < nblocks(dp) ? [known] : [];
  for (let lbn = 0; lbn < nblocks(dp); lbn++) if (lbn !== known) order.push(lbn);
  for (const lbn of order) {
    const { bp, ents } = await dirBlock(dp, lbn);
    const i = ents.findIndex(e => e.ino !== 0 && sameName(e.name, name));
    if (i < 0) { brelse(bp); continue; }
    const e = ents[i], at = e.off - lbn * bs, dv = new DataView(bp.data.buffer, bp.data.byteOffset);
    if (how === 'remove') {
      dp.names?.delete(key);
      dp.roomFrom = Math.min(dp.roomFrom, lbn);
    } else {
      dp.names?.set(key, { ino: how.ino, lbn });
    }
    if (how !== 'remove') {
      dv.setUint32(at, how.ino, true);
      if (dp.ump.sb.hasFiletype) bp.data[at + 7] = vtypeToFt(how.type);
    } else if (i > 0) {
      // The previous entry takes its space.
      const p = ents[i - 1], pat = p.off - lbn * bs, len = p.reclen + e.reclen;
      dv.setUint16(pat + 4, len === 65536 ? 65535 : len, true);
    } else {
      dv.setUint32(at, 0, true);
    }
    await mount_bwrite(dp.ump.mp, bp);
    modified(dp);
    return true;
  }
  return false;
}

export async function dir_remove(dp: E2node, name: Uint8Array): Promise<void> {
  if (!await dir_change(dp, name, 'remove')) throw dp.ump.corrupt(`directory inode ${dp.ino}: entry vanished`);
}

export async function dir_rewrite(dp: E2node, name: Uint8Array, ino: number, type: VType): Promise<void> {
  if (!await dir_change(dp, name, { ino, type })) throw dp.ump.corrupt(`directory inode ${dp.ino}: entry vanished`);
}

/** A new directory's first block: `.` and `..`. */
export async function dir_init(ip: E2node, parent: number): Promise<void> {
  const bs = ip.bsize;
  const { pbn } = await ext2fs_balloc(ip, 0, 0);
  const bp = await getblk(ip.ump.dev, pbn * bs, bs, ip.ump.meta);
  bp.data.fill(0);
  putEntry(ip, bp.data, 0, ip.ino, 12, nameBytes('.'), vtypeToFt(VType.VDIR));
  putEntry(ip, bp.data, 12, parent, bs - 12, nameBytes('..'), vtypeToFt(VType.VDIR));
  await mount_bwrite(ip.ump.mp, bp);
  ip.di.size = bs;
  ip.dirty = true;
}
