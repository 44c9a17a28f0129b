#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_write: standard input into a file of the image.   fsu_write image [-a] file
import { fsuMain, strerror, warn } from './common.js';

fsuMain<{ append?: boolean }>({
  name: 'write', args: '<file>', description: 'write standard input to a file in the image', writes: true,
  options: cmd => cmd.option('-a, --append', 'append instead of replacing'),
  run: async (ctx, [file], o) => {
    let fh;
    try {
      fh = await ctx.fs.open(file, o.append ? 'a' : 'w');
      for await (const chunk of process.stdin) await fh.write(chunk as Buffer);
      return 0;
    } catch (e) {
      warn(`${file}: ${strerror(e)}`);
      return 1;
    } finally {
      await fh?.close();
    }
  },
});
