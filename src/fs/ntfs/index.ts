// ntfs: NTFS volumes (Windows disks and sticks), read-only. Importing this
// module registers it.
import { vfs_register } from '../../kern/index.js';
import { ntfs_vfsops } from './ntfs_vfsops.js';

export { ntfs_vfsops, ntfs_parse_options, type NtfsArgs } from './ntfs_vfsops.js';
export { ntfs_vnodeops } from './ntfs_vnops.js';

export function register(): void {
  vfs_register(ntfs_vfsops);
}

register();
