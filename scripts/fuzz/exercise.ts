// What every mutant goes through: mount, walk the whole tree (bounded),
// read every file (bounded), read every symlink, and when read-write: create,
// read back and remove a file and a directory; then unmount. The same walk
// runs on the library (in-process) and on node:fs through a real mount.
// Each operation is a named step, reported before it starts, so that the
// parent can time it out and say where a hang or a death happened.
import * as nodefs from 'node:fs/promises';
import path from 'node:path';

export interface Limits {
  /** Directory entries visited in all, so a huge corrupt directory is not a hang. */
  maxEntries: number;
  maxDepth: number;
  /** Bytes read from one file, and from all files of a mutant. */
  maxFileBytes: number;
  maxTotalBytes: number;
}

export const defaultLimits: Limits = { maxEntries: 2000, maxDepth: 32, maxFileBytes: 256 << 10, maxTotalBytes: 16 << 20 };

/** Something that failed: an errno (code) or, for a crash, an exception with its stack. */
export interface Failure { step: string; code?: string; message: string; stack?: string }

export interface ExerciseResult {
  mounted: boolean;
  /** Why the mount was refused (an errno error). */
  refusal?: Failure;
  /** Operations that failed with an errno after a successful mount. */
  errors: Failure[];
  /** A non-errno exception escaped the library: the walk stopped there. */
  crash?: Failure;
  entries: number;
  bytes: number;
  /** Oddities that are not failures (bad names, limits reached). */
  notes: string[];
  /** The mount is gone (false: the worker should not be reused). */
  clean: boolean;
}

export type Job =
  | { mode: 'inprocess'; mountType: string; image: string; readWrite: boolean; limits: Limits }
  | { mode: 'path'; root: string; readWrite: boolean; limits: Limits };

export interface StepContext { step(name: string): void }

/** The calls the walk makes: both ukfs's mount object and node:fs/promises have them. */
interface Handle { read(buf: Uint8Array, off: number, len: number, pos: number): Promise<{ bytesRead: number }>; close(): Promise<void> }
interface StatLike { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }
interface FsLike {
  readdir(p: string, o: { withFileTypes: true }): Promise<{ name: string }[]>;
  lstat(p: string): Promise<StatLike>;
  open(p: string, flags: string): Promise<Handle>;
  readlink(p: string): Promise<string>;
  readFile(p: string): Promise<Uint8Array>;
  writeFile(p: string, data: Uint8Array): Promise<void>;
  unlink(p: string): Promise<void>;
  mkdir(p: string): Promise<unknown>;
  rmdir(p: string): Promise<void>;
}

export function isErrnoError(e: unknown): e is Error & { code: string } {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/** Thrown out of a step when the error is not an errno: ends the walk as a crash. */
class Crash extends Error {
  constructor(readonly failure: Failure) { super(failure.message); }
}

function describe(step: string, e: unknown): Failure {
  if (isErrnoError(e)) return { step, code: e.code, message: e.message };
  const err = e instanceof Error ? e : new Error(String(e));
  return { step, message: `${err.name}: ${err.message}`, stack: err.stack };
}

export async function exercise(job: Job, ctx: StepContext): Promise<ExerciseResult> {
  const res: ExerciseResult = { mounted: false, errors: [], entries: 0, bytes: 0, notes: [], clean: true };
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | typeof FAILED> => {
    ctx.step(name);
    try {
      return await fn();
    } catch (e) {
      const f = describe(name, e);
      if (!f.code) throw new Crash(f);
      res.errors.push(f);
      return FAILED;
    }
  };
  let unmount: (() => Promise<void>) | undefined;
  try {
    let fsx: FsLike;
    if (job.mode === 'inprocess') {
      const { mount } = await import('../../src/ukfs/index.js');
      ctx.step('mount');
      try {
        const m = await mount(job.mountType, job.image, { readOnly: !job.readWrite });
        fsx = m as unknown as FsLike;
        unmount = () => m.unmount();
      } catch (e) {
        const f = describe('mount', e);
        if (f.code) res.refusal = f;
        else res.crash = f;
        return res;
      }
    } else {
      fsx = rooted(job.root);
    }
    res.mounted = true;
    await walk(fsx, job, res, step);
    if (job.readWrite) await probeWrites(fsx, res, step);
  } catch (e) {
    if (!(e instanceof Crash)) throw e;
    res.crash = e.failure;
  } finally {
    if (unmount) {
      // After a crash the kernel's state is suspect: try, but do not reuse this worker.
      if (res.crash) res.clean = false;
      const before = res.errors.length;
      await step('unmount', unmount).catch((e: unknown) => { res.crash ??= (e as Crash).failure; });
      if (res.errors.length > before) res.clean = false;
    }
  }
  return res;
}

/** What a step returns when its operation failed with an errno (recorded in the result). */
const FAILED = Symbol('failed');
type Step = <T>(name: string, fn: () => Promise<T>) => Promise<T | typeof FAILED>;

async function walk(fsx: FsLike, job: Job, res: ExerciseResult, step: Step): Promise<void> {
  const { limits } = job;
  const queue: { dir: string; depth: number }[] = [{ dir: '/', depth: 0 }];
  while (queue.length > 0) {
    const { dir, depth } = queue.shift()!;
    const entries = await step(`readdir ${dir}`, () => fsx.readdir(dir, { withFileTypes: true }));
    if (entries === FAILED) continue;
    for (const d of entries) {
      if (res.entries >= limits.maxEntries) {
        res.notes.push(`stopped at ${limits.maxEntries} entries`);
        return;
      }
      res.entries++;
      if (d.name === '' || d.name === '.' || d.name === '..' || /[/\0]/.test(d.name)) {
        res.notes.push(`bad name ${JSON.stringify(d.name)} in ${dir}`);
        continue;
      }
      const p = path.posix.join(dir, d.name);
      const st = await step(`lstat ${p}`, () => fsx.lstat(p));
      if (st === FAILED) continue;
      if (st.isDirectory()) {
        if (depth + 1 < limits.maxDepth) queue.push({ dir: p, depth: depth + 1 });
        else res.notes.push(`depth limit at ${p}`);
      } else if (st.isSymbolicLink()) {
        await step(`readlink ${p}`, () => fsx.readlink(p));
      } else if (st.isFile() && res.bytes < limits.maxTotalBytes) {
        await step(`read ${p}`, () => readBounded(fsx, p, Math.min(limits.maxFileBytes, limits.maxTotalBytes - res.bytes), res));
      }
    }
  }
}

async function readBounded(fsx: FsLike, p: string, max: number, res: ExerciseResult): Promise<void> {
  const fh = await fsx.open(p, 'r');
  try {
    const buf = new Uint8Array(64 << 10);
    for (let pos = 0; pos < max;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, max - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      res.bytes += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

const PROBE_FILE = '/FUZZPROB.BIN', PROBE_DIR = '/FUZZDIR';

async function probeWrites(fsx: FsLike, res: ExerciseResult, step: Step): Promise<void> {
  const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7 + 3) & 0xff);
  if (await step(`write ${PROBE_FILE}`, () => fsx.writeFile(PROBE_FILE, data)) === FAILED) return;
  const back = await step(`read back ${PROBE_FILE}`, () => fsx.readFile(PROBE_FILE));
  if (back !== FAILED && Buffer.compare(Buffer.from(back), Buffer.from(data)) !== 0) {
    res.errors.push({ step: `read back ${PROBE_FILE}`, code: 'MISMATCH', message: `read back ${back.length} bytes that differ from the ${data.length} written` });
  }
  await step(`unlink ${PROBE_FILE}`, () => fsx.unlink(PROBE_FILE));
  if (await step(`mkdir ${PROBE_DIR}`, () => fsx.mkdir(PROBE_DIR)) !== FAILED) {
    await step(`rmdir ${PROBE_DIR}`, () => fsx.rmdir(PROBE_DIR));
  }
}

/** node:fs/promises with paths relative to a mount point. */
function rooted(root: string): FsLike {
  const at = (p: string) => path.join(root, p);
  return {
    readdir: (p, o) => nodefs.readdir(at(p), o),
    lstat: p => nodefs.lstat(at(p)),
    open: (p, f) => nodefs.open(at(p), f),
    readlink: p => nodefs.readlink(at(p)),
    readFile: p => nodefs.readFile(at(p)),
    writeFile: (p, d) => nodefs.writeFile(at(p), d),
    unlink: p => nodefs.unlink(at(p)),
    mkdir: p => nodefs.mkdir(at(p)),
    rmdir: p => nodefs.rmdir(at(p)),
  };
}
