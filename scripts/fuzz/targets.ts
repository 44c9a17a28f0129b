// The file systems the fuzzer knows. Adding one (ext2fs, ...) is one entry:
// seed builders, a metadata region finder, the mount type, and whether its
// driver writes.
import { cd9660 } from './fs_cd9660.js';
import { exfat } from './fs_exfat.js';
import { ext2fs } from './fs_ext2fs.js';
import { msdos } from './fs_msdos.js';
import { udf } from './fs_udf.js';
import { ntfs } from './fs_ntfs.js';
import type { Region } from './mutate.js';
import type { SeedSpec } from './seeds.js';

export interface FuzzTarget {
  /** Name in --fs and under fuzz/out/. */
  fs: string;
  /** ukfs mount type; the server is dist/servers/rump_<mountType>.js. */
  mountType: string;
  /** Mount read-write (on a copy) and exercise writes too. */
  readWrite: boolean;
  seeds: SeedSpec[];
  regions(image: Uint8Array): Region[];
}

export const targets: Record<string, FuzzTarget> = { msdos, cd9660, ext2fs, udf, ntfs, exfat };
