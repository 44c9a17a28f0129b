// namei: a path name to a vnode, one component at a time, with search
// permission on every directory, `.` and `..` (never above the lwp's root),
// symbolic links (ELOOP after MAXSYMLINKS) and the name length limits.
// Every step that can answer at once (a free lock, a cached vnode, a driver
// that answers without I/O) is taken without a microtask: a cached path
// name costs no Promise per component.
import { kerr, isKernError } from './errno.js';
import { LK_EXCLUSIVE, LK_SHARED } from './lock.js';
import type { Lwp } from './lwp.js';
import { vref, vrele } from './vcache.js';
import { vn_lock, type Vnode } from './vnode.js';
import { vop_getattr, vop_lookup, vop_lookup_or_null, VOP_READLINK } from './vnode_if.js';
import { VType, type MaybePromise } from './vnode_types.js';
import { vaccess, VEXEC } from './kauth.js';

export const NAME_MAX = 255, PATH_MAX = 4096, MAXSYMLINKS = 40;

export interface NameiOpts {
  /** Follow a symbolic link in the last component. */
  follow: boolean;
  /**
   * Return the last component's directory too, referenced and locked
   * exclusive, with the last name, for create/remove/rename/link. vp is then
   * null when the name does not exist. When the path ends in `.` or `..` or
   * names the root, dvp is null and the caller refuses as its call requires.
   */
  parent?: boolean;
}

export interface NameiResult {
  /** With opts.parent: the directory, referenced and locked exclusive (or null, see above). */
  dvp: Vnode | null;
  /** The file, referenced and unlocked; null if absent (only with opts.parent). */
  vp: Vnode | null;
  /** The last component. */
  name: string;
  /** The path ended in '/': the file must be a directory. */
  trailingSlash: boolean;
}

const encoder = new TextEncoder();
const byteLength = (s: string) => (s.length * 3 <= NAME_MAX ? s.length : encoder.encode(s).length);

/** Search permission on the locked directory dir (root may search any). */
function searchable(dir: Vnode, l: Lwp): void | Promise<void> {
  if (l.cred.isRoot()) return;
  const va = vop_getattr(dir, l);
  if (va instanceof Promise) return va.then(a => vaccess(dir.type, a.mode, a.uid, a.gid, VEXEC, l.cred));
  vaccess(dir.type, va.mode, va.uid, va.gid, VEXEC, l.cred);
}

/** The next component's vnode; a missing last one is null when the caller wants the parent. */
function lookupStep(dir: Vnode, comp: string, missingOk: boolean, l: Lwp): MaybePromise<Vnode | null> {
  return missingOk ? vop_lookup_or_null(dir, comp, l) : vop_lookup(dir, comp, l);
}

export async function namei(l: Lwp, path: string, opts: NameiOpts): Promise<NameiResult> {
  if (path.length === 0) throw kerr('ENOENT', 'empty path');
  if (path.length >= PATH_MAX && encoder.encode(path).length >= PATH_MAX) throw kerr('ENAMETOOLONG');
  if (!l.root || !l.cwd) throw kerr('EINVAL', 'no root for names');
  const root = l.root;
  let comps = path.split('/').filter(c => c.length > 0);
  const trailingSlash = path.endsWith('/') && comps.length > 0;
  let dir = path.startsWith('/') ? root : l.cwd;
  vref(dir);
  let links = 0;
  let locked = false;
  try {
    for (;;) {
      if (comps.length === 0) {
        // The path names the starting directory itself ("/", or a link to it).
        const vp = dir;
        dir = null!;
        return { dvp: null, vp, name: '.', trailingSlash };
      }
      const comp = comps.shift()!;
      const last = comps.length === 0;
      if (byteLength(comp) > NAME_MAX) throw kerr('ENAMETOOLONG', comp.slice(0, 32) + '...');
      if (dir.type !== VType.VDIR) throw kerr('ENOTDIR');
      const wantParent = last && opts.parent && comp !== '.' && comp !== '..';
      const lk = vn_lock(dir, wantParent ? LK_EXCLUSIVE : LK_SHARED, l);
      if (lk) await lk;
      locked = true;
      const sr = searchable(dir, l);
      if (sr) await sr;
      let next: Vnode | null;
      if (comp === '.' || (comp === '..' && dir === root)) {
        vref(dir);
        next = dir;
      } else {
        const r = lookupStep(dir, comp, !!wantParent, l);
        next = r instanceof Promise ? await r : r;
      }
      if (next && next.type === VType.VLNK && (!last || opts.follow || trailingSlash)) {
        try {
          if (++links > MAXSYMLINKS) throw kerr('ELOOP');
          await next.lock.lock(l, LK_SHARED);
          let target: string;
          try { target = await VOP_READLINK(next, l); } finally { next.lock.unlock(l); }
          if (target.length === 0) throw kerr('ENOENT', 'empty symbolic link');
          comps = [...target.split('/').filter(c => c.length > 0), ...comps];
          if (target.startsWith('/')) {
            dir.lock.unlock(l);
            locked = false;
            const rr = vrele(dir);
            if (rr) await rr;
            dir = root;
            vref(dir);
          }
        } finally {
          const rr = vrele(next);
          if (rr) await rr;
        }
        if (locked) { dir.lock.unlock(l); locked = false; }
        continue;
      }
      if (!last) {
        dir.lock.unlock(l);
        locked = false;
        const rr = vrele(dir);
        if (rr) await rr;
        dir = next!;
        continue;
      }
      if (next && trailingSlash && next.type !== VType.VDIR) {
        await vrele(next);
        throw kerr('ENOTDIR');
      }
      if (wantParent) {
        const dvp = dir;
        dir = null!;
        locked = false;
        return { dvp, vp: next, name: comp, trailingSlash };
      }
      dir.lock.unlock(l);
      locked = false;
      return { dvp: null, vp: next, name: comp, trailingSlash };
    }
  } finally {
    if (dir) {
      if (locked) dir.lock.unlock(l);
      const rr = vrele(dir);
      if (rr) await rr;
    }
  }
}

/** Release what namei returned: unlock and release dvp, release vp (at once unless a release waits). */
export function namei_done(l: Lwp, nd: NameiResult): void | Promise<void> {
  const vp = nd.vp;
  let rr: void | Promise<void> = undefined;
  if (nd.dvp) {
    nd.dvp.lock.unlock(l);
    rr = vrele(nd.dvp);
  }
  if (!vp) return rr;
  return rr ? rr.then(() => vrele(vp)) : vrele(vp);
}
