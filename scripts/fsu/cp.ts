#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_cp: cp(1) inside an image.   fsu_cp image [-rRp] source... dest
import { copy } from './copy.js';
import { fsuMain } from './common.js';

fsuMain<{ recursive?: boolean; R?: boolean; preserve?: boolean }>({
  name: 'cp', args: '<paths...>', description: 'copy files and directories inside the image', writes: true,
  options: cmd => cmd.option('-r, --recursive', 'copy directories recursively').option('-R', 'same as -r').option('-p, --preserve', 'keep mode, owner and times'),
  run: async (ctx, args, o) => {
    if (args.length < 2) throw new Error(`missing destination file operand after '${args[0]}'`);
    const fs = ctx.fs as unknown as Parameters<typeof copy>[0];
    return copy(fs, args.slice(0, -1), fs, args[args.length - 1], { ...o, recursive: o.recursive || o.R, tty: ctx.tty });
  },
});
