// VFS operations (udf_vfsops.c): options; finding the anchor volume
// descriptor pointer (sector 256, the last sector, N-256) and the block
// size; the main volume descriptor sequence (the reserve one if the main is
// damaged); partitions and the logical volume's partition maps (type 1;
// type 2 sparable, virtual with its VAT, metadata with its metadata file);
// the file set descriptor and the root directory.
import {
  vfs_intopt, kerr, MNT_RDONLY, vcache_get, VType,
  type Mount, type MountArgs, type MountOptions, type Statvfs, type Vnode, type VfsOps,
} from '../../kern/index.js';
import {
  FT_META, FT_META_MIRROR, FT_VAT20, ICB_AD_INICB, TAG_AVDP, TAG_FSD, TAG_LVD, TAG_PD, TAG_TD, TAG_VDP,
  extent_ad, long_ad, regid, u16, u32, udf_corrupt, udf_tag, udf_tag_want,
} from './ecma167.js';
import { udf_dstring } from './udf_osta.js';
import { udf_loadnode, udf_readall } from './udf_node.js';
import { udf_bread, udf_key, udf_readtagged, udf_key_lb, udf_key_part, type UdfMount, type UdfPart } from './udf_subr.js';
import { udf_vnodeops } from './udf_vnops.js';

export interface UdfArgs {
  uid?: number;
  gid?: number;
  mode?: number;
  dmode?: number;
  /** Start sector of the session to mount (Linux udf's session=, as its CD driver reports it). */
  session: number;
  /** Show entries marked hidden. */
  unhide: boolean;
}

/** Block sizes tried for the anchor, most common first. */
const BLOCK_SIZES = [2048, 512, 4096, 1024, 8192, 16384, 32768];
/** Descriptors read from one volume descriptor sequence, pointers followed included. */
const MAX_VDS_DESCS = 1024;
/** Sectors from the end of the medium searched for the VAT's file entry. */
const VAT_SEARCH = 32;
/** A VAT larger than this is taken as corrupt (4 bytes a block: 16 M blocks). */
const MAX_VAT = 64 << 20;

function bad(note: string): never {
  throw kerr('EINVAL', note);
}

/** Options as Linux's udf and NetBSD's mount_udf name them. Unknown ones: EINVAL. */
export function udf_parse_options(o: MountOptions): UdfArgs {
  const a: UdfArgs = { session: 0, unhide: false };
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'uid': a.uid = vfs_intopt(k, v); break;
      case 'gid': a.gid = vfs_intopt(k, v); break;
      case 'mode': a.mode = vfs_intopt(k, v, 8) & 0o7777; break;
      case 'dmode': a.dmode = vfs_intopt(k, v, 8) & 0o7777; break;
      case 'session': a.session = vfs_intopt(k, v); break;
      case 'unhide':
        if (v !== true && v !== '' && v !== 'true' && v !== 1) bad(`option ${k}=${String(v)}: takes no value`);
        a.unhide = true;
        break;
      default: bad(`unknown option '${k}' for udf`);
    }
  }
  return a;
}

/** The anchor volume descriptor pointer and the block size it was found with. */
async function udf_find_anchor(ump: UdfMount, session: number): Promise<Uint8Array> {
  for (const bs of BLOCK_SIZES) {
    const n = Math.floor(ump.dev.size / bs);
    for (const s of [session + 256, n - 1, n - 257]) {
      if (s < 0 || s >= n) continue;
      ump.bsize = bs;
      const b = await udf_bread(ump, s, 'anchor');
      // Probing block sizes: only a tag that names this very sector is worth checking (and logging).
      if (u16(b, 0) !== TAG_AVDP || u32(b, 12) !== s) continue;
      try {
        const t = udf_tag(b, s, `anchor at sector ${s} (block size ${bs})`);
        if (t && t.ident === TAG_AVDP) return b;
      } catch {
        // A damaged anchor: the other copies may do.
      }
    }
  }
  bad('not a UDF file system: no anchor volume descriptor pointer at sector 256, N-256 or N-1');
}

interface Vds { lvd: Uint8Array; pds: Map<number, Uint8Array> }

/** One volume descriptor sequence: its logical volume descriptor and partition descriptors. */
async function udf_read_vds(ump: UdfMount, ext: { length: number; location: number }, which: string): Promise<Vds> {
  const bs = ump.bsize;
  let lvd: Uint8Array | null = null;
  let lvdSeq = -1;
  const pds = new Map<number, Uint8Array>();
  const pdSeq = new Map<number, number>();
  let sector = ext.location;
  let left = Math.floor(ext.length / bs);
  for (let n = 0; left > 0; n++, left--) {
    if (n >= MAX_VDS_DESCS) udf_corrupt(`${which} volume descriptor sequence: more than ${MAX_VDS_DESCS} descriptors`);
    const where = `${which} volume descriptor sequence, sector ${sector}`;
    let b = await udf_bread(ump, sector, where);
    // A logical volume descriptor with many maps spans sectors (block size 512).
    if (u16(b, 0) === TAG_LVD && b.length >= 272) {
      const total = 440 + u32(b, 264);
      if (total > 65536) udf_corrupt(`${where}: logical volume descriptor of ${total} bytes`);
      const more = Math.ceil(total / bs) - 1;
      if (more > 0) {
        const big = new Uint8Array((more + 1) * bs);
        big.set(b);
        for (let i = 1; i <= more; i++) big.set(await udf_bread(ump, sector + i, where), i * bs);
        b = big.subarray(0, total);
      }
    }
    const t = udf_tag(b, sector, where);
    if (!t || t.ident === TAG_TD) break;
    const seq = u32(b, 16);
    switch (t.ident) {
      case TAG_VDP: {
        const next = extent_ad(b, 20);
        sector = next.location;
        left = Math.floor(next.length / bs) + 1;
        continue;
      }
      case TAG_PD: {
        const num = u16(b, 22);
        if (seq >= (pdSeq.get(num) ?? -1)) { pds.set(num, b); pdSeq.set(num, seq); }
        break;
      }
      case TAG_LVD:
        if (seq >= lvdSeq) { lvd = b; lvdSeq = seq; }
        sector += Math.ceil(b.length / bs) - 1;
        break;
    }
    sector++;
  }
  if (!lvd) udf_corrupt(`${which} volume descriptor sequence: no logical volume descriptor`);
  return { lvd, pds };
}

/** The sparing table of a sparable partition: remapped packets (the first readable copy). */
async function udf_sparing(ump: UdfMount, map: Uint8Array, p: UdfPart): Promise<void> {
  p.packetLen = u16(map, 40);
  const ntables = map[42], size = u32(map, 44);
  if (!p.packetLen || p.packetLen > 65536 || ntables < 1 || ntables > 4 || size < 56 || size > (1 << 20)) {
    udf_corrupt(`sparable partition ${p.number}: packet length ${p.packetLen}, ${ntables} tables of ${size} bytes`);
  }
  for (let i = 0; i < ntables; i++) {
    const loc = u32(map, 48 + 4 * i);
    const where = `sparing table ${i} at sector ${loc}`;
    try {
      const b = new Uint8Array(Math.ceil(size / ump.bsize) * ump.bsize);
      for (let k = 0; k * ump.bsize < size; k++) b.set(await udf_bread(ump, loc + k, where), k * ump.bsize);
      udf_tag_want(b, loc, where, 0);
      if (regid(b, 16).ident !== '*UDF Sparing Table') udf_corrupt(`${where}: not a sparing table`);
      const count = u16(b, 48);
      if (56 + 8 * count > size) udf_corrupt(`${where}: ${count} entries in ${size} bytes`);
      const spared = new Map<number, number>();
      for (let e = 0; e < count; e++) {
        const orig = u32(b, 56 + 8 * e);
        if (orig < 0xfffffff0) spared.set(orig, u32(b, 60 + 8 * e));
      }
      p.spared = spared;
      return;
    } catch {
      // The next copy.
    }
  }
  udf_corrupt(`sparable partition ${p.number}: no readable sparing table`);
}

/** The VAT (2.2.11): the last file entry recorded, in the physical partition. */
async function udf_vat(ump: UdfMount, p: UdfPart): Promise<void> {
  const phys = ump.parts[p.phys!];
  const last = Math.floor(ump.dev.size / ump.bsize) - 1;
  for (let s = last; s > last - VAT_SEARCH && s >= phys.start; s--) {
    const lb = s - phys.start;
    let n;
    try {
      n = await udf_loadnode(ump, p.phys!, lb, true);
    } catch {
      continue;
    }
    const data = await udf_readall(ump, n, MAX_VAT, 'VAT');
    let head: number, end = data.length;
    if (n.icb.fileType === FT_VAT20) {
      head = data.length >= 152 ? u16(data, 0) : -1;
      if (head < 152 || head > data.length) udf_corrupt(`VAT at ${lb}: header of ${head} bytes in ${data.length}`);
    } else if (n.icb.fileType === 0 && data.length >= 36 && regid(data, data.length - 36).ident === '*UDF Virtual Alloc Tbl') {
      head = 0;
      end = data.length - 36;
    } else {
      continue;
    }
    const vat = new Uint32Array(Math.floor((end - head) / 4));
    for (let i = 0; i < vat.length; i++) vat[i] = u32(data, head + 4 * i);
    p.vat = vat;
    return;
  }
  udf_corrupt(`virtual partition ${p.number}: no VAT in the last ${VAT_SEARCH} sectors`);
}

/** The metadata partition's metadata file (2.2.13), or its mirror when that is damaged. */
async function udf_metafile(ump: UdfMount, map: Uint8Array, p: UdfPart): Promise<void> {
  for (const [off, ft] of [[40, FT_META], [44, FT_META_MIRROR]]) {
    try {
      const n = await udf_loadnode(ump, p.phys!, u32(map, off), true);
      if (n.icb.fileType !== ft || (n.icb.flags & 7) === ICB_AD_INICB) udf_corrupt(`metadata file at ${u32(map, off)}: file type ${n.icb.fileType}`);
      p.metaExtents = n.extents;
      return;
    } catch {
      // The mirror.
    }
  }
  udf_corrupt(`metadata partition ${p.number}: neither the metadata file nor its mirror is readable`);
}

/** The logical volume's partition maps (LVD 3/10.6.13) over the partition descriptors. */
async function udf_partitions(ump: UdfMount, vds: Vds): Promise<void> {
  const lvd = vds.lvd;
  const mtl = u32(lvd, 264), nmaps = u32(lvd, 268);
  if (440 + mtl > lvd.length || nmaps > 64) udf_corrupt(`logical volume descriptor: ${nmaps} maps in ${mtl} bytes`);
  const maps: Uint8Array[] = [];
  for (let o = 440, i = 0; i < nmaps; i++) {
    const len = lvd[o + 1];
    if (o + 2 > 440 + mtl || len < 6 || o + len > 440 + mtl) udf_corrupt(`logical volume descriptor: partition map ${i} of ${len} bytes`);
    maps.push(lvd.subarray(o, o + len));
    o += len;
  }
  const pdOf = (num: number, i: number): Uint8Array => {
    const pd = vds.pds.get(num);
    if (!pd) udf_corrupt(`partition map ${i}: no partition descriptor for partition ${num}`);
    return pd;
  };
  for (const [i, m] of maps.entries()) {
    const num = u16(m, m[0] === 1 ? 4 : 38);
    const kind = m[0] === 1 ? 'phys' : ({
      '*UDF Virtual Partition': 'virtual', '*UDF Sparable Partition': 'sparable', '*UDF Metadata Partition': 'meta',
    } as const)[regid(m, 4).ident];
    if (!kind || (m[0] === 2 && m.length < 64)) udf_corrupt(`partition map ${i}: type ${m[0]} '${m[0] === 2 ? regid(m, 4).ident : ''}'`);
    const pd = pdOf(num, i);
    const start = u32(pd, 188), length = u32(pd, 192);
    if (start * ump.bsize >= ump.dev.size) udf_corrupt(`partition ${num} starts at sector ${start}, past the medium`);
    ump.parts[i] = { kind, number: num, start, length };
  }
  for (const [i, m] of maps.entries()) {
    const p = ump.parts[i];
    if (p.kind === 'phys') continue;
    if (p.kind === 'sparable') { await udf_sparing(ump, m, p); continue; }
    p.phys = ump.parts.findIndex(q => q.number === p.number && (q.kind === 'phys' || q.kind === 'sparable'));
    if (p.phys < 0) udf_corrupt(`partition map ${i}: no physical map for partition ${p.number}`);
  }
  // The VAT may live in a sparable partition, and the metadata file in a VAT disc's: sparing first, then VAT, then metadata.
  for (const p of ump.parts) if (p.kind === 'virtual') await udf_vat(ump, p);
  for (const [i, m] of maps.entries()) if (ump.parts[i].kind === 'meta') await udf_metafile(ump, m, ump.parts[i]);
}

async function udf_mount(mp: Mount, args: MountArgs): Promise<void> {
  const opts = udf_parse_options(args.options);
  if (!args.dev) bad('udf needs a device');
  mp.flags |= MNT_RDONLY;
  const ump: UdfMount = {
    dev: args.dev, bsize: 2048, parts: [], root: { part: 0, lb: 0 }, label: '',
    uid: opts.uid, gid: opts.gid, mode: opts.mode, dmode: opts.dmode, unhide: opts.unhide, spareBlocks: [],
  };
  const avdp = await udf_find_anchor(ump, opts.session);
  let vds: Vds;
  try {
    vds = await udf_read_vds(ump, extent_ad(avdp, 16), 'main');
  } catch (e) {
    try {
      vds = await udf_read_vds(ump, extent_ad(avdp, 24), 'reserve');
    } catch {
      throw e;
    }
  }
  const lvd = vds.lvd;
  if (u32(lvd, 212) !== ump.bsize) udf_corrupt(`logical block size ${u32(lvd, 212)} is not the sector size ${ump.bsize}`);
  ump.label = udf_dstring(lvd.subarray(84, 212), 'logical volume identifier');
  await udf_partitions(ump, vds);
  const fsdAd = long_ad(lvd, 248);
  const { b: fsd } = await udf_readtagged(ump, fsdAd.part, fsdAd.lb, 'file set descriptor', TAG_FSD);
  const root = long_ad(fsd, 400);
  ump.root = { part: root.part, lb: root.lb };
  const rn = await udf_loadnode(ump, root.part, root.lb);
  if (rn.type !== VType.VDIR) udf_corrupt(`root directory at ${root.part}:${root.lb} is not a directory`);
  mp.data = ump;
}

async function udf_root(mp: Mount): Promise<Vnode> {
  const r = mp.priv<UdfMount>().root;
  return vcache_get(mp, udf_key(r.part, r.lb));
}

async function udf_statvfs(mp: Mount): Promise<Statvfs> {
  const ump = mp.priv<UdfMount>();
  const seen = new Set<number>();
  let blocks = 0;
  for (const p of ump.parts) {
    if ((p.kind === 'phys' || p.kind === 'sparable') && !seen.has(p.number)) { seen.add(p.number); blocks += p.length; }
  }
  return { bsize: ump.bsize, frsize: ump.bsize, blocks, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, namemax: 255, flag: mp.flags };
}

async function udf_loadvnode(mp: Mount, vp: Vnode, key: number): Promise<void> {
  const node = await udf_loadnode(mp.priv<UdfMount>(), udf_key_part(key), udf_key_lb(key));
  vp.type = node.type;
  vp.ops = udf_vnodeops;
  vp.data = node;
}

export const udf_vfsops: VfsOps = {
  name: 'udf',
  readOnlyFormat: true,
  mount: udf_mount,
  unmount: async (mp) => { mp.data = null; },
  root: udf_root,
  statvfs: udf_statvfs,
  sync: async () => {},
  loadvnode: udf_loadvnode,
  // The file id is the vcache key, and a key alone finds its file.
  vget: (mp, fileid) => vcache_get(mp, fileid),
  label: (mp) => mp.priv<UdfMount>().label || null,
};
