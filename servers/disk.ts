// What every disk file system's server shares: `special node` operands and
// the partition option (`-o part=N`, 1-based as Linux's sdb1).
import type { MountOptions } from '../src/kern/index.js';
import type { GenericOptions, ParsedArgs } from './options.js';
import { UsageError } from './options.js';
import type { ServerSpec } from './runner.js';

/** The ServerSpec of a disk file system, once its own options are parsed into `options`. */
export function diskSpec(prog: string, fstype: string, args: ParsedArgs, g: GenericOptions, options: MountOptions): ServerSpec {
  if (args.positional.length !== 2) throw new UsageError('expected two operands: the device or image, and the mount point');
  const [device, mountpoint] = args.positional;
  let partition: number | undefined;
  const part = g.fsOptions.get('part');
  if (part !== undefined) {
    if (part === true || !/^[1-9]\d{0,2}$/.test(part)) throw new UsageError(`bad value for part: ${String(part)} (a partition number from 1)`);
    partition = Number(part);
  }
  return {
    prog, fstype, device, partition, from: device, mountpoint,
    flags: g.flags, options, foreground: args.foreground, sandboxUser: g.sandboxUser,
  };
}

/** The file system's own options, without the disk ones this module takes. */
export function fsOnly(g: GenericOptions): [string, string | true][] {
  return [...g.fsOptions].filter(([k]) => k !== 'part');
}
