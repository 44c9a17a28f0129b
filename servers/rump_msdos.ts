#!/usr/bin/env node
// rump_msdos: mount_msdos, with the FAT driver in a sandboxed server.
//   rump_msdos [-fl] [-u uid] [-g gid] [-m mask] [-M mask] [-t gmtoff] [-o options] special node
// Options as NetBSD's mount_msdos (flags) and Linux's vfat (-o uid=, gid=,
// umask=, fmask=, dmask=, shortname=, codepage=, utf8, tz=UTC, ro, rw),
// plus the generic sync, part=N and rumpuser=NAME.
import '../src/fs/msdosfs/index.js';
import type { MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { genericOptions, parseGroup, parseMode, parseMountArgs, parseUser, UsageError } from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_msdos [-fl] [-u uid] [-g gid] [-m mask] [-M mask] [-t gmtoff] [-o options] special node';

function parseGmtoff(v: string | true): number {
  if (v === true || !/^[+-]?\d+$/.test(v) || Math.abs(Number(v)) > 24 * 3600) throw new UsageError(`bad value for gmtoff: ${String(v)} (seconds east of UTC)`);
  return Number(v);
}

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, { u: 'uid', g: 'gid', m: 'mask', M: 'dirmask', t: 'gmtoff' },
    { l: 'longnames', s: 'shortnames', 9: 'nowin95' });
  const g = genericOptions(args.options);
  // Linux vfat's defaults: the mounter's ids, its umask (022 here), local time.
  const options: MountOptions = {
    uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mask: 0o755,
    gmtoff: -new Date().getTimezoneOffset() * 60,
  };
  let dirmask: number | undefined;
  for (const [k, v] of fsOnly(g)) {
    switch (k) {
      case 'uid': options.uid = parseUser(k, v); break;
      case 'gid': options.gid = parseGroup(k, v); break;
      // NetBSD masks say which bits may be set; Linux masks which are cleared.
      case 'mask': options.mask = parseMode(k, v) & 0o777; break;
      case 'dirmask': dirmask = parseMode(k, v) & 0o777; break;
      case 'umask': options.mask = ~parseMode(k, v) & 0o777; dirmask = options.mask; break;
      case 'fmask': options.mask = ~parseMode(k, v) & 0o777; break;
      case 'dmask': dirmask = ~parseMode(k, v) & 0o777; break;
      case 'gmtoff': options.gmtoff = parseGmtoff(v); break;
      case 'tz':
        if (v !== 'UTC') throw new UsageError(`bad value for tz: ${String(v)} (only tz=UTC)`);
        options.utc = true;
        break;
      case 'shortname': case 'codepage':
        if (v === true) throw new UsageError(`option ${k} needs a value`);
        options[k] = v;
        break;
      // Names always reach the host as UTF-8.
      case 'utf8': case 'iocharset': if (v !== true && v !== 'utf8') throw new UsageError(`only UTF-8 names: ${k}=${v}`); break;
      // mount_msdos -l: long names, which this driver always reads and writes.
      case 'longnames': break;
      case 'shortnames': case 'nowin95':
        throw new UsageError(`-${k === 'shortnames' ? 's' : '9'} is not supported: this driver always reads and writes long names`);
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  if (dirmask !== undefined) options.dirmask = dirmask;
  return diskSpec('rump_msdos', 'msdos', args, g, options);
}

await serverMain('rump_msdos', USAGE, parse);
