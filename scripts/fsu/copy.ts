// cp(1)'s logic between any two node:fs/promises-shaped file systems: the
// host's and an image's (get, put, ecp) or an image and itself (cp).
import * as hostfs from 'node:fs/promises';
import { posix } from 'node:path';
import { codeOf, Progress, strerror, warn } from './common.js';

/** The calls a copy needs; node:fs/promises and Ukfs both have them. */
export type Fsp = Pick<typeof hostfs, 'lstat' | 'stat' | 'readdir' | 'mkdir' | 'open' | 'symlink' | 'readlink' | 'chmod' | 'lchown' | 'lutimes' | 'utimes' | 'unlink'>;
export const host = hostfs as unknown as Fsp;

export interface CopyOptions { recursive?: boolean; preserve?: boolean; tty: boolean }

interface St { ino: number; mode: number; uid: number; gid: number; size: number; atime: Date; mtime: Date; isDirectory(): boolean; isSymbolicLink(): boolean; isFile(): boolean }

const missing = async (fs: Fsp, p: string): Promise<St | null> => {
  try { return await fs.stat(p) as St; } catch (e) { if (codeOf(e) === 'ENOENT') return null; throw e; }
};

/** Total bytes of regular files under p (for progress). */
async function sizeOf(fs: Fsp, p: string): Promise<number> {
  const st = await fs.lstat(p) as St;
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let n = 0;
  for (const name of await fs.readdir(p) as string[]) n += await sizeOf(fs, posix.join(p, name)).catch(() => 0);
  return n;
}

async function copyData(from: Fsp, src: string, to: Fsp, dst: string, mode: number, progress: Progress): Promise<void> {
  const i = await from.open(src, 'r');
  try {
    const o = await to.open(dst, 'w', mode);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0, n; (n = (await i.read(buf, 0, buf.length, pos)).bytesRead) > 0; pos += n) {
        await o.write(buf, 0, n, pos);
        progress.add(n);
      }
    } finally {
      await o.close();
    }
  } finally {
    await i.close();
  }
}

/** Owner, mode and times (-p); an owner the target cannot take is not an error (as cp -p for non-root). */
async function preserve(to: Fsp, dst: string, st: St): Promise<void> {
  await to.lchown(dst, st.uid, st.gid).catch(() => undefined);
  if (!st.isSymbolicLink()) await to.chmod(dst, st.mode & 0o7777).catch(() => undefined);
  await to.lutimes(dst, st.atime, st.mtime).catch(() => undefined);
}

/** Copy one operand; messages as cp's; returns false if anything failed. */
/** ancestors: file ids of the source directories being copied (a corrupt image's directory loop stops there). */
async function copyOne(from: Fsp, src: string, to: Fsp, dst: string, o: CopyOptions, progress: Progress, ancestors = new Set<number>()): Promise<boolean> {
  let st: St;
  try {
    st = await from.lstat(src) as St;
  } catch (e) {
    warn(`cannot stat '${src}': ${strerror(e)}`);
    return false;
  }
  try {
    if (st.isDirectory()) {
      if (!o.recursive) { warn(`-r not specified; omitting directory '${src}'`); return false; }
      if (ancestors.has(st.ino)) { warn(`'${src}': directory loop (a corrupted file system): not copied`); return false; }
      const existing = await missing(to, dst);
      if (existing && !existing.isDirectory()) { warn(`cannot overwrite non-directory '${dst}' with directory '${src}'`); return false; }
      if (!existing) await to.mkdir(dst, { mode: (st.mode & 0o7777) | 0o700 });
      let ok = true;
      ancestors.add(st.ino);
      for (const name of (await from.readdir(src) as string[]).sort())
        ok = await copyOne(from, posix.join(src, name), to, posix.join(dst, name), o, progress, ancestors) && ok;
      ancestors.delete(st.ino);
      if (o.preserve) await preserve(to, dst, st);
      else if (!existing) await to.chmod(dst, st.mode & 0o7777).catch(() => undefined);
      return ok;
    }
    const existing = await missing(to, dst).catch(() => null);
    if (existing?.isDirectory()) { warn(`cannot overwrite directory '${dst}' with non-directory`); return false; }
    if (st.isSymbolicLink()) {
      if (existing) await to.unlink(dst);
      await to.symlink(await from.readlink(src), dst);
    } else if (st.isFile()) {
      await copyData(from, src, to, dst, st.mode & 0o777, progress);
    } else {
      warn(`cannot copy special file '${src}'`);
      return false;
    }
    if (o.preserve) await preserve(to, dst, st);
    return true;
  } catch (e) {
    warn(`cannot create '${dst}': ${strerror(e)}`);
    return false;
  }
}

/** cp src... dest: into dest when it is a directory (or several sources). Exit status as cp's. */
export async function copy(from: Fsp, sources: string[], to: Fsp, dest: string, o: CopyOptions): Promise<number> {
  const target = await missing(to, dest).catch(() => null);
  if (sources.length > 1 && !target?.isDirectory()) {
    warn(`target '${dest}' is not a directory`);
    return 1;
  }
  let total = 0;
  if (o.tty) for (const s of sources) total += await sizeOf(from, s).catch(() => 0);
  const progress = new Progress(o.tty, total);
  let ok = true;
  for (const s of sources) {
    const d = target?.isDirectory() ? posix.join(dest, posix.basename(s.replace(/\/+$/, '')) || '.') : dest;
    ok = await copyOne(from, s, to, d, o, progress) && ok;
  }
  progress.end();
  return ok ? 0 : 1;
}
