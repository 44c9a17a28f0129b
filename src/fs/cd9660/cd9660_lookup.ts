// Name lookup in a directory (cd9660_lookup.c). The first lookup scans the
// records once and keeps the directory's names with its node, so looking up
// every name of a large directory is not quadratic.
import { kerr, vcache_getm, VType, type Lwp, type MaybePromise, type Vattr, type Vnode } from '../../kern/index.js';
import {
  cd9660_direntries, cd9660_recordattr, cd9660_walkentries, HINT_DIR, type IsoEntry, type IsoMount, type IsoNode,
} from './cd9660_node.js';

/**
 * The entry called name. A directory with a damaged record is not cached:
 * names before the damage are still found, the others get its EIO.
 */
async function cd9660_findname(imp: IsoMount, dir: IsoNode, name: string): Promise<IsoEntry | undefined> {
  if (dir.names) return dir.names.get(name);
  const names = new Map<string, IsoEntry>();
  const all = await cd9660_direntries(imp, dir);
  if (all) {
    for (const e of all) if (e.name !== '.' && e.name !== '..' && !names.has(e.name)) names.set(e.name, e);
    dir.names = names;
    return names.get(name);
  }
  try {
    await cd9660_walkentries(imp, dir, 0, e => {
      // The first of two records with one name wins, as a scan would find it.
      if (e.name !== '.' && e.name !== '..' && !names.has(e.name)) names.set(e.name, e);
    });
  } catch (err) {
    if (names.has(name)) return names.get(name);
    throw err;
  }
  dir.names = names;
  return names.get(name);
}

/**
 * At once when the directory's names are known (after its first lookup) and
 * the vnode is cached or its record is (cd9660_loadvnode).
 */
export function cd9660_lookup(dvp: Vnode, name: string, _l: Lwp): Vnode | Promise<Vnode | null> | null {
  const imp = dvp.mount.priv<IsoMount>();
  const dir = dvp.node<IsoNode>();
  if (name === '..') {
    imp.hints.set(dir.parent, HINT_DIR);
    return vcache_getm(dvp.mount, dir.parent);
  }
  if (dir.names) return found(dvp, imp, dir, dir.names.get(name));
  return cd9660_findname(imp, dir, name).then(e => found(dvp, imp, dir, e));
}

function found(dvp: Vnode, imp: IsoMount, dir: IsoNode, e: IsoEntry | undefined): Vnode | Promise<Vnode> | null {
  // An absent name is null, not a thrown ENOENT (vop_lookup_or_null).
  if (!e) return null;
  imp.hints.set(e.key, e.type === VType.VDIR ? HINT_DIR : dir.key);
  return vcache_getm(dvp.mount, e.key);
}

/**
 * VOP_LOOKUPATTR: a file's attributes from its record, without a vnode: at
 * once when the directory's names are known and the record's sector is
 * cached. undefined for a directory (its attributes are in its own extent)
 * or a record not at hand: the caller looks the name up.
 */
export function cd9660_lookupattr(dvp: Vnode, name: string, _l: Lwp): MaybePromise<Vattr | null | undefined> {
  const imp = dvp.mount.priv<IsoMount>();
  const dir = dvp.node<IsoNode>();
  if (dir.names) return attrOf(imp, dir, dir.names.get(name));
  return attrLater(imp, dir, name);
}

// Apart from cd9660_lookupattr: its closure's captures would cost it a context object per call.
async function attrLater(imp: IsoMount, dir: IsoNode, name: string): Promise<Vattr | null | undefined> {
  return attrOf(imp, dir, await cd9660_findname(imp, dir, name));
}

function attrOf(imp: IsoMount, dir: IsoNode, e: IsoEntry | undefined): Vattr | null | undefined {
  if (!e) return null;
  if (e.type === VType.VDIR) return undefined;
  // The file's vnode, loaded later by its id (FUSE asks by node id), is built from this record.
  imp.hints.set(e.key, dir.key);
  return cd9660_recordattr(imp, dir.key, e.key);
}
