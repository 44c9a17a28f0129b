#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_rmdir: rmdir(1) in an image.   fsu_rmdir image dir...
import { fsuMain, strerror, warn } from './common.js';

fsuMain<object>({
  name: 'rmdir', args: '<dirs...>', description: 'remove empty directories from the image', writes: true,
  run: async (ctx, args) => {
    let status = 0;
    for (const d of args) {
      try {
        await ctx.fs.rmdir(d);
      } catch (e) {
        warn(`failed to remove '${d}': ${strerror(e)}`);
        status = 1;
      }
    }
    return status;
  },
});
