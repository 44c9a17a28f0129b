// ext2fs: ext2, ext3 and ext4 file systems. Reads all three (ext4's extents,
// 64-bit, flex_bg, metadata_csum, hashed directories); writes ext2 and the
// ext3/ext4 images whose features it keeps valid. Importing this module
// registers it.
import { vfs_register } from '../../kern/index.js';
import { ext2fs_vfsops } from './ext2fs_vfsops.js';

export { ext2fs_vfsops, ext2fs_parseargs } from './ext2fs_vfsops.js';
export { ext2fs_vnodeops } from './ext2fs_vnops.js';

export function register(): void {
  vfs_register(ext2fs_vfsops);
}

register();
