// The rump_msdos command line: NetBSD mount_msdos's flags and Linux's
// fat/vfat -o options (those with an effect here, and those accepted as
// no-ops, each with the reason), as a ServerSpec for the runner.
import { MNT_RDONLY, type MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { hostGmtoff } from './localtime.js';
import { genericOptions, parseGroup, parseMode, parseMountArgs, parseUser, UsageError } from './options.js';
import type { ServerSpec } from './runner.js';

export const USAGE = 'usage: rump_msdos [-fl] [-u uid] [-g gid] [-m mask] [-M mask] [-t gmtoff] [-o options] special node';

export const HELP = `${USAGE}

Mount the FAT12/16/32 file system (with VFAT long names) on special, an
image file or block device, at node: the driver runs in a sandboxed rump
server attached through FUSE. Unmount with umount or rumpumount.

Flags (NetBSD mount_msdos):
  -f             stay in the foreground (the server's messages on stderr)
  -r, -w         read-only, read-write (the default)
  -l             long names (always on; -s and -9 are refused)
  -u uid, -g gid owner and group of every file (default: the mounter's)
  -m mask        permission bits files may have (default 755)
  -M mask        permission bits directories may have (default: -m)
  -t gmtoff      seconds east of UTC of the times on the medium
  -o options     comma-separated options, below
  --help, --version

Options (-o):
  ro, rw, sync, noexec, exec       as mount(8); dirsync: directory changes written through
  part=N                           partition N (from 1) of a partitioned disk image
  rumpuser=NAME                    the unprivileged user the server runs as
  restart=N                        with ro: a crashed server restarts, N times a minute at most (default 3; 0: never)
  uid=, gid=, umask=, fmask=, dmask=   as Linux vfat (octal masks of bits cleared)
  shortname=lower|win95|winnt|mixed    how 8.3 names show and are made (default mixed)
  codepage=437                     the code page of short names
  tz=UTC, time_offset=MINUTES      the medium's times are UTC, or MINUTES east of it
  showexec                         execute bits only for .EXE, .COM and .BAT
  quiet                            chown succeeds without effect
  flush                            a closed file is written to the medium at once
  allow_utime=MASK                 020: the group, 002: others may set times
  rodir                            the read-only attribute applies to directories
  nonumtail                        shortened short names without ~1 while free
  nfs[=stale_rw|nostale_ro]        accepted; nostale_ro mounts read-only
  accepted without effect: errors=, check=, iocharset=, nls=, utf8[=], uni_xlate,
    discard, fat=, blocksize=, usefree, dos1xfloppy, sys_immutable, debug, dots,
    nodots, dotsOK=, posix, conv=, cvf_format=, cvf_option=, nonempty, and
    mount(8)'s defaults, auto, noauto, nofail, user, nosuid, nodev, noatime, ...
`;

function parseGmtoff(v: string | true): number {
  if (v === true || !/^[+-]?\d+$/.test(v) || Math.abs(Number(v)) > 24 * 3600) throw new UsageError(`bad value for gmtoff: ${String(v)} (seconds east of UTC)`);
  return Number(v);
}

/**
 * Linux fat/vfat options (mount(8)) accepted and checked, that change
 * nothing here: the value each takes (null: none), and why it is a no-op.
 */
const NO_OPS: Record<string, RegExp | null> = {
  // Names always reach the host as UTF-8, whatever the charset asked for.
  iocharset: /^[\w.:-]+$/, nls: /^[\w.:-]+$/, utf8: /^(1|0|yes|no|true|false)$/, uni_xlate: null,
  // Errors are the failing operation's EIO (and a log line); nothing panics or remounts.
  errors: /^(panic|continue|remount-ro)$/,
  // Name checks of the msdos (8.3-only) type; vfat names follow the vfat rules.
  check: /^(r|relaxed|n|normal|s|strict)$/, dots: null, nodots: null, dotsOK: /^(yes|no)$/, posix: null,
  // The FAT type and geometry come from the boot sector; the free count is always counted.
  fat: /^(12|16|32)$/, blocksize: /^(512|1024|2048)$/, usefree: null, dos1xfloppy: null,
  // No TRIM through an image file; no immutable flag through FUSE; no debug output.
  discard: null, sys_immutable: null, debug: null,
  // Obsolete in Linux too.
  conv: /^\w+$/, cvf_format: /^[\w.-]+$/, cvf_option: /^[\w.=-]*$/,
};

function checkNoOp(k: string, v: string | true): void {
  const re = NO_OPS[k];
  if (re === null ? v !== true : v !== true && !re.test(v)) throw new UsageError(`bad value for ${k}: ${String(v)}`);
  if (v === true && re !== null && k !== 'utf8') throw new UsageError(`option ${k} needs a value`);
}

export function parse(argv: string[]): ServerSpec {
  const args = parseMountArgs(argv, { u: 'uid', g: 'gid', m: 'mask', M: 'dirmask', t: 'gmtoff' },
    { l: 'longnames', s: 'shortnames', 9: 'nowin95' });
  const g = genericOptions(args.options);
  // Linux vfat's defaults: the mounter's ids, its umask (022 here), local time.
  const options: MountOptions = {
    uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mask: 0o755,
    gmtoff: hostGmtoff(),
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
      // Linux: minutes to subtract from the FAT's local times to get UTC.
      case 'time_offset':
        if (v === true || !/^[+-]?\d+$/.test(v) || Math.abs(Number(v)) > 24 * 60) throw new UsageError(`bad value for time_offset: ${String(v)} (minutes east of UTC)`);
        options.gmtoff = Number(v) * 60;
        break;
      case 'showexec': case 'quiet': case 'flush': case 'rodir': case 'nonumtail': case 'dirsync':
        if (v !== true) throw new UsageError(`option ${k} takes no value`);
        options[k] = true;
        break;
      case 'allow_utime': options.allow_utime = parseMode(k, v) & 0o022; break;
      // nostale_ro: Linux mounts read-only.
      case 'nfs':
        if (v !== true && v !== 'stale_rw' && v !== 'nostale_ro') throw new UsageError(`bad value for nfs: ${v} (stale_rw or nostale_ro)`);
        if (v === 'nostale_ro') g.flags |= MNT_RDONLY;
        break;
      // mount_msdos -l: long names, which this driver always reads and writes.
      case 'longnames': break;
      case 'shortnames': case 'nowin95':
        throw new UsageError(`-${k === 'shortnames' ? 's' : '9'} is not supported: this driver always reads and writes long names`);
      default:
        if (!Object.hasOwn(NO_OPS, k)) throw new UsageError(`unknown option ${k}`);
        checkNoOp(k, v);
    }
  }
  if (dirmask !== undefined) options.dirmask = dirmask;
  const spec = diskSpec('rump_msdos', 'msdos', args, g, options);
  // allow_utime and quiet loosen the owner rules, which the host kernel would
  // apply first: let the server decide (FAT has no FIFOs or devices for the
  // kernel's checks to cover).
  if (options.allow_utime !== undefined || options.quiet) spec.serverPermissions = true;
  return spec;
}
