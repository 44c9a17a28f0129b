#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_du: du(1) in an image.   fsu_du image [-a] [-s] [-c] [-h] [-k] [-b] [--apparent-size] [file...]
// Hard links are counted once, by file id, as du.
import type { Stats } from '../../src/ukfs/index.js';
import { fsuMain, human, strerror, warn } from './common.js';
import { byteOrder, joinPath } from './format.js';

interface Opts { all?: boolean; summarize?: boolean; total?: boolean; humanReadable?: boolean; k?: boolean; bytes?: boolean; apparentSize?: boolean }

fsuMain<Opts>({
  name: 'du', args: '[files...]', description: 'disk usage in the image',
  options: cmd => cmd.option('-a, --all', 'files too, not only directories').option('-s, --summarize', 'only a total per argument')
    .option('-c, --total', 'a grand total').option('-h, --human-readable', 'sizes as 1K 234M 2G').option('-k', '1024-byte units (the default)')
    .option('-b, --bytes', 'apparent size in bytes').option('--apparent-size', 'sizes, not allocated blocks'),
  run: async (ctx, args, o) => {
    const apparent = o.bytes || o.apparentSize;
    const unit = o.bytes ? 1 : 1024;
    const seen = new Set<number>();
    let status = 0;
    const show = (n: number, p: string) => process.stdout.write(`${o.humanReadable ? human(n) : String(Math.ceil(n / unit))}\t${p}\n`);
    const size = (st: Stats) => (apparent ? st.size : st.blocks * 512);
    const ancestors = new Set<number>();
    const walk = async (p: string, depth: number): Promise<number> => {
      let st: Stats;
      try {
        st = await ctx.fs.lstat(p);
      } catch (e) {
        warn(`cannot access '${p}': ${strerror(e)}`);
        status = 1;
        return 0;
      }
      if (st.nlink > 1 && !st.isDirectory()) {
        if (seen.has(st.ino)) return 0;
        seen.add(st.ino);
      }
      let n = size(st);
      if (st.isDirectory() && ancestors.has(st.ino)) {
        warn(`WARNING: Circular directory structure: '${p}' is part of a cycle (a corrupted file system)`);
        status = 1;
        return 0;
      }
      if (st.isDirectory()) {
        let names: string[] = [];
        try {
          names = await ctx.fs.readdir(p);
        } catch (e) {
          warn(`cannot read directory '${p}': ${strerror(e)}`);
          status = 1;
        }
        ancestors.add(st.ino);
        for (const name of names.sort(byteOrder)) n += await walk(joinPath(p, name), depth + 1);
        ancestors.delete(st.ino);
        if (!o.summarize || depth === 0) show(n, p);
      } else if ((o.all && !o.summarize) || depth === 0) show(n, p);
      return n;
    };
    let total = 0;
    for (const p of args.length ? args : ['.']) total += await walk(p, 0);
    if (o.total) show(total, 'total');
    return status;
  },
});
