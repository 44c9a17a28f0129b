// newfs_msdos: a FAT12/16/32 file system on an image file, as NetBSD's
// newfs_msdos and mkfs.fat lay it out: boot sector with BPB, FSInfo and
// backup boot sector (FAT32), two FATs, the root directory. The type
// follows from the size unless asked: FAT12 below 16 MiB while 4084 clusters
// of at most 4 KiB cover it, FAT32 from 512 MiB (mkfs.fat's rule), FAT16 between.
import { open } from 'node:fs/promises';

export interface MsdosParams {
  /** Bytes; rounded down to whole sectors. */
  size: number;
  fatType?: 12 | 16 | 32;
  sectorsPerCluster?: number;
  label?: string;
  /** Volume serial number; default from the clock. */
  volumeId?: number;
}

export interface MsdosLayout {
  fatType: 12 | 16 | 32;
  bytesPerSector: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatSectors: number;
  rootEntries: number;
  totalSectors: number;
  clusters: number;
  /** First sector of cluster 2. */
  dataStart: number;
}

const SECTOR = 512;
const MAX_CLUSTERS = { 12: 4084, 16: 65524, 32: 0x0ffffff5 - 2 } as const;
const MIN_CLUSTERS = { 12: 1, 16: 4085, 32: 65525 } as const;

export class NewfsError extends Error {}

/** The layout for a type and cluster size, or null if the cluster count does not suit the type. */
function layoutFor(fatType: 12 | 16 | 32, spc: number, totalSectors: number): MsdosLayout | null {
  const reservedSectors = fatType === 32 ? 32 : 1;
  const rootEntries = fatType === 32 ? 0 : 512;
  const rootSectors = (rootEntries * 32) / SECTOR;
  // FAT size and cluster count depend on each other: iterate to the fixed point.
  let fatSectors = 1, clusters = 0;
  for (let i = 0; i < 10; i++) {
    clusters = Math.floor((totalSectors - reservedSectors - 2 * fatSectors - rootSectors) / spc);
    if (clusters <= 0) return null;
    const need = Math.ceil(Math.ceil(((clusters + 2) * fatType) / 8) / SECTOR);
    if (need === fatSectors) break;
    fatSectors = need;
  }
  // The iteration may oscillate by one sector: settle on a FAT that covers every cluster.
  const fits = () => Math.ceil(((clusters + 2) * fatType) / 8) <= fatSectors * SECTOR;
  for (clusters = Math.floor((totalSectors - reservedSectors - 2 * fatSectors - rootSectors) / spc); !fits();
    clusters = Math.floor((totalSectors - reservedSectors - 2 * fatSectors - rootSectors) / spc)) fatSectors++;
  if (clusters < MIN_CLUSTERS[fatType] || clusters > MAX_CLUSTERS[fatType]) return null;
  return { fatType, bytesPerSector: SECTOR, sectorsPerCluster: spc, reservedSectors, fatSectors, rootEntries, totalSectors, clusters, dataStart: reservedSectors + 2 * fatSectors + rootSectors };
}

/** FAT32 cluster size by volume size (Microsoft's table, as mkfs.fat). */
function fat32Spc(bytes: number): number {
  const GiB = 2 ** 30;
  if (bytes <= 8 * GiB) return 8;
  if (bytes <= 16 * GiB) return 16;
  if (bytes <= 32 * GiB) return 32;
  return 64;
}

export function msdosLayout(p: MsdosParams): MsdosLayout {
  const totalSectors = Math.floor(p.size / SECTOR);
  if (totalSectors < 64) throw new NewfsError(`${p.size} bytes is too small for a FAT file system`);
  const MiB = 2 ** 20;
  const types: (12 | 16 | 32)[] = p.fatType ? [p.fatType] : p.size >= 512 * MiB ? [32] : p.size < 16 * MiB ? [12, 16] : [16, 32];
  for (const t of types) {
    const spcs = p.sectorsPerCluster ? [p.sectorsPerCluster] : t === 32 ? [fat32Spc(p.size), 1, 2, 4, 8, 16, 32, 64, 128]
      : t === 12 && !p.fatType ? [1, 2, 4, 8] : [1, 2, 4, 8, 16, 32, 64, 128];
    for (const spc of spcs) {
      // FAT16 as mkfs.fat: at least 2 KiB clusters from 16 MiB on keeps the FAT small.
      if (t === 16 && !p.sectorsPerCluster && spc * SECTOR < 2048 && p.size > 16 * MiB) continue;
      const l = layoutFor(t, spc, totalSectors);
      if (l) return l;
    }
  }
  throw new NewfsError(`no FAT${p.fatType ?? ''} layout fits ${p.size} bytes${p.sectorsPerCluster ? ` with ${p.sectorsPerCluster} sectors per cluster` : ''}`);
}

function bootSector(l: MsdosLayout, label: string, volumeId: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.set(l.fatType === 32 ? [0xeb, 0x58, 0x90] : [0xeb, 0x3c, 0x90], 0);
  b.write('RUMPFS  ', 3, 'latin1');
  b.writeUInt16LE(SECTOR, 11);
  b[13] = l.sectorsPerCluster;
  b.writeUInt16LE(l.reservedSectors, 14);
  b[16] = 2;
  b.writeUInt16LE(l.rootEntries, 17);
  b.writeUInt16LE(l.totalSectors < 0x10000 ? l.totalSectors : 0, 19);
  b[21] = 0xf8;
  b.writeUInt16LE(l.fatType === 32 ? 0 : l.fatSectors, 22);
  b.writeUInt16LE(32, 24); // sectors per track, heads: a nominal geometry
  b.writeUInt16LE(64, 26);
  b.writeUInt32LE(0, 28);
  b.writeUInt32LE(l.totalSectors < 0x10000 ? 0 : l.totalSectors, 32);
  let ebpb = 36;
  if (l.fatType === 32) {
    b.writeUInt32LE(l.fatSectors, 36);
    b.writeUInt16LE(0, 40); // FATs mirrored
    b.writeUInt16LE(0, 42); // version 0.0
    b.writeUInt32LE(2, 44); // root directory cluster
    b.writeUInt16LE(1, 48); // FSInfo sector
    b.writeUInt16LE(6, 50); // backup boot sector
    ebpb = 64;
  }
  b[ebpb] = 0x80;
  b[ebpb + 2] = 0x29;
  b.writeUInt32LE(volumeId >>> 0, ebpb + 3);
  b.write(label.padEnd(11, ' '), ebpb + 7, 'latin1');
  b.write(`FAT${l.fatType}`.padEnd(8, ' '), ebpb + 18, 'latin1');
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

function fsInfo(l: MsdosLayout): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeUInt32LE(0x41615252, 0);
  b.writeUInt32LE(0x61417272, 484);
  b.writeUInt32LE(l.clusters - 1, 488); // all free but the root directory's
  b.writeUInt32LE(3, 492);
  b.writeUInt32LE(0xaa550000, 508);
  return b;
}

/** The first FAT sector: media byte and end-of-chain marks (and the FAT32 root directory's one cluster). */
function fatStart(l: MsdosLayout): Buffer {
  const b = Buffer.alloc(SECTOR);
  if (l.fatType === 12) b.set([0xf8, 0xff, 0xff], 0);
  else if (l.fatType === 16) b.set([0xf8, 0xff, 0xff, 0xff], 0);
  else {
    b.writeUInt32LE(0x0ffffff8, 0);
    b.writeUInt32LE(0x0fffffff, 4);
    b.writeUInt32LE(0x0fffffff, 8);
  }
  return b;
}

/** A volume label entry for the root directory. */
function labelEntry(label: string): Buffer {
  const e = Buffer.alloc(32);
  e.write(label.padEnd(11, ' '), 0, 'latin1');
  e[11] = 0x08;
  return e;
}

/** Format `path` (created or truncated to p.size) and return the layout written. */
export async function newfs_msdos(path: string, p: MsdosParams): Promise<MsdosLayout> {
  const l = msdosLayout(p);
  const label = (p.label ?? 'NO NAME').toUpperCase();
  if (label.length > 11 || /[^\x20-\x7e]|["*+,./:;<=>?[\\\]|]/.test(label)) throw new NewfsError(`bad volume label '${p.label}'`);
  const fh = await open(path, 'w');
  try {
    await fh.truncate(l.totalSectors * SECTOR);
    const at = (sector: number) => sector * SECTOR;
    const boot = bootSector(l, label, p.volumeId ?? (Date.now() & 0xffffffff));
    await fh.write(boot, 0, SECTOR, 0);
    if (l.fatType === 32) {
      await fh.write(fsInfo(l), 0, SECTOR, at(1));
      await fh.write(boot, 0, SECTOR, at(6));
      await fh.write(fsInfo(l), 0, SECTOR, at(7));
    }
    for (let i = 0; i < 2; i++) await fh.write(fatStart(l), 0, SECTOR, at(l.reservedSectors + i * l.fatSectors));
    const root = l.fatType === 32 ? at(l.dataStart) : at(l.reservedSectors + 2 * l.fatSectors);
    if (p.label) await fh.write(labelEntry(label), 0, 32, root);
  } finally {
    await fh.close();
  }
  return l;
}
