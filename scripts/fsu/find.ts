#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_find: find(1) in an image.
//   fsu_find image [path...] [-maxdepth N] [-mindepth N] [-name PAT] [-iname PAT]
//            [-type f|d|l|b|c|p|s] [-size [+-]N[bckwMG]] [-print | -print0]
// The tests are ANDed, as find's implicit -a.
import type { Stats } from '../../src/ukfs/index.js';
import { FsuError, fsuMain, strerror, warn } from './common.js';
import { byteOrder, joinPath } from './format.js';

interface Opts { paths: string[]; tests: ((p: string, st: Stats, depth: number) => boolean)[]; sep: string; maxdepth: number; mindepth: number }

/** fnmatch(3) without FNM_PATHNAME: * ? [...] and backslash escapes. */
function glob(pat: string, flags = ''): RegExp {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pat.length) re += pat[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else if (c === '[') {
      const end = pat.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      re += '[' + pat.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's' + flags);
}

const TYPES: Record<string, (st: Stats) => boolean> = {
  f: s => s.isFile(), d: s => s.isDirectory(), l: s => s.isSymbolicLink(), b: s => s.isBlockDevice(),
  c: s => s.isCharacterDevice(), p: s => s.isFIFO(), s: s => s.isSocket(),
};
const UNITS: Record<string, number> = { b: 512, c: 1, w: 2, k: 1024, M: 1 << 20, G: 1 << 30 };

/** -size: in units rounded up, as find (-size -1M matches only empty files). */
function sizeTest(arg: string): (st: Stats) => boolean {
  const m = /^([+-]?)(\d+)([bcwkMG]?)$/.exec(arg);
  if (!m) throw new FsuError(`invalid argument \`${arg}' to \`-size'`);
  const unit = UNITS[m[3] || 'b'], n = Number(m[2]);
  return st => {
    const v = Math.ceil(st.size / unit);
    return m[1] === '+' ? v > n : m[1] === '-' ? v < n : v === n;
  };
}

function parse(argv: string[]): { args: string[]; opts: Opts } {
  const o: Opts = { paths: [], tests: [], sep: '\n', maxdepth: Infinity, mindepth: 0 };
  let i = 0;
  for (; i < argv.length && !argv[i].startsWith('-'); i++) o.paths.push(argv[i]);
  const need = (name: string) => {
    if (i + 1 >= argv.length) throw new FsuError(`missing argument to \`${name}'`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '-name': { const re = glob(need(a)); o.tests.push(p => re.test(p.replace(/\/+$/, '').split('/').pop() || '/')); break; }
      case '-iname': { const re = glob(need(a), 'i'); o.tests.push(p => re.test(p.replace(/\/+$/, '').split('/').pop() || '/')); break; }
      case '-type': {
        const t = need(a);
        const fns = t.split(',').map(x => { if (!TYPES[x]) throw new FsuError(`Unknown argument to -type: ${x}`); return TYPES[x]; });
        o.tests.push((_p, st) => fns.some(f => f(st)));
        break;
      }
      case '-size': { const f = sizeTest(need(a)); o.tests.push((_p, st) => f(st)); break; }
      case '-maxdepth': o.maxdepth = Number(need(a)); break;
      case '-mindepth': o.mindepth = Number(need(a)); break;
      case '-print': o.sep = '\n'; break;
      case '-print0': o.sep = '\0'; break;
      default: throw new FsuError(`unknown predicate \`${a}'`);
    }
  }
  if (!o.paths.length) o.paths.push('.');
  return { args: o.paths, opts: o };
}

fsuMain<Opts>({
  name: 'find', args: '[path...]', description: 'search for files in the image (-name -iname -type -size -maxdepth -mindepth -print -print0)',
  parse,
  run: async (ctx, paths, o) => {
    let status = 0;
    const out: string[] = [];
    const flush = () => { if (out.length) { process.stdout.write(out.join('')); out.length = 0; } };
    // Directories being walked, by file id: a corrupt image's directory that names an ancestor is a loop.
    const ancestors = new Map<number, string>();
    const visit = async (p: string, depth: number): Promise<void> => {
      let st: Stats;
      try {
        st = await ctx.fs.lstat(p);
      } catch (e) {
        warn(`'${p}': ${strerror(e)}`);
        status = 1;
        return;
      }
      if (depth >= o.mindepth && o.tests.every(t => t(p, st, depth))) out.push(p + o.sep);
      if (out.length > 1000) flush();
      if (!st.isDirectory() || depth >= o.maxdepth) return;
      const loop = ancestors.get(st.ino);
      if (loop !== undefined) {
        warn(`File system loop detected; '${p}' is part of the same file system loop as '${loop}'.`);
        status = 1;
        return;
      }
      let names: string[];
      try {
        names = await ctx.fs.readdir(p);
      } catch (e) {
        warn(`'${p}': ${strerror(e)}`);
        status = 1;
        return;
      }
      // Sorted, so that the order does not depend on the driver's directory layout.
      ancestors.set(st.ino, p);
      for (const n of names.sort(byteOrder)) await visit(joinPath(p, n), depth + 1);
      ancestors.delete(st.ino);
    };
    for (const p of paths) await visit(p, 0);
    flush();
    return status;
  },
});
