#!/usr/bin/env node
// rump_msdos: mount_msdos, with the FAT driver in a sandboxed server.
//   rump_msdos [-fl] [-u uid] [-g gid] [-m mask] [-M mask] [-t gmtoff] [-o options] special node
// Options as NetBSD's mount_msdos (flags) and Linux's fat/vfat (-o uid=,
// gid=, umask=, fmask=, dmask=, shortname=, codepage=, tz=UTC, time_offset=,
// showexec, quiet, flush, dirsync, allow_utime=, ..., in msdos_options.ts),
// plus the generic ro, rw, sync, part=N and rumpuser=NAME.
import '../src/fs/msdosfs/index.js';
import { HELP, parse, USAGE } from './msdos_options.js';
import { helpAndVersion } from './options.js';
import { serverMain } from './runner.js';

helpAndVersion('rump_msdos', HELP);
void serverMain('rump_msdos', USAGE, parse);
