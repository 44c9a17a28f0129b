// tmpfs: the reference driver, a file system in memory. Importing this
// module registers it; register() may be called again harmlessly.
import { vfs_register } from '../../kern/index.js';
import { tmpfs_vfsops } from './tmpfs_vfsops.js';

export { tmpfs_vfsops, tmpfs_parse_options, TMPFS_DEFAULT_SIZE, type TmpfsArgs } from './tmpfs_vfsops.js';
export { tmpfs_vnodeops } from './tmpfs_vnops.js';
export { TMPFS_MAXFILESIZE, TMPFS_PAGE_SIZE, TMPFS_ROOT_ID, type TmpfsMount, type TmpfsNode } from './tmpfs.js';

export function register(): void {
  vfs_register(tmpfs_vfsops);
}

register();
