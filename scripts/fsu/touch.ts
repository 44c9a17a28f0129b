#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_touch: touch(1) in an image.   fsu_touch image [-acm] [-d date | -r ref] file...
// (-t is the image's type here, as in every fsu command: touch's -t STAMP is -d.)
import { FsuError, fsuMain, strerror, warn } from './common.js';

fsuMain<{ create?: boolean; a?: boolean; m?: boolean; date?: string; reference?: string }>({
  name: 'touch', args: '<files...>', description: 'change file times in the image, creating missing files', writes: true,
  options: cmd => cmd.option('-c, --no-create', 'do not create files').option('-a', 'access time only').option('-m', 'modification time only')
    .option('-d, --date <date>', 'this time instead of now').option('-r, --reference <file>', "this file's times instead of now"),
  run: async (ctx, args, o) => {
    let at: Date, mt: Date;
    if (o.reference !== undefined) {
      const st = await ctx.fs.stat(o.reference).catch((e) => { throw new FsuError(`failed to get attributes of '${o.reference}': ${strerror(e)}`); });
      [at, mt] = [st.atime, st.mtime];
    } else {
      const when = o.date !== undefined ? new Date(o.date.replace(/^@(\d+)$/, (_m, s: string) => new Date(Number(s) * 1000).toISOString())) : new Date();
      if (Number.isNaN(when.getTime())) throw new FsuError(`invalid date format '${o.date}'`);
      at = mt = when;
    }
    const noCreate = o.create === false; // commander's --no-create
    let status = 0;
    for (const f of args) {
      try {
        let st = await ctx.fs.stat(f).catch(() => null);
        if (!st) {
          if (noCreate) continue;
          await (await ctx.fs.open(f, 'a')).close();
          st = await ctx.fs.stat(f);
        }
        await ctx.fs.utimes(f, o.m && !o.a ? st.atime : at, o.a && !o.m ? st.mtime : mt);
      } catch (e) {
        warn(`cannot touch '${f}': ${strerror(e)}`);
        status = 1;
      }
    }
    return status;
  },
});
