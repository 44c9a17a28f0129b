// udf: Universal Disk Format (DVDs, Blu-ray discs, UDF bridge images, disks
// from mkudffs), revisions 1.02 to 2.60, read-only. Importing this module
// registers it.
import { vfs_register } from '../../kern/index.js';
import { udf_vfsops } from './udf_vfsops.js';

export { udf_vfsops, udf_parse_options, type UdfArgs } from './udf_vfsops.js';
export { udf_vnodeops } from './udf_vnops.js';

export function register(): void {
  vfs_register(udf_vfsops);
}

register();
