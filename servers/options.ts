// Command-line parsing shared by every rump_<fs>: the mount_<fs> syntax
// (short flags that set options, `-o a=b,c` repeated and merged in order,
// later settings winning, as mount does), the generic mount options, and
// value parsers (sizes, modes, users and groups by name or number); and
// --help and --version, for every command.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { MNT_NOEXEC, MNT_RDONLY, MNT_SYNCHRONOUS } from '../src/kern/index.js';

/** A mistake on the command line: the server prints it with its usage and exits 1. */
export class UsageError extends Error {}

/**
 * A warning about the command line, said once per mount: a server that a
 * read-only mount's supervisor restarted (P2K_FUSE_FD) parses the same
 * command line as the first server, which has said it already.
 */
export function usageWarning(prog: string, message: string): void {
  if (process.env.P2K_FUSE_FD === undefined) process.stderr.write(`${prog}: ${message}\n`);
}

export interface ParsedArgs {
  positional: string[];
  /** Every option in the order given: -o pieces and the flags that stand for options. */
  options: Map<string, string | true>;
  /** -f: stay in the foreground. */
  foreground: boolean;
}

/**
 * getopt-style parsing: `flags` maps each fs-specific flag letter that takes
 * a value to the option it sets (rump_tmpfs: s -> size), `switches` each
 * one that takes none (rump_msdos: l -> longnames). Always known: -o
 * options, -r (ro), -w (rw), -f (foreground). Flags may follow the
 * operands (mount helpers get `dev dir -o opts`); `--` ends the flags.
 */
export function parseMountArgs(argv: readonly string[], flags: Readonly<Record<string, string>>,
  switches: Readonly<Record<string, string>> = {}): ParsedArgs {
  const out: ParsedArgs = { positional: [], options: new Map(), foreground: false };
  const set = (k: string, v: string | true) => { out.options.delete(k); out.options.set(k, v); };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { out.positional.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-') { out.positional.push(a); continue; }
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (c === 'f') { out.foreground = true; continue; }
      if (c === 'r') { set('ro', true); continue; }
      if (c === 'w') { set('rw', true); continue; }
      if (c in switches) { set(switches[c], true); continue; }
      if (c !== 'o' && !(c in flags)) throw new UsageError(`unknown flag -${c}`);
      let value = a.slice(j + 1);
      if (value === '') {
        if (++i >= argv.length) throw new UsageError(`flag -${c} needs a value`);
        value = argv[i];
      }
      if (c === 'o') for (const [k, v] of splitOptions(value)) set(k, v);
      else set(flags[c], value);
      break;
    }
  }
  return out;
}

/** "a=b,c" -> [[a, b], [c, true]] */
export function splitOptions(s: string): [string, string | true][] {
  return s.split(',').filter(p => p.length > 0).map(p => {
    const eq = p.indexOf('=');
    return eq < 0 ? [p, true] : [p.slice(0, eq), p.slice(eq + 1)];
  });
}

/**
 * Options mount(8), fstab or mount.fuse3 (which adds dev,suid as root) pass
 * that mean nothing to a rump server: FUSE mounts are always nosuid,nodev,
 * and access times are the driver's business.
 */
const IGNORED = new Set([
  'rump', 'defaults', 'auto', 'noauto', 'nofail', 'nosuid', 'nodev', 'suid', 'dev', 'async', 'user', 'nouser', 'users',
  'owner', 'group', '_netdev', 'atime', 'noatime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'lazytime',
  'nolazytime', 'diratime', 'nodiratime', 'silent', 'loud',
  // FUSE's: a mount point need not be empty.
  'nonempty',
]);

export interface GenericOptions {
  /** MNT_RDONLY, MNT_SYNCHRONOUS, MNT_NOEXEC. */
  flags: number;
  /** rumpuser=NAME: the user the sandboxed server becomes. */
  sandboxUser?: string;
  /** cache=MiB: the mount's cache budget (the kernel's; every driver). */
  cache?: number;
  /** restart=N: a read-only mount's crashed server is restarted up to N times a minute (0: never). */
  restart?: number;
  /** What is left: options of the file system itself, in order. */
  fsOptions: Map<string, string | true>;
}

/** Take the generic mount options (ro, rw, sync, async, noexec, rumpuser=, cache=, restart=) out of the list. */
export function genericOptions(options: ReadonlyMap<string, string | true>): GenericOptions {
  const g: GenericOptions = { flags: 0, fsOptions: new Map() };
  for (const [k, v] of options) {
    if (IGNORED.has(k) || k.startsWith('x-')) continue;
    switch (k) {
      case 'ro': g.flags |= MNT_RDONLY; break;
      case 'rw': g.flags &= ~MNT_RDONLY; break;
      case 'sync': g.flags |= MNT_SYNCHRONOUS; break;
      case 'noexec': g.flags |= MNT_NOEXEC; break;
      case 'exec': g.flags &= ~MNT_NOEXEC; break;
      case 'rumpuser':
        if (v === true || v === '') throw new UsageError('option rumpuser needs a user name');
        g.sandboxUser = v;
        break;
      case 'cache':
        if (v === true || !/^[1-9]\d{0,6}$/.test(v)) throw new UsageError(`bad value for cache: ${String(v)} (MiB, from 1)`);
        g.cache = Number(v);
        break;
      case 'restart':
        if (v === true || !/^\d{1,3}$/.test(v)) throw new UsageError(`bad value for restart: ${String(v)} (restarts a minute, 0 for none)`);
        g.restart = Number(v);
        break;
      default: g.fsOptions.set(k, v);
    }
  }
  return g;
}

function need(name: string, v: string | true): string {
  if (v === true || v.trim() === '') throw new UsageError(`option ${name} needs a value`);
  return v.trim();
}

const SUFFIX: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A byte count or count with k/m/g/t suffix; with allowPercent, N% of the machine's memory. */
export function parseSize(name: string, v: string | true, allowPercent = false): number {
  const s = need(name, v);
  const pct = allowPercent ? /^(\d+)%$/.exec(s) : null;
  if (pct) return Math.floor(os.totalmem() * Number(pct[1]) / 100);
  const m = /^(\d+)([kmgt]?)b?$/i.exec(s);
  const n = m ? Number(m[1]) * SUFFIX[m[2].toLowerCase()] : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`bad value for ${name}: ${s}`);
  return n;
}

/** An octal mode such as 755 or 1777. */
export function parseMode(name: string, v: string | true): number {
  const s = need(name, v);
  if (!/^[0-7]{1,5}$/.test(s) || parseInt(s, 8) > 0o7777) throw new UsageError(`bad mode for ${name}: ${s} (octal, at most 7777)`);
  return parseInt(s, 8);
}

function idFromFile(file: string, what: string, name: string, v: string | true): number {
  const s = need(name, v);
  if (/^\d+$/.test(s)) return Number(s);
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] === s) return Number(f[2]);
  }
  throw new UsageError(`unknown ${what} for ${name}: ${s}`);
}

/** A user name or uid. */
export function parseUser(name: string, v: string | true): number {
  return idFromFile('/etc/passwd', 'user', name, v);
}

/** A group name or gid. */
export function parseGroup(name: string, v: string | true): number {
  return idFromFile('/etc/group', 'group', name, v);
}

/** The package's version: package.json above dist/ (built) or above servers/ (sources). */
export function packageVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    const file = new URL(rel, import.meta.url);
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'rumpfs' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

/**
 * --help or --version anywhere before `--`: the help (synopsis and options)
 * or the version on stdout, and exit 0, before anything else is looked at.
 */
export function helpAndVersion(prog: string, help: string, argv: readonly string[] = process.argv.slice(2)): void {
  for (const a of argv) {
    if (a === '--') return;
    if (a === '--help') {
      process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
      process.exit(0);
    }
    if (a === '--version') {
      process.stdout.write(`${prog} (rumpfs) ${packageVersion()}\n`);
      process.exit(0);
    }
  }
}
