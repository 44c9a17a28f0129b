// VFS operations (NetBSD msdosfs_vfsops.c): mount checks the boot sector,
// reads the FAT and marks the volume dirty (FAT[1]'s clean bit and the boot
// sector's state flag, as Linux; a volume found dirty gets Linux's warning);
// sync writes the FAT and FSInfo; unmount marks it clean again.
import {
  bread, brelse, bwrite, kerr, log, mount_bwrite, VType, type Mount, type MountArgs, type Statvfs, type VfsOps, type Vnode,
  vcache_get,
} from '../../kern/index.js';
import { BS_STATE_DIRTY, bpb_parse, fsinfo_set, fsinfo_valid } from './bpb.js';
import { Denode } from './denode.js';
import { ATTR_VOLUME, direntry_decode, SLOT_DELETED, SLOT_EMPTY } from './direntry.js';
import { Fat } from './fat.js';
import { LFN_MAX } from './msdosfs_conv.js';
import { dir_contents, dir_label } from './msdosfs_lookup.js';
import { msdosfs_vnodeops } from './msdosfs_vnops.js';
import { Msdosfsmount, msdosfs_parseargs, ORPHAN_BASE, ROOT_KEY } from './msdosfsmount.js';

const dmpOf = (mp: Mount): Msdosfsmount => mp.priv<Msdosfsmount>();

/**
 * The boot sector's dirty flag: read, and set or cleared (written through
 * at mount, so the mark is on the medium before any change; delayed at
 * unmount, before the final flush). Only the primary boot sector, as Linux.
 */
async function bootDirty(dmp: Msdosfsmount, set?: boolean): Promise<boolean> {
  const { bpb } = dmp;
  if (bpb.stateOff < 0) return false;
  const bp = await bread(dmp.dev, 0, bpb.bytesPerSec, dmp.meta);
  const was = (bp.data[bpb.stateOff] & BS_STATE_DIRTY) !== 0;
  if (set === undefined || set === was) {
    brelse(bp);
    return was;
  }
  bp.data[bpb.stateOff] ^= BS_STATE_DIRTY;
  if (set) await bwrite(bp);
  else await mount_bwrite(dmp.mp, bp);
  return was;
}

async function fsinfo_write(dmp: Msdosfsmount): Promise<void> {
  const { bpb, fat } = dmp;
  if (!dmp.fat32 || bpb.fsInfoSec === 0 || !fat.fsinfoDirty || dmp.mp.readOnly) return;
  fat.fsinfoDirty = false;
  const bp = await bread(dmp.dev, bpb.fsInfoSec * bpb.bytesPerSec, bpb.bytesPerSec, dmp.meta);
  if (!fsinfo_valid(bp.data)) {
    // Leave an FSInfo we do not recognise alone.
    brelse(bp);
    return;
  }
  fsinfo_set(bp.data, fat.freeCount, fat.nextFree);
  await mount_bwrite(dmp.mp, bp);
}

/** Directories count their subdirectories in nlink, as Linux shows them. */
async function dirLinks(dep: Denode): Promise<number> {
  try {
    return 2 + (await dir_contents(dep)).subdirs;
  } catch {
    return 2;
  }
}

export const msdosfs_vfsops: VfsOps = {
  name: 'msdos',
  aliases: ['vfat', 'msdosfs', 'fat'],
  caseInsensitive: true,
  label: mp => msdosfs_getlabel(mp),

  async mount(mp: Mount, margs: MountArgs): Promise<void> {
    const dev = margs.dev;
    if (!dev) throw kerr('EINVAL', 'msdos needs a device');
    const args = msdosfs_parseargs(margs.options);
    const cp = args.codepage;
    const bsSize = Math.max(512, dev.sectorSize);
    if (dev.size < bsSize) throw kerr('EINVAL', `not a FAT file system: device of ${dev.size} bytes`);
    const bs = new Uint8Array(bsSize);
    await dev.read(bs, 0);
    const bpb = bpb_parse(bs, dev.size, (b) => cp.decode(b).replace(/ +$/, ''));
    if (bpb.bytesPerSec < dev.sectorSize) {
      throw kerr('EINVAL', `not a FAT file system for this device: ${bpb.bytesPerSec}-byte sectors on a ${dev.sectorSize}-byte sector device`);
    }
    const meta = {};
    const fat = await Fat.load(mp, dev, bpb, meta);
    const dmp = new Msdosfsmount(mp, dev, bpb, fat, args, meta);
    if (dmp.fat32 && bpb.fsInfoSec !== 0) {
      const bp = await bread(dev, bpb.fsInfoSec * bpb.bytesPerSec, bpb.bytesPerSec, meta);
      const ok = fsinfo_valid(bp.data);
      const dv = new DataView(bp.data.buffer, bp.data.byteOffset, bp.data.byteLength);
      const free = dv.getUint32(488, true), next = dv.getUint32(492, true);
      brelse(bp);
      if (ok) {
        if (fat.validCluster(next)) fat.nextFree = next;
        // The count on disk is only a hint; ours was counted. Fix it at the next sync.
        if (free !== fat.freeCount) fat.fsinfoDirty = true;
      }
    }
    try {
      const label = await dir_label(Denode.root(dmp));
      dmp.label = label ? cp.decode(label).replace(/ +$/, '') : bpb.bpbLabel;
    } catch (e) {
      throw kerr('EINVAL', `not a usable FAT file system: root directory: ${String(e)}`);
    }
    mp.data = dmp;
    if (!mp.readOnly) {
      const wasDirty = !fat.isClean();
      fat.setClean(false);
      // Both marks at once: the boot sector's and FAT[1]'s.
      const [bootWasDirty] = await Promise.all([bootDirty(dmp, true), fat.flush(true)]);
      if (bootWasDirty || wasDirty) {
        log(`msdosfs: ${dev.path}: Volume was not properly unmounted. Some data may be corrupt. Please run fsck.`);
      }
    }
  },

  async unmount(mp: Mount): Promise<void> {
    const dmp = dmpOf(mp);
    if (mp.readOnly) return;
    await fsinfo_write(dmp);
    // Warned at mount; a clean unmount leaves a clean volume.
    dmp.fat.setClean(true);
    await dmp.fat.flush();
    await bootDirty(dmp, false);
  },

  root(mp: Mount): Promise<Vnode> {
    return vcache_get(mp, ROOT_KEY);
  },

  async statvfs(mp: Mount): Promise<Statvfs> {
    const dmp = dmpOf(mp);
    const free = dmp.fat.freeCount;
    return {
      bsize: dmp.bpb.clusterSize, frsize: dmp.bpb.clusterSize, blocks: dmp.bpb.clusterCount,
      bfree: free, bavail: free, files: 0, ffree: 0, favail: 0, namemax: LFN_MAX, flag: mp.flags,
    };
  },

  async sync(mp: Mount): Promise<void> {
    const dmp = dmpOf(mp);
    if (mp.readOnly) return;
    await fsinfo_write(dmp);
    await dmp.fat.flush();
  },

  // A file id is its directory entry's position (the vcache key; a rename moves it, so only
  // read-only mounts keep ids stable), and loadvnode finds the file from it alone.
  vget: (mp: Mount, fileid: number) => vcache_get(mp, fileid),

  async loadvnode(mp: Mount, vp: Vnode, key: number): Promise<void> {
    const dmp = dmpOf(mp), b = dmp.bpb;
    let dep: Denode;
    if (key === ROOT_KEY) {
      dep = Denode.root(dmp);
      dep.chain(); // a FAT32 root with a broken chain: EIO now
    } else {
      const inRoot = b.fatType !== 32 && key >= b.rootOffset && key < b.rootOffset + b.rootBytes;
      const inData = key >= b.dataOffset && key < b.dataOffset + b.clusterCount * b.clusterSize;
      if (key >= ORPHAN_BASE || (!inRoot && !inData) || (key - (inRoot ? b.rootOffset : b.dataOffset)) % 32 !== 0) {
        throw kerr('ESTALE', `no directory entry at ${key}`);
      }
      const blk = dmp.blockOf(key);
      const bp = await bread(dmp.dev, blk.off, blk.size, dmp.meta);
      const c = bp.data[key - blk.off], attr = bp.data[key - blk.off + 11];
      const de = direntry_decode(bp.data, key - blk.off, dmp.fat32);
      brelse(bp);
      if (c === SLOT_EMPTY || c === SLOT_DELETED || (attr & ATTR_VOLUME)) throw kerr('ESTALE', `no directory entry at ${key}`);
      dep = new Denode(dmp, false, key, de);
      if (dep.isDir && !dmp.fat.validCluster(de.cluster)) {
        log(`msdosfs: ${dmp.dev.path}: directory entry at ${key} names cluster ${de.cluster}`);
        throw kerr('EIO', `directory at cluster ${de.cluster}`);
      }
    }
    if (dep.isDir) dep.nlink = await dirLinks(dep);
    vp.type = dep.isDir ? VType.VDIR : VType.VREG;
    vp.ops = msdosfs_vnodeops;
    vp.data = dep;
  },
};

/** The volume label (root directory's label entry, else the boot sector's), for servers to show. */
export function msdosfs_getlabel(mp: Mount): string {
  return dmpOf(mp).label;
}
