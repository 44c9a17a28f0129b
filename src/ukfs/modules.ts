// ukfs_modload: drivers are loaded by type name when first mounted, so a
// program pays only for the file systems it uses.
import { vfs_getopsbyname, type VfsOps } from '../kern/index.js';

const modules: Record<string, () => Promise<unknown>> = {
  tmpfs: () => import('../fs/tmpfs/index.js'),
  msdos: () => import('../fs/msdosfs/index.js'),
  cd9660: () => import('../fs/cd9660/index.js'),
  udf: () => import('../fs/udf/index.js'),
  ntfs: () => import('../fs/ntfs/index.js'),
  exfat: () => import('../fs/exfat/index.js'),
  ext2fs: () => import('../fs/ext2fs/index.js'),
};

/** Linux and NetBSD names for the same driver. */
const aliases: Record<string, string> = {
  msdosfs: 'msdos', vfat: 'msdos', fat: 'msdos',
  iso9660: 'cd9660',
  ntfs3: 'ntfs',
  ext2: 'ext2fs', ext3: 'ext2fs', ext4: 'ext2fs',
};

export function canonicalType(type: string): string {
  return aliases[type] ?? type;
}

/** The driver's VFS operations, loading the driver if needed (ENODEV if unknown). */
export async function ukfs_modload(type: string): Promise<VfsOps> {
  const name = canonicalType(type);
  await modules[name]?.();
  return vfs_getopsbyname(name);
}

/** The file system types this library can mount. */
export function ukfs_vfstypes(): string[] {
  return Object.keys(modules).sort();
}
