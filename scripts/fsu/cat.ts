#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_cat: cat(1) from an image.   fsu_cat image [file...]
import { once } from 'node:events';
import { fsuMain, strerror, warn } from './common.js';

fsuMain<object>({
  name: 'cat', args: '<files...>', description: 'print files from the image',
  run: async (ctx, args) => {
    let status = 0;
    for (const f of args) {
      let fh;
      try {
        fh = await ctx.fs.open(f, 'r');
        const buf = Buffer.allocUnsafe(1 << 20);
        for (let n; (n = (await fh.read(buf, 0, buf.length, null)).bytesRead) > 0;)
          if (!process.stdout.write(Buffer.from(buf.subarray(0, n)))) await once(process.stdout, 'drain');
      } catch (e) {
        warn(`${f}: ${strerror(e)}`);
        status = 1;
      } finally {
        await fh?.close();
      }
    }
    return status;
  },
});
