// What makefs knows per format: how to size and format an image, and which
// of a tree's attributes the format can hold.
import { msdosLayout, newfs_msdos, NewfsError, type MsdosParams } from './newfs_msdos.js';
import { ext2Layout, newfs_ext2fs, type Ext2Params } from './newfs_ext2fs.js';
import type { Tree } from './scan.js';
import { walkTree } from './scan.js';

export interface Format {
  /** The driver's type name (ukfs_modload). */
  name: string;
  owners: boolean; symlinks: boolean; hardlinks: boolean; specials: boolean;
  /** Bytes the tree needs. */
  estimate?: (tree: Tree, options: Record<string, string | true>) => number;
  /** Format the image file for the tree; returns a short description. */
  newfs?: (image: string, size: number, options: Record<string, string | true>, tree: Tree) => Promise<string>;
  /** Why this type cannot be made. */
  refusal?: string;
}

function msdosParams(size: number, o: Record<string, string | true>): MsdosParams {
  const p: MsdosParams = { size };
  for (const [k, v] of Object.entries(o)) {
    const num = () => { if (v === true || !/^\d+$/.test(v)) throw new NewfsError(`bad value for ${k}: ${String(v)}`); return Number(v); };
    switch (k) {
      case 'fat_type': { const t = num(); if (t !== 12 && t !== 16 && t !== 32) throw new NewfsError(`fat_type is 12, 16 or 32, not ${t}`); p.fatType = t; break; }
      case 'sectors_per_cluster': p.sectorsPerCluster = num(); break;
      case 'volume_label': if (v === true) throw new NewfsError('volume_label needs a value'); p.label = v; break;
      case 'volume_id': p.volumeId = num(); break;
      default: throw new NewfsError(`unknown msdos option '${k}'`);
    }
  }
  return p;
}

/** Clusters the tree needs on FAT with this cluster size: data (hard links stored twice), directories with a long name per entry. */
function fatClusters(tree: Tree, cs: number, rootInClusters: boolean): { clusters: number; rootEntries: number } {
  let clusters = 0, rootEntries = 0;
  for (const n of walkTree(tree.root)) {
    if (n.st.isFile()) clusters += Math.ceil(n.st.size / cs);
    if (!n.children) continue;
    // '.' and '..' (not in the root), then per entry its short entry and 13 characters per long-name entry.
    const entries = (n.rel ? 2 : 0) + n.children.reduce((s, c) => s + 1 + Math.ceil(Buffer.from(c.name, 'utf16le').length / 26), 0);
    if (!n.rel) rootEntries = entries;
    if (n.rel || rootInClusters) clusters += Math.max(1, Math.ceil((entries * 32) / cs));
  }
  return { clusters, rootEntries };
}

const msdos: Format = {
  name: 'msdos', owners: false, symlinks: false, hardlinks: false, specials: false,
  estimate(tree, o) {
    // Grow from the data size until a layout holds what the tree needs.
    let size = Math.max(64 * 1024, Math.ceil(tree.bytes * 1.02) + 64 * 1024);
    for (let i = 0; i < 200; i++) {
      let l;
      try {
        l = msdosLayout(msdosParams(size, o));
      } catch (e) {
        // Too small for the asked type (FAT16 needs 4085 clusters): grow.
        if (!(e instanceof NewfsError) || i > 150) throw e;
        size = Math.ceil((size * 1.25) / 512) * 512;
        continue;
      }
      const cs = l.sectorsPerCluster * l.bytesPerSector;
      const need = fatClusters(tree, cs, l.fatType === 32);
      if (need.clusters + (l.fatType === 32 ? 1 : 0) <= l.clusters && need.rootEntries <= (l.rootEntries || Infinity)) return size;
      size = Math.ceil(size + Math.max(need.clusters + 1 - l.clusters, 1) * cs * 1.05 + 16 * 1024);
      size = Math.ceil(size / 512) * 512;
    }
    throw new NewfsError('could not size a FAT image for this tree');
  },
  async newfs(image, size, o) {
    const l = await newfs_msdos(image, msdosParams(size, o));
    return `FAT${l.fatType}, ${l.clusters} clusters of ${l.sectorsPerCluster * l.bytesPerSector} bytes`;
  },
};

function ext2Params(size: number, o: Record<string, string | true>, inodes?: number): Ext2Params {
  const p: Ext2Params = { size, inodes };
  for (const [k, v] of Object.entries(o)) {
    const num = () => { if (v === true || !/^\d+$/.test(v)) throw new NewfsError(`bad value for ${k}: ${String(v)}`); return Number(v); };
    switch (k) {
      case 'block_size': case 'bsize': p.blockSize = num(); break;
      case 'inodes': p.inodes = Math.max(num(), inodes ?? 0); break;
      case 'volume_label': case 'label': if (v === true) throw new NewfsError(`${k} needs a value`); p.label = v; break;
      case 'reserved_percent': p.reservedPercent = num(); break;
      default: throw new NewfsError(`unknown ext2fs option '${k}'`);
    }
  }
  return p;
}

/** Blocks and inodes the tree needs on ext2 with this block size (hard links once; indirect blocks counted). */
function ext2Need(tree: Tree, bs: number): { blocks: number; inodes: number } {
  const ptrs = bs / 4;
  const dataBlocks = (n: number) => {
    let ind = 0;
    if (n > 12) ind += 1;
    if (n > 12 + ptrs) ind += 1 + Math.ceil((n - 12 - ptrs) / ptrs);
    if (n > 12 + ptrs + ptrs * ptrs) ind += 1 + Math.ceil((n - 12 - ptrs - ptrs * ptrs) / (ptrs * ptrs)) + Math.ceil((n - 12 - ptrs - ptrs * ptrs) / ptrs);
    return n + ind;
  };
  let blocks = 0, inodes = 11;
  for (const n of walkTree(tree.root)) {
    if (n.linkOf) continue;
    inodes++;
    if (n.st.isFile()) blocks += dataBlocks(Math.ceil(n.st.size / bs));
    else if (n.st.isSymbolicLink() && Buffer.byteLength(n.target!) >= 60) blocks++;
    else if (n.children) blocks += Math.max(1, Math.ceil((24 + n.children.reduce((s, c) => s + 8 + Math.ceil(Buffer.byteLength(c.name) / 4) * 4, 0)) / bs));
  }
  return { blocks, inodes };
}

const ext2fs: Format = {
  name: 'ext2fs', owners: true, symlinks: true, hardlinks: true, specials: true,
  estimate(tree, o) {
    let size = Math.max(256 * 1024, Math.ceil(tree.bytes * 1.1) + 256 * 1024);
    for (let i = 0; i < 200; i++) {
      const bs = ext2Layout(ext2Params(size, o)).blockSize;
      const need = ext2Need(tree, bs);
      const inodes = Math.ceil(need.inodes * 1.1) + 16;
      const l = ext2Layout(ext2Params(size, o, inodes));
      // lost+found's and the root's blocks are already taken; keep the reserved 5% free.
      if (need.blocks <= l.freeBlocksEstimate * 0.95 && l.groups * l.inodesPerGroup >= inodes) return l.blocks * l.blockSize;
      size = Math.ceil((size + Math.max(need.blocks - l.freeBlocksEstimate * 0.95, 16) * bs * 1.1) / bs) * bs;
    }
    throw new NewfsError('could not size an ext2 image for this tree');
  },
  async newfs(image, size, o, tree) {
    const bs = ext2Layout(ext2Params(size, o)).blockSize;
    const l = await newfs_ext2fs(image, ext2Params(size, o, Math.ceil(ext2Need(tree, bs).inodes * 1.1) + 16));
    return `ext2, ${l.groups} groups of ${l.blocksPerGroup} ${l.blockSize}-byte blocks, ${l.groups * l.inodesPerGroup} inodes`;
  },
};

export const FORMATS: Record<string, Format> = {
  msdos, msdosfs: msdos, vfat: msdos, fat: msdos,
  ext2fs, ext2: ext2fs,
  cd9660: {
    name: 'cd9660', owners: true, symlinks: true, hardlinks: true, specials: true,
    refusal: 'cd9660: no writer: the cd9660 driver only reads ISO 9660; make ISO images with genisoimage or xorriso',
  },
};
FORMATS.iso9660 = FORMATS.cd9660;
