// msdosfs: FAT12/16/32 with VFAT long names, read and write. Importing this
// module registers it; register() may be called again harmlessly.
import { vfs_register } from '../../kern/index.js';
import { msdosfs_vfsops } from './msdosfs_vfsops.js';

export { msdosfs_vfsops, msdosfs_getlabel } from './msdosfs_vfsops.js';
export { msdosfs_vnodeops, MSDOSFS_FILESIZE_MAX } from './msdosfs_vnops.js';
export { msdosfs_parseargs, ROOT_KEY as MSDOSFS_ROOT_ID, type MsdosfsArgs } from './msdosfsmount.js';

export function register(): void {
  vfs_register(msdosfs_vfsops);
}

register();
