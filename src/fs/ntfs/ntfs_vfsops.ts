// VFS operations (NetBSD's ntfs_vfsops.c): options, the boot sector, $MFT's
// own runlist (from record 0, through its attribute list when $MFT has
// one), $Volume (label, dirty flag) and $UpCase; vnodes by MFT record number.
import {
  vfs_flagopt, kerr, log, MNT_RDONLY, vcache_get,
  type Mount, type MountArgs, type MountOptions, type Statvfs, type VfsOps, type Vnode,
} from '../../kern/index.js';
import {
  applyFixups, AT_ATTRIBUTE_LIST, AT_DATA, AT_VOLUME_INFORMATION, corrupt, NTFS_FIRST_USER, NTFS_MFTINO,
  NTFS_ROOTINO, NTFS_UPCASEINO, ntfs_key2ino, NTFS_VOLUMEINO, parseAttributes, parseBootSector, parseRecordHeader, u16, utf16,
  VOLUME_IS_DIRTY,
} from './ntfs.js';
import { findAttr, ntfs_bread, ntfs_loadattrs, ntfs_loadupcase, type NtfsAttr, type NtfsMount } from './ntfs_subr.js';
import { ntfs_loadnode } from './ntfs_node.js';
import { ntfs_vnodeops } from './ntfs_vnops.js';

const AT_VOLUME_NAME = 0x60;

export interface NtfsArgs {
  uid: number;
  gid: number;
  /** Permission bits of files and directories (0777 less fmask/dmask). */
  fmode: number;
  dmode: number;
  showSysFiles: boolean;
}

function bad(note: string): never {
  throw kerr('EINVAL', note);
}

function numOpt(name: string, v: string | number | boolean, octal: boolean): number {
  const s = String(v);
  const n = typeof v === 'number' ? v : (octal ? /^[0-7]{1,4}$/ : /^\d+$/).test(s) ? parseInt(s, octal ? 8 : 10) : NaN;
  if (!Number.isSafeInteger(n) || n < 0 || (octal && n > 0o7777)) bad(`option ${name}=${s}: not a valid ${octal ? 'octal mask' : 'number'}`);
  return n;
}

/** Options as ntfs-3g and Linux's ntfs name them: uid, gid, umask, fmask, dmask, show_sys_files. Others: EINVAL. */
export function ntfs_parse_options(o: MountOptions): NtfsArgs {
  const a: NtfsArgs = { uid: 0, gid: 0, fmode: 0o755, dmode: 0o755, showSysFiles: false };
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'uid': a.uid = numOpt(k, v, false); break;
      case 'gid': a.gid = numOpt(k, v, false); break;
      case 'umask': a.fmode = a.dmode = 0o777 & ~numOpt(k, v, true); break;
      case 'fmask': a.fmode = 0o777 & ~numOpt(k, v, true); break;
      case 'dmask': a.dmode = 0o777 & ~numOpt(k, v, true); break;
      case 'show_sys_files': a.showSysFiles = vfs_flagopt(k, v); break;
      default: bad(`unknown option '${k}' for ntfs`);
    }
  }
  return a;
}

/**
 * $MFT's data attribute. Record 0 is found through the boot sector; its
 * first $DATA extent maps at least the records that hold the others, which
 * its attribute list (if any) names.
 */
async function ntfs_loadmft(nmp: NtfsMount): Promise<NtfsAttr> {
  const where = 'MFT record 0';
  const rec = new Uint8Array(nmp.recordSize);
  await ntfs_bread(nmp, nmp.boot.mftLcn * nmp.clusterSize, rec);
  applyFixups(rec, 'FILE', where);
  const h = parseRecordHeader(rec, where);
  const attrs = parseAttributes(rec, h, nmp.totalClusters, where);
  const first = attrs.find(a => a.type === AT_DATA && a.name === '' && !a.value && a.lowestVcn === 0);
  if (!first) corrupt(`${where}: $MFT has no non-resident $DATA`);
  nmp.mft = { ...first };
  if (first.initializedSize < NTFS_FIRST_USER * nmp.recordSize) corrupt(`$MFT: ${first.initializedSize} bytes hold fewer than ${NTFS_FIRST_USER} records`);
  if (attrs.some(a => a.type === AT_ATTRIBUTE_LIST)) {
    // The extension records lie in what the first extent maps; reading them completes the runlist.
    const full = findAttr((await ntfs_loadattrs(nmp, NTFS_MFTINO)).attrs, AT_DATA);
    if (!full || full.value) corrupt('$MFT: its attribute list gives no $DATA');
    return full;
  }
  return nmp.mft;
}

/** $Volume's label and dirty flag. */
async function ntfs_loadvolume(nmp: NtfsMount, from: string): Promise<void> {
  const { attrs } = await ntfs_loadattrs(nmp, NTFS_VOLUMEINO);
  const name = findAttr(attrs, AT_VOLUME_NAME)?.value;
  if (name) nmp.label = utf16(name, 0, name.length >> 1);
  const vi = findAttr(attrs, AT_VOLUME_INFORMATION)?.value;
  if (!vi || vi.length < 12) corrupt('$Volume: no $VOLUME_INFORMATION');
  if (u16(vi, 10) & VOLUME_IS_DIRTY) {
    // Windows did not shut down cleanly (or hibernates); reading may see half-done changes.
    log(`ntfs: ${from}: volume is marked dirty (not cleanly unmounted); mounting read-only anyway, run chkdsk on Windows`);
  }
}

async function ntfs_mount(mp: Mount, args: MountArgs): Promise<void> {
  const opts = ntfs_parse_options(args.options);
  const dev = args.dev;
  if (!dev) bad('ntfs needs a device');
  // This driver never writes: every mount is read-only.
  mp.flags |= MNT_RDONLY;
  if (dev.size < 512) bad(`not an NTFS file system: device of ${dev.size} bytes`);
  const bs = new Uint8Array(512);
  await dev.read(bs, 0);
  const boot = parseBootSector(bs);
  if (!boot) bad('not an NTFS file system: no "NTFS    " OEM id in the boot sector');
  const totalClusters = Math.floor(boot.totalSectors * boot.bytesPerSector / boot.clusterSize);
  if (boot.mftLcn >= totalClusters) bad(`not a usable NTFS boot sector: $MFT at cluster ${boot.mftLcn} of ${totalClusters}`);
  if (totalClusters * boot.clusterSize > dev.size) {
    log(`ntfs: ${args.from}: the volume (${totalClusters * boot.clusterSize} bytes) is larger than the device (${dev.size}); data past its end reads as EIO`);
  }
  const nmp: NtfsMount = {
    dev, boot, clusterSize: boot.clusterSize, totalClusters, recordSize: boot.mftRecordSize,
    mft: null!, upcase: new Uint16Array(0), uid: opts.uid, gid: opts.gid, fmode: opts.fmode, dmode: opts.dmode,
    showSysFiles: opts.showSysFiles, label: '',
  };
  nmp.mft = await ntfs_loadmft(nmp);
  await ntfs_loadvolume(nmp, args.from);
  nmp.upcase = await ntfs_loadupcase(nmp, (await ntfs_loadattrs(nmp, NTFS_UPCASEINO)).attrs);
  mp.data = nmp;
}

async function ntfs_statvfs(mp: Mount): Promise<Statvfs> {
  const nmp = mp.priv<NtfsMount>();
  return {
    bsize: nmp.clusterSize, frsize: nmp.clusterSize, blocks: nmp.totalClusters, bfree: 0, bavail: 0,
    files: Math.floor(nmp.mft.dataSize / nmp.recordSize), ffree: 0, favail: 0, namemax: 255, flag: mp.flags,
  };
}

async function ntfs_loadvnode(mp: Mount, vp: Vnode, key: number): Promise<void> {
  const nmp = mp.priv<NtfsMount>();
  const ino = ntfs_key2ino(key);
  // File ids come from this mount's lookups and readdirs; system files only with show_sys_files.
  if (ino !== NTFS_ROOTINO && ino < NTFS_FIRST_USER && !nmp.showSysFiles) throw kerr('ENOENT', `ntfs: system file ${ino} is hidden`);
  const node = await ntfs_loadnode(nmp, ino);
  vp.type = node.type;
  vp.ops = ntfs_vnodeops;
  vp.data = node;
}

export const ntfs_vfsops: VfsOps = {
  name: 'ntfs',
  readOnlyFormat: true,
  aliases: ['ntfs3'],
  mount: ntfs_mount,
  unmount: async (mp) => { mp.data = null; },
  root: (mp) => vcache_get(mp, NTFS_ROOTINO),
  statvfs: ntfs_statvfs,
  sync: async () => {},
  loadvnode: ntfs_loadvnode,
  // The file id is the vcache key, and a key alone finds its file.
  vget: (mp, fileid) => vcache_get(mp, fileid),
  label: (mp) => mp.priv<NtfsMount>().label || null,
};
