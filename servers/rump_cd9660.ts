#!/usr/bin/env node
// rump_cd9660: mount_cd9660, with the ISO 9660 driver in a sandboxed server.
//   rump_cd9660 [-f] [-o options] special node
// Options as NetBSD's mount_cd9660 and Linux's iso9660 where they make
// sense: norrip (nrr, norock), nojoliet, uid=, gid=, mode=, dmode=,
// session=, sbsector=, map=off|normal|acorn; always read-only.
import '../src/fs/cd9660/index.js';
import { MNT_RDONLY, type MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { genericOptions, helpAndVersion, parseGroup, parseMode, parseMountArgs, parseUser, UsageError } from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_cd9660 [-f] [-o options] special node';

const HELP = `${USAGE}

Mount the ISO 9660 file system (Rock Ridge, Joliet) on special, an image
file or block device, at node, read-only: the driver runs in a sandboxed
rump server attached through FUSE. Unmount with umount or rumpumount.

Flags (NetBSD mount_cd9660):
  -f             stay in the foreground (the server's messages on stderr)
  -o options     comma-separated options, below
  --help, --version

Options (-o):
  norrip (nrr, norock)             ignore Rock Ridge names and attributes
  nojoliet                         ignore Joliet names
  uid=, gid=, mode=, dmode=        owner, group and modes where Rock Ridge gives none
  session=N, sbsector=N            the session, or the sector of its volume descriptors
  map=off|normal|acorn             how plain ISO 9660 names show
  part=N                           partition N (from 1) of a partitioned disk image
  rumpuser=NAME                    the unprivileged user the server runs as
  restart=N                        a crashed server restarts, N times a minute at most (default 3; 0: never)
  accepted without effect: rrip, rock, joliet, cruft, unhide, hide, check=, ro,
    mount(8)'s defaults, auto, noauto, nofail, user, nosuid, nodev, nonempty, ...
`;

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, {});
  const g = genericOptions(args.options);
  const options: MountOptions = {};
  for (const [k, v] of fsOnly(g)) {
    switch (k) {
      case 'norrip': case 'nrr': case 'norock': options.norrip = true; break;
      case 'nojoliet': options.nojoliet = true; break;
      case 'rrip': case 'rock': case 'joliet': case 'cruft': case 'unhide': case 'hide': break;
      case 'uid': options.uid = parseUser(k, v); break;
      case 'gid': options.gid = parseGroup(k, v); break;
      case 'mode': options.mode = parseMode(k, v); break;
      case 'dmode': options.dmode = parseMode(k, v); break;
      case 'session': case 'sbsector':
        if (v === true || !/^\d+$/.test(v)) throw new UsageError(`bad value for ${k}: ${String(v)}`);
        options[k] = Number(v);
        break;
      case 'map': case 'check':
        if (v === true) throw new UsageError(`option ${k} needs a value`);
        if (k === 'map') options.map = v;
        break;
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  return diskSpec('rump_cd9660', 'cd9660', args, { ...g, flags: g.flags | MNT_RDONLY }, options);
}

helpAndVersion('rump_cd9660', HELP);
void serverMain('rump_cd9660', USAGE, parse);
