#!/usr/bin/env node
// rump_tmpfs: mount_tmpfs, with the file system in a sandboxed server.
//   rump_tmpfs [-f] [-g group] [-m mode] [-n nodes] [-o options] [-s size] [-u user] tmpfs mountpoint
// Options as NetBSD's mount_tmpfs (flags) and Linux's tmpfs (-o size=,
// mode=, uid=, gid=, nr_inodes=, inode64, inode32), plus the generic ro, rw, sync, rumpuser=.
import '../src/fs/tmpfs/index.js';
import type { MountOptions } from '../src/kern/index.js';
import {
  genericOptions, helpAndVersion, parseGroup, parseMode, parseMountArgs, parseSize, parseUser, UsageError,
} from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_tmpfs [-f] [-g group] [-m mode] [-n nodes] [-o options] [-s size] [-u user] tmpfs mountpoint';

const HELP = `${USAGE}

Mount a new memory file system at mountpoint: NetBSD's tmpfs in a
sandboxed rump server attached through FUSE. Its contents go with the
unmount.

Flags (NetBSD mount_tmpfs):
  -f             stay in the foreground (the server's messages on stderr)
  -s size        size limit: bytes, with k/m/g/t, or N% of memory
  -n nodes       the most files and directories
  -m mode        the root directory's mode (octal)
  -u user, -g group   the root directory's owner and group (name or number)
  -o options     comma-separated options, below
  --help, --version

Options (-o):
  ro, rw, sync, noexec, exec       as mount(8)
  size=, nr_inodes= (nodes=), mode=, uid=, gid=   as Linux tmpfs
  rumpuser=NAME                    the unprivileged user the server runs as
  accepted without effect: mount(8)'s defaults, auto, noauto, nofail, user, nosuid,
    nodev, noatime, nonempty, ...
`;

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, { s: 'size', m: 'mode', u: 'uid', g: 'gid', n: 'nr_inodes' });
  if (args.positional.length !== 2) throw new UsageError('expected two operands: tmpfs and the mount point');
  const g = genericOptions(args.options);
  const options: MountOptions = {};
  for (const [k, v] of g.fsOptions) {
    switch (k) {
      case 'size': options.size = parseSize(k, v, true); break;
      case 'nr_inodes': case 'nodes': options.nodes = parseSize(k, v); break;
      case 'mode': options.mode = parseMode(k, v); break;
      case 'uid': options.uid = parseUser(k, v); break;
      case 'gid': options.gid = parseGroup(k, v); break;
      case 'inode64': case 'inode32': options[k] = true; break;
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  const [from, mountpoint] = args.positional;
  return {
    prog: 'rump_tmpfs', fstype: 'tmpfs', device: null, from, mountpoint,
    flags: g.flags, options: g.cache ? { ...options, cache: g.cache } : options, foreground: args.foreground, sandboxUser: g.sandboxUser,
  };
}

helpAndVersion('rump_tmpfs', HELP);
void serverMain('rump_tmpfs', USAGE, parse);
