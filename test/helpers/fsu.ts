// Shared by the fs-utils tests: a source tree, a FAT image of it (mcopy) and
// an ISO (genisoimage -R), the trees the formats' own tools extract from them
// (mcopy -s, xorriso -osirrox), and runners for our commands and coreutils.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const top = path.resolve(import.meta.dirname, '../..');
export const dist = path.join(top, 'dist');

// UV_USE_IO_URING=0 as the bin scripts' #! line sets it (else a command runs itself again with it).
export const env = { ...process.env, LC_ALL: 'C', TZ: 'UTC', UV_USE_IO_URING: '0' };
const T = 1_600_000_000;

export interface Run { stdout: string; stderr: string; status: number }
export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? env, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ stdout, stderr, status: err ? (typeof err.code === 'number' ? err.code : 128) : 0 }));
    if (opts.input !== undefined) p.stdin!.end(opts.input);
  });
}
export const fsu = (name: string, ...args: string[]) => run('node', [path.join(dist, 'scripts/fsu', `${name}.js`), ...args]);
/** The coreutils command in the extracted tree, its messages named like ours. */
export async function coreutils(cwd: string, name: string, ...args: string[]): Promise<Run> {
  const r = await run(name, args, { cwd });
  return { ...r, stderr: r.stderr.replace(new RegExp(`^${name}:`, 'gm'), `fsu_${name}:`).replace(/[‘’]/g, "'") };
}

/** The source tree: nested directories, sizes around cluster and sector boundaries, a few names. */
function makeTree(root: string): void {
  const files: Record<string, number> = {
    'README.TXT': 100, 'a.txt': 3, 'empty': 0, 'Mixed Case.dat': 4097, 'sub/b.txt': 6, 'sub/big.bin': 300_000,
    'sub/deeper/c.bin': 5000, 'sub/deeper/z.txt': 2048, 'other/x.txt': 1,
  };
  for (const [f, n] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + f.length) & 0xff;
    writeFileSync(path.join(root, f), b);
    utimesSync(path.join(root, f), T, T + 2 * f.length);
  }
}

export function fatImage(file: string): void {
  writeFileSync(file, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '16M', file]);
  execFileSync('mkfs.vfat', ['-F', '16', file], { stdio: 'ignore' });
}

export interface Fixture { dir: string; tree: string; fat: string; fatX: string; iso: string; isoX: string; cleanup(): void }

/** A fresh directory (readable by nobody) with the tree, the images and their extracted copies. */
export function fixture(): Fixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'rumpfs-fsu-'));
  chmodSync(dir, 0o755);
  const f: Fixture = {
    dir, tree: path.join(dir, 'tree'), fat: path.join(dir, 'fat.img'), fatX: path.join(dir, 'fat-x'),
    iso: path.join(dir, 'tree.iso'), isoX: path.join(dir, 'iso-x'), cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  makeTree(f.tree);
  fatImage(f.fat);
  execFileSync('mcopy', ['-s', '-m', '-i', f.fat, ...['README.TXT', 'a.txt', 'empty', 'Mixed Case.dat', 'sub', 'other'].map(n => path.join(f.tree, n)), '::/'], { env });
  mkdirSync(f.fatX);
  execFileSync('mcopy', ['-s', '-m', '-n', '-i', f.fat, '::/*', f.fatX], { env });
  execFileSync('genisoimage', ['-quiet', '-R', '-o', f.iso, f.tree], { env });
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', f.iso, '-extract', '/', f.isoX], { env, stdio: 'ignore' });
  chmodSync(f.isoX, 0o755);
  return f;
}
