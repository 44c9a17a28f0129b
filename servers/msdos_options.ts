// The rump_msdos command line: NetBSD mount_msdos's flags and Linux's
// fat/vfat -o options (those with an effect here, and those accepted as
// no-ops, each with the reason), as a ServerSpec for the runner.
import { MNT_RDONLY, type MountOptions } from '../src/kern/index.js';
import { diskSpec, fsOnly } from './disk.js';
import { genericOptions, parseGroup, parseMode, parseMountArgs, parseUser, UsageError } from './options.js';
import type { ServerSpec } from './runner.js';

export const USAGE = 'usage: rump_msdos [-fl] [-u uid] [-g gid] [-m mask] [-M mask] [-t gmtoff] [-o options] special node';

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
  return diskSpec('rump_msdos', 'msdos', args, g, options);
}
