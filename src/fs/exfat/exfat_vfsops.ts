// VFS operations: mount checks the boot region (the backup when the main one
// is damaged), reads the FAT, finds the allocation bitmap, up-case table and
// label in the root directory, and marks the volume dirty; unmount flushes
// and marks it clean again.
import {
  bflush, bread, bwrite, kerr, log, MNT_RDONLY, vcache_get, vrele, VType, type BlockDevice, type Mount, type MountArgs,
  type Statvfs, type VfsOps, type Vnode,
} from '../../kern/index.js';
import {
  ATTR_DIRECTORY, BOOT_REGION_SECTORS, boot_parse, boot_region_valid, DENTRY_SIZE, DIR_MAX_BYTES, EXFAT_NAME, NAME_MAX,
  SF_ALLOC_POSSIBLE, SF_NOFATCHAIN, T_BITMAP, T_LABEL, T_UPCASE, VOL_ACTIVEFAT, VOL_DIRTY, VOLFLAGS_OFF, type BootSector,
} from './exfat.js';
import { ExAlloc, fat_chain, type Placement } from './exfat_alloc.js';
import { dir_readset } from './exfat_dir.js';
import { ExNode } from './exfat_node.js';
import { string_of, Upcase } from './exfat_upcase.js';
import { exfat_vnodeops } from './exfat_vnops.js';
import { exfat_parseargs, Exfatmount, ROOT_KEY } from './exfatmount.js';

const empOf = (mp: Mount): Exfatmount => mp.priv<Exfatmount>();

/** The main boot region if it is sound, else the backup (the mount then stays read-only). */
async function readBoot(mp: Mount, dev: BlockDevice): Promise<BootSector> {
  const head = new Uint8Array(512);
  if (dev.size < 512) throw kerr('EINVAL', `not an exFAT file system: device of ${dev.size} bytes`);
  await dev.read(head, 0);
  if (String.fromCharCode(...head.subarray(3, 11)) !== EXFAT_NAME) throw kerr('EINVAL', 'not an exFAT file system: no EXFAT name');
  const problems: string[] = [];
  for (const which of ['main', 'backup'] as const) {
    for (const ss of [512, 1024, 2048, 4096]) {
      const base = which === 'main' ? 0 : BOOT_REGION_SECTORS * ss;
      if (base + BOOT_REGION_SECTORS * ss > dev.size) break;
      const region = new Uint8Array(BOOT_REGION_SECTORS * ss);
      await dev.read(region, base);
      const bs = boot_parse(region.subarray(0, 512), dev.size);
      if (typeof bs === 'string') { if (ss === 512) problems.push(`${which} boot sector: ${bs}`); break; }
      if (bs.sectorSize !== ss) continue;
      if (!boot_region_valid(region, ss)) { problems.push(`${which} boot region: checksum mismatch`); break; }
      if (which === 'backup') {
        log(`exfat: ${dev.path}: ${problems.join('; ')}: using the backup boot region, read-only (repair with fsck.exfat)`);
        mp.flags |= MNT_RDONLY;
      }
      return bs;
    }
  }
  throw kerr('EINVAL', `not a usable exFAT file system: ${problems.join('; ') || 'no boot region'}`);
}

interface RootInfo { bitmap: Placement[]; upcase: Placement[]; upcaseSum: number; upcaseLen: number; label: string }

/** The root directory's bitmap, up-case table and label entries. */
async function readRootInfo(dev: BlockDevice, bs: BootSector, fatGet: (c: number) => number): Promise<RootInfo> {
  const cs = bs.clusterSize, what = `${dev.path}: root directory`;
  const place = (first: number, len: number, name: string): Placement[] =>
    fat_chain(fatGet, bs.clusterCount, first, Math.ceil(len / cs), `${dev.path}: ${name}`)
      .map(e => ({ devOff: bs.heapOffset + (e.start - 2) * cs, len: e.len * cs }));
  const root = fat_chain(fatGet, bs.clusterCount, bs.rootCluster, -1, what);
  const active = bs.numFats === 2 && (bs.volumeFlags & VOL_ACTIVEFAT) ? 1 : 0;
  let bitmap: Placement[] | null = null, upcase: Placement[] | null = null;
  let upcaseSum = 0, upcaseLen = 0, label = '';
  const buf = new Uint8Array(cs);
  let seen = 0;
  scan: for (const e of root) {
    for (let c = e.start; c < e.start + e.len; c++) {
      if ((seen += cs) > DIR_MAX_BYTES) throw kerr('EINVAL', `${what}: larger than 256 MiB`);
      await dev.read(buf, bs.heapOffset + (c - 2) * cs);
      const v = new DataView(buf.buffer);
      for (let o = 0; o < cs; o += DENTRY_SIZE) {
        const t = buf[o];
        if (t === 0) break scan;
        const first = v.getUint32(o + 20, true), len = Number(v.getBigUint64(o + 24, true));
        if (t === T_BITMAP && (buf[o + 1] & 1) === active && !bitmap) {
          if (len < Math.ceil(bs.clusterCount / 8) || len > bs.clusterCount * cs) throw kerr('EINVAL', `${what}: allocation bitmap of ${len} bytes`);
          bitmap = place(first, len, 'allocation bitmap');
        } else if (t === T_UPCASE && !upcase) {
          if (len < 2 || len > 2 * 65536 || len % 2) throw kerr('EINVAL', `${what}: up-case table of ${len} bytes`);
          upcase = place(first, len, 'up-case table');
          upcaseSum = v.getUint32(o + 4, true);
          upcaseLen = len;
        } else if (t === T_LABEL) {
          const n = Math.min(buf[o + 1], 11);
          const u: number[] = [];
          for (let i = 0; i < n; i++) u.push(v.getUint16(o + 2 + 2 * i, true));
          label = string_of(u);
        }
      }
    }
  }
  if (!bitmap) throw kerr('EINVAL', `${what}: no allocation bitmap entry`);
  if (!upcase) throw kerr('EINVAL', `${what}: no up-case table entry`);
  return { bitmap, upcase, upcaseSum, upcaseLen, label };
}

/** Set or clear VolumeDirty in the main boot sector, written through at once. */
async function setDirty(emp: Exfatmount, dirty: boolean): Promise<void> {
  const ss = emp.bs.sectorSize;
  const bp = await bread(emp.dev, 0, ss, emp.meta);
  const v = new DataView(bp.data.buffer, bp.data.byteOffset, ss);
  const f = v.getUint16(VOLFLAGS_OFF, true);
  v.setUint16(VOLFLAGS_OFF, dirty ? f | VOL_DIRTY : f & ~VOL_DIRTY, true);
  await bwrite(bp);
}

export const exfat_vfsops: VfsOps = {
  name: 'exfat',
  caseInsensitive: true,
  label: mp => exfat_getlabel(mp),

  async mount(mp: Mount, margs: MountArgs): Promise<void> {
    const dev = margs.dev;
    if (!dev) throw kerr('EINVAL', 'exfat needs a device');
    const args = exfat_parseargs(margs.options);
    const bs = await readBoot(mp, dev);
    if (bs.sectorSize < dev.sectorSize) {
      throw kerr('EINVAL', `exFAT with ${bs.sectorSize}-byte sectors on a ${dev.sectorSize}-byte sector device`);
    }
    const meta = {};
    const fatOff = bs.fatOffset + (bs.numFats === 2 && (bs.volumeFlags & VOL_ACTIVEFAT) ? bs.fatBytes : 0);
    let info: RootInfo | null = null;
    const alloc = await ExAlloc.load(mp, dev, meta, fatOff, bs.clusterCount, bs.clusterSize, async (fatGet) => {
      info = await readRootInfo(dev, bs, fatGet);
      return info.bitmap;
    });
    const ri = info as unknown as RootInfo;
    const raw = new Uint8Array(ri.upcaseLen);
    let pos = 0;
    for (const p of ri.upcase) {
      const n = Math.min(p.len, raw.length - pos);
      await dev.read(raw.subarray(pos, pos + n), p.devOff);
      pos += n;
    }
    const upcase = Upcase.parse(raw, ri.upcaseSum, dev.path);
    const emp = new Exfatmount(mp, dev, bs, alloc, upcase, args, meta);
    alloc.report = (what) => emp.error(what);
    emp.label = ri.label;
    mp.data = emp;
    if (!mp.readOnly) {
      if (bs.volumeFlags & VOL_DIRTY) {
        log(`exfat: ${dev.path}: volume was not properly unmounted; some data may be corrupt: run fsck.exfat`);
        emp.wasDirty = true;
      }
      await setDirty(emp, true);
    }
  },

  async unmount(mp: Mount): Promise<void> {
    const emp = empOf(mp);
    if (mp.readOnly) return;
    await emp.alloc.flush();
    // Everything is on the device before the volume says it is clean.
    await bflush(emp.dev);
    if (!emp.wasDirty) await setDirty(emp, false);
  },

  root(mp: Mount): Promise<Vnode> {
    return vcache_get(mp, ROOT_KEY);
  },

  async statvfs(mp: Mount): Promise<Statvfs> {
    const emp = empOf(mp);
    const free = emp.alloc.freeCount;
    return {
      bsize: emp.cs, frsize: emp.cs, blocks: emp.bs.clusterCount, bfree: free, bavail: free,
      files: 0, ffree: 0, favail: 0, namemax: NAME_MAX, flag: mp.flags,
    };
  },

  async sync(mp: Mount): Promise<void> {
    if (mp.readOnly) return;
    await empOf(mp).alloc.flush();
  },

  async loadvnode(mp: Mount, vp: Vnode, key: number): Promise<void> {
    const emp = empOf(mp), cs = emp.cs, alloc = emp.alloc;
    let xn: ExNode;
    if (key === ROOT_KEY) {
      xn = new ExNode(emp, ROOT_KEY, ROOT_KEY, null, []);
      xn.setClusters(alloc.chain(emp.bs.rootCluster, -1, 'root directory'), false);
      if (xn.nclus * cs > DIR_MAX_BYTES) throw emp.error('root directory is larger than 256 MiB');
      xn.size = xn.vdl = xn.nclus * cs;
    } else {
      const parentKey = emp.parentOf.get(key);
      if (parentKey === undefined) throw kerr('ESTALE', `no directory entry known at ${key}`);
      const pvp = await vcache_get(mp, parentKey);
      let e;
      try {
        e = await dir_readset(pvp.node<ExNode>(), key);
      } finally {
        await vrele(pvp);
      }
      const s = e.set, what = `entry at ${key}`;
      xn = new ExNode(emp, key, parentKey, s, e.offs);
      const size = s.dataLength, vdl = s.validDataLength, nclus = Math.ceil(size / cs);
      if (nclus > emp.bs.clusterCount) throw emp.error(`${what}: DataLength ${size} is larger than the volume`);
      if (vdl > size) throw emp.error(`${what}: ValidDataLength ${vdl} exceeds DataLength ${size}`);
      if (nclus > 0 && !(s.flags & SF_ALLOC_POSSIBLE)) throw emp.error(`${what}: clusters without AllocationPossible`);
      if (s.attr & ATTR_DIRECTORY && (size % cs || size > DIR_MAX_BYTES)) throw emp.error(`${what}: directory of ${size} bytes`);
      const noFat = (s.flags & SF_NOFATCHAIN) !== 0;
      xn.setClusters(noFat ? alloc.run(s.firstCluster, nclus, what) : alloc.chain(s.firstCluster, nclus, what), noFat);
      xn.size = size;
      xn.vdl = vdl;
    }
    const free = alloc.firstFree(xn.ext);
    if (free) throw emp.error(`${xn.describe()}: cluster ${free} is free in the allocation bitmap`);
    vp.type = xn.isDir ? VType.VDIR : VType.VREG;
    vp.ops = exfat_vnodeops;
    vp.data = xn;
  },
};

/** The volume label, for servers to show. */
export function exfat_getlabel(mp: Mount): string {
  return empOf(mp).label;
}
