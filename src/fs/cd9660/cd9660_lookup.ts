// Name lookup in a directory (cd9660_lookup.c): a linear scan of its records,
// names compared as this mount shows them.
import { kerr, vcache_get, type Lwp, type Vnode } from '../../kern/index.js';
import { cd9660_entries, type IsoMount, type IsoNode } from './cd9660_node.js';

export async function cd9660_lookup(dvp: Vnode, name: string, _l: Lwp): Promise<Vnode> {
  const imp = dvp.mount.priv<IsoMount>();
  const dir = dvp.node<IsoNode>();
  if (name === '..') {
    imp.hints.set(dir.parent, { dir: true });
    return vcache_get(dvp.mount, dir.parent);
  }
  for await (const e of cd9660_entries(imp, dir, 0)) {
    if (e.name === name && e.name !== '.') return vcache_get(dvp.mount, e.key);
  }
  throw kerr('ENOENT');
}
