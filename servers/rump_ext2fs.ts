#!/usr/bin/env node
// rump_ext2fs: mount_ext2fs, with the ext2/3/4 driver in a sandboxed server.
//   rump_ext2fs [-f] [-o options] special node
// Options as NetBSD's mount_ext2fs and Linux's ext2/ext4 where they make
// sense here: ro, rw, sync, sb=N (a backup superblock, in 1 KiB units as
// Linux counts; read-only), errors=continue|remount-ro|panic; user_xattr,
// nouser_xattr, acl and noacl are accepted (the driver serves no extended
// attributes or ACLs, so there is nothing they would change); plus the
// generic part=N and rumpuser=NAME. Other options are refused.
import '../src/fs/ext2fs/index.js';
import type { MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { genericOptions, parseMountArgs, UsageError } from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_ext2fs [-f] [-o options] special node';

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, {});
  const g = genericOptions(args.options);
  const options: MountOptions = {};
  for (const [k, v] of fsOnly(g)) {
    switch (k) {
      case 'sb':
        if (v === true || !/^\d+$/.test(v)) throw new UsageError(`bad value for sb: ${String(v)} (a block number in 1 KiB units)`);
        options.sb = Number(v);
        break;
      case 'errors':
        if (v !== 'continue' && v !== 'remount-ro' && v !== 'panic') throw new UsageError(`bad value for errors: ${String(v)} (continue, remount-ro or panic)`);
        options.errors = v;
        break;
      case 'user_xattr': case 'nouser_xattr': case 'acl': case 'noacl':
        if (v !== true) throw new UsageError(`option ${k} takes no value`);
        break;
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  return diskSpec('rump_ext2fs', 'ext2fs', args, g, options);
}

void serverMain('rump_ext2fs', USAGE, parse);
