#!/usr/bin/env node
// mount.rump: the helper util-linux mount runs for the types rump and
// rump.<fs> (fstab: `/dev/sdb1 /media/usb rump.msdos rw,uid=1000 0 0`;
// command line: `mount -t rump.msdos /dev/sdb1 /mnt`). mount calls
//   mount.rump spec dir [-sfnv] [-N namespace] [-o options] [-t rump.<fs>]
// rump or rump.auto detects the type from the device's content.
import { rumpMount } from './mount/mount.js';
import { commandMain } from './mount/main.js';
import { helpAndVersion, splitOptions } from '../servers/options.js';
import { EXIT_USAGE, MountError } from './mount/types.js';

const USAGE = 'usage: mount.rump spec dir [-sfnv] [-N namespace] [-o options] [-t rump.type]';

const HELP = `${USAGE}

The helper mount(8) runs for the types rump and rump.<fs> (an fstab line
such as "/dev/sdb1 /media/usb rump.msdos rw,uid=1000 0 0", or
mount -t rump.msdos /dev/sdb1 /mnt): it starts the rump server for the
type (rump or rump.auto: detected from the device's content).

  -t rump.type   rump.msdos (vfat, fat), rump.cd9660 (iso9660), rump.tmpfs, rump.auto
  -o options     passed to the server (see rump_msdos --help and the others)
  -f             fake: check and say what would be done, mount nothing
  -v             verbose
  -s, -n         accepted (sloppy; no mtab is kept)
  -N namespace   the mount namespace to mount in
  --help, --version`;

helpAndVersion('mount.rump', HELP);
void commandMain('mount.rump', async () => {
  const argv = process.argv.slice(2);
  const operands: string[] = [];
  const options: [string, string | true][] = [];
  let type: string | undefined, fake = false, verbose = false, namespace: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') { operands.push(a); continue; }
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      // -s (sloppy) and -n (no mtab; nothing keeps one now) change nothing here.
      if (c === 's' || c === 'n') continue;
      if (c === 'f') { fake = true; continue; }
      if (c === 'v') { verbose = true; continue; }
      if (c !== 'o' && c !== 't' && c !== 'N') throw new MountError(`unknown flag -${c}\n${USAGE}`, EXIT_USAGE);
      const value = a.slice(j + 1) || argv[++i];
      if (value === undefined) throw new MountError(`flag -${c} needs a value\n${USAGE}`, EXIT_USAGE);
      if (c === 'o') options.push(...splitOptions(value));
      else if (c === 't') type = value;
      else namespace = value;
      break;
    }
  }
  if (operands.length !== 2) throw new MountError(`expected two operands: the device or image, and the mount point\n${USAGE}`, EXIT_USAGE);
  return rumpMount({ prog: 'mount.rump', type: type ?? 'rump', spec: operands[0], dir: operands[1], options, fake, verbose, namespace });
});
