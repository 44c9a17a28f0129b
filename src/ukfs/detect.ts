// File-system type detection from a device's content (`-t auto`, or no type):
// the magic numbers each format keeps at a fixed place. ISO 9660 first, since
// hybrid ISO images also carry a boot sector.
import { kerr, type BlockDevice } from '../kern/index.js';

async function bytesAt(dev: BlockDevice, offset: number, length: number): Promise<Uint8Array | null> {
  if (offset + length > dev.size) return null;
  const buf = new Uint8Array(length);
  await dev.read(buf, offset);
  return buf;
}

const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

async function isIso9660(dev: BlockDevice): Promise<boolean> {
  const vd = await bytesAt(dev, 16 * 2048, 8);
  return vd !== null && String.fromCharCode(...vd.subarray(1, 6)) === 'CD001';
}

/**
 * UDF's volume recognition sequence (ECMA-167 2/8.3): from byte 32768,
 * descriptors of 2048 bytes (or one a block, for larger blocks): BEA01,
 * then NSR02 or NSR03 before TEA01. ISO 9660 descriptors may come first.
 */
async function isUdf(dev: BlockDevice): Promise<boolean> {
  for (let step = 2048; step <= 32768; step *= 2) {
    let bea = false;
    for (let i = 0; i < 64; i++) {
      const d = await bytesAt(dev, 32768 + i * step, 6);
      if (!d) break;
      const id = String.fromCharCode(...d.subarray(1, 6));
      if (id === 'BEA01') bea = true;
      else if (bea && (id === 'NSR02' || id === 'NSR03')) return true;
      else if (id === 'TEA01' || !['CD001', 'CDW02', 'BOOT2'].includes(id)) break;
    }
  }
  return false;
}

async function isExt2(dev: BlockDevice): Promise<boolean> {
  const sb = await bytesAt(dev, 1024 + 56, 2);
  return sb !== null && sb[0] === 0x53 && sb[1] === 0xef;
}

async function isNtfs(dev: BlockDevice): Promise<boolean> {
  const oem = await bytesAt(dev, 3, 8);
  return oem !== null && String.fromCharCode(...oem) === 'NTFS    ';
}

/** exFAT: its OEM name at offset 3 (its boot sector would not pass as FAT's, but look first). */
async function isExfat(dev: BlockDevice): Promise<boolean> {
  const bs = await bytesAt(dev, 0, 11);
  return bs !== null && String.fromCharCode(...bs.subarray(3, 11)) === 'EXFAT   ';
}

async function isFat(dev: BlockDevice): Promise<boolean> {
  const bs = await bytesAt(dev, 0, 512);
  if (!bs || bs[510] !== 0x55 || bs[511] !== 0xaa) return false;
  const v = new DataView(bs.buffer);
  const bytesPerSector = v.getUint16(11, true);
  const media = bs[21];
  return pow2(bytesPerSector) && bytesPerSector >= 512 && bytesPerSector <= 4096 && pow2(bs[13]) &&
    v.getUint16(14, true) > 0 && bs[16] >= 1 && bs[16] <= 4 && (media === 0xf0 || media >= 0xf8);
}

/** The driver name for the file system on dev: 'udf', 'cd9660', 'ext2fs', 'ntfs', 'exfat' or 'msdos'. ENODEV if none. */
export async function detectType(dev: BlockDevice): Promise<string> {
  if (await isUdf(dev)) return 'udf';
  if (await isIso9660(dev)) return 'cd9660';
  if (await isExt2(dev)) return 'ext2fs';
  // Before FAT: an NTFS or exFAT boot sector also ends in 55 AA.
  if (await isNtfs(dev)) return 'ntfs';
  if (await isExfat(dev)) return 'exfat';
  if (await isFat(dev)) return 'msdos';
  throw kerr('ENODEV', `${dev.path}: no FAT, exFAT, NTFS, ISO 9660, UDF or ext2/3/4 file system found`);
}
