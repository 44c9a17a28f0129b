#!/usr/bin/env node
// umount.fuse.<type> and umount.rump: the helper util-linux umount runs
// for a mount whose type is fuse.<type> (fuse.msdos, fuse.cd9660, ...: what
// the rump servers mount; they note uhelper=rump in utab so that umount
// looks). The kernel lets go of a FUSE mount before its server has flushed;
// this helper returns only once the server has written everything, marked
// the volume clean and exited, so `umount m && fsck img` always sees a
// clean image. umount calls
//   umount.fuse.<type> dir [-flnrv] [-N namespace] [-t type]
import { commandMain } from './mount/main.js';
import { findMount } from './mount/tables.js';
import { unmountAndWait } from './mount/unmount.js';
import { EXIT_USAGE, MountError } from './mount/types.js';

const USAGE = 'usage: umount.fuse.<type> dir [-flnrv] [-N namespace] [-t type]';

void commandMain('umount', async () => {
  const argv = process.argv.slice(2);
  const operands: string[] = [];
  let lazy = false, verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) { operands.push(a); continue; }
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (c === 'l') lazy = true;
      else if (c === 'v') verbose = true;
      // -f (force), -n (no mtab) and -r (remount read-only on failure) change nothing for a FUSE mount.
      else if (c === 'f' || c === 'n' || c === 'r') continue;
      else if (c === 't' || c === 'N') { if (!a.slice(j + 1)) i++; break; }
      else throw new MountError(`unknown flag -${c}\n${USAGE}`, EXIT_USAGE);
    }
  }
  if (operands.length !== 1) throw new MountError(USAGE, EXIT_USAGE);
  const m = findMount(operands[0]);
  if (m === null) throw new MountError(`${operands[0]}: not mounted`);
  return unmountAndWait(m, { lazy, verbose });
});
