// cd9660: ISO 9660 file systems (CDs, DVDs, images), read-only, with Rock
// Ridge and Joliet. Importing this module registers it.
import { vfs_register } from '../../kern/index.js';
import { cd9660_vfsops } from './cd9660_vfsops.js';

export { cd9660_vfsops, cd9660_parse_options, type Cd9660Args } from './cd9660_vfsops.js';
export { cd9660_vnodeops } from './cd9660_vnops.js';

export function register(): void {
  vfs_register(cd9660_vfsops);
}

register();
