#!/usr/bin/env node
// rump_makefs: a file system image from a directory tree, with no root and no
// mount (NetBSD's makefs with its rump back end): scan the tree, size the
// image, format it with our own newfs, copy the files in through the
// library's driver (ukfs_modload), keeping owners, modes, times and links
// where the format holds them.
//   rump_makefs [-t msdos|ext2fs|cd9660] [-s size] [-M min] [-m max] [-o opts] image directory
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { mount, type Ukfs } from '../../src/ukfs/index.js';
import { parseSize, splitOptions, UsageError } from '../../servers/options.js';
import { FORMATS, type Format } from './formats.js';
import { scanTree, type Node, type Tree } from './scan.js';
import { NewfsError } from './newfs_msdos.js';

const prog = 'rump_makefs';
class MakefsError extends Error {}

function warn(msg: string): void {
  process.stderr.write(`${prog}: ${msg}\n`);
}

/** Hard links made so far: the source node -> its path in the image. */
type Made = Map<Node, string>;

async function copyData(src: string, fs: Ukfs, dst: string, mode: number): Promise<void> {
  const i = await open(src, 'r');
  try {
    const o = await fs.open(dst, 'w', mode);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0, n; (n = (await i.read(buf, 0, buf.length, pos)).bytesRead) > 0; pos += n) await o.write(buf, 0, n, pos);
    } finally {
      await o.close();
    }
  } finally {
    await i.close();
  }
}

/** Attributes the format keeps: owner, mode, times (directories' times after their contents). */
async function attributes(fs: Ukfs, f: Format, dst: string, n: Node): Promise<void> {
  if (f.owners) await fs.lchown(dst, n.st.uid, n.st.gid);
  if (!n.st.isSymbolicLink()) await fs.chmod(dst, n.st.mode & 0o7777);
  if (!n.st.isSymbolicLink() || f.symlinks) await fs.lutimes(dst, n.st.atime, n.st.mtime);
}

async function copyIn(dir: string, fs: Ukfs, f: Format, n: Node, made: Made): Promise<boolean> {
  const dst = '/' + n.rel;
  const src = path.join(dir, n.rel);
  let ok = true;
  try {
    if (n.st.isDirectory()) {
      if (n.rel) await fs.mkdir(dst, 0o700);
      for (const c of n.children!) ok = await copyIn(dir, fs, f, c, made) && ok;
    } else if (n.linkOf && f.hardlinks) {
      await fs.link(made.get(n.linkOf)!, dst);
      return true;
    } else if (n.st.isFile()) {
      await copyData(src, fs, dst, 0o600);
    } else if (n.st.isSymbolicLink()) {
      if (!f.symlinks) { warn(`${src}: ${f.name} cannot hold symbolic links: skipped`); return true; }
      await fs.symlink(n.target!, dst);
    } else {
      if (!f.specials) { warn(`${src}: ${f.name} cannot hold special files: skipped`); return true; }
      await fs.mknod(dst, n.st.mode, Number(n.st.rdev));
    }
    made.set(n, dst);
    await attributes(fs, f, dst, n);
  } catch (e) {
    warn(`${src}: ${(e as Error).message}`);
    return false;
  }
  return ok;
}

async function makefs(image: string, dir: string, o: { type: string; size?: number; min?: number; max?: number; options: Record<string, string | true> }): Promise<void> {
  const f = FORMATS[o.type];
  if (!f) throw new MakefsError(`unknown file system type '${o.type}' (msdos, ext2fs, cd9660)`);
  if (!f.newfs) throw new MakefsError(f.refusal!);
  let tree: Tree;
  try {
    tree = await scanTree(dir);
  } catch (e) {
    throw new MakefsError(`${dir}: ${(e as Error).message}`);
  }
  if (!tree.root.st.isDirectory()) throw new MakefsError(`${dir}: not a directory`);
  let size = o.size ?? f.estimate!(tree, o.options);
  if (o.size === undefined) {
    if (o.min !== undefined) size = Math.max(size, o.min);
    if (o.max !== undefined && size > o.max) throw new MakefsError(`${image}: the tree needs ${size} bytes, more than the maximum ${o.max}`);
  }
  const summary = await f.newfs(image, size, o.options, tree);
  process.stdout.write(`Calculated size of '${image}': ${size} bytes, ${tree.files + tree.dirs} inodes (${summary})\n`);
  let fs: Ukfs;
  try {
    // The image's own root: owners and modes are ours to give, whoever runs this.
    fs = await mount(f.name, image, { cred: { uid: 0, gid: 0 }, umask: 0 });
  } catch (e) {
    if ((e as { code?: string }).code === 'ENODEV')
      throw new MakefsError(`${image}: formatted, but this library has no ${f.name} driver yet to copy the files in`);
    throw e;
  }
  let ok: boolean;
  try {
    ok = await copyIn(dir, fs, f, tree.root, new Map());
  } finally {
    await fs.unmount();
  }
  if (!ok) throw new MakefsError(`${image}: not every file could be copied in`);
}

const cmd = new Command(prog)
  .description('make a file system image from a directory tree, with no privileges')
  .argument('<image>').argument('<directory>')
  .option('-t, --type <type>', 'msdos, ext2fs or cd9660', 'msdos')
  .option('-s, --size <size>', 'image size (k, m, g suffixes); default: what the tree needs')
  .option('-M, --minimum-size <size>', 'at least this size')
  .option('-m, --maximum-size <size>', 'fail if the tree needs more')
  .option('-o, --options <opts>', 'file-system options (msdos: fat_type=12|16|32, sectors_per_cluster=N, volume_label=NAME)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

try {
  cmd.parse(process.argv);
  const opts = cmd.opts();
  const [image, dir] = cmd.args;
  const size = (name: string, v?: string) => (v === undefined ? undefined : parseSize(name, v));
  await makefs(image, dir, {
    type: opts.type, size: size('-s', opts.size), min: size('-M', opts.minimumSize), max: size('-m', opts.maximumSize),
    options: Object.fromEntries((opts.options as string[]).flatMap(splitOptions)),
  });
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 1);
  if (!(e instanceof MakefsError || e instanceof UsageError || e instanceof NewfsError || (e as { code?: string }).code)) throw e;
  warn((e as Error).message);
  process.exit(1);
}
