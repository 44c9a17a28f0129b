#!/usr/bin/env node
// fsu_touch: touch(1) in an image.   fsu_touch image [-acm] [-d date | -t [[CC]YY]MMDDhhmm[.ss] | -r ref] file...
import { FsuError, fsuMain, strerror, warn } from './common.js';

/** touch -t's [[CC]YY]MMDDhhmm[.ss], local time. */
function stamp(s: string): Date {
  const m = /^(\d{2}(?:\d{2})?)?(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{2}))?$/.exec(s);
  if (!m) throw new FsuError(`invalid date format '${s}'`);
  let year = m[1] === undefined ? new Date().getFullYear() : Number(m[1]);
  if (m[1]?.length === 2) year += year < 69 ? 2000 : 1900;
  return new Date(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
}

fsuMain<{ noCreate?: boolean; a?: boolean; m?: boolean; date?: string; t?: string; reference?: string }>({
  name: 'touch', args: '<files...>', description: 'change file times in the image, creating missing files', writes: true,
  options: cmd => cmd.option('-c, --no-create', 'do not create files').option('-a', 'access time only').option('-m', 'modification time only')
    .option('-d, --date <date>', 'this time instead of now').option('-t <stamp>', '[[CC]YY]MMDDhhmm[.ss] instead of now')
    .option('-r, --reference <file>', "this file's times instead of now"),
  run: async (ctx, args, o) => {
    let at: Date, mt: Date;
    if (o.reference !== undefined) {
      const st = await ctx.fs.stat(o.reference).catch((e) => { throw new FsuError(`failed to get attributes of '${o.reference}': ${strerror(e)}`); });
      [at, mt] = [st.atime, st.mtime];
    } else {
      const when = o.t !== undefined ? stamp(o.t) : o.date !== undefined ? new Date(o.date.replace(/^@(\d+)$/, (_m, s: string) => new Date(Number(s) * 1000).toISOString())) : new Date();
      if (Number.isNaN(when.getTime())) throw new FsuError(`invalid date format '${o.date}'`);
      at = mt = when;
    }
    const noCreate = o.noCreate === false;
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
