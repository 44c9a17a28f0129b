#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_chmod: chmod(1) in an image.   fsu_chmod image [-R] mode file...
import { posix } from 'node:path';
import { fsuMain, strerror, warn } from './common.js';
import { parseMode } from './modes.js';
import type { Ukfs } from '../../src/ukfs/index.js';

async function chmod(fs: Ukfs, p: string, spec: string, recursive: boolean, ancestors = new Set<number>()): Promise<boolean> {
  let st;
  try { st = await fs.stat(p); } catch (e) { warn(`cannot access '${p}': ${strerror(e)}`); return false; }
  let ok = true;
  try { await fs.chmod(p, parseMode(spec, st.mode, st.isDirectory())); } catch (e) { warn(`changing permissions of '${p}': ${strerror(e)}`); ok = false; }
  if (!recursive || !st.isDirectory()) return ok;
  if (ancestors.has(st.ino)) { warn(`'${p}': directory loop (a corrupted file system)`); return false; }
  ancestors.add(st.ino);
  for (const n of await fs.readdir(p)) {
    const child = posix.join(p, n);
    if ((await fs.lstat(child)).isSymbolicLink()) continue;
    ok = await chmod(fs, child, spec, true, ancestors) && ok;
  }
  ancestors.delete(st.ino);
  return ok;
}

fsuMain<{ recursive?: boolean }>({
  name: 'chmod', args: '<mode> <files...>', description: 'change file modes in the image', writes: true,
  options: cmd => cmd.option('-R, --recursive', 'change directories and their contents'),
  run: async (ctx, [spec, ...files], o) => {
    parseMode(spec, 0, false);
    let ok = true;
    for (const f of files) ok = await chmod(ctx.fs, f, spec, !!o.recursive) && ok;
    return ok ? 0 : 1;
  },
});
