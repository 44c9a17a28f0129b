// tmpfs VFS operations (NetBSD's tmpfs_vfsops.c): mount options, the root
// node, statvfs from the limits, and loading vnodes by file id.
import {
  kerr, vcache_get, VType,
  type Mount, type MountArgs, type MountOptions, type Statvfs, type VfsOps,
} from '../../kern/index.js';
import { TMPFS_NAME_MAX, TMPFS_PAGE_SIZE, TMPFS_ROOT_ID, type TmpfsMount } from './tmpfs.js';
import { tmpfs_alloc_node } from './tmpfs_subr.js';
import { tmpfs_vnodeops } from './tmpfs_vnops.js';

/** Size limit when the mount gives none. */
export const TMPFS_DEFAULT_SIZE = 64 * 1024 * 1024;

/** The options a tmpfs mount takes, parsed. size and nodes 0 mean unlimited, as on Linux. */
export interface TmpfsArgs {
  size: number;
  nodes: number;
  mode: number;
  uid: number;
  gid: number;
  /** inode64: file ids from 2^32 on, so every inode number needs 64 bits (callers that truncate them show). */
  inode64: boolean;
}

const SUFFIX: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A non-negative integer option: a number, or a decimal string (with k/m/g/t suffix where allowed). */
function intOption(name: string, v: string | number | boolean, suffixes: boolean): number {
  let n = NaN;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const m = (suffixes ? /^(\d+)([kmgt]?)$/i : /^(\d+)()$/).exec(v.trim());
    if (m) n = Number(m[1]) * SUFFIX[m[2].toLowerCase()];
  }
  if (!Number.isSafeInteger(n) || n < 0) throw kerr('EINVAL', `tmpfs: bad value for option '${name}': ${String(v)}`);
  return n;
}

/** A mode: a number, or an octal string ("1777", "0755"). */
function modeOption(v: string | number | boolean): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-7]{1,4}$/.test(v.trim()) ? parseInt(v, 8) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0o7777) throw kerr('EINVAL', `tmpfs: bad value for option 'mode': ${String(v)}`);
  return n;
}

export function tmpfs_parse_options(opts: MountOptions): TmpfsArgs {
  const a: TmpfsArgs = { size: TMPFS_DEFAULT_SIZE, nodes: -1, mode: 0o1777, uid: 0, gid: 0, inode64: false };
  for (const [k, v] of Object.entries(opts)) {
    switch (k) {
      case 'size': a.size = intOption(k, v, true); break;
      case 'nodes': a.nodes = intOption(k, v, true); break;
      case 'mode': a.mode = modeOption(v); break;
      case 'uid': a.uid = intOption(k, v, false); break;
      case 'gid': a.gid = intOption(k, v, false); break;
      case 'inode64': case 'inode32': a.inode64 = k === 'inode64'; break;
      default: throw kerr('EINVAL', `tmpfs: unknown option '${k}'`);
    }
  }
  // As Linux: as many nodes as pages by default.
  if (a.nodes < 0) a.nodes = Math.floor(a.size / TMPFS_PAGE_SIZE);
  return a;
}

export const tmpfs_vfsops: VfsOps = {
  name: 'tmpfs',

  async mount(mp: Mount, args: MountArgs) {
    const o = tmpfs_parse_options(args.options);
    const tm: TmpfsMount = {
      nodes: new Map(), nextId: TMPFS_ROOT_ID,
      maxPages: o.size === 0 ? Infinity : Math.floor(o.size / TMPFS_PAGE_SIZE),
      maxNodes: o.nodes === 0 ? Infinity : o.nodes,
      pagesUsed: 0,
    };
    const root = tmpfs_alloc_node(tm, { type: VType.VDIR, mode: o.mode, uid: o.uid, gid: o.gid, parent: null });
    root.nlink = 2; // its `.` and its own `..`
    if (o.inode64) tm.nextId += 2 ** 32;
    mp.data = tm;
  },

  async unmount(mp) {
    const tm = mp.priv<TmpfsMount>();
    tm.nodes.clear();
    tm.pagesUsed = 0;
  },

  root(mp) {
    return vcache_get(mp, TMPFS_ROOT_ID);
  },

  async statvfs(mp): Promise<Statvfs> {
    const tm = mp.priv<TmpfsMount>();
    // Unlimited (size=0, nodes=0) reports zero totals, as Linux does.
    const blocks = Number.isFinite(tm.maxPages) ? tm.maxPages : 0;
    const files = Number.isFinite(tm.maxNodes) ? tm.maxNodes : 0;
    const bfree = blocks && blocks - tm.pagesUsed, ffree = files && files - tm.nodes.size;
    return {
      bsize: TMPFS_PAGE_SIZE, frsize: TMPFS_PAGE_SIZE, blocks, bfree, bavail: bfree,
      files, ffree, favail: ffree, namemax: TMPFS_NAME_MAX, flag: mp.flags,
    };
  },

  async sync(_mp) {},

  // At once: a new file's vnode costs no Promise.
  loadvnode(mp, vp, key) {
    const node = mp.priv<TmpfsMount>().nodes.get(key);
    if (!node) throw kerr('ENOENT', `tmpfs: no file ${key}`);
    vp.type = node.type;
    vp.ops = tmpfs_vnodeops;
    vp.data = node;
  },
};
