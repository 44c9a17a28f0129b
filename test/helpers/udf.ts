// UDF images for tests. genisoimage -udf writes UDF 1.02 bridge images
// (ISO 9660 and UDF over the same files) from a source tree built here;
// mkudffs writes empty file systems of every revision, block size and media
// type (type 1, sparable, VAT and metadata partitions), with the root's
// owner, mode and the volume's label as asked. Nothing here fills an
// mkudffs image: this kernel has no udf to loop-mount, and udftools' wrudf
// cannot be driven without a terminal (it accepts no command after its
// fileset question, under a pipe or a pty). genisoimage's UDF keeps neither
// symbolic links (it writes them as empty files) nor special files, owners
// or permissions (no owner recorded, 0444/0555), so the tree holds regular
// files and directories only.
import { execFileSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as path from 'node:path';
import { bytes, isoEnv } from './iso.js';

export { bytes, sha } from './iso.js';
export { wrudfFill } from '../../scripts/fuzz/fs_udf.js';

export const T0 = 1_600_000_000;
/** Longer than Joliet's 64 characters; UDF keeps 255 bytes. */
export const LONG = 'a-long-udf-name-' + 'y'.repeat(150) + '.txt';
export const UNICODE = 'ünïcödé ☃ файл.txt';
export const MANY = 400;
export const BIG = 3 * 1024 * 1024 + 123;

export function buildUdfTree(root: string): void {
  const f = (p: string, data: string | Buffer) => {
    nfs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    nfs.writeFileSync(path.join(root, p), data);
  };
  f('Dir/Hello.TXT', 'hello, world\n');
  f('Dir/Sub/MixedCase.Data', 'private\n');
  f('NOEXT', 'no extension\n');
  f('empty', '');
  f('big.bin', bytes(BIG, 11));
  f('odd.bin', bytes(2048 * 3 + 1, 12));
  f(LONG, 'long name\n');
  f(UNICODE, 'unicode\n');
  for (let i = 0; i < MANY; i++) f(`many/entry-with-a-longer-name-${String(i).padStart(4, '0')}`, `file ${i}\n`);
  f('a/b/c/d/e/f/g/h/i/j/k/l/deepfile', 'deep\n');
  // Times last, children before their directories.
  const walk = (p: string): void => {
    const st = nfs.lstatSync(p);
    if (st.isDirectory()) for (const n of nfs.readdirSync(p)) walk(path.join(p, n));
    const t = T0 + (st.ino % 100000);
    nfs.utimesSync(p, t, t);
  };
  walk(root);
}

/** genisoimage -udf variants: plain, with Rock Ridge, with Joliet too (whose 64-character names the UDF side then takes). */
export const BRIDGES: readonly (readonly string[])[] = [['-udf'], ['-udf', '-R'], ['-udf', '-R', '-J']];
export const bridgeName = (flags: readonly string[]) => `bridge${flags.join('')}.iso`;

export function makeBridge(flags: readonly string[], out: string, dir: string): void {
  execFileSync('genisoimage', ['-quiet', ...flags, '-D', '-input-charset', 'utf-8', '-o', out, dir], { env: isoEnv, stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface MkudfVariant { media: string; bs: number; rev: string; blocks: number; partition: string; extra?: string[] }

/** What mkudffs makes: each UDF revision it writes, both block sizes, and each kind of partition map. */
export const MKUDF: readonly MkudfVariant[] = [
  { media: 'hd', bs: 2048, rev: '0x0102', blocks: 4096, partition: 'type 1' },
  { media: 'hd', bs: 2048, rev: '0x0150', blocks: 4096, partition: 'type 1' },
  { media: 'hd', bs: 2048, rev: '0x0201', blocks: 4096, partition: 'type 1' },
  { media: 'hd', bs: 512, rev: '0x0201', blocks: 16384, partition: 'type 1' },
  { media: 'hd', bs: 512, rev: '0x0102', blocks: 16384, partition: 'type 1' },
  { media: 'hd', bs: 1024, rev: '0x0201', blocks: 4096, partition: 'type 1' },
  { media: 'hd', bs: 4096, rev: '0x0201', blocks: 2048, partition: 'type 1' },
  { media: 'hd', bs: 2048, rev: '0x0201', blocks: 2048, partition: 'type 1, root with long_ad', extra: ['--ad=long'] },
  { media: 'hd', bs: 2048, rev: '0x0150', blocks: 2048, partition: 'type 1, root with short_ad', extra: ['--ad=short'] },
  { media: 'hd', bs: 2048, rev: '0x0201', blocks: 2048, partition: 'type 1, ICB strategy 4096', extra: ['--strategy=4096'] },
  { media: 'dvdram', bs: 2048, rev: '0x0201', blocks: 4096, partition: 'type 1' },
  { media: 'cdrw', bs: 2048, rev: '0x0150', blocks: 8192, partition: 'sparable' },
  { media: 'cdrw', bs: 2048, rev: '0x0201', blocks: 8192, partition: 'sparable' },
  { media: 'cdr', bs: 2048, rev: '0x0150', blocks: 8192, partition: 'virtual (VAT 1.50)' },
  { media: 'cdr', bs: 2048, rev: '0x0201', blocks: 8192, partition: 'virtual (VAT 2.00)' },
  { media: 'bdr', bs: 2048, rev: '0x0250', blocks: 8192, partition: 'metadata on virtual' },
  { media: 'bdr', bs: 2048, rev: '0x0260', blocks: 8192, partition: 'metadata on virtual' },
];
export const mkudfName = (v: MkudfVariant) => `mkudffs-${v.media}-${v.bs}-${v.rev}${(v.extra ?? []).join('')}.img`;
/** The root's owner and mode, and the label, given to mkudffs. */
export const ROOT_UID = 1234, ROOT_GID = 5678, ROOT_MODE = 0o750;
export const labelOf = (v: MkudfVariant) => `L${v.media}${v.bs}${v.rev.slice(2)}${(v.extra ?? []).length}`;

export function makeMkudf(v: MkudfVariant, out: string): void {
  execFileSync('mkudffs', [
    `--media-type=${v.media}`, `--blocksize=${v.bs}`, `--udfrev=${v.rev}`, `--lvid=${labelOf(v)}`,
    `--uid=${ROOT_UID}`, `--gid=${ROOT_GID}`, `--mode=${ROOT_MODE.toString(8)}`, ...(v.extra ?? []), '--new-file', out, String(v.blocks),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A tree wrudf can copy: its command line splits names at spaces. */
export function buildWrudfTree(root: string): void {
  const f = (p: string, data: string | Buffer) => {
    nfs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    nfs.writeFileSync(path.join(root, p), data);
  };
  f('Dir/Hello.TXT', 'hello, world\n');
  f('Dir/Sub/data', 'private\n');
  f('empty', '');
  // More than one packet (32 blocks), so a sparing table entry can move part of it.
  f('big.bin', bytes(1_500_000, 21));
  f('n'.repeat(200), 'long name\n');
  f('ünïcödé-名前.txt', 'unicode\n');
  for (let i = 0; i < 200; i++) f(`many/file-${String(i).padStart(3, '0')}`, `file ${i}\n`);
  f('a/b/c/d/e/f/g/h/deepfile', 'deep\n');
  nfs.chownSync(path.join(root, 'Dir/Hello.TXT'), 1234, 5678);
  for (const [i, p] of ['big.bin', 'Dir/Hello.TXT', 'many/file-007'].entries()) nfs.utimesSync(path.join(root, p), T0 + i, T0 + 1000 + i);
}

/** `lsc` of wrudf in each of dirs (paths from the root, '' for it): name -> [uid, gid, permission letters, size]. */
export function wrudfList(img: string, dirs: readonly string[]): Map<string, { uid: number; gid: number; perms: string; size: number }> {
  const script = ['y'];
  for (const d of dirs) {
    script.push('cdc /', ...d.split('/').filter(Boolean).map(c => `cdc ${c}`), 'lsc');
  }
  script.push('quit');
  const text = execFileSync('wrudf', [img], { input: script.join('\n') + '\n', env: isoEnv, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 }).toString();
  const out = new Map<string, { uid: number; gid: number; perms: string; size: number }>();
  let dir = '';
  for (const line of text.split('\n')) {
    const prompt = /^(\/\S*) > /.exec(line);
    if (prompt) dir = prompt[1].replace(/^\//, '');
    const m = /^\s*(?:DIR)?\s*(\d+):(\S+)\s+(\d+):(\S+)\s+other:(\S+)\s+links:\s*\d+\s+info:\s*(\d+)\s(.*)$/.exec(line);
    if (m && m[7] !== '..') out.set(dir ? `${dir}/${m[7]}` : m[7], { uid: Number(m[1]), gid: Number(m[3]), perms: `${m[2]} ${m[4]} ${m[5]}`, size: Number(m[6]) });
  }
  return out;
}

/** udfinfo's key=value lines. */
export function udfinfo(img: string): Map<string, string> {
  const out = execFileSync('udfinfo', [img], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return new Map(out.split('\n').filter(l => /^\w+=/.test(l)).map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
