#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_df: df(1) for an image.   fsu_df image [-h] [-i] [-k] [-T]
import { fsuMain, human } from './common.js';

fsuMain<{ humanReadable?: boolean; inodes?: boolean; printType?: boolean }>({
  name: 'df', args: '', description: 'free space of the image',
  options: cmd => cmd.option('-h, --human-readable', 'sizes as 1K 234M 2G').option('-i, --inodes', 'file slots instead of blocks')
    .option('-k', '1024-byte blocks (the default)').option('-T, --print-type', 'show the file system type'),
  run: async (ctx, _args, o) => {
    const s = await ctx.fs.statfs();
    const [total, free, avail] = o.inodes ? [s.files, s.ffree, s.ffree] : [s.blocks * s.bsize, s.bfree * s.bsize, s.bavail * s.bsize];
    const used = total - free;
    const fmt = (n: number) => (o.inodes ? String(n) : o.humanReadable ? human(n) : String(Math.ceil(n / 1024)));
    const pct = used + avail > 0 ? `${Math.ceil((used * 100) / (used + avail))}%` : '-';
    const head = ['Filesystem', ...(o.printType ? ['Type'] : []), o.inodes ? 'Inodes' : o.humanReadable ? 'Size' : '1K-blocks',
      o.inodes ? 'IUsed' : 'Used', o.inodes ? 'IFree' : 'Available', o.inodes ? 'IUse%' : 'Use%', 'Mounted on'];
    const row = [ctx.image, ...(o.printType ? [s.type] : []), fmt(total), fmt(used), fmt(avail), pct, '/'];
    const w = head.map((h, i) => Math.max(h.length, row[i].length));
    const line = (r: string[]) => r.map((c, i) => (i === 0 || i === r.length - 1 || (o.printType && i === 1) ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' ').trimEnd();
    process.stdout.write(`${line(head)}\n${line(row)}\n`);
    return 0;
  },
});
