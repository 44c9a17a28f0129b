#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_ln: ln(1) in an image.   fsu_ln image [-s] [-f] target... link_name|dir
import { posix } from 'node:path';
import { fsuMain, strerror, warn } from './common.js';

fsuMain<{ symbolic?: boolean; force?: boolean }>({
  name: 'ln', args: '<paths...>', description: 'make links in the image', writes: true,
  options: cmd => cmd.option('-s, --symbolic', 'symbolic links instead of hard links').option('-f, --force', 'replace existing names'),
  run: async (ctx, args, o) => {
    if (args.length < 2) throw new Error(`missing destination file operand after '${args[0]}'`);
    const dest = args[args.length - 1];
    const isDir = await ctx.fs.stat(dest).then(s => s.isDirectory(), () => false);
    if (args.length > 2 && !isDir) { warn(`target '${dest}' is not a directory`); return 1; }
    let status = 0;
    for (const target of args.slice(0, -1)) {
      const name = isDir ? posix.join(dest, posix.basename(target)) : dest;
      try {
        if (o.force) await ctx.fs.unlink(name).catch(() => undefined);
        if (o.symbolic) await ctx.fs.symlink(target, name);
        else {
          try { await ctx.fs.lstat(target); } catch (e) { warn(`failed to access '${target}': ${strerror(e)}`); status = 1; continue; }
          await ctx.fs.link(target, name);
        }
      } catch (e) {
        warn(o.symbolic ? `failed to create symbolic link '${name}': ${strerror(e)}` : `failed to create hard link '${name}' => '${target}': ${strerror(e)}`);
        status = 1;
      }
    }
    return status;
  },
});
