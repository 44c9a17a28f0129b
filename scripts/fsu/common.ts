// What every fs-utils command shares: a driver panic as `fsu_xxx: panic:
// ...` and exit 70, the image argument (`image`, `image%part=N`, `-t TYPE`,
// `-o part=N,opts`), opening it read-only unless the command writes, the
// sandbox once it is open, coreutils-style messages and exit statuses, user
// and group names, and progress for long copies.
import { spawn } from 'node:child_process';
import fs, { readFileSync, writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { constants as osConstants } from 'node:os';
import { isatty } from 'node:tty';
import { Command, CommanderError } from 'commander';
import { mount, type Ukfs } from '../../src/ukfs/index.js';
import { sandbox } from '../../src/rumpuser/sandbox.js';
import * as native from '../../src/rumpuser/native.js';
import { splitOptions } from '../../servers/options.js';

/** A driver panic (kern/panic.ts aborts the process): the status sysexits calls EX_SOFTWARE. */
export const EXIT_PANIC = 70;

/** A message for the user and the command's exit status. */
export class FsuError extends Error {
  constructor(message: string, readonly status = 1) { super(message); }
}

// glibc's texts (coreutils print these), by errno code.
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted', ENOENT: 'No such file or directory', EIO: 'Input/output error',
  EBADF: 'Bad file descriptor', EACCES: 'Permission denied', EBUSY: 'Device or resource busy',
  EEXIST: 'File exists', EXDEV: 'Invalid cross-device link', ENODEV: 'No such device', ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory', EINVAL: 'Invalid argument', EFBIG: 'File too large', ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system', EMLINK: 'Too many links', ENAMETOOLONG: 'File name too long',
  ENOTEMPTY: 'Directory not empty', ELOOP: 'Too many levels of symbolic links', ENOTSUP: 'Operation not supported',
  EOPNOTSUPP: 'Operation not supported', ENOSYS: 'Function not implemented', ENXIO: 'No such device or address',
  ENODATA: 'No data available', ERANGE: 'Numerical result out of range', EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
};

/** "No such file or directory" for an fs error, else its message. */
export function strerror(e: unknown): string {
  const code = (e as { code?: string }).code;
  return (code && STRERROR[code]) ?? (e instanceof Error ? e.message : String(e));
}
export const codeOf = (e: unknown): string | undefined => (e as { code?: string }).code;

let prog = 'fsu';
/** `fsu_ls: message` on the user's stderr. */
export function warn(message: string): void {
  try { writeSync(2, `${prog}: ${message}\n`); } catch { /* stderr gone */ }
}

/** The image argument: `path`, or `path%part=N` for a partition. */
export function parseImage(arg: string, partOpt?: number): { path: string; partition?: number } {
  const m = /^(.*)%part=(\d+)%?$/.exec(arg);
  if (m) return { path: m[1], partition: Number(m[2]) };
  return { path: arg, partition: partOpt };
}

/** The -o list: part=N for the partition, the rest for the driver. */
function driverOptions(list: string[]): { partition?: number; options: Record<string, string | boolean>; readOnly: boolean } {
  let partition: number | undefined;
  let readOnly = false;
  const options: Record<string, string | boolean> = {};
  for (const [k, v] of list.flatMap(splitOptions)) {
    if (k === 'part') {
      if (v === true || !/^\d+$/.test(v)) throw new FsuError(`bad value for part: ${String(v)}`);
      partition = Number(v);
    } else if (k === 'ro') readOnly = true;
    else options[k] = v;
  }
  return { partition, options, readOnly };
}

// User and group names, read before the sandbox hides /etc.
let passwd: Map<number, string> | undefined, group: Map<number, string> | undefined;
function idFile(path: string): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]);
    }
  } catch { /* no names: numbers */ }
  return m;
}
export const userName = (uid: number) => (passwd ??= idFile('/etc/passwd')).get(uid) ?? String(uid);
export const groupName = (gid: number) => (group ??= idFile('/etc/group')).get(gid) ?? String(gid);
export function userId(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  for (const [id, n] of (passwd ??= idFile('/etc/passwd'))) if (n === name) return id;
  return undefined;
}
export function groupId(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  for (const [id, n] of (group ??= idFile('/etc/group'))) if (n === name) return id;
  return undefined;
}

export interface Context {
  fs: Ukfs;
  /** The image as named on the command line. */
  image: string;
  /** Whether the user's stderr is a terminal (progress is shown then). */
  tty: boolean;
}

export interface CommandSpec<O> {
  /** Without the fsu_ prefix. */
  name: string;
  /** Arguments after the image, in commander syntax: '[file...]'. */
  args: string;
  description: string;
  /** Opens the image read-write (always, or for these options). */
  writes?: boolean | ((opts: O) => boolean);
  /** Needs the host's files after the image is open (get, put): no sandbox then. */
  hostFiles?: boolean;
  /** The status for a usage error or an image that will not open (ls: 2). */
  failStatus?: number;
  options?: (cmd: Command) => void;
  /** Custom parsing instead of commander (find's -name style). */
  parse?: (argv: string[]) => { args: string[]; opts: O };
  run: (ctx: Context, args: string[], opts: O) => Promise<number>;
}

/**
 * The sandbox needs UV_USE_IO_URING=0 from the start (libuv reads it once):
 * the bin scripts' #! line sets it; started some other way, we run ourselves
 * again with it and pass the status on.
 */
function relaunch(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, UV_USE_IO_URING: '0' },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  child.on('close', (code, signal) => process.exit(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
}

/**
 * A kernel panic (kern/panic.ts: "panic: ..." on fd 2, then abort) becomes
 * "fsu_xxx: panic: ..." and exit status 70; kernel log lines get the
 * command's name too. rumpuser prints with node:fs's writeSync, which this
 * replaces (syncBuiltinESMExports carries it to ESM importers).
 */
function catchPanics(name: string): void {
  const original = fs.writeSync;
  fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
    if (fd === 2 && typeof data === 'string' && /^(panic|rumpfs): /.test(data)) data = `${name}: ${data}`;
    return (original as (...a: unknown[]) => number)(fd, data, ...rest);
  }) as typeof fs.writeSync;
  syncBuiltinESMExports();
  process.abort = () => process.exit(EXIT_PANIC);
}

/** The sandbox of a server, as the user running us (no_new_privs + seccomp; as root also an empty root, nobody, no network). */
function enterSandbox(): void {
  new Date().toLocaleString(); // the time zone, before /etc is out of sight
  sandbox({ maxFiles: 64 });
  // A panic exits 70 (catchPanics); nothing else should leave a core file in the user's directory.
  native.setrlimit('core', 0, 0);
}

export function fsuMain<O>(spec: CommandSpec<O>): void {
  const name = `fsu_${spec.name}`;
  prog = name;
  if (process.env.UV_USE_IO_URING !== '0') { relaunch(); return; }
  catchPanics(name);
  const fail = spec.failStatus ?? 1;
  let image = '', args: string[] = [], opts = {} as O & { type?: string; o?: string[] };
  try {
    if (spec.parse) {
      const argv = process.argv.slice(2);
      const common = commonArgs(argv);
      ({ args, opts } = spec.parse(common.rest) as { args: string[]; opts: O & { type?: string; o?: string[] } });
      opts = { ...opts, type: common.type, o: common.o };
      image = common.image;
    } else {
      const cmd = new Command(name)
        .description(spec.description)
        .argument('<image>', 'image file or device (image%part=N for a partition)')
        .option('-t, --type <type>', 'file system type (default: detected)')
        .option('-o, --options <opts>', 'part=N and file-system options', (v: string, acc: string[]) => [...acc, v], [] as string[])
        .exitOverride()
        .configureOutput({ writeErr: (s) => writeSync(2, s), writeOut: (s) => writeSync(1, s) })
        .allowExcessArguments(false);
      spec.options?.(cmd);
      if (spec.args) cmd.argument(spec.args);
      cmd.parse(process.argv);
      [image, ...args] = cmd.args;
      opts = { ...cmd.opts(), o: cmd.opts().options } as typeof opts;
    }
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : fail);
    warn(e instanceof Error ? e.message : String(e));
    process.exit(fail);
  }
  run(spec, image, args, opts, fail).then((status) => process.exit(status), (e) => {
    warn(e instanceof FsuError ? e.message : e instanceof Error ? (codeOf(e) ? `${strerror(e)}` : e.stack ?? e.message) : String(e));
    process.exit(e instanceof FsuError ? e.status : fail);
  });
}

/** -t TYPE and -o OPTS anywhere, and the image (the first operand), for commands that parse the rest themselves. */
function commonArgs(argv: string[]): { image: string; type?: string; o: string[]; rest: string[] } {
  let image: string | undefined, type: string | undefined;
  const o: string[] = [], rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-t' || a === '-o') {
      const v = argv[++i];
      if (v === undefined) throw new FsuError(`option requires an argument -- '${a[1]}'`);
      if (a === '-t') type = v; else o.push(v);
    } else if (image === undefined && !a.startsWith('-')) image = a;
    else rest.push(a);
  }
  if (image === undefined) throw new FsuError('missing image operand');
  return { image, type, o, rest };
}

async function run<O>(spec: CommandSpec<O>, imageArg: string, args: string[], opts: O & { type?: string; o?: string[] }, fail: number): Promise<number> {
  const d = driverOptions(opts.o ?? []);
  const img = parseImage(imageArg, d.partition);
  let fs: Ukfs;
  try {
    fs = await mount(opts.type ?? 'auto', img.path, {
      readOnly: !(typeof spec.writes === 'function' ? spec.writes(opts) : spec.writes) || d.readOnly, partition: img.partition, options: d.options, cred: undefined,
    });
  } catch (e) {
    throw new FsuError(`${imageArg}: ${codeOf(e) === 'ENODEV' && !opts.type ? 'no file system this library knows (use -t TYPE)' : strerror(e)}`, fail);
  }
  userName(0); groupName(0);
  if (!spec.hostFiles) enterSandbox();
  try {
    return await spec.run({ fs, image: imageArg, tty: isatty(2) }, args, opts);
  } finally {
    await fs.unmount();
  }
}

/** Bytes, rate and time left on the user's terminal, at most five times a second; nothing when not a terminal. */
export class Progress {
  private done = 0;
  private last = 0;
  private readonly t0 = Date.now();
  constructor(private readonly on: boolean, private readonly total: number) {}
  add(n: number): void {
    this.done += n;
    const now = Date.now();
    if (!this.on || now - this.last < 200) return;
    this.last = now;
    const rate = this.done / Math.max(0.001, (now - this.t0) / 1000);
    const eta = this.total > this.done ? Math.round((this.total - this.done) / rate) : 0;
    try { writeSync(2, `\r${human(this.done)}B / ${human(this.total)}B  ${human(rate)}B/s  eta ${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, '0')}  `); } catch { /* gone */ }
  }
  end(): void {
    if (this.on && this.last) try { writeSync(2, '\n'); } catch { /* gone */ }
  }
}

/** ls -h / du -h / df -h: powers of 1024, one decimal below 10, rounded up (as coreutils). */
export function human(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  if (i === 0) return String(n);
  if (v < 10) {
    const r = Math.ceil(v * 10) / 10;
    return r >= 10 ? `${Math.ceil(r)}${units[i]}` : `${r.toFixed(1)}${units[i]}`;
  }
  const r = Math.ceil(v);
  return r >= 1024 && i < units.length - 1 ? `1.0${units[i + 1]}` : `${r}${units[i]}`;
}
