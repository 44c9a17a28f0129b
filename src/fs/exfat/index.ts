// exfat: Microsoft's exFAT (SDXC cards, big USB sticks), read and write.
// Importing this module registers it; register() may be called again harmlessly.
import { vfs_register } from '../../kern/index.js';
import { exfat_vfsops } from './exfat_vfsops.js';

export { exfat_vfsops, exfat_getlabel } from './exfat_vfsops.js';
export { exfat_vnodeops, EXFAT_FILESIZE_MAX } from './exfat_vnops.js';
export { exfat_parseargs, ROOT_KEY as EXFAT_ROOT_ID, type ExfatArgs } from './exfatmount.js';

export function register(): void {
  vfs_register(exfat_vfsops);
}

register();
