#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_ecp: copy between the host and the image, either way (NetBSD's):
//   fsu_ecp image [-rp] hostsource... dest     (into the image)
//   fsu_ecp image -g [-rp] source... hostdest  (out of it)
import { copy, host } from './copy.js';
import { fsuMain } from './common.js';

fsuMain<{ recursive?: boolean; R?: boolean; preserve?: boolean; get?: boolean }>({
  name: 'ecp', args: '<paths...>', description: 'copy between host and image (-g: out of the image)', writes: o => !o.get, hostFiles: true,
  options: cmd => cmd.option('-g, --get', 'copy from the image to the host')
    .option('-r, --recursive', 'copy directories recursively').option('-R', 'same as -r').option('-p, --preserve', 'keep mode, owner and times'),
  run: async (ctx, args, o) => {
    if (args.length < 2) throw new Error(`missing destination file operand after '${args[0]}'`);
    const img = ctx.fs as unknown as typeof host;
    const [from, to] = o.get ? [img, host] : [host, img];
    return copy(from, args.slice(0, -1), to, args[args.length - 1], { ...o, recursive: o.recursive || o.R, tty: ctx.tty });
  },
});
