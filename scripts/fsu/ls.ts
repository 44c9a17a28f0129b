#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_ls: ls(1) on a file system image.
//   fsu_ls [-t type] [-o opts] image [-1adhilR] [file...]
import type { Stats } from '../../src/ukfs/index.js';
import { codeOf, fsuMain, groupName, human, strerror, userName, warn, type Context } from './common.js';
import { byteOrder, joinPath, lsTime, modeString } from './format.js';

interface Opts { long?: boolean; all?: boolean; almostAll?: boolean; recursive?: boolean; humanReadable?: boolean; inode?: boolean; directory?: boolean }
interface Entry { name: string; path: string; st: Stats; target?: string }

/** ls's status: 1 for trouble in a subdirectory, 2 for a command-line argument. */
let status = 0;

function print(entries: Entry[], o: Opts, total: boolean): void {
  const out: string[] = [];
  if (o.long && total) {
    const kb = entries.reduce((s, e) => s + Math.ceil(e.st.blocks / 2), 0);
    out.push(`total ${o.humanReadable ? human(kb * 1024) : kb}`);
  }
  const ino = entries.map(e => String(e.st.ino));
  const w = (xs: string[]) => Math.max(0, ...xs.map(x => x.length));
  const inoW = w(ino);
  if (!o.long) {
    entries.forEach((e, i) => out.push((o.inode ? ino[i].padStart(inoW) + ' ' : '') + e.name));
  } else {
    const cols = entries.map(e => ({
      mode: modeString(e.st), nlink: String(e.st.nlink), user: userName(e.st.uid), group: groupName(e.st.gid),
      size: o.humanReadable ? human(e.st.size) : String(e.st.size),
    }));
    const W = { nlink: w(cols.map(c => c.nlink)), user: w(cols.map(c => c.user)), group: w(cols.map(c => c.group)), size: w(cols.map(c => c.size)) };
    entries.forEach((e, i) => {
      const c = cols[i];
      out.push(`${o.inode ? ino[i].padStart(inoW) + ' ' : ''}${c.mode} ${c.nlink.padStart(W.nlink)} ${c.user.padEnd(W.user)} ${c.group.padEnd(W.group)} ${c.size.padStart(W.size)} ${lsTime(e.st.mtime)} ${e.name}${e.target !== undefined ? ` -> ${e.target}` : ''}`);
    });
  }
  if (out.length) process.stdout.write(out.join('\n') + '\n');
}

async function entry(ctx: Context, name: string, path: string, o: Opts): Promise<Entry> {
  const st = await ctx.fs.lstat(path);
  const target = o.long && st.isSymbolicLink() ? await ctx.fs.readlink(path) : undefined;
  return { name, path, st, target };
}

/** File ids of the directories being listed (-R): a corrupt image's directory naming an ancestor is not listed again. */
const listing = new Set<number>();

async function listDir(ctx: Context, dir: string, o: Opts, header: boolean, first: boolean, topLevel: boolean): Promise<void> {
  const ino = (await ctx.fs.stat(dir).catch(() => null))?.ino;
  if (ino !== undefined && listing.has(ino)) {
    warn(`${dir}: not listing already-listed directory`);
    status = 2;
    return;
  }
  let names: string[];
  try {
    names = await ctx.fs.readdir(dir);
  } catch (e) {
    warn(`cannot open directory '${dir}': ${strerror(e)}`);
    status = Math.max(status, topLevel ? 2 : 1);
    return;
  }
  if (!o.all && !o.almostAll) names = names.filter(n => !n.startsWith('.'));
  names.sort(byteOrder);
  const entries: Entry[] = [];
  if (o.all) for (const n of ['.', '..']) entries.push(await entry(ctx, n, joinPath(dir, n), o));
  for (const n of names) {
    try {
      entries.push(await entry(ctx, n, joinPath(dir, n), o));
    } catch (e) {
      warn(`cannot access '${joinPath(dir, n)}': ${strerror(e)}`);
      status = Math.max(status, 1);
    }
  }
  if (header) process.stdout.write(`${first ? '' : '\n'}${dir}:\n`);
  print(entries, o, true);
  if (!o.recursive) return;
  if (ino !== undefined) listing.add(ino);
  for (const e of entries)
    if (e.st.isDirectory() && e.name !== '.' && e.name !== '..') await listDir(ctx, e.path, o, true, false, false);
  if (ino !== undefined) listing.delete(ino);
}

fsuMain<Opts>({
  name: 'ls', args: '[file...]', description: 'list directory contents', failStatus: 2,
  options: cmd => cmd
    .option('-l', 'long listing', false).option('-a, --all', 'include . and .. and hidden entries')
    .option('-A, --almost-all', 'include hidden entries, not . and ..')
    .option('-R, --recursive', 'list subdirectories recursively').option('-h, --human-readable', 'sizes as 1K 234M 2G')
    .option('-i, --inode', 'print inode numbers').option('-d, --directory', 'list directories themselves')
    .option('-1', 'one entry per line (always, here)'),
  run: async (ctx, args, opts) => {
    const o: Opts = { ...opts, long: !!(opts as Record<string, unknown>).l };
    const operands = args.length ? args : ['.'];
    const files: Entry[] = [], dirs: string[] = [];
    for (const a of operands) {
      try {
        const e = await entry(ctx, a, a, o);
        // Command-line symlinks to directories are followed unless -l or -d (as GNU ls).
        const followed = e.st.isSymbolicLink() && !o.long && !o.directory ? await ctx.fs.stat(a).catch(() => e.st) : e.st;
        if (followed.isDirectory() && !o.directory) dirs.push(a);
        else files.push(e);
      } catch (e) {
        warn(`cannot access '${a}': ${strerror(e)}`);
        status = 2;
        if (codeOf(e) === undefined) throw e;
      }
    }
    files.sort((a, b) => byteOrder(a.name, b.name));
    dirs.sort(byteOrder);
    print(files, o, false);
    const headers = o.recursive || operands.length > 1;
    for (const [i, d] of dirs.entries()) await listDir(ctx, d, o, headers, i === 0 && files.length === 0, true);
    return status;
  },
});
