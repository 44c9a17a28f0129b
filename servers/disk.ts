// What every disk file system's server shares: `special node` operands and
// the partition option (`-o part=N`, 1-based as Linux's sdb1), and the
// refusal of a partitioned whole disk without it.
import { readPartitions, type PartitionTable } from '../src/kern/disklabel.js';
import { KernError, type BlockDevice, type MountOptions } from '../src/kern/index.js';
import { detectType } from '../src/ukfs/detect.js';
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
    flags: g.flags, options: g.cache ? { ...options, cache: g.cache } : options, foreground: args.foreground, sandboxUser: g.sandboxUser,
    restart: g.restart,
  };
}

/** The file system's own options, without the disk ones this module takes. */
export function fsOnly(g: GenericOptions): [string, string | true][] {
  return [...g.fsOptions].filter(([k]) => k !== 'part');
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && n % 1024 === 0 && i < units.length - 1) { n /= 1024; i++; }
  return `${n} ${units[i]}`;
}

/** The partitions, one a line: number, start, size, type (and GPT name). */
export function partitionList(table: PartitionTable): string {
  return table.partitions.map(p =>
    `  part=${p.index}  start ${bytes(p.offset)}  size ${bytes(p.size)}  type ${p.type}${p.name ? `  "${p.name}"` : ''}`).join('\n');
}

/** A partitioned whole disk given without part=N; the message lists the partitions. */
export class WholeDiskError extends Error {}

/**
 * A whole disk (no part=N) that carries a partition table and no file
 * system of its own is refused, listing the partitions to choose from. A disk
 * whose own content is a file system (a hybrid ISO image, a FAT floppy)
 * passes.
 */
export async function checkWholeDisk(dev: BlockDevice): Promise<void> {
  const table = await readPartitions(dev);
  if (table.partitions.length === 0) return;
  try {
    await detectType(dev);
    return;
  } catch (e) {
    if (!(e instanceof KernError && e.code === 'ENODEV')) throw e;
  }
  throw new WholeDiskError(`a partitioned disk (${table.scheme.toUpperCase()}): ` +
    `choose a partition with -o part=N:\n${partitionList(table)}`);
}
