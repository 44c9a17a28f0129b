#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu_chown: chown(1) in an image.   fsu_chown image [-R] [-h] owner[:group] file...
import { posix } from 'node:path';
import { FsuError, fsuMain, groupId, strerror, userId, warn } from './common.js';
import type { Ukfs } from '../../src/ukfs/index.js';

function parseOwner(spec: string): { uid: number; gid: number } {
  const [u, g] = spec.split(/[:.]/, 2);
  const uid = u === '' ? -1 : userId(u);
  const gid = g === undefined || g === '' ? -1 : groupId(g);
  if (uid === undefined) throw new FsuError(`invalid user: '${spec}'`);
  if (gid === undefined) throw new FsuError(`invalid group: '${spec}'`);
  return { uid, gid };
}

async function chown(fs: Ukfs, p: string, ids: { uid: number; gid: number }, o: { recursive?: boolean; noDereference?: boolean }, ancestors = new Set<number>()): Promise<boolean> {
  let st;
  try { st = await fs.lstat(p); } catch (e) { warn(`cannot access '${p}': ${strerror(e)}`); return false; }
  let ok = true;
  try {
    if (o.noDereference || o.recursive) await fs.lchown(p, ids.uid, ids.gid);
    else await fs.chown(p, ids.uid, ids.gid);
  } catch (e) { warn(`changing ownership of '${p}': ${strerror(e)}`); ok = false; }
  if (!o.recursive || !st.isDirectory()) return ok;
  if (ancestors.has(st.ino)) { warn(`'${p}': directory loop (a corrupted file system)`); return false; }
  ancestors.add(st.ino);
  for (const n of await fs.readdir(p)) ok = await chown(fs, posix.join(p, n), ids, o, ancestors) && ok;
  ancestors.delete(st.ino);
  return ok;
}

fsuMain<{ recursive?: boolean; dereference?: boolean }>({
  name: 'chown', args: '<owner> <files...>', description: 'change owners in the image', writes: true,
  options: cmd => cmd.option('-R, --recursive', 'change directories and their contents').option('-h, --no-dereference', 'change symbolic links themselves'),
  run: async (ctx, [spec, ...files], o) => {
    const ids = parseOwner(spec);
    let ok = true;
    for (const f of files) ok = await chown(ctx.fs, f, ids, { recursive: o.recursive, noDereference: o.dereference === false }) && ok;
    return ok ? 0 : 1;
  },
});
