// p2k: FUSE requests on node ids become calls into the kernel, as NetBSD's
// libp2k turns puffs requests on node cookies into VOPs. A node id stands
// for one vnode the host kernel holds lookups of (LOOKUP, CREATE, MKNOD,
// MKDIR, SYMLINK, LINK and READDIRPLUS each add one; FORGET drops them, and
// at zero the vnode reference goes). Every operation names a directory vnode
// and a name, or a vnode: no path is walked. The FUSE caller becomes a
// credential and a request context (Lwp); the kernel checks permissions and
// takes the declared locks. p2k knows no driver.
import {
  andThen, Cred, File, FSYNC_DATAONLY, FSYNC_WAIT, KernError, LK_EXCLUSIVE, LK_SHARED, Lwp, O_CREAT, O_DIRECTORY, O_EXCL,
  O_RDONLY, VType, bufcache_stats, errnos, ifmtToVtype, kernel_lwp, nanotime, vcache_stats, vfs_unmount, vn_access,
  vn_close, vn_closem, vn_createat, vn_fsync, vn_getxattr, vn_killpriv, vn_linkat, vn_listxattr, vn_locked, vn_lookupat, vn_lookupat_or_null, vn_lookupattr, vn_lookupmany,
  vn_mkdirat, vn_mknodat, vn_open, vn_openm, vn_loanm, vn_readm, vn_readdir, vn_readlink, vn_removexattr, vn_renameat, vn_rmdirat,
  vn_setattr, vn_setxattr, vn_stat, vn_symlinkat, vn_unlinkat, vn_writem, vref, vrele, vtypeToIfmt, VFS_VGET,
  Vnode, type Dirent, type MaybePromise, type Mount, type Vattr, type VattrSet,
} from '../src/kern/index.js';
import { rumpuser_putstr } from '../src/rumpuser/index.js';
import { v8 } from '../src/rumpuser/lazy.js';
import type { CallerGroups } from './caller_groups.js';
import { PlusPolicy } from './plus_policy.js';
import { FOPEN, FUSE_ROOT_ID, FUSE_WRITE_KILL_SUIDGID, INIT, RENAME_NOREPLACE } from './fuse/abi.js';
import { direntSize, utf8Length, type AttrOut, type DirentWriter, type EntryOut, type FuseAttr, type OpenOut, type StatfsOut } from './fuse/codec.js';
import type { FuseConnInfo, FuseFilesystem, FuseRequest, SetattrIn } from './fuse/session.js';

export interface P2kOptions {
  readOnly: boolean;
  /** Where callers' supplementary groups come from; null: none. */
  groups: CallerGroups | null;
  /** P2K_WIZARDUID: every request is made by this uid (and gid), with no groups. */
  wizardUid?: number;
  /** Seconds the kernel may keep names (and absent names) and attributes. */
  entryTimeout: number;
  attrTimeout: number;
  /** Bypass the host's page cache (P2K_NOCACHE_PAGE). */
  directIo: boolean;
  /**
   * Node ids derived from file ids (read-only mounts of a driver with
   * VFS_VGET): the same file has the same node id in every server of the
   * mount, so a server started after a crash resolves any id the host still
   * holds, and re-opens any handle, from the id alone.
   */
  stableIds?: boolean;
  /**
   * This server's place in its mount's line of servers (0 first, +1 per
   * restart): its file handles start at generation * 2^32, so that they
   * never collide with those of an earlier server the host still holds.
   */
  generation?: number;
}

/** Handles of one server: fh = generation * FH_SPAN + index. */
const FH_SPAN = 2 ** 32;
/** Stable node ids: file id + 2 (0 means "no node" to FUSE, 1 is the root). */
const STABLE_BIAS = 2;

/** The INIT flags p2k asks for. */
export function p2kWants(readOnly: boolean): number {
  return INIT.ASYNC_READ | INIT.BIG_WRITES | INIT.MAX_PAGES | INIT.ATOMIC_O_TRUNC | INIT.EXPORT_SUPPORT |
    INIT.DO_READDIRPLUS | INIT.READDIRPLUS_AUTO | INIT.PARALLEL_DIROPS | INIT.CACHE_SYMLINKS | INIT.ASYNC_DIO |
    (readOnly ? 0 : INIT.HANDLE_KILLPRIV_V2);
}

/**
 * A vnode the host kernel knows by a node id. Where names fold case on a
 * writable mount, each spelling of a name gets a node of its own (an alias
 * of the first): Linux answers rename(2) between two names of one inode
 * itself, with nothing done, so "mv readme README" would never reach the
 * driver. As two inodes the kernel sends the rename, and the driver changes
 * the case. Aliases are opened without KEEP_CACHE (close-to-open, as NFS).
 */
interface Node {
  readonly id: number; readonly vp: Vnode; nlookup: number;
  /** The name it was entered under (case aliases only). */
  spelling?: string;
  /** The first node of the vnode: its other spellings. */
  aliases?: Map<string, Node>;
  /** An alias: the first node. */
  primary?: Node;
}

/** An open file or directory; a directory keeps its last batch of entries for the kernel's next offset. */
interface Handle { readonly fp: File; batch?: { from: number; entries: Dirent[]; eof: boolean } }

/** Where in the handle's last batch the kernel's offset continues, or -1 to read from it anew. */
function position(h: Handle, offset: number): number {
  const b = h.batch;
  if (!b) return -1;
  if (b.from === offset) return 0;
  const k = b.entries.findIndex(e => e.cookie === offset);
  return k < 0 ? -1 : k + 1;
}

const UNSET = 0xffffffff;
/** Read buffers kept for reuse, and their size (the kernel reads 128 KiB at a time by default). */
const READ_POOL = 16, READ_BUFFER = 128 << 10; // chown's "leave as is" ((uid_t)-1)

/**
 * The inode number an alias reports: one of its own, so that programs that
 * compare st_ino (mv, cp) see two files and make the rename(2) call.
 */
const aliasIno = (id: number) => Number.MAX_SAFE_INTEGER - id;

function toAttr(va: Vattr, alias?: Node): FuseAttr {
  return {
    ino: alias ? aliasIno(alias.id) : va.fileid, size: va.size, blocks: Math.ceil(va.bytes / 512),
    atime: va.atime, mtime: va.mtime, ctime: va.ctime,
    mode: vtypeToIfmt(va.type) | va.mode, nlink: va.nlink, uid: va.uid, gid: va.gid, rdev: va.rdev, blksize: va.blocksize,
  };
}

export class P2k implements FuseFilesystem {
  private readonly nodes = new Map<number, Node>();
  private readonly byVnode = new Map<Vnode, Node>();
  private nextId = FUSE_ROOT_ID + 1;
  private readonly handles: (Handle | undefined)[] = [undefined];
  private readonly freeHandles: number[] = [];
  private readonly wizard: Cred | null;
  private readonly root: Vnode;
  private readonly openFlags: number;
  private readonly caseAliases: boolean;
  private killprivByKernel = false;
  private readonly readBuffers: Buffer[] = [];
  private stopping: Promise<void> | null = null;
  /** Forgotten nodes whose vnode references are still to be released, in order; drainReleases works through them. */
  private readonly releases: { vp: Vnode; id: number }[] = [];
  private releasing: Promise<void> = Promise.resolve();
  private readonly stable: boolean;
  private readonly fhBase: number;
  /** Handles of earlier servers, re-opened from their node ids, by fh. */
  private readonly reopened = new Map<number, Handle>();
  /** Which READDIRPLUS entries go with a node (readdir; lookup tells it what the host asks). */
  private readonly plus = new PlusPolicy();

  constructor(readonly mp: Mount, private readonly opts: P2kOptions) {
    if (!mp.rootvp) throw new Error('p2k: the mount has no root vnode');
    this.root = mp.rootvp;
    // The mount holds the root; the node never goes away.
    const root: Node = { id: FUSE_ROOT_ID, vp: this.root, nlookup: Infinity };
    this.nodes.set(root.id, root);
    this.byVnode.set(root.vp, root);
    this.wizard = opts.wizardUid !== undefined ? new Cred(opts.wizardUid, opts.wizardUid, []) : null;
    // Every change goes through this mount, so the host's page cache stays right across opens.
    this.openFlags = opts.directIo ? FOPEN.DIRECT_IO : FOPEN.KEEP_CACHE;
    this.caseAliases = (mp.op.caseInsensitive ?? false) && !opts.readOnly;
    this.stable = opts.stableIds === true && opts.readOnly && mp.op.vget !== undefined;
    this.fhBase = (opts.generation ?? 0) * FH_SPAN;
  }

  init(conn: FuseConnInfo): void {
    this.killprivByKernel = (conn.flags & INIT.HANDLE_KILLPRIV_V2) !== 0;
  }

  /** The request's context: its caller as a credential (with supplementary groups from /proc). */
  private lwp(req: FuseRequest): Lwp {
    const cred = this.wizard ?? (req.uid === 0 && req.gid === 0 ? Cred.root :
      new Cred(req.uid, req.gid, req.uid === 0 || !this.opts.groups ? [] : this.opts.groups.get(req.pid)));
    return new Lwp(cred, this.root, this.root, 0, req.pid);
  }

  private vnode(id: number): Vnode {
    const n = this.nodes.get(id);
    if (!n) throw new KernError(errnos.ESTALE, `no node ${id}`);
    return n.vp;
  }

  /**
   * The vnode of a node id when this server knows the node. The operations
   * a read-only mount serves write `this.known(id) ?? await this.revive(id)`:
   * with stable ids, a node an earlier server handed out is loaded by its file id.
   */
  private known(id: number): Vnode | undefined {
    return this.nodes.get(id)?.vp;
  }

  /** A node this server never handed out: ESTALE, or with stable ids, VFS_VGET of its file id. */
  private async revive(id: number): Promise<Vnode> {
    if (!this.stable || id < STABLE_BIAS) throw new KernError(errnos.ESTALE, `no node ${id}`);
    const vp = await VFS_VGET(this.mp, id - STABLE_BIAS);
    const known = this.nodes.get(id) ?? this.byVnode.get(vp);
    if (known) {
      // Revived meanwhile by another request: the node holds a reference of its own.
      void vrele(vp);
      return known.vp;
    }
    // The host's count of lookups is unknown: the first FORGET (the kernel
    // forgets a node with its whole count) drops it; a later request revives it again.
    const n: Node = { id, vp, nlookup: 0 };
    this.nodes.set(id, n);
    this.byVnode.set(vp, n);
    return vp;
  }

  /** One more lookup of vp (by name) by the kernel; takes over the caller's reference. */
  private remember(vp: Vnode, fileid: number, name?: string): Node {
    const primary = this.byVnode.get(vp);
    const alias = this.caseAliases && primary?.spelling !== undefined && name !== undefined && name !== primary.spelling;
    let n = alias ? primary!.aliases?.get(name) : primary;
    if (n) {
      n.nlookup++;
      // The node holds a reference of its own: never the last, so at once.
      void vrele(vp);
      return n;
    }
    // Read-only with stable ids: the node id is the file id (a restarted server knows it); else a counter.
    const id = this.stable ? fileid + STABLE_BIAS : this.nextId++;
    if (this.nodes.has(id)) throw new KernError(errnos.EIO, `p2k: file id ${fileid} of ${vp} is another vnode's`);
    n = { id, vp, nlookup: 1 };
    if (this.caseAliases) n.spelling = name;
    this.nodes.set(n.id, n);
    if (alias) {
      n.primary = primary;
      (primary!.aliases ??= new Map()).set(name!, n);
    } else {
      this.byVnode.set(vp, n);
    }
    return n;
  }

  /** The node's vnode is known to the kernel by more than one spelling: its page cache may be stale. */
  private spelledTwice(id: number): boolean {
    if (!this.caseAliases) return false;
    const n = this.nodes.get(id);
    return n !== undefined && (n.primary !== undefined || (n.aliases?.size ?? 0) > 0);
  }

  /** After a rename where names fold case: the node the kernel moved to newName is known by it. */
  private async respell(l: Lwp, dvp: Vnode, name: string, newName: string): Promise<void> {
    let vp: Vnode;
    try {
      vp = await vn_lookupat(l, dvp, newName);
    } catch {
      return;
    }
    await vrele(vp);
    const primary = this.byVnode.get(vp);
    if (!primary) return;
    const moved = primary.spelling === name ? primary : primary.aliases?.get(name);
    if (!moved) return;
    // The node the target name had is gone for the kernel (it saw an unlink).
    const target = primary.spelling === newName ? primary : primary.aliases?.get(newName);
    if (target === primary) {
      primary.spelling = undefined; // no spelling: never an alias again, until forgotten
    } else if (target) {
      primary.aliases!.delete(newName);
    }
    if (moved === primary) {
      moved.spelling = newName;
    } else {
      primary.aliases!.delete(name);
      moved.spelling = newName;
      if (target !== primary) primary.aliases!.set(newName, moved);
    }
  }

  /** The entry for vp (referenced by the caller; the reference is taken over). */
  private entryFor(l: Lwp, vp: Vnode, name?: string): EntryOut | Promise<EntryOut> {
    let r: Vattr | Promise<Vattr>;
    try {
      r = vn_stat(l, vp);
    } catch (e) {
      return (async () => { await vrele(vp); throw e; })();
    }
    // Answered at once when the attributes were (READDIRPLUS asks this per entry).
    if (!(r instanceof Promise)) return this.entryOf(vp, r, name);
    return r.then(va => this.entryOf(vp, va, name), async e => { await vrele(vp); throw e; });
  }

  private entryOf(vp: Vnode, va: Vattr, name?: string): EntryOut {
    const n = this.remember(vp, va.fileid, name);
    return { nodeid: n.id, generation: 0, entryValid: this.opts.entryTimeout, attrValid: this.opts.attrTimeout, attr: toAttr(va, n.primary && n) };
  }

  private attrOut(id: number, va: Vattr): AttrOut {
    // Only where names fold case can the node be an alias (a lookup less on every GETATTR elsewhere).
    const n = this.caseAliases ? this.nodes.get(id) : undefined;
    return { attrValid: this.opts.attrTimeout, attr: toAttr(va, n?.primary && n) };
  }

  forget(id: number, nlookup: number): void {
    const n = this.nodes.get(id);
    if (!n || id === FUSE_ROOT_ID) return;
    n.nlookup -= nlookup;
    if (n.nlookup > 0) return;
    this.nodes.delete(id);
    if (n.primary) {
      if (n.primary.aliases?.get(n.spelling!) === n) n.primary.aliases.delete(n.spelling!);
    } else if (this.byVnode.get(n.vp) === n) {
      this.byVnode.delete(n.vp);
    }
    this.unreference(n.vp, id);
  }

  /**
   * The host forgets thousands of nodes in one BATCH_FORGET (a dropped dentry
   * cache, an unmount). A last reference the kernel can release at once goes
   * at once; one that waits (a lock, the driver's I/O) is queued, and those
   * behind it are released one after another, not as thousands of async
   * chains alive at once, whose frames were the server's peak memory (FAT:
   * +20 MiB for 10,000 forgotten files).
   */
  private unreference(vp: Vnode, id: number): void {
    if (this.releases.length > 0) {
      this.releases.push({ vp, id });
      return;
    }
    let r: void | Promise<void>;
    try {
      r = vrele(vp);
    } catch (e) {
      forgetFailed(id, e);
      return;
    }
    if (!r) return;
    this.releases.push({ vp, id });
    this.releasing = this.drainReleases(r);
  }

  /** The first queued release is under way (`first`); then the others, in turn. */
  private async drainReleases(first: Promise<void>): Promise<void> {
    const q = this.releases;
    await first.catch(e => forgetFailed(q[0].id, e));
    for (let i = 1; i < q.length; i++) {
      try {
        const r = vrele(q[i].vp);
        if (r) await r;
      } catch (e) {
        forgetFailed(q[i].id, e);
      }
    }
    q.length = 0;
  }

  // Names

  /** Answered at once when the kernel answers at once (a cached name, a driver without I/O). */
  lookup(req: FuseRequest, parent: number, name: string): MaybePromise<EntryOut> {
    this.plus.looked(parent, name);
    const dvp = this.known(parent);
    if (!dvp) return this.revive(parent).then(vp => this.lookupIn(req, vp, name));
    return this.lookupIn(req, dvp, name);
  }

  private lookupIn(req: FuseRequest, dvp: Vnode, name: string): MaybePromise<EntryOut> {
    const l = this.lwp(req);
    if (!this.stable) return andThen(vn_lookupat_or_null(l, dvp, name), vp => this.found(l, vp, name));
    // With stable ids, a file whose attributes the driver has at hand needs no
    // vnode (a cold `stat` of every file of a disc's directory loads, keeps and
    // releases none): as READDIRPLUS's entries. A node known already counts
    // lookups, on the vnode it holds.
    return andThen(vn_lookupattr(l, dvp, name), r => {
      if (r === null || r instanceof Vnode) return this.found(l, r, name);
      const known = this.nodes.get(r.fileid + STABLE_BIAS);
      if (!known) return this.unheldEntry(r);
      vref(known.vp);
      return this.entryOf(known.vp, r, name);
    });
  }

  /**
   * The entry of a file this server holds no vnode for (stable ids only):
   * its node id is its file id, and the first request for it loads the vnode (revive).
   */
  private unheldEntry(va: Vattr): EntryOut {
    return { nodeid: va.fileid + STABLE_BIAS, generation: 0, entryValid: this.opts.entryTimeout, attrValid: this.opts.attrTimeout, attr: toAttr(va) };
  }

  private found(l: Lwp, vp: Vnode | null, name: string): MaybePromise<EntryOut> {
    if (vp) return this.entryFor(l, vp, name);
    // An absent name is cached as absent: every change comes through this
    // mount. Not where names fold case: the kernel would keep "README"
    // absent after "readme" is created.
    if (this.opts.entryTimeout > 0 && !this.mp.op.caseInsensitive) return this.absent();
    throw new KernError(errnos.ENOENT);
  }

  private absent(): EntryOut {
    const zero = { sec: 0, nsec: 0 };
    return {
      nodeid: 0, generation: 0, entryValid: this.opts.entryTimeout, attrValid: 0,
      attr: { ino: 0, size: 0, blocks: 0, atime: zero, mtime: zero, ctime: zero, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0 },
    };
  }

  async mknod(req: FuseRequest, parent: number, name: string, mode: number, rdev: number): Promise<EntryOut> {
    const l = this.lwp(req), dvp = this.vnode(parent);
    const type = ifmtToVtype(mode);
    if (type !== VType.VREG) return this.entryFor(l, await vn_mknodat(l, dvp, name, type, mode & 0o7777, rdev), name);
    const fp = await vn_createat(l, dvp, name, O_CREAT | O_EXCL | O_RDONLY, mode & 0o7777);
    vref(fp.vp);
    await vn_close(l, fp);
    return this.entryFor(l, fp.vp, name);
  }

  async mkdir(req: FuseRequest, parent: number, name: string, mode: number): Promise<EntryOut> {
    const l = this.lwp(req);
    return this.entryFor(l, await vn_mkdirat(l, this.vnode(parent), name, mode & 0o7777), name);
  }

  async symlink(req: FuseRequest, parent: number, name: string, target: string): Promise<EntryOut> {
    const l = this.lwp(req);
    return this.entryFor(l, await vn_symlinkat(l, target, this.vnode(parent), name), name);
  }

  async link(req: FuseRequest, ino: number, newParent: number, newName: string): Promise<EntryOut> {
    const l = this.lwp(req), vp = this.vnode(ino);
    await vn_linkat(l, vp, this.vnode(newParent), newName);
    vref(vp);
    return this.entryFor(l, vp, newName);
  }

  unlink(req: FuseRequest, parent: number, name: string): MaybePromise<void> {
    return vn_unlinkat(this.lwp(req), this.vnode(parent), name);
  }

  rmdir(req: FuseRequest, parent: number, name: string): Promise<void> {
    return vn_rmdirat(this.lwp(req), this.vnode(parent), name);
  }

  async rename(req: FuseRequest, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    if (flags & ~RENAME_NOREPLACE) throw new KernError(errnos.EINVAL, 'rename exchange and whiteout are not supported');
    const l = this.lwp(req), tdvp = this.vnode(newParent);
    await vn_renameat(l, this.vnode(parent), name, tdvp, newName, (flags & RENAME_NOREPLACE) !== 0);
    if (this.caseAliases) await this.respell(l, tdvp, name, newName);
  }

  async readlink(req: FuseRequest, ino: number): Promise<string> {
    return vn_readlink(this.lwp(req), this.known(ino) ?? await this.revive(ino));
  }

  // Attributes

  getattr(req: FuseRequest, ino: number): MaybePromise<AttrOut> {
    const vp = this.known(ino);
    if (!vp) return this.revive(ino).then(v => vn_stat(this.lwp(req), v)).then(va => this.attrOut(ino, va));
    return andThen(vn_stat(this.lwp(req), vp), va => this.attrOut(ino, va));
  }

  async setattr(req: FuseRequest, ino: number, set: SetattrIn): Promise<AttrOut> {
    const l = this.lwp(req), vp = this.vnode(ino);
    const va: VattrSet = {};
    if (set.mode !== undefined) va.mode = set.mode & 0o7777;
    if (set.uid !== undefined && set.uid !== UNSET) va.uid = set.uid;
    if (set.gid !== undefined && set.gid !== UNSET) va.gid = set.gid;
    if (set.size !== undefined) va.size = set.size;
    if (set.atime !== undefined || set.mtime !== undefined) {
      const now = nanotime();
      if (set.atime !== undefined) va.atime = set.atime === 'now' ? now : set.atime;
      if (set.mtime !== undefined) va.mtime = set.mtime === 'now' ? now : set.mtime;
      // utimes(NULL) and its kin: setting times to "now" needs only write access.
      va.utimesNow = set.atime !== undefined && set.atime !== 'now' ? false : set.mtime === undefined || set.mtime === 'now';
    }
    const openForWrite = set.fh !== null && (this.handles[set.fh - this.fhBase]?.fp.writable ?? false);
    const changes = Object.keys(va).length > 0;
    if (changes || set.killSuidgid) {
      await vn_locked(vp, LK_EXCLUSIVE, l, async () => {
        if (set.killSuidgid) await vn_killpriv(vp, l);
        if (changes) await vn_setattr(vp, va, l, openForWrite);
      });
    }
    return this.attrOut(ino, await vn_stat(l, vp));
  }

  async access(req: FuseRequest, ino: number, mask: number): Promise<void> {
    const l = this.lwp(req), vp = this.known(ino) ?? await this.revive(ino);
    return vn_locked(vp, LK_SHARED, l, () => vn_access(vp, mask & 7, l));
  }

  async statfs(): Promise<StatfsOut> {
    const s = await this.mp.op.statvfs(this.mp);
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, namelen: s.namemax, frsize: s.frsize };
  }

  // Open files

  private addHandle(fp: File): number {
    const i = this.freeHandles.pop() ?? this.handles.length;
    this.handles[i] = { fp };
    return this.fhBase + i;
  }

  private handle(fh: number): Handle {
    const h = this.handles[fh - this.fhBase];
    if (!h) throw new KernError(errnos.EBADF, `no handle ${fh}`);
    return h;
  }

  /**
   * A handle an earlier server of this mount gave the host (stable ids
   * only): opened again, read-only, from its node id. Its open was checked
   * then; this one is the kernel's. Callers write
   * `this.handles[fh - this.fhBase] ?? await this.reopen(fh, ino)`.
   */
  private async reopen(fh: number, ino: number): Promise<Handle> {
    const known = this.reopened.get(fh);
    if (known) return known;
    if (!this.stable || fh >= this.fhBase) throw new KernError(errnos.EBADF, `no handle ${fh}`);
    const vp = this.known(ino) ?? await this.revive(ino);
    vref(vp);
    const fp = await vn_open(kernel_lwp(), vp, O_RDONLY | (vp.type === VType.VDIR ? O_DIRECTORY : 0));
    const had = this.reopened.get(fh);
    if (had) {
      await vn_close(kernel_lwp(), fp);
      return had;
    }
    const h: Handle = { fp };
    this.reopened.set(fh, h);
    rumpuser_putstr(`p2k: handle ${fh} of node ${ino}, an earlier server's, opened again\n`);
    return h;
  }

  open(req: FuseRequest, ino: number, flags: number): MaybePromise<OpenOut> {
    const vp = this.known(ino);
    if (!vp) return this.revive(ino).then(v => this.openVnode(req, ino, v, flags));
    return this.openVnode(req, ino, vp, flags);
  }

  private openVnode(req: FuseRequest, ino: number, vp: Vnode, flags: number): MaybePromise<OpenOut> {
    vref(vp);
    return andThen(vn_openm(this.lwp(req), vp, flags & ~(O_CREAT | O_EXCL)),
      fp => ({ fh: this.addHandle(fp), openFlags: this.spelledTwice(ino) ? 0 : this.openFlags }));
  }

  create(req: FuseRequest, parent: number, name: string, mode: number, flags: number): MaybePromise<{ entry: EntryOut; open: OpenOut }> {
    const l = this.lwp(req);
    return andThen(vn_createat(l, this.vnode(parent), name, flags, mode & 0o7777), fp => this.created(l, fp, name));
  }

  private created(l: Lwp, fp: File, name: string): MaybePromise<{ entry: EntryOut; open: OpenOut }> {
    vref(fp.vp);
    const opened = (entry: EntryOut) => ({ entry, open: { fh: this.addHandle(fp), openFlags: this.openFlags } });
    const failed = (e: unknown) => andThen(vn_closem(l, fp), () => { throw e; });
    let entry: MaybePromise<EntryOut>;
    try {
      entry = this.entryFor(l, fp.vp, name);
    } catch (e) {
      return failed(e);
    }
    if (entry instanceof Promise) return entry.then(opened, failed);
    return opened(entry);
  }

  async opendir(req: FuseRequest, ino: number): Promise<OpenOut> {
    const l = this.lwp(req), vp = this.known(ino) ?? await this.revive(ino);
    vref(vp);
    const fp = await vn_open(l, vp, O_RDONLY | O_DIRECTORY);
    // A read-only directory never changes: the kernel may keep what it read.
    return { fh: this.addHandle(fp), openFlags: this.opts.readOnly ? FOPEN.CACHE_DIR | FOPEN.KEEP_CACHE : 0 };
  }

  private close(fh: number): MaybePromise<void> {
    const i = fh - this.fhBase, h = this.handles[i];
    if (!h) {
      const r = this.reopened.get(fh);
      if (r) {
        this.reopened.delete(fh);
        return vn_closem(kernel_lwp(), r.fp);
      }
      // An earlier server's handle, unused since: nothing is open here.
      if (this.stable && fh < this.fhBase) return;
      throw new KernError(errnos.EBADF, `no handle ${fh}`);
    }
    this.handles[i] = undefined;
    this.freeHandles.push(i);
    return vn_closem(kernel_lwp(), h.fp);
  }

  release(req: FuseRequest, ino: number, fh: number): MaybePromise<void> {
    return this.close(fh);
  }

  releasedir(req: FuseRequest, ino: number, fh: number): MaybePromise<void> {
    return this.close(fh);
  }

  /**
   * A short read means end of file to FUSE: fill the request unless the file
   * ends. Buffers come from a small pool: a fresh 128 KiB-1 MiB one per
   * request is external memory that makes V8 collect far more often.
   */
  read(req: FuseRequest, ino: number, fh: number, offset: number, size: number): MaybePromise<Uint8Array | Uint8Array[]> {
    const h = this.handles[fh - this.fhBase];
    if (!h) return this.reopen(fh, ino).then(r => this.readFile(req, r.fp, offset, size, false));
    return this.readFile(req, h.fp, offset, size, true);
  }

  private readFile(req: FuseRequest, fp: File, offset: number, size: number, now: boolean): MaybePromise<Uint8Array | Uint8Array[]> {
    const l = this.lwp(req);
    // Lent only when answered in this turn: the session then writes the
    // reply, the bytes as they lie in the driver's memory, before any other
    // request runs. (An answer in a Promise is read later: it is copied.)
    const lent = now ? vn_loanm(l, fp, offset, size) : null;
    if (lent) return lent;
    const pooled = this.readBuffers.pop();
    const buf = pooled && pooled.length >= size ? pooled : Buffer.allocUnsafe(Math.max(size, READ_BUFFER));
    return andThen(transfer(size, done => vn_readm(l, fp, done === 0 && size === buf.length ? buf : buf.subarray(done, size), offset + done)),
      done => buf.subarray(0, done));
  }

  readDone(data: Uint8Array | Uint8Array[]): void {
    if (Array.isArray(data)) return; // lent, not ours
    const whole = Buffer.from(data.buffer, data.byteOffset, data.buffer.byteLength - data.byteOffset);
    if (whole.length >= READ_BUFFER && this.readBuffers.length < READ_POOL) this.readBuffers.push(whole);
  }

  write(req: FuseRequest, ino: number, fh: number, offset: number, data: Buffer, writeFlags: number): MaybePromise<number> {
    const l = this.lwp(req), fp = this.handle(fh).fp;
    // With HANDLE_KILLPRIV_V2 the kernel says whether the writer may keep setuid/setgid.
    const killpriv = this.killprivByKernel ? (writeFlags & FUSE_WRITE_KILL_SUIDGID) !== 0 : !l.cred.isRoot();
    return transfer(data.length, done => vn_writem(l, fp, done === 0 ? data : data.subarray(done), offset + done, killpriv && done === 0));
  }

  /** close(2) of one descriptor: nothing to do, the data went with each write. */
  flush(): void {}

  async fsync(req: FuseRequest, ino: number, fh: number, datasync: boolean): Promise<void> {
    const h = this.handles[fh - this.fhBase] ?? await this.reopen(fh, ino);
    return vn_fsync(this.lwp(req), h.fp, FSYNC_WAIT | (datasync ? FSYNC_DATAONLY : 0));
  }

  fsyncdir(req: FuseRequest, ino: number, fh: number, datasync: boolean): Promise<void> {
    return this.fsync(req, ino, fh, datasync);
  }

  /**
   * Entries from the kernel's offset (the cookie after the last entry it got)
   * until the reply is full. READDIRPLUS looks each directory up, and each
   * other name when the host wants their attributes (PlusPolicy), so the
   * kernel needs no LOOKUP for them afterwards; `.`, `..` and the names
   * answered bare go without (node id 0).
   */
  async readdir(req: FuseRequest, ino: number, fh: number, offset: number, out: DirentWriter): Promise<void> {
    const l = this.lwp(req), h = this.handles[fh - this.fhBase] ?? await this.reopen(fh, ino);
    const light = out.plus && this.plus.begin(ino, offset);
    let i = position(h, offset);
    if (i < 0) {
      h.batch = { from: offset, ...(await vn_readdir(l, h.fp, offset)) };
      i = 0;
    }
    let batch = h.batch!;
    for (;;) {
      // The entries of this batch that fit in the reply, looked up together for READDIRPLUS.
      const fit: Dirent[] = [];
      for (let room = out.room; i < batch.entries.length; i++) {
        const size = direntSize(utf8Length(batch.entries[i].name), out.plus);
        if (size > room) break;
        room -= size;
        fit.push(batch.entries[i]);
      }
      // Bare: a name the host has shown no interest in the attributes of, not a directory (PlusPolicy).
      const bare = light ? fit.map(e => e.type !== VType.VDIR && e.type !== VType.VNON) : null;
      // With stable ids, an entry whose attributes readdir gave needs no vnode: its node id is its file id,
      // and a later request for it loads the vnode (revive). Not a node known already: it counts lookups.
      // (A driver may build `attr` when asked: asked once, and not for bare entries.)
      const quick = out.plus && this.stable
        ? fit.map((e, k) => bare?.[k] || this.nodes.has(e.fileid + STABLE_BIAS) ? undefined : e.attr) : null;
      const vps = out.plus ? await vn_lookupmany(l, h.fp.vp, fit.map((e, k) => bare?.[k] || quick?.[k] ? null : e.name)) : null;
      let k = 0;
      try {
        for (; k < fit.length; k++) {
          const e = fit[k], vp = vps?.[k] ?? null;
          if (bare?.[k] && e.name !== '.' && e.name !== '..') {
            out.add(e.name, e.fileid, vtypeToIfmt(e.type), e.cookie);
            this.plus.answeredBare(ino, e.name);
            continue;
          }
          const va = quick?.[k];
          if (va) {
            out.add(e.name, e.fileid, vtypeToIfmt(va.type) | va.mode, e.cookie, this.unheldEntry(va));
            continue;
          }
          if (vp === null) {
            // Without attributes: `.` and `..`, READDIR, or a name removed since the batch was read.
            if (!vps || e.name === '.' || e.name === '..') out.add(e.name, e.fileid, vtypeToIfmt(e.type), e.cookie);
            continue;
          }
          vps![k] = null; // entryFor takes the reference over
          const got = this.entryFor(l, vp, e.name);
          const entry = got instanceof Promise ? await got : got;
          out.add(e.name, e.fileid, entry.attr.mode, e.cookie, entry);
        }
      } finally {
        // An error part-way: the references not yet handed over go.
        for (; vps && k < vps.length; k++) if (vps[k]) await vrele(vps[k]!);
      }
      const { entries, eof } = batch;
      if (i < entries.length || eof || entries.length === 0) return;
      const from = entries[entries.length - 1].cookie;
      batch = h.batch = { from, ...(await vn_readdir(l, h.fp, from)) };
      i = 0;
    }
  }

  // Extended attributes (ENOTSUP from the kernel when the driver has none)

  async getxattr(req: FuseRequest, ino: number, name: string): Promise<Uint8Array> {
    return vn_getxattr(this.lwp(req), this.known(ino) ?? await this.revive(ino), name);
  }

  async listxattr(req: FuseRequest, ino: number): Promise<string[]> {
    return vn_listxattr(this.lwp(req), this.known(ino) ?? await this.revive(ino));
  }

  setxattr(req: FuseRequest, ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    // The driver keeps what it is given; the request buffer is reused.
    return vn_setxattr(this.lwp(req), this.vnode(ino), name, Uint8Array.prototype.slice.call(value), flags);
  }

  removexattr(req: FuseRequest, ino: number, name: string): Promise<void> {
    return vn_removexattr(this.lwp(req), this.vnode(ino), name);
  }

  // Server side

  /** Open handles and known nodes (for status and tests). */
  get openHandles(): number {
    return this.handles.filter(h => h !== undefined).length + this.reopened.size;
  }

  /**
   * Unmount the file system from the kernel: close what FUSE left open, drop
   * every node, then vfs_unmount (flush, mark clean). Requests still in
   * flight hold vnodes: then the unmount is forced. Idempotent.
   */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      const l = kernel_lwp();
      for (let fh = 1; fh < this.handles.length; fh++) {
        const h = this.handles[fh];
        this.handles[fh] = undefined;
        if (h) await vn_close(l, h.fp).catch(() => {});
      }
      for (const h of this.reopened.values()) await vn_close(l, h.fp).catch(() => {});
      this.reopened.clear();
      await this.releasing;
      for (const n of this.nodes.values()) if (n.id !== FUSE_ROOT_ID) await (async () => vrele(n.vp))().catch(() => {});
      this.nodes.clear();
      this.byVnode.clear();
      try {
        await vfs_unmount(this.mp);
      } catch (e) {
        if (!(e instanceof KernError && e.code === 'EBUSY')) throw e;
        await vfs_unmount(this.mp, true);
      }
    })();
    return this.stopping;
  }

  /** SIGUSR1: every vnode of the mount, with the node id the host knows it by. */
  dumpVnodes(): string {
    const lines = [`p2k: ${this.mp.vnodes.size} vnodes of ${this.mp.stat.fstypename} ${this.mp.stat.from}, ${this.nodes.size} nodes`];
    for (const vp of this.mp.vnodes.values()) {
      const n = this.byVnode.get(vp);
      lines.push(`  ${vp.key}\t${VType[vp.type]}\tusecount ${vp.usecount}\t${vp.lock.isLocked() ? 'locked' : 'unlocked'}` +
        (n ? `\tnode ${n.id} nlookup ${n.nlookup}` : ''));
    }
    return lines.join('\n') + '\n';
  }

  /** SIGUSR2: the mount's status, with the requests answered by operation. */
  async dumpStatus(mountpoint: string, counts: ReadonlyMap<string, number>): Promise<string> {
    const sv = await this.mp.op.statvfs(this.mp);
    const vc = vcache_stats();
    const ops = [...counts].map(([k, v]) => `${k} ${v}`).join(', ');
    return `p2k: ${this.mp.stat.fstypename} ${this.mp.stat.from} on ${mountpoint}\n` +
      `  blocks ${sv.blocks - sv.bfree}/${sv.blocks} of ${sv.frsize} bytes, files ${sv.files - sv.ffree}/${sv.files}\n` +
      `  open handles ${this.openHandles}, nodes ${this.nodes.size}, vnodes ${this.mp.vnodes.size}, unused vnodes (all mounts) ${vc.free}/${vc.max}\n` +
      `  requests: ${ops || 'none'}\n` +
      `  memory: ${memoryLine()}\n`;
  }
}

function forgetFailed(id: number, e: unknown): void {
  rumpuser_putstr(`p2k: forget ${id}: ${String(e)}\n`);
}

/**
 * Bytes moved by step (given how many are done so far) until `size` are or
 * one step moves none (end of file). The driver's answers are taken as they
 * come: only one given later makes the rest of the request wait.
 */
function transfer(size: number, step: (done: number) => MaybePromise<number>): MaybePromise<number> {
  for (let done = 0; ;) {
    const n = step(done);
    if (n instanceof Promise) return transferLater(size, step, done, n);
    if (n === 0 || (done += n) >= size) return done;
  }
}

async function transferLater(size: number, step: (done: number) => MaybePromise<number>, done: number, n: Promise<number>): Promise<number> {
  for (let got = await n; got !== 0 && (done += got) < size;) got = await step(done);
  return done;
}

/** Where a server's memory is, in MiB: the JS heap, memory outside it (array buffers: the buffer cache among them). */
function memoryLine(): string {
  // Not process.memoryUsage(): its resident size reads /proc, which the sandbox closes.
  const h = v8().getHeapStatistics(), b = bufcache_stats();
  const mib = (n: number) => (n / 1048576).toFixed(1);
  return `heap ${mib(h.used_heap_size)}/${mib(h.total_heap_size)}, external ${mib(h.external_memory)}, malloc ${mib(h.malloced_memory)}, ` +
    `buffer cache ${mib(b.bytes)}/${mib(b.limit)} in ${b.buffers} buffers`;
}
