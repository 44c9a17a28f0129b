// NTFS (read-only): seeds from mkntfs, filled through an ntfs-3g mount of
// the image (the seed tree, a compressed directory, a sparse file, hard
// links, a directory large enough for index blocks), with 4 KiB clusters
// and with 512-byte ones (records and index blocks then span clusters).
// Metadata regions: the boot sector, the MFT records in use (with the
// mapping pairs of their non-resident attributes as a region of their
// own), and the INDX index blocks.
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, linkSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Range, Region } from './mutate.js';
import { makeTree, run, type SeedSpec } from './seeds.js';
import type { FuzzTarget } from './targets.js';

/** Bounds for the region finder. */
const MAX_RECORDS = 512, MAX_INDX = 256;

function ntfsSeed(name: string, clusterSize: number): SeedSpec {
  return {
    name,
    build(out, work) {
      const tree = path.join(work, 'tree');
      makeTree(tree, true);
      run('truncate', ['-s', '8M', out]);
      run('mkntfs', ['-F', '-f', '-Q', '-c', String(clusterSize), '-L', 'FUZZ', out]);
      const mnt = path.join(work, 'mnt');
      mkdirSync(mnt);
      run('ntfs-3g', [out, mnt]);
      try {
        cpSync(tree, mnt, { recursive: true, verbatimSymlinks: true });
        mkdirSync(path.join(mnt, 'comp'));
        run('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', path.join(mnt, 'comp')]);
        writeFileSync(path.join(mnt, 'comp', 'text.txt'), 'compressible text, '.repeat(8000));
        const fd = openSync(path.join(mnt, 'sparse.bin'), 'w');
        try { writeSync(fd, Buffer.from('end'), 0, 3, 3 << 20); } finally { closeSync(fd); }
        linkSync(path.join(mnt, 'README.TXT'), path.join(mnt, 'docs', 'readme-hardlink'));
        mkdirSync(path.join(mnt, 'index'));
        for (let i = 0; i < 120; i++) writeFileSync(path.join(mnt, 'index', `entry-${i}`), String(i));
      } finally {
        for (let i = 0; i < 50 && spawnSync('fusermount', ['-u', mnt]).status !== 0; i++) spawnSync('sleep', ['0.1']);
        for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `ntfs-3g ${out} ${mnt}`]).status === 0; i++) spawnSync('sleep', ['0.1']);
      }
    },
  };
}

const le16 = (img: Uint8Array, p: number) => img[p] | (img[p + 1] << 8);
const le32 = (img: Uint8Array, p: number) => (img[p] | (img[p + 1] << 8) | (img[p + 2] << 16) | (img[p + 3] << 24)) >>> 0;
const sig = (img: Uint8Array, p: number, s: string) => [...s].every((c, i) => img[p + i] === c.charCodeAt(0));

export function ntfsRegions(img: Uint8Array): Region[] {
  const cs = le16(img, 11) * img[13];
  const mftStart = le32(img, 0x30) * cs;
  const records: Range[] = [], runlists: Range[] = [], indx: Range[] = [];
  // The MFT's first records lie together after its start; the rest are found by signature.
  for (let r = 0; r < MAX_RECORDS; r++) {
    const at = mftStart + r * 1024;
    if (at + 1024 > img.length || !sig(img, at, 'FILE')) continue;
    records.push({ start: at, end: at + 1024 });
    // Non-resident attributes' mapping pairs (read raw: fixups touch only the stride ends).
    for (let p = at + le16(img, at + 0x14), n = 0; p + 16 <= at + 1024 && n < 64; n++) {
      const type = le32(img, p), len = le32(img, p + 4);
      if (type === 0xffffffff || len < 16 || p + len > at + 1024) break;
      if (img[p + 8] === 1) runlists.push({ start: p + le16(img, p + 0x20), end: p + len });
      p += len;
    }
  }
  for (let off = 0; off + 4096 <= img.length && indx.length < MAX_INDX; off += 512) {
    if (sig(img, off, 'INDX')) indx.push({ start: off, end: off + 4096 });
  }
  return [
    { name: 'boot-sector', weight: 2, ranges: [{ start: 0, end: 512 }] },
    { name: 'mft-records', weight: 4, ranges: records },
    { name: 'runlists', weight: 3, ranges: runlists },
    { name: 'index-blocks', weight: 3, ranges: indx },
  ];
}

export const ntfs: FuzzTarget = {
  fs: 'ntfs',
  mountType: 'ntfs',
  readWrite: false,
  seeds: [ntfsSeed('ntfs-3g', 4096), ntfsSeed('small-clusters', 512)],
  regions: ntfsRegions,
};
