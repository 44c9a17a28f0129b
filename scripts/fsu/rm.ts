#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_rm: rm(1) in an image.   fsu_rm image [-rRf] file...
import { posix } from 'node:path';
import { codeOf, fsuMain, strerror, warn } from './common.js';
import type { Ukfs } from '../../src/ukfs/index.js';

/** Depth first, each failure reported as rm does; true if all went. */
async function remove(fs: Ukfs, p: string, o: { recursive?: boolean; force?: boolean }, ancestors = new Set<number>()): Promise<boolean> {
  let dir: boolean, ino: number;
  try {
    const st = await fs.lstat(p);
    ({ ino } = st);
    dir = st.isDirectory();
  } catch (e) {
    if (o.force && codeOf(e) === 'ENOENT') return true;
    warn(`cannot remove '${p}': ${strerror(e)}`);
    return false;
  }
  if (!dir) {
    try { await fs.unlink(p); return true; } catch (e) { warn(`cannot remove '${p}': ${strerror(e)}`); return false; }
  }
  if (!o.recursive) { warn(`cannot remove '${p}': Is a directory`); return false; }
  if (ancestors.has(ino)) { warn(`cannot remove '${p}': directory loop (a corrupted file system)`); return false; }
  let ok = true;
  ancestors.add(ino);
  try {
    for (const n of await fs.readdir(p)) ok = await remove(fs, posix.join(p, n), o, ancestors) && ok;
  } catch (e) {
    warn(`cannot remove '${p}': ${strerror(e)}`);
    return false;
  }
  ancestors.delete(ino);
  if (!ok) return false;
  try { await fs.rmdir(p); return true; } catch (e) { warn(`cannot remove '${p}': ${strerror(e)}`); return false; }
}

fsuMain<{ recursive?: boolean; R?: boolean; force?: boolean }>({
  name: 'rm', args: '<files...>', description: 'remove files or directories from the image', writes: true,
  options: cmd => cmd.option('-r, --recursive', 'remove directories and their contents').option('-R', 'same as -r')
    .option('-f, --force', 'ignore missing files'),
  run: async (ctx, args, o) => {
    let ok = true;
    for (const p of args) {
      if (posix.normalize(p) === '/' ) { warn(`it is dangerous to operate recursively on '/'`); ok = false; continue; }
      ok = await remove(ctx.fs, p, { recursive: o.recursive || o.R, force: o.force }) && ok;
    }
    return ok ? 0 : 1;
  },
});
