#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_mkdir: mkdir(1) in an image.   fsu_mkdir image [-p] [-m mode] dir...
import { fsuMain, strerror, warn } from './common.js';
import { parseMode } from './modes.js';

fsuMain<{ parents?: boolean; mode?: string }>({
  name: 'mkdir', args: '<dirs...>', description: 'make directories in the image', writes: true,
  options: cmd => cmd.option('-p, --parents', 'make parents as needed, no error if existing').option('-m, --mode <mode>', 'mode (as chmod)'),
  run: async (ctx, args, o) => {
    let status = 0;
    for (const d of args) {
      try {
        await ctx.fs.mkdir(d, { recursive: !!o.parents, mode: 0o777 });
        if (o.mode !== undefined) await ctx.fs.chmod(d, parseMode(o.mode, 0o777 & ~process.umask(), true));
      } catch (e) {
        warn(`cannot create directory '${d}': ${strerror(e)}`);
        status = 1;
      }
    }
    return status;
  },
});
