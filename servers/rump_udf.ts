#!/usr/bin/env node
// rump_udf: mount_udf, with the UDF driver in a sandboxed server.
//   rump_udf [-f] [-o options] special node
// Options as Linux's udf names them: uid= and gid= (owner of files that
// record none), mode= and dmode= (permissions of all files, directories),
// session= (start sector of the session), unhide; always read-only.
import '../src/fs/udf/index.js';
import { MNT_RDONLY, type MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { genericOptions, parseGroup, parseMode, parseMountArgs, parseUser, UsageError } from './options.js';
import { serverMain, type ServerSpec } from './runner.js';

const USAGE = 'usage: rump_udf [-f] [-o options] special node';

function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, {});
  const g = genericOptions(args.options);
  const options: MountOptions = {};
  for (const [k, v] of fsOnly(g)) {
    switch (k) {
      case 'uid': options.uid = parseUser(k, v); break;
      case 'gid': options.gid = parseGroup(k, v); break;
      case 'mode': options.mode = parseMode(k, v); break;
      case 'dmode': options.dmode = parseMode(k, v); break;
      case 'session':
        if (v === true || !/^\d+$/.test(v)) throw new UsageError(`bad value for ${k}: ${String(v)}`);
        options.session = Number(v);
        break;
      case 'unhide': options.unhide = true; break;
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  return diskSpec('rump_udf', 'udf', args, { ...g, flags: g.flags | MNT_RDONLY }, options);
}

void serverMain('rump_udf', USAGE, parse);
