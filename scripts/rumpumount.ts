#!/usr/bin/env node
// rumpumount: umount that returns only once the rump server has flushed its
// buffers, closed the device and exited, so the image is complete and free
// for the next user. Mounts that are not rump mounts go to the system's umount.
//   rumpumount [-lv] [-w seconds] node | special ...
import { spawnSync } from 'node:child_process';
import { helpAndVersion } from '../servers/options.js';
import { commandMain } from './mount/main.js';
import { findMount } from './mount/tables.js';
import { unmountAndWait } from './mount/unmount.js';
import { EXIT_FAILURE, EXIT_USAGE, MountError, isRumpFuseType } from './mount/types.js';

const USAGE = 'usage: rumpumount [-lv] [-w seconds] node | special ...';

const HELP = `${USAGE}

Unmount as umount(8) does, and for a rump server's mount return only once
the server has written everything back, closed the device and exited, so
the image is complete and free. Other mounts go to the system's umount.

  -w seconds     how long to wait for the server (default 30)
  -l             lazy: detach now, the server finishes when the mount is unused
  -v             verbose
  --help, --version`;

helpAndVersion('rumpumount', HELP);
void commandMain('rumpumount', async () => {
  const argv = process.argv.slice(2);
  const operands: string[] = [];
  let verbose = false, lazy = false, timeoutMs = 30_000;
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    if (!s.startsWith('-')) { operands.push(s); continue; }
    for (let j = 1; j < s.length; j++) {
      const c = s[j];
      if (c === 'v') { verbose = true; continue; }
      if (c === 'l') { lazy = true; continue; }
      if (c !== 'w') throw new MountError(`unknown flag -${c}\n${USAGE}`, EXIT_USAGE);
      const v = s.slice(j + 1) || argv[++i];
      if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) throw new MountError(`-w needs a number of seconds\n${USAGE}`, EXIT_USAGE);
      timeoutMs = Number(v) * 1000;
      break;
    }
  }
  if (operands.length === 0) throw new MountError(`nothing to unmount\n${USAGE}`, EXIT_USAGE);
  let status = 0;
  for (const what of operands) {
    try {
      const m = findMount(what);
      if (m === null) throw new MountError(`${what}: not mounted`);
      if (isRumpFuseType(m.fstype)) {
        status ||= await unmountAndWait(m, { verbose, lazy, timeoutMs });
      } else {
        const r = spawnSync('umount', [...(lazy ? ['-l'] : []), ...(verbose ? ['-v'] : []), m.target], { stdio: 'inherit' });
        status ||= r.status ?? EXIT_FAILURE;
      }
    } catch (e) {
      if (!(e instanceof MountError)) throw e;
      process.stderr.write(`rumpumount: ${e.message}\n`);
      status ||= e.status;
    }
  }
  return status;
});
