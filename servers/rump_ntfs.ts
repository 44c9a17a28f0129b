#!/usr/bin/env node
// rump_ntfs: mount_ntfs, with the NTFS driver in a sandboxed server.
//   rump_ntfs [-f] [-u uid] [-g gid] [-m mask] [-a] [-o options] special node
// Options as NetBSD's mount_ntfs (-u, -g, -m mask, -a: show system files)
// and Linux's ntfs-3g/ntfs3 (-o uid=, gid=, umask=, fmask=, dmask=,
// show_sys_files, ro). Always read-only: rw (-w) is accepted with a warning
// and the mount is made read-only, so an fstab line written for ntfs-3g
// still mounts.
import '../src/fs/ntfs/index.js';
import { MNT_RDONLY, type MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { genericOptions, parseGroup, parseMode, parseMountArgs, parseUser, UsageError, usageWarning } from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_ntfs [-fa] [-u uid] [-g gid] [-m mask] [-o options] special node';

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, { u: 'uid', g: 'gid', m: 'mask' }, { a: 'show_sys_files' });
  const g = genericOptions(args.options);
  if (args.options.has('rw')) usageWarning('rump_ntfs', 'NTFS is served read-only; mounting ro (rw ignored)');
  // ntfs-3g's defaults: the mounter's ids; umask 022 here, as rump_msdos.
  const options: MountOptions = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, umask: '022' };
  for (const [k, v] of fsOnly(g)) {
    switch (k) {
      case 'uid': options.uid = parseUser(k, v); break;
      case 'gid': options.gid = parseGroup(k, v); break;
      // mount_ntfs -m: the bits that may be set, for files and directories alike.
      case 'mask': options.umask = (~parseMode(k, v) & 0o777).toString(8); break;
      case 'umask': case 'fmask': case 'dmask': options[k] = (parseMode(k, v) & 0o777).toString(8); break;
      case 'show_sys_files':
        if (v !== true) throw new UsageError(`option ${k} takes no value`);
        options.show_sys_files = true;
        break;
      // Names always reach the host as UTF-8.
      case 'utf8': case 'nls': case 'iocharset':
        if (v !== true && v !== 'utf8') throw new UsageError(`only UTF-8 names: ${k}=${v}`);
        break;
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  return diskSpec('rump_ntfs', 'ntfs', args, { ...g, flags: g.flags | MNT_RDONLY }, options);
}

void serverMain('rump_ntfs', USAGE, parse);
