#!/usr/bin/env node
// rump_exfat: mounts exFAT (SDXC cards, big USB sticks) with the driver in a sandboxed server.
//   rump_exfat [-f] [-u uid] [-g gid] [-m mask] [-M mask] [-o options] special node
// Options as Linux's exfat: uid=, gid=, umask=, dmask=, fmask=,
// allow_utime=, iocharset=utf8, time_offset=, sys_tz, errors=, discard,
// keep_last_dots, ro, rw; flags as mount_msdos's (-u, -g, -m, -M); plus the
// generic sync, part=N and rumpuser=NAME. Unknown options are refused.
import '../src/fs/exfat/index.js';
import type { MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { hostGmtoff } from './localtime.js';
import { genericOptions, parseGroup, parseMode, parseMountArgs, parseUser, UsageError } from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_exfat [-f] [-u uid] [-g gid] [-m mask] [-M mask] [-o options] special node';

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, { u: 'uid', g: 'gid', m: 'mask', M: 'dirmask' });
  const g = genericOptions(args.options);
  // Linux's defaults: the mounter's ids and umask (022 here), times in UTC.
  const umask = 0o022;
  let fmask = umask, dmask = umask;
  const options: MountOptions = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  for (const [k, v] of fsOnly(g)) {
    switch (k) {
      case 'uid': options.uid = parseUser(k, v); break;
      case 'gid': options.gid = parseGroup(k, v); break;
      case 'umask': fmask = dmask = parseMode(k, v) & 0o777; break;
      case 'fmask': fmask = parseMode(k, v) & 0o777; break;
      case 'dmask': dmask = parseMode(k, v) & 0o777; break;
      // NetBSD masks say which bits may be set; Linux masks which are cleared.
      case 'mask': fmask = ~parseMode(k, v) & 0o777; break;
      case 'dirmask': dmask = ~parseMode(k, v) & 0o777; break;
      case 'time_offset':
        if (v === true || !/^[+-]?\d+$/.test(v) || Math.abs(Number(v)) > 24 * 60 || Number(v) % 15) {
          throw new UsageError(`bad value for time_offset: ${String(v)} (minutes east of UTC, a multiple of 15)`);
        }
        options.time_offset = Number(v);
        break;
      case 'sys_tz': options.time_offset = hostGmtoff() / 60; break;
      case 'errors':
        if (v !== 'continue' && v !== 'remount-ro' && v !== 'panic') throw new UsageError(`bad value for errors: ${String(v)} (continue, remount-ro or panic)`);
        options.errors = v;
        break;
      // Names always reach the host as UTF-8.
      case 'iocharset': if (v !== 'utf8') throw new UsageError(`only UTF-8 names: iocharset=${String(v)}`); break;
      // Who may set times is the kernel's utimes rule (owner or root; writers to "now").
      case 'allow_utime': parseMode(k, v); break;
      // An image file has nothing to discard to; trailing dots are always kept.
      case 'discard': case 'keep_last_dots': break;
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  options.fmode = ~fmask & 0o777;
  options.dmode = ~dmask & 0o777;
  return diskSpec('rump_exfat', 'exfat', args, g, options);
}

void serverMain('rump_exfat', USAGE, parse);
