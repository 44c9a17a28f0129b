// UDF: seeds from genisoimage -udf (a bridge image of the seed tree) and
// mkudffs (each kind of partition map: type 1 with file entries or extended
// file entries at block sizes 2048 and 512, sparable filled by wrudf,
// virtual with a VAT, metadata), and where the metadata lies: the anchors,
// both volume descriptor sequences, and every block holding a tagged
// descriptor the driver reads (file set, file entries, directory blocks,
// allocation extents, sparing tables), found by their tags.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Range, Region } from './mutate.js';
import { makeTree, run, type SeedSpec } from './seeds.js';
import type { FuzzTarget } from './targets.js';

/** wrudf's command lines copying the tree at `root` into the image's root: files first, then each directory (mkdir enters it). */
export function wrudfScript(root: string): string {
  const out = ['y'];
  const visit = (dir: string): void => {
    out.push(`cdh ${dir}`);
    const names = readdirSync(dir).sort();
    for (const n of names) if (statSync(path.join(dir, n)).isFile()) out.push(`cp ${n} ${n}`);
    for (const n of names) {
      if (!statSync(path.join(dir, n)).isDirectory()) continue;
      out.push(`mkdir ${n}`);
      visit(path.join(dir, n));
      out.push('cdc ..');
    }
  };
  visit(path.resolve(root));
  out.push('quit');
  return out.join('\n') + '\n';
}

/**
 * Copy the tree at `root` into an mkudffs image of rewritable media through
 * udftools' wrudf (it takes its commands on stdin; names must not hold
 * spaces). Returns what it printed.
 */
export function wrudfFill(img: string, root: string): string {
  return execFileSync('wrudf', [img], {
    input: wrudfScript(root), env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' }, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000,
  }).toString();
}

function mkudf(name: string, args: string[], blocks: number, fill = false): SeedSpec {
  return {
    name,
    build(out, work) {
      run('mkudffs', [...args, '--lvid=FUZZ', '--new-file', out, String(blocks)]);
      if (!fill) return;
      const tree = path.join(work, 'tree');
      const file = (rel: string, size: number) => {
        mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
        writeFileSync(path.join(tree, rel), Buffer.alloc(size, rel));
      };
      file('README.TXT', 300);
      file('big.bin', 70_000);
      file('docs/notes/todo.md', 5000);
      for (let i = 0; i < 40; i++) file(`many/file-number-${String(i).padStart(2, '0')}-with-a-long-name.txt`, 16 + i);
      file('a/b/c/d/e/f/g/h/i/j/leaf.txt', 100);
      wrudfFill(out, tree);
    },
  };
}

const bridge: SeedSpec = {
  name: 'bridge',
  build(out, work) {
    const tree = path.join(work, 'tree');
    makeTree(tree, false);
    run('genisoimage', ['-quiet', '-udf', '-R', '-J', '-D', '-V', 'FUZZ', '-input-charset', 'utf-8', '-o', out, tree]);
  },
};

const TAG_FSD = 256, TAG_FID = 257, TAG_AED = 258, TAG_FE = 261, TAG_EFE = 266;
/** Bounds for the region finder, in case a seed is odder than expected. */
const MAX_VDS = 64;

/** The block size whose anchor at 256 carries a valid tag. */
function blockSize(img: Uint8Array, tagAt: (p: number) => number | null): number {
  for (const bs of [2048, 512, 4096, 1024]) if (tagAt(256 * bs) === 2) return bs;
  return 2048;
}

export function udfRegions(img: Uint8Array): Region[] {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  // A tag's identifier when its checksum holds, else null.
  const tagAt = (p: number): number | null => {
    if (p < 0 || p + 16 > img.length) return null;
    let sum = 0;
    for (let i = 0; i < 16; i++) if (i !== 4) sum += img[p + i];
    return (sum & 0xff) === img[p + 4] && dv.getUint16(p + 2, true) >= 2 && dv.getUint16(p + 2, true) <= 3 ? dv.getUint16(p, true) : null;
  };
  const bs = blockSize(img, tagAt);
  const n = Math.floor(img.length / bs);
  const sector = (s: number): Range => ({ start: s * bs, end: Math.min(img.length, (s + 1) * bs) });
  const anchors: Range[] = [], vds: Range[] = [], fsd: Range[] = [], fes: Range[] = [], dirs: Range[] = [], other: Range[] = [];
  for (const s of [256, n - 257, n - 1]) {
    if (s < 0 || tagAt(s * bs) !== 2) continue;
    anchors.push(sector(s));
    for (const o of [16, 24]) {
      const len = dv.getUint32(s * bs + o, true), loc = dv.getUint32(s * bs + o + 4, true);
      for (let k = 0; k < Math.min(MAX_VDS, Math.ceil(len / bs)) && loc + k < n; k++) vds.push(sector(loc + k));
    }
  }
  for (let s = 0; s < n; s++) {
    const t = tagAt(s * bs);
    if (t === TAG_FSD) fsd.push(sector(s));
    else if (t === TAG_FE || t === TAG_EFE) fes.push(sector(s));
    else if (t === TAG_FID) dirs.push(sector(s));
    else if (t === TAG_AED || (t === 0 && s > 16)) other.push(sector(s));
  }
  return [
    { name: 'anchors', weight: 1.5, ranges: anchors },
    { name: 'volume-descriptors', weight: 3, ranges: vds },
    { name: 'file-set', weight: 1.5, ranges: fsd },
    { name: 'file-entries', weight: 3, ranges: fes },
    { name: 'fids', weight: 3, ranges: dirs },
    { name: 'sparing-aed', weight: 1, ranges: other },
  ];
}

export const udf: FuzzTarget = {
  fs: 'udf',
  mountType: 'udf',
  readWrite: false,
  seeds: [
    bridge,
    mkudf('hd-201', ['--media-type=hd', '--blocksize=2048', '--udfrev=0x0201'], 512),
    mkudf('hd512-102', ['--media-type=hd', '--blocksize=512', '--udfrev=0x0102'], 2048),
    mkudf('cdrw-wrudf', ['--media-type=cdrw', '--blocksize=2048', '--udfrev=0x0201', '--noefe'], 2048, true),
    mkudf('cdr-vat150', ['--media-type=cdr', '--blocksize=2048', '--udfrev=0x0150'], 1024),
    mkudf('bdr-meta250', ['--media-type=bdr', '--blocksize=2048', '--udfrev=0x0250'], 2048),
  ],
  regions: udfRegions,
};
