// The one way every front end mounts (mount.rump, rumpmount, rumpmount -a):
// resolve the type (detecting it from the content when asked), refuse what
// cannot work with a clear message before any server starts, then run the
// server, whose launcher returns once the mount works (or fails, with 32).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernError, blkdev_open, type BlockDevice } from '../../src/kern/index.js';
import { detectType } from '../../src/ukfs/detect.js';
import { checkWholeDisk, WholeDiskError } from '../../servers/disk.js';
import { serverCommand } from '../../servers/programs.js';
import { EXIT_FAILURE, EXIT_USAGE, MountError, kernelType, serverFor } from './types.js';

export interface MountRequest {
  /** The command, for warnings. */
  prog: string;
  /** A type name as given (rump.msdos, vfat, fuse.rump_cd9660, rump, ...); undefined: detect. */
  type: string | undefined;
  spec: string;
  dir: string;
  /** Every option, in order; the server takes what it knows and ignores mount's own. */
  options: [string, string | true][];
  /** -f of mount: check, but do not mount. */
  fake?: boolean;
  /** -v: say what is run. */
  verbose?: boolean;
  /** -N: the mount namespace (a pid or a path) to mount in. */
  namespace?: string;
}


/** The last part=N among the options, checked as the server checks it. */
function partitionOf(options: readonly [string, string | true][]): number | undefined {
  const v = options.filter(([k]) => k === 'part').pop()?.[1];
  if (v === undefined) return undefined;
  if (v === true || !/^[1-9]\d{0,2}$/.test(v)) throw new MountError(`bad value for part: ${String(v)} (a partition number from 1)`, EXIT_USAGE);
  return Number(v);
}

/** The device is there and readable, names a partition that exists or is not a partitioned whole disk; its content's type. */
async function probe(spec: string, partition: number | undefined): Promise<string> {
  let dev: BlockDevice;
  try {
    // Exclusive as the server's open, so a device mounted elsewhere is named as such.
    dev = await blkdev_open(spec, { readOnly: true, exclusive: true, partition });
  } catch (e) {
    if (e instanceof KernError && e.code === 'ENOENT') throw new MountError(`${spec}: special device does not exist`);
    if (e instanceof KernError && e.code === 'EBUSY') throw new MountError(`${spec}: already in use (mounted elsewhere, or opened exclusively by another program)`);
    if (e instanceof KernError && (e.code === 'EACCES' || e.code === 'EPERM')) throw new MountError(`${spec}: permission denied`, EXIT_USAGE);
    throw new MountError(e instanceof Error ? e.message : String(e));
  }
  try {
    if (partition === undefined) await checkWholeDisk(dev);
    return await detectType(dev);
  } catch (e) {
    if (e instanceof WholeDiskError) throw new MountError(`${spec}: ${e.message}`);
    if (e instanceof KernError && e.code === 'ENODEV') return 'unknown';
    throw new MountError(`${spec}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await dev.close().catch(() => {});
  }
}

/** access(2) W_OK; a missing path is left for the server to report. */
function writable(p: string): boolean {
  try {
    accessSync(p, constants.W_OK);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'EACCES' && (e as NodeJS.ErrnoException).code !== 'EROFS';
  }
}

/** Mount as asked; the exit status mount would give. MountError for what is refused before a server runs. */
export async function rumpMount(r: MountRequest): Promise<number> {
  let fstype = kernelType(r.type);
  if (fstype !== 'auto') serverFor(fstype);
  const spec = fstype === 'tmpfs' ? r.spec : path.resolve(r.spec);
  const dir = path.resolve(r.dir);
  // fusermount3's rule for ordinary users, said before anything starts.
  if (process.geteuid?.() !== 0 && !writable(dir)) {
    throw new MountError(`${dir}: permission denied (an ordinary user mounts only on a directory it may write to)`, EXIT_USAGE);
  }
  const options = [...r.options];
  if (fstype !== 'tmpfs') {
    const found = await probe(spec, partitionOf(options));
    if (fstype === 'auto') {
      if (found === 'unknown') throw new MountError(`${spec}: no FAT, exFAT, NTFS, ext2/3/4, ISO 9660 or UDF file system found (give the type with -t)`);
      fstype = found;
    }
    // As mount does with a write-protected device.
    const ro = options.filter(([k]) => k === 'ro' || k === 'rw').pop()?.[0] === 'ro';
    if (!ro && fstype !== 'cd9660' && !writable(spec)) {
      process.stderr.write(`${r.prog}: WARNING: ${spec} is write-protected, mounted read-only\n`);
      options.push(['ro', true]);
    }
  }
  const server = serverFor(fstype);
  const argv = [...serverCommand(server), spec, dir];
  if (options.length > 0) argv.push('-o', options.map(([k, v]) => v === true ? k : `${k}=${v}`).join(','));
  if (r.namespace !== undefined) {
    const ns = /^\d+$/.test(r.namespace) ? `/proc/${r.namespace}/ns/mnt` : r.namespace;
    argv.unshift('nsenter', `--mount=${ns}`, '--');
  }
  if (r.verbose) process.stdout.write(`${server}: ${argv.join(' ')}\n`);
  if (r.fake) return 0;
  const res = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
  if (res.error) throw new MountError(`cannot run ${argv[0]}: ${res.error.message}`);
  return res.status ?? EXIT_FAILURE;
}
