#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_mv: mv(1) inside an image.   fsu_mv image source... dest
import { posix } from 'node:path';
import { fsuMain, strerror, warn } from './common.js';

fsuMain<object>({
  name: 'mv', args: '<paths...>', description: 'move (rename) files inside the image', writes: true,
  run: async (ctx, args) => {
    if (args.length < 2) throw new Error(`missing destination file operand after '${args[0]}'`);
    const dest = args[args.length - 1];
    const isDir = await ctx.fs.stat(dest).then(s => s.isDirectory(), () => false);
    if (args.length > 2 && !isDir) { warn(`target '${dest}' is not a directory`); return 1; }
    let status = 0;
    for (const src of args.slice(0, -1)) {
      const to = isDir ? posix.join(dest, posix.basename(src.replace(/\/+$/, ''))) : dest;
      try {
        await ctx.fs.lstat(src);
      } catch (e) {
        warn(`cannot stat '${src}': ${strerror(e)}`);
        status = 1;
        continue;
      }
      try {
        await ctx.fs.rename(src, to);
      } catch (e) {
        warn(`cannot move '${src}' to '${to}': ${strerror(e)}`);
        status = 1;
      }
    }
    return status;
  },
});
