#!/usr/bin/env node
// rumpmount: mount as NetBSD's mount does with -o rump: the option rump (or
// a type rump, rump.<fs>, fuse.rump_<fs>) runs the file system in a
// sandboxed rump server; anything else goes to the system's mount as is.
//   rumpmount [-fnrvw] [-t type] [-o options] special node
//   rumpmount [-fnrvw] [-T fstab] [-o options] special | node
//   rumpmount -a [-fnv] [-t types] [-T fstab]   every rump line of fstab without noauto
// Types: msdos, msdosfs, vfat, fat; cd9660, iso9660; tmpfs; auto (detect).
import { spawnSync } from 'node:child_process';
import { helpAndVersion, splitOptions } from '../servers/options.js';
import { commandMain } from './mount/main.js';
import { rumpMount, type MountRequest } from './mount/mount.js';
import { canonical, findMount, readFstab, resolveSpec, type FstabEntry } from './mount/tables.js';
import { EXIT_FAILURE, EXIT_SOME_FAILED, EXIT_USAGE, MountError, wantsRump } from './mount/types.js';

const USAGE = `usage: rumpmount [-fnrvw] [-t type] [-o options] special node
       rumpmount [-fnrvw] [-T fstab] [-o options] special | node
       rumpmount -a [-fnv] [-t types] [-T fstab]`;

const HELP = `${USAGE}

Mount as mount(8) does, running the file system in a sandboxed rump server
(rump_msdos, rump_cd9660, rump_tmpfs) when the option rump or a type rump,
rump.<fs> or fuse.rump_<fs> asks for it; anything else goes to /bin/mount.

  -t type        msdos (msdosfs, vfat, fat), cd9660 (iso9660), tmpfs, or auto
                 (detected from the device); with -a, the fstab types to mount
  -o options     comma-separated; rump selects a rump server; the rest go to it
  -a             every fstab line asking for rump, without noauto
  -T fstab       another fstab (default /etc/fstab)
  -f             fake: check and say what would be done, mount nothing
  -v             verbose
  -r, -w         read-only, read-write
  -n             accepted (no mtab is kept)
  --help, --version

Long forms: --all, --fake, --verbose, --no-mtab, --read-only, --rw,
--read-write, --types, --options, --fstab.`;

interface Args {
  all: boolean;
  fake: boolean;
  verbose: boolean;
  type?: string;
  options: [string, string | true][];
  fstab: string;
  operands: string[];
  /** A flag that only the system's mount knows. */
  foreign: boolean;
}

/** mount's long options that mean one of ours. */
const LONG: Record<string, string> = {
  '--all': '-a', '--fake': '-f', '--verbose': '-v', '--no-mtab': '-n', '--read-only': '-r', '--rw': '-w', '--read-write': '-w',
  '--types': '-t', '--options': '-o', '--fstab': '-T',
};

function parse(argv: readonly string[]): Args {
  const a: Args = { all: false, fake: false, verbose: false, options: [], fstab: '/etc/fstab', operands: [], foreign: false };
  for (let i = 0; i < argv.length; i++) {
    let s = argv[i];
    if (s === '--') { a.operands.push(...argv.slice(i + 1)); break; }
    if (!s.startsWith('-') || s === '-') { a.operands.push(s); continue; }
    if (s.startsWith('--')) {
      const [name, value] = s.split(/=(.*)/s);
      if (!(name in LONG)) { a.foreign = true; continue; }
      s = LONG[name] + (value ?? '');
    }
    for (let j = 1; j < s.length; j++) {
      const c = s[j];
      if (c === 'a') { a.all = true; continue; }
      if (c === 'f') { a.fake = true; continue; }
      if (c === 'v') { a.verbose = true; continue; }
      if (c === 'n') continue;
      if (c === 'r') { a.options.push(['ro', true]); continue; }
      if (c === 'w') { a.options.push(['rw', true]); continue; }
      if (c !== 't' && c !== 'o' && c !== 'T') { a.foreign = true; continue; }
      const value = s.slice(j + 1) || argv[++i];
      if (value === undefined) throw new MountError(`flag -${c} needs a value\n${USAGE}`, EXIT_USAGE);
      if (c === 't') a.type = value;
      else if (c === 'o') a.options.push(...splitOptions(value));
      else a.fstab = value;
      break;
    }
  }
  return a;
}

/** The system's mount, with exactly our arguments. */
function handOver(): number {
  const r = spawnSync('/bin/mount', process.argv.slice(2), { stdio: 'inherit' });
  if (r.error) throw new MountError(`cannot run /bin/mount: ${r.error.message}`);
  return r.status ?? EXIT_FAILURE;
}

function fromEntry(e: FstabEntry, a: Args, type = a.type ?? e.type): MountRequest {
  return {
    prog: 'rumpmount', type, spec: resolveSpec(e.spec), dir: e.file,
    options: [...e.options, ...a.options], fake: a.fake, verbose: a.verbose,
  };
}

/** The fstab line for a mount point or device, as mount finds it (a LABEL= that names no device matches nothing). */
function lookUp(a: Args, what: string): FstabEntry | undefined {
  const c = canonical(what);
  const names = (spec: string) => {
    try {
      return canonical(resolveSpec(spec)) === c;
    } catch (e) {
      if (e instanceof MountError) return false;
      throw e;
    }
  };
  return readFstab(a.fstab).find(e => canonical(e.file) === c || e.spec === what || names(e.spec));
}

/** mount -a: each line in turn (-t: only lines of those types); 0 if all mounted, 64 if only some, 32 if none. */
async function mountAll(a: Args): Promise<number> {
  let ok = 0, failed = 0;
  for (const e of readFstab(a.fstab)) {
    if (!wantsRump(e.type, e.options) || e.options.some(([k]) => k === 'noauto')) continue;
    if (a.type !== undefined && !a.type.split(',').includes(e.type)) continue;
    if (findMount(e.file)?.target === canonical(e.file)) {
      if (a.verbose) process.stdout.write(`${e.file}: already mounted\n`);
      continue;
    }
    let status: number;
    try {
      status = await rumpMount(fromEntry(e, a, e.type));
    } catch (err) {
      if (!(err instanceof MountError)) throw err;
      process.stderr.write(`rumpmount: ${e.file}: ${err.message}\n`);
      status = err.status;
    }
    if (status === 0) ok++;
    else failed++;
  }
  return failed === 0 ? 0 : ok > 0 ? EXIT_SOME_FAILED : EXIT_FAILURE;
}

helpAndVersion('rumpmount', HELP);
void commandMain('rumpmount', async () => {
  const a = parse(process.argv.slice(2));
  const rumpAsked = wantsRump(a.type, a.options);
  if (a.foreign) {
    if (rumpAsked) throw new MountError(`unknown flag\n${USAGE}`, EXIT_USAGE);
    return handOver();
  }
  if (a.all) {
    if (a.operands.length > 0) throw new MountError(`-a takes no operands\n${USAGE}`, EXIT_USAGE);
    return mountAll(a);
  }
  if (a.operands.length === 1) {
    const e = lookUp(a, a.operands[0]);
    if (e === undefined) {
      if (rumpAsked) throw new MountError(`${a.operands[0]}: not found in ${a.fstab}`, EXIT_USAGE);
      return handOver();
    }
    return wantsRump(a.type ?? e.type, [...e.options, ...a.options]) ? rumpMount(fromEntry(e, a)) : handOver();
  }
  if (a.operands.length === 2 && rumpAsked) {
    return rumpMount({ prog: 'rumpmount', type: a.type, spec: a.operands[0], dir: a.operands[1], options: a.options, fake: a.fake, verbose: a.verbose });
  }
  return handOver();
});
