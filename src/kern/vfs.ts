// Mounts and VFS operations, and the registry of file system types.
import { bdwrite, bflush, binvalall, bufcache_setlimit, bwrite, type Buf } from './bio.js';
import type { BlockDevice } from './blkdev.js';
import { kerr } from './errno.js';
import { log } from './panic.js';
import { RwLock } from './lock.js';
import { vcache_flush, vcache_setmax, vrele } from './vcache.js';
import { rumpuser_getenv } from '../rumpuser/index.js';
import type { Vnode } from './vnode.js';
import { MNT_RDONLY, MNT_SYNCHRONOUS, type MaybePromise, type Statvfs } from './vnode_types.js';

/** Options of one mount: parsed by the client, checked by the driver. */
export type MountOptions = Record<string, string | number | boolean>;

export interface MountArgs {
  /** The device, for disk file systems; null for tmpfs. */
  dev: BlockDevice | null;
  /** What was mounted, for messages and statvfs (device path, "tmpfs"). */
  from: string;
  /** MNT_RDONLY, MNT_SYNCHRONOUS, ... */
  flags: number;
  /** File-system specific options; a driver rejects those it does not know (EINVAL). */
  options: MountOptions;
}

export interface VfsOps {
  /** Type name: 'tmpfs', 'msdos', 'cd9660', 'ext2fs'. */
  readonly name: string;
  /** Linux type names that also mean this driver ('vfat', 'iso9660'). */
  readonly aliases?: readonly string[];
  /** The driver only reads this format: clients open the device read-only. */
  readonly readOnlyFormat?: boolean;
  /** Read and check the file system; set mp.data. A bad image: EINVAL or EIO with a note. */
  mount(mp: Mount, args: MountArgs): Promise<void>;
  /** All vnodes are gone: flush, mark clean, free. */
  unmount(mp: Mount): Promise<void>;
  /** The root directory, referenced and unlocked (usually vcache_get). */
  root(mp: Mount): Promise<Vnode>;
  statvfs(mp: Mount): Promise<Statvfs>;
  /** Write everything dirty the driver holds (metadata, FSInfo, ...) to the buffer cache or device. */
  sync(mp: Mount): Promise<void>;
  /** Fill vp (type, ops, data) for the file named by key; ENOENT/EIO if it cannot. At once or later. */
  loadvnode(mp: Mount, vp: Vnode, key: number): MaybePromise<void>;
  /**
   * NetBSD's VFS_VGET: the vnode (referenced, unlocked) of the file whose
   * file id (st_ino) a mount of this medium handed out, given nothing but
   * that id; ESTALE (or EIO) when the id names no file. For a server that
   * takes over the ids an earlier one gave the host (restart after a crash).
   */
  vget?(mp: Mount, fileid: number): Promise<Vnode>;
  /** The volume label, where the format has one. */
  label?(mp: Mount): string | null;
  /**
   * Names match regardless of case (FAT): a rename to the file's own name in
   * other case reaches VOP_RENAME (with no target) instead of being the
   * no-op a rename onto another link of the same file is (as Darwin's
   * _PC_CASE_SENSITIVE in renameat).
   */
  readonly caseInsensitive?: boolean;
}

const vfsTypes = new Map<string, VfsOps>();

export function vfs_register(ops: VfsOps): void {
  vfsTypes.set(ops.name, ops);
  for (const a of ops.aliases ?? []) vfsTypes.set(a, ops);
}

export function vfs_getopsbyname(name: string): VfsOps {
  const ops = vfsTypes.get(name);
  if (!ops) throw kerr('ENODEV', `unknown file system type '${name}'`);
  return ops;
}

/** VFS_VGET: EOPNOTSUPP for a driver that cannot find a file by its id alone. */
export function VFS_VGET(mp: Mount, fileid: number): Promise<Vnode> {
  if (!mp.op.vget) return Promise.reject(kerr('EOPNOTSUPP', `${mp.op.name}: no VFS_VGET`));
  if (!Number.isSafeInteger(fileid) || fileid < 0) return Promise.reject(kerr('ESTALE', `file id ${fileid}`));
  return mp.op.vget(mp, fileid);
}

export function vfs_types(): string[] {
  return [...new Set([...vfsTypes.values()].map(o => o.name))].sort();
}

export class Mount {
  /** The driver's private mount data. */
  data: unknown;
  /** Held exclusive by every rename in this mount, before any vnode lock. */
  readonly renameLock = new RwLock('rename');
  readonly stat: { fstypename: string; from: string };
  rootvp: Vnode | null = null;
  unmounting = false;
  /** The vnode cache of this mount: one vnode per file id (vcache.ts). */
  readonly vnodes = new Map<number, Vnode>();
  constructor(readonly op: VfsOps, readonly dev: BlockDevice | null, public flags: number, from: string) {
    this.stat = { fstypename: op.name, from };
  }
  get readOnly(): boolean { return (this.flags & MNT_RDONLY) !== 0; }
  /** The driver's private mount data, typed by the driver. */
  priv<T>(): T { return this.data as T; }
}

// Memory: the buffer cache and the vnode cache are the kernel's only caches
// that grow with use, both bounded by each mount's budget (`cache=MiB`, a
// generic option every type takes; default CACHE_DEFAULT_MIB), never more
// than the volume itself. With several mounts in one process the largest
// budget applies (the caches are shared). The default is small: the image's
// blocks are in the host's page cache too, so ours mostly saves system calls
// and gathers writes, and a server's peak memory is Node's ~40 MiB plus this
// plus its heap (measured: 32 MiB made a FAT server peak at ~150 MiB).
export const CACHE_DEFAULT_MIB = 8;
/** Bytes a cached vnode (node, names, attributes) is reckoned at. */
const VNODE_COST = 4 << 10;
const budgets = new Map<Mount, { bufs: number; vnodes: number }>();

/** The budget a mount asks for: `cache` taken out of the options the driver sees. */
function cacheBudget(args: MountArgs): { budget: { bufs: number; vnodes: number }; options: MountOptions } {
  const { cache, ...options } = args.options;
  const mib = cache === undefined ? CACHE_DEFAULT_MIB : Number(cache);
  if (!Number.isFinite(mib) || mib < 1 || mib > 1 << 20) throw kerr('EINVAL', `cache=${String(cache)}: MiB from 1`);
  const bytes = Math.floor(mib * 1048576);
  const volume = args.dev ? args.dev.size : Infinity;
  const bufs = Math.max(1 << 20, Math.min(bytes, volume));
  const vnodes = Math.max(256, Math.min(1 << 16, Math.floor(bytes / VNODE_COST), Math.floor(volume / 4096)));
  return { budget: { bufs, vnodes }, options };
}

function applyBudgets(): void {
  let bufs = 0, vnodes = 0;
  for (const b of budgets.values()) { bufs = Math.max(bufs, b.bufs); vnodes = Math.max(vnodes, b.vnodes); }
  if (bufs) bufcache_setlimit(bufs);
  // RUMP_NVNODES, as in a rump kernel, overrides.
  if (vnodes && rumpuser_getenv('RUMP_NVNODES') === undefined) vcache_setmax(vnodes);
}

/** Mount a file system of type `type`. Returns the mount with its root vnode cached. */
export async function vfs_mount(type: string, args: MountArgs): Promise<Mount> {
  const op = vfs_getopsbyname(type);
  if (args.dev?.readOnly) args = { ...args, flags: args.flags | MNT_RDONLY };
  const { budget, options } = cacheBudget(args);
  args = { ...args, options };
  const mp = new Mount(op, args.dev, args.flags, args.from);
  await op.mount(mp, args);
  try {
    mp.rootvp = await op.root(mp);
  } catch (e) {
    await op.unmount(mp).catch(() => {});
    throw e;
  }
  budgets.set(mp, budget);
  applyBudgets();
  return mp;
}

/**
 * Unmount: every vnode but the root must be unreferenced (EBUSY), unless
 * forced. Then the driver flushes and marks the file system clean, and the
 * buffer cache writes back and forgets the device.
 */
export async function vfs_unmount(mp: Mount, force = false): Promise<void> {
  if (mp.unmounting) throw kerr('EBUSY', 'unmount in progress');
  mp.unmounting = true;
  try {
    const root = mp.rootvp!;
    await vcache_flush(mp, root, force);
    mp.rootvp = null;
    await vrele(root);
    await vcache_flush(mp, null, force);
    let lost: unknown = null;
    try {
      await op_sync_all(mp);
    } catch (e) {
      lost = e;
    }
    if (lost === null) {
      await mp.op.unmount(mp);
      if (mp.dev) await bflush(mp.dev);
    } else {
      // The device refuses writes (its host file system full, or failing).
      // Waiting would not help and retrying would spin: the unmount goes
      // through, the volume is not marked clean, and what could not be
      // written is dropped (the writers were told: write, fsync, close).
      log(`${mp.stat.from}: unmount: could not write everything back (${lost instanceof Error ? lost.message : String(lost)}); ` +
        'the volume is left marked as not cleanly unmounted: run its fsck');
    }
    if (mp.dev) binvalall(mp.dev);
    budgets.delete(mp);
    applyBudgets();
  } catch (e) {
    mp.unmounting = false;
    throw e;
  }
}

async function op_sync_all(mp: Mount): Promise<void> {
  await mp.op.sync(mp);
  if (mp.dev && !mp.dev.readOnly) await bflush(mp.dev);
}

/** sync(2) for one mount: the driver's metadata, then every dirty buffer. */
export async function vfs_sync(mp: Mount): Promise<void> {
  await op_sync_all(mp);
}

/** Write a metadata buffer as the mount asks: through with -o sync, delayed otherwise. */
export async function mount_bwrite(mp: Mount, bp: Buf): Promise<void> {
  if (mp.flags & MNT_SYNCHRONOUS) await bwrite(bp);
  else bdwrite(bp);
}
