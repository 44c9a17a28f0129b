#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_stat: stat(1) on files of an image.   fsu_stat image [-L] [-c format] file...
import type { Stats } from '../../src/ukfs/index.js';
import { fsuMain, groupName, strerror, userName, warn } from './common.js';
import { modeString, statTime, typeName } from './format.js';

const sec = (d: Date) => String(Math.floor(d.getTime() / 1000));

/** The % directives of GNU stat's --format that an image can answer. */
function directive(ch: string, name: string, st: Stats, target: string | undefined, ns: Record<string, bigint>): string | undefined {
  switch (ch) {
    case 'n': return name;
    case 'N': return target !== undefined ? `'${name}' -> '${target}'` : `'${name}'`;
    case 's': return String(st.size);
    case 'b': return String(st.blocks);
    case 'B': return '512';
    case 'o': return String(st.blksize);
    case 'f': return st.mode.toString(16);
    case 'F': return typeName(st);
    case 'a': return (st.mode & 0o7777).toString(8);
    case 'A': return modeString(st);
    case 'h': return String(st.nlink);
    case 'i': return String(st.ino);
    case 'u': return String(st.uid);
    case 'U': return userName(st.uid);
    case 'g': return String(st.gid);
    case 'G': return groupName(st.gid);
    case 'X': return sec(st.atime);
    case 'Y': return sec(st.mtime);
    case 'Z': return sec(st.ctime);
    case 'W': return sec(st.birthtime);
    case 'x': return statTime(st.atime, ns.a);
    case 'y': return statTime(st.mtime, ns.m);
    case 'z': return statTime(st.ctime, ns.c);
    case 'w': return statTime(st.birthtime, ns.b);
    case '%': return '%';
    default: return undefined;
  }
}

function format(fmt: string, name: string, st: Stats, target: string | undefined, ns: Record<string, bigint>): string {
  return fmt.replace(/%([-0]?)(\d*)(?:\.\d+)?([a-zA-Z%])/g, (all, flag: string, width: string, ch: string) => {
    const v = directive(ch, name, st, target, ns);
    if (v === undefined) return all;
    const w = Number(width || 0);
    return flag === '-' ? v.padEnd(w) : v.padStart(w, flag === '0' ? '0' : ' ');
  })
    .replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

/** GNU stat's default layout (there is no host device number to show). */
const DEFAULT = '  File: %n\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\nDevice: 0,0\tInode: %-11i Links: %h\n' +
  'Access: (%04a/%10.10A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\nAccess: %x\nModify: %y\nChange: %z\n Birth: %w';

fsuMain<{ dereference?: boolean; format?: string }>({
  name: 'stat', args: '<files...>', description: 'file status from the image',
  options: cmd => cmd.option('-L, --dereference', 'follow symbolic links').option('-c, --format <format>', 'GNU stat format (%n %s %F %a %A %u %U %g %G %i %h %b %X %Y %Z %x %y %z ...)'),
  run: async (ctx, args, o) => {
    let status = 0;
    for (const f of args) {
      try {
        const st = o.dereference ? await ctx.fs.stat(f) : await ctx.fs.lstat(f);
        const big = o.dereference ? await ctx.fs.stat(f, { bigint: true }) : await ctx.fs.lstat(f, { bigint: true });
        const target = st.isSymbolicLink() ? await ctx.fs.readlink(f) : undefined;
        const ns = { a: big.atimeNs, m: big.mtimeNs, c: big.ctimeNs, b: big.birthtimeNs };
        process.stdout.write(format(o.format ?? DEFAULT, f, st, target, ns) + '\n');
      } catch (e) {
        warn(`cannot statx '${f}': ${strerror(e)}`);
        status = 1;
      }
    }
    return status;
  },
});
