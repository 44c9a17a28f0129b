// VFS operations (NetBSD ext2fs_vfsops.c): mount reads and checks the
// superblock and group descriptors and decides what it may do with the
// features it finds; sync writes the descriptors and superblock; unmount
// marks the volume clean.
import {
  brelse, kerr, log, MNT_RDONLY, nanotime, vcache_get, type Mount, type MountArgs, type MountOptions, type Statvfs, type Vnode,
  type VfsOps,
} from '../../kern/index.js';
import {
  COMPAT, COMPAT_NOWRITE, E2FS_ERRORS, E2FS_ISCLEAN, featureNames, gdCsum, INCOMPAT, INCOMPAT_READ, INCOMPAT_WRITE,
  MAXNAMLEN, RO_COMPAT, RO_COMPAT_WRITE, ROOTINO, SBOFF, SBSIZE, Superblock,
} from './ext2fs.js';
import { E2node } from './ext2fs_inode.js';
import { ext2fs_vinit } from './ext2fs_vnops.js';
import { E2fsMount, type Ext2fsArgs } from './ext2fsmount.js';

const umpOf = (mp: Mount): E2fsMount => mp.priv<E2fsMount>();

function bad(note: string): never {
  throw kerr('EINVAL', note);
}

/** Options the driver takes: sb= (1 KiB units, as Linux's), errors=. Unknown ones: EINVAL. */
export function ext2fs_parseargs(o: MountOptions): Ext2fsArgs {
  const a: Ext2fsArgs = {};
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'sb': {
        const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
        if (!Number.isSafeInteger(n) || n < 0) bad(`option sb=${String(v)}: not a block number`);
        a.sb = n;
        break;
      }
      case 'errors':
        if (v === 'continue') a.errors = 'continue';
        else if (v === 'remount-ro' || v === 'panic') a.errors = 'remount-ro';
        else bad(`option errors=${String(v)}: use continue, remount-ro or panic`);
        break;
      default: bad(`unknown option '${k}' for ext2fs`);
    }
  }
  return a;
}

/** Why this volume cannot be written by this driver, or null. */
function whyReadOnly(sb: Superblock, args: Ext2fsArgs): string | null {
  const why: string[] = [];
  const inc = featureNames(INCOMPAT, sb.incompat & ~INCOMPAT_WRITE);
  const ro = featureNames(RO_COMPAT, sb.roCompat & ~RO_COMPAT_WRITE);
  const co = featureNames(COMPAT, sb.compat & COMPAT_NOWRITE);
  const feats = [...inc, ...ro, ...co];
  if (feats.length) why.push(`features this driver does not write: ${feats.join(', ')}`);
  if (args.sb !== undefined) why.push('mounted from a backup superblock (sb=)');
  if (sb.state & E2FS_ERRORS) why.push('the file system has errors: run e2fsck');
  return why.length ? why.join('; ') : null;
}

async function ext2fs_mount(mp: Mount, margs: MountArgs): Promise<void> {
  const dev = margs.dev;
  if (!dev) bad('ext2fs needs a device');
  const args = ext2fs_parseargs(margs.options);
  const sbOffset = args.sb !== undefined ? args.sb * 1024 : SBOFF;
  if (sbOffset + SBSIZE > dev.size) bad(`not an ext2/3/4 file system: device of ${dev.size} bytes`);
  const raw = new Uint8Array(SBSIZE);
  await dev.read(raw, sbOffset);
  const sb = new Superblock(raw, dev.size);
  const what = `ext2fs: ${dev.path}`;
  const unknown = featureNames(INCOMPAT, sb.incompat & ~INCOMPAT_READ);
  if (unknown.length) {
    log(`${what}: unsupported incompatible features: ${unknown.join(', ')}`);
    bad(`unsupported incompatible features: ${unknown.join(', ')}`);
  }
  if (sb.incompat & INCOMPAT.needs_recovery) {
    log(`${what}: the journal needs recovery`);
    bad('the journal needs recovery, which this driver does not do (the image is never written by it): ' +
      'run e2fsck, or mount it once with the kernel\'s ext4');
  }
  if (!mp.readOnly) {
    const why = whyReadOnly(sb, args);
    if (why) {
      log(`${what}: mounted read-only: ${why}`);
      mp.flags |= MNT_RDONLY;
    }
  }
  // The group descriptor table.
  const dpb = sb.descPerBlock, nblk = Math.ceil(sb.ngroups / dpb);
  const gdRaw = new Uint8Array(nblk * sb.bsize);
  const ump = new E2fsMount(mp, dev, sb, gdRaw, args, sbOffset);
  mp.data = ump;
  for (let i = 0; i < nblk; i++) {
    const b = sb.descBlock(i);
    if (!ump.validBlock(b)) bad(`not a usable ext2/3/4 file system: group descriptor block ${b} is outside it`);
    const bp = await ump.bread(b);
    gdRaw.set(bp.data, i * sb.bsize);
    brelse(bp);
  }
  for (let g = 0; g < sb.ngroups; g++) {
    const gd = ump.gds[g];
    const itEnd = gd.inodeTable + sb.itableBlocks;
    if (!ump.validBlock(gd.blockBitmap) || !ump.validBlock(gd.inodeBitmap) || !ump.validBlock(gd.inodeTable, sb.itableBlocks)) {
      log(`${what}: group ${g}: bitmaps or inode table outside the file system`);
      bad(`not a usable ext2/3/4 file system: group ${g}: bitmap at ${gd.blockBitmap}/${gd.inodeBitmap} or inode table ${gd.inodeTable}..${itEnd} outside it`);
    }
    if (gd.freeBlocks > sb.bpg || gd.freeInodes > sb.ipg) {
      log(`${what}: group ${g}: free counts out of range`);
      if (!mp.readOnly) bad(`group ${g}: free counts out of range: run e2fsck`);
    }
    if (sb.metadataCsum && gd.checksum !== gdCsum(sb, g, gdRaw.subarray(g * sb.descSize, (g + 1) * sb.descSize))) {
      log(`${what}: group ${g}: descriptor checksum does not match`);
    }
  }
  const root = await E2node.load(ump, ROOTINO).catch((e) => bad(`root directory: ${String(e)}`));
  if (!root.isDir) bad('root inode is not a directory');
  if (!mp.readOnly) {
    if (!(sb.state & E2FS_ISCLEAN)) {
      log(`${what}: was not cleanly unmounted: run e2fsck; left marked so`);
      ump.wasDirty = true;
    }
    sb.markMounted(nanotime().sec);
    ump.sbDirty = true;
    await ump.flushMeta();
  }
}

export const ext2fs_vfsops: VfsOps = {
  name: 'ext2fs',
  aliases: ['ext2', 'ext3', 'ext4'],
  label: mp => umpOf(mp).sb.label || null,
  mount: ext2fs_mount,

  async unmount(mp) {
    const ump = umpOf(mp);
    if (!mp.readOnly && !ump.wasDirty && !(ump.sb.state & E2FS_ERRORS)) {
      ump.sb.state |= E2FS_ISCLEAN;
      ump.sbDirty = true;
      await ump.flushMeta();
    }
    mp.data = null;
  },

  root(mp: Mount): Promise<Vnode> {
    return vcache_get(mp, ROOTINO);
  },

  async statvfs(mp: Mount): Promise<Statvfs> {
    const sb = umpOf(mp).sb;
    const free = sb.freeBlocks;
    return {
      bsize: sb.bsize, frsize: sb.bsize, blocks: sb.blocks, bfree: free, bavail: Math.max(0, free - sb.reservedBlocks),
      files: sb.inodes, ffree: sb.freeInodes, favail: sb.freeInodes, namemax: MAXNAMLEN, flag: mp.flags,
    };
  },

  async sync(mp: Mount) {
    await umpOf(mp).flushMeta();
  },

  // The file id is the inode number, the vcache key.
  vget: (mp: Mount, fileid: number) => vcache_get(mp, fileid),

  async loadvnode(mp: Mount, vp: Vnode, key: number): Promise<void> {
    const ump = umpOf(mp);
    if (key !== ROOTINO && key < ump.sb.firstIno) throw ump.corrupt(`a directory names reserved inode ${key}`);
    ext2fs_vinit(vp, await E2node.load(ump, key));
  },
};
