// Partition tables made by the real tools (sfdisk, sgdisk, fdisk), read by
// readPartitions and compared with what those tools report; then corrupt
// tables, which must give a fallback or an error, never a crash or a hang.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zcrc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { blkdev_memory, blkdev_open, type BlockDevice } from '../src/kern/blkdev.js';
import { readPartitions } from '../src/kern/disklabel.js';
import { KernError } from '../src/kern/errno.js';

const dir = mkdtempSync(join(tmpdir(), 'rumpfs-disklabel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;
let n = 0;

function blankImage(size = 16 * MiB): string {
  const path = join(dir, `img${n++}.img`);
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

function sfdisk(script: string): string {
  const path = blankImage();
  execFileSync('sfdisk', ['-q', path], { input: script });
  return path;
}

/** sfdisk's view: partition number -> raw start/size in table units. */
function sfdiskJson(path: string): Array<{ index: number; start: number; size: number; type: string }> {
  const j = JSON.parse(execFileSync('sfdisk', ['--json', path]).toString());
  return (j.partitiontable.partitions ?? []).map((p: { node: string; start: number; size: number; type: string }) => ({
    index: Number(/(\d+)$/.exec(p.node)![1]), start: p.start, size: p.size, type: p.type,
  }));
}

/** A memory device holding the image's bytes (for corrupting them freely). */
async function memdev(bytes: Uint8Array, sectorSize = 512): Promise<BlockDevice> {
  const dev = blkdev_memory(bytes.length, sectorSize);
  await dev.write(bytes, 0);
  return dev;
}

async function partitionsOf(path: string, sectorSize?: number) {
  const dev = await blkdev_open(path, { readOnly: true, sectorSize });
  try { return await readPartitions(dev); } finally { await dev.close(); }
}

/** fdisk -b 4096 -l: [number, offset, size] in bytes. */
function fdisk4096(path: string): number[][] {
  const listing = execFileSync('fdisk', ['-b', '4096', '-l', '-o', 'Device,Start,Sectors', path]).toString();
  return [...listing.matchAll(/^\S+?(\d+)\s+(\d+)\s+(\d+)$/gm)].map((m) => [+m[1], +m[2] * 4096, +m[3] * 4096]);
}

const EXTENDED_SCRIPT = 'label: dos\nstart=2048,size=2048,type=83\nstart=4096,type=5\nsize=2048,type=83\nsize=3072,type=c\nsize=1024,type=82\n';

describe('MBR', () => {
  it('primary partitions match sfdisk', async () => {
    const img = sfdisk('label: dos\nstart=2048,size=4096,type=c\nstart=8192,size=2048,type=83\nsize=1000,type=7\n');
    const t = await partitionsOf(img);
    expect(t.scheme).toBe('mbr');
    const want = sfdiskJson(img);
    expect(want).toHaveLength(3);
    expect(t.partitions.map((p) => ({ index: p.index, start: p.offset / 512, size: p.size / 512, type: p.type })))
      .toEqual(want.map((p) => ({ ...p, type: `0x${p.type.padStart(2, '0')}` })));
  });

  it('extended partition with logicals numbered from 5 matches sfdisk', async () => {
    const img = sfdisk(EXTENDED_SCRIPT);
    const t = await partitionsOf(img);
    const want = sfdiskJson(img);
    expect(want.map((p) => p.index)).toEqual([1, 2, 5, 6, 7]);
    expect(t.partitions.map((p) => [p.index, p.offset / 512, p.size / 512, p.type]))
      .toEqual(want.map((p) => [p.index, p.start, p.size, `0x${p.type.padStart(2, '0')}`]));
    expect(t.warnings).toEqual([]);
  });

  it('4096-byte sectors (fdisk -b 4096)', async () => {
    const img = blankImage();
    execFileSync('fdisk', ['-b', '4096', img], { input: 'o\nn\np\n1\n\n+2M\nt\nc\nn\ne\n2\n\n\nn\n\n+1M\nw\n', stdio: ['pipe', 'ignore', 'ignore'] });
    const want = fdisk4096(img);
    expect(want.map((p) => p[0])).toEqual([1, 2, 5]);
    const t = await partitionsOf(img, 4096);
    expect(t.partitions.map((p) => [p.index, p.offset, p.size])).toEqual(want);
    expect(t.partitions[0].size).toBe(2 * MiB);
    expect(t.partitions[2].size).toBe(1 * MiB);
  });

  it('an EBR chain that loops ends with a warning, each logical once', async () => {
    const img = readFileSync(sfdisk(EXTENDED_SCRIPT));
    // The last EBR (of partition 7) links back to the first one.
    const ext = 4096;
    const firstLink = new DataView(img.buffer, img.byteOffset).getUint32(ext * 512 + 446 + 16 + 8, true);
    const secondEbr = ext + firstLink;
    const secondLink = new DataView(img.buffer, img.byteOffset).getUint32(secondEbr * 512 + 446 + 16 + 8, true);
    const lastEbr = (ext + secondLink) * 512;
    img.set([0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], lastEbr + 446 + 16);
    const t = await readPartitions(await memdev(img));
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 5, 6, 7]);
    expect(t.warnings.join()).toMatch(/loops/);
  });

  it('entries outside the disk are left out with a reason', async () => {
    const img = readFileSync(sfdisk('label: dos\nstart=2048,size=2048,type=83\nstart=4096,size=2048,type=83\n'));
    const dv = new DataView(img.buffer, img.byteOffset);
    dv.setUint32(446 + 16 + 8, 0xfffffff0, true); // partition 2 starts past the end
    img[446 + 32 + 4] = 0x83; // partition 3 runs past the end
    dv.setUint32(446 + 32 + 8, 30000, true);
    dv.setUint32(446 + 32 + 12, 10000, true);
    const t = await readPartitions(await memdev(img));
    expect(t.partitions.map((p) => p.index)).toEqual([1]);
    expect(t.warnings).toHaveLength(2);
    expect(t.warnings[0]).toMatch(/partition 2 .*outside the disk/);
  });

  it('a FAT file system without a partition table has no partitions', async () => {
    const img = join(dir, 'superfloppy.img');
    execFileSync('mkfs.vfat', ['-C', img, '4096'], { stdio: 'ignore' });
    const t = await partitionsOf(img);
    expect(t.partitions).toEqual([]);
    expect(sfdiskJson(img)).toEqual([]);
    await expect(blkdev_open(img, { partition: 1 })).rejects.toMatchObject({ code: 'ENXIO' });
  });

  it('no signature: no table', async () => {
    expect(await readPartitions(blkdev_memory(MiB))).toEqual({ scheme: 'none', partitions: [], warnings: [] });
    expect((await readPartitions(blkdev_memory(100))).scheme).toBe('none');
  });
});

/** sgdisk -p: number, first and last sector, name. */
function sgdiskList(path: string): Array<{ index: number; first: number; last: number; name: string }> {
  return execFileSync('sgdisk', ['-p', path]).toString().split('\n')
    .map((l) => /^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+\S+\s+(.*)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({ index: +m[1], first: +m[2], last: +m[3], name: m[4] }));
}

/** One sgdisk image, made once (sgdisk is slow); tests corrupt copies of its bytes. */
let gptImage: string | undefined;
function sgdiskImage(): string {
  return (gptImage ??= makeSgdiskImage());
}

function makeSgdiskImage(): string {
  const img = blankImage();
  execFileSync('sgdisk', ['-n', '1:2048:+1M', '-c', '1:EFI', '-t', '1:ef00', '-n', '2:0:+2M', '-c', '2:data', '-t', '2:8300',
    '-n', '4:0:+1M', '-c', '4:scratch space', '-t', '4:8200', img], { stdio: 'ignore' });
  return img;
}

describe('GPT', () => {
  it('named partitions match sgdisk -p', async () => {
    const img = sgdiskImage();
    const t = await partitionsOf(img);
    expect(t.scheme).toBe('gpt');
    const want = sgdiskList(img);
    expect(want).toHaveLength(3);
    expect(t.partitions.map((p) => ({ index: p.index, first: p.offset / 512, last: (p.offset + p.size) / 512 - 1, name: p.name })))
      .toEqual(want);
    expect(t.partitions.map((p) => p.type)).toEqual(['efi', 'linux', 'linux-swap']);
    expect(t.warnings).toEqual([]);
  });

  it('4096-byte sectors (fdisk -b 4096), and a hint when opened with 512', async () => {
    const img = blankImage();
    execFileSync('fdisk', ['-b', '4096', img], { input: 'g\nn\n1\n\n+2M\nn\n2\n\n+3M\nw\n', stdio: ['pipe', 'ignore', 'ignore'] });
    const want = fdisk4096(img);
    expect(want).toHaveLength(2);
    const t = await partitionsOf(img, 4096);
    expect(t.partitions.map((p) => [p.index, p.offset, p.size])).toEqual(want);
    await expect(partitionsOf(img, 512)).rejects.toThrow(/sectorSize 4096/);
  });

  it('bad primary header CRC: the backup is used', async () => {
    const img = readFileSync(sgdiskImage());
    img[512 + 60] ^= 0xff; // inside the disk GUID, covered by the header CRC
    const t = await readPartitions(await memdev(img));
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 4]);
    expect(t.warnings.join()).toMatch(/primary .*header CRC mismatch.*using the backup/);
  });

  it('bad primary entry array CRC: the backup is used', async () => {
    const img = readFileSync(sgdiskImage());
    img[1024 + 56] ^= 0x01; // partition 1's name
    const t = await readPartitions(await memdev(img));
    expect(t.partitions[0].name).toBe('EFI');
    expect(t.warnings.join()).toMatch(/entry array CRC mismatch/);
  });

  it('both headers bad: EIO naming both reasons', async () => {
    const img = readFileSync(sgdiskImage());
    img[512 + 60] ^= 0xff;
    img[img.length - 512 + 60] ^= 0xff;
    const err = await readPartitions(await memdev(img)).catch((e) => e);
    expect(err).toBeInstanceOf(KernError);
    expect(err.code).toBe('EIO');
    expect(err.message).toMatch(/primary.*backup/);
  });

  it('absurd header values with valid CRCs are rejected, not trusted', async () => {
    const img = readFileSync(sgdiskImage());
    const dv = new DataView(img.buffer, img.byteOffset);
    const reseal = (hdr: number) => {
      dv.setUint32(hdr + 16, 0, true);
      dv.setUint32(hdr + 16, zcrc32(img.subarray(hdr, hdr + 92)), true);
    };
    dv.setUint32(512 + 80, 0x7fffffff, true); // huge entry count
    reseal(512);
    const backup = img.length - 512;
    dv.setUint32(backup + 72, 0xfffffff0, true); // entry array past the end
    reseal(backup);
    const err = await readPartitions(await memdev(img)).catch((e) => e);
    expect(err.code).toBe('EIO');
    expect(err.message).toMatch(/too large.*outside the disk/);
  });

  it('an entry past the end of the disk is left out (CRCs resealed)', async () => {
    const img = readFileSync(sgdiskImage());
    const dv = new DataView(img.buffer, img.byteOffset);
    dv.setUint32(1024 + 128 + 40, 99999999, true); // partition 2's last LBA
    dv.setUint32(512 + 88, zcrc32(img.subarray(1024, 1024 + 128 * 128)), true);
    dv.setUint32(512 + 16, 0, true);
    dv.setUint32(512 + 16, zcrc32(img.subarray(512, 512 + 92)), true);
    const t = await readPartitions(await memdev(img));
    expect(t.partitions.map((p) => p.index)).toEqual([1, 4]);
    expect(t.warnings.join()).toMatch(/partition 2 .*outside the disk/);
  });
});

describe('garbage', () => {
  it('random tables give a result or a KernError, never anything else', async () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 300; i++) {
      const img = new Uint8Array(64 * 1024);
      for (let j = 0; j < 4 * 512; j++) img[j] = rand();
      img[510] = 0x55; img[511] = 0xaa;
      for (let e = 0; e < 4; e++) {
        img[446 + 16 * e] = i % 2 ? 0 : 0x80;
        img[446 + 16 * e + 4] = [0x05, 0xee, 0x83, 0x0f][(i + e) % 4];
        img[446 + 16 * e + 10] = 0; img[446 + 16 * e + 11] = 0; // small starts: stay near the data
      }
      await readPartitions(await memdev(img)).catch((err) => expect(err).toBeInstanceOf(KernError));
    }
  });
});
