#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_put: copy from the host into the image.   fsu_put image [-rp] hostsource... dest
import { copy, host } from './copy.js';
import { fsuMain } from './common.js';

fsuMain<{ recursive?: boolean; R?: boolean; preserve?: boolean }>({
  name: 'put', args: '<paths...>', description: 'copy host files into the image', writes: true, hostFiles: true,
  options: cmd => cmd.option('-r, --recursive', 'copy directories recursively').option('-R', 'same as -r').option('-p, --preserve', 'keep mode, owner and times'),
  run: async (ctx, args, o) => {
    if (args.length < 2) throw new Error(`missing destination file operand after '${args[0]}'`);
    return copy(host, args.slice(0, -1), ctx.fs as unknown as typeof host, args[args.length - 1], { ...o, recursive: o.recursive || o.R, tty: ctx.tty });
  },
});
