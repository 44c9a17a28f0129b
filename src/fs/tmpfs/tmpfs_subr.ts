// tmpfs helpers (NetBSD's tmpfs_subr.c): node allocation and freeing under
// the mount's limits, directory entries, name rules, file data in pages and
// the time-stamp rules. Everything here is synchronous: a check and the
// allocation it guards can never interleave with another request.
import { Cred, kerr, nanotime, VType, type Timespec } from '../../kern/index.js';
import {
  TMPFS_DIRENT_SIZE, TMPFS_MAXFILESIZE, TMPFS_NAME_MAX, TMPFS_PAGE_SIZE, TMPFS_SYMLINK_MAX,
  type TmpfsDirent, type TmpfsMount, type TmpfsNode,
} from './tmpfs.js';

const encoder = new TextEncoder();

export function byteLength(s: string): number {
  return encoder.encode(s).length;
}

/** A name a directory may hold: not empty, `.`, `..`; no '/' or NUL; at most NAME_MAX bytes. */
export function tmpfs_checkname(name: string): void {
  if (name.length === 0 || name === '.' || name === '..') throw kerr('EINVAL', `bad name '${name}'`);
  if (name.includes('/') || name.includes('\0')) throw kerr('EINVAL', 'name contains / or NUL');
  // At most 3 bytes per UTF-16 unit: a short name needs no encoding to be measured.
  if (name.length * 3 > TMPFS_NAME_MAX && byteLength(name) > TMPFS_NAME_MAX) throw kerr('ENAMETOOLONG', name.slice(0, 32) + '...');
}

export interface NodeInit {
  type: VType;
  mode: number;
  uid: number;
  gid: number;
  rdev?: number;
  target?: string;
  /** Directories: the parent (null for the root, which is its own). */
  parent?: TmpfsNode | null;
}

/** A new node with nlink 0 (the caller links it); ENOSPC past the nodes limit. */
export function tmpfs_alloc_node(tm: TmpfsMount, init: NodeInit): TmpfsNode {
  if (tm.nodes.size >= tm.maxNodes) throw kerr('ENOSPC', 'tmpfs: nodes limit reached');
  const now = nanotime();
  const id = tm.nextId++;
  const node: TmpfsNode = {
    id, type: init.type, mode: init.mode & 0o7777, uid: init.uid, gid: init.gid, nlink: 0,
    size: init.target !== undefined ? byteLength(init.target) : 0,
    atime: now, mtime: now, ctime: now, birthtime: now,
    rdev: init.type === VType.VBLK || init.type === VType.VCHR ? init.rdev ?? 0 : 0,
    pages: null, // made by the first write: an empty file costs no Map
    dir: null, target: init.type === VType.VLNK ? init.target ?? '' : null,
  };
  if (init.type === VType.VDIR) {
    (node as { dir: TmpfsNode['dir'] }).dir = { entries: new Map(), parent: init.parent ?? node, nextCookie: 3 };
  }
  tm.nodes.set(id, node);
  return node;
}

/** Forget a node and give back its pages. */
export function tmpfs_free_node(tm: TmpfsMount, node: TmpfsNode): void {
  if (node.pages) {
    tm.pagesUsed -= node.pages.size;
    node.pages.clear();
  }
  tm.nodes.delete(node.id);
}

/** New-file ownership: the creator's uid; the group of a setgid parent, else the creator's. */
export function tmpfs_init_owner(dnode: TmpfsNode, type: VType, mode: number, cred: Cred): { uid: number; gid: number; mode: number } {
  const sgid = (dnode.mode & 0o2000) !== 0;
  const gid = sgid ? dnode.gid : cred.gid;
  if (type === VType.VDIR) {
    if (sgid) mode |= 0o2000;
  } else if ((mode & 0o2000) && !cred.isRoot() && !cred.groupmember(gid)) {
    mode &= ~0o2000;
  }
  return { uid: cred.uid, gid, mode };
}

export function tmpfs_check_target(target: string): void {
  if (target.length === 0) throw kerr('ENOENT', 'empty symbolic link target');
  if (target.includes('\0')) throw kerr('EINVAL', 'symbolic link target contains NUL');
  if (byteLength(target) > TMPFS_SYMLINK_MAX) throw kerr('ENAMETOOLONG', 'symbolic link target');
}

// --- Directories ---

export function tmpfs_dir_lookup(dnode: TmpfsNode, name: string): TmpfsDirent | undefined {
  return dnode.dir!.entries.get(name);
}

/** Add name -> node, counting the link; the entry gets the next cookie. */
export function tmpfs_dir_attach(dnode: TmpfsNode, name: string, node: TmpfsNode): void {
  const d = dnode.dir!;
  d.entries.set(name, { name, node, cookie: d.nextCookie++ });
  node.nlink++;
  if (node.dir) {
    node.dir.parent = dnode;
    dnode.nlink++;
  }
}

/** Remove name (-> node), dropping the link (and a subdirectory's `..` link on dnode). */
export function tmpfs_dir_detach(dnode: TmpfsNode, name: string, node: TmpfsNode): void {
  dnode.dir!.entries.delete(name);
  node.nlink--;
  if (node.dir) dnode.nlink--;
}

/** Size a directory reports. */
export function tmpfs_dir_size(dnode: TmpfsNode): number {
  return (dnode.dir!.entries.size + 2) * TMPFS_DIRENT_SIZE;
}

// --- Time stamps ---

export const TM_ATIME = 1, TM_MTIME = 2, TM_CTIME = 4;

export function tmpfs_update(node: TmpfsNode, which: number, now: Timespec = nanotime()): void {
  if (which & TM_ATIME) node.atime = now;
  if (which & TM_MTIME) node.mtime = now;
  if (which & TM_CTIME) node.ctime = now;
}

// --- File data ---

const P = TMPFS_PAGE_SIZE;

/**
 * Pages one write adds side by side share one buffer of up to this many
 * pages (a run), so that a read lends (or copies) each run as one piece,
 * not page by page. The run never spans more than the write did. Every page
 * of a run's buffer is in the file, in order, from the page at its start:
 * pages are only added in whole runs, and a truncate into a run moves the
 * kept pages to a buffer of their own (tmpfs_truncate). So the rest of a
 * page's buffer is the file's next bytes.
 */
const RUN_PAGES = 16;

/** What a hole lends: zeros nobody writes. */
const ZERO_PAGE = new Uint8Array(P);

/** The bytes from offset (up to size, to the end of file) as views of the pages, each run of them one view. */
export function tmpfs_loan_pages(node: TmpfsNode, offset: number, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (offset >= node.size) return out;
  const n = Math.min(size, node.size - offset);
  const pages = node.pages;
  for (let done = 0; done < n;) {
    const off = offset + done;
    const page = pages?.get(Math.floor(off / P));
    const inPage = off % P;
    let len: number;
    if (!page) {
      len = Math.min(P - inPage, n - done);
      out.push(ZERO_PAGE.subarray(0, len));
    } else {
      const at = page.byteOffset + inPage;
      len = Math.min(page.buffer.byteLength - at, n - done);
      out.push(new Uint8Array(page.buffer, at, len));
    }
    done += len;
  }
  return out;
}

/** Copy bytes from offset into buf; holes read as zeros. Returns bytes read. */
export function tmpfs_read_pages(node: TmpfsNode, buf: Uint8Array, offset: number): number {
  let done = 0;
  for (const run of tmpfs_loan_pages(node, offset, buf.length)) {
    buf.set(run, done);
    done += run.length;
  }
  return done;
}

/**
 * Write all of buf at offset, or nothing: the pages it needs are counted
 * against the size limit first (ENOSPC), the maximum file size checked (EFBIG).
 */
export function tmpfs_write_pages(tm: TmpfsMount, node: TmpfsNode, buf: Uint8Array, offset: number): void {
  const end = offset + buf.length;
  if (end > TMPFS_MAXFILESIZE) throw kerr('EFBIG');
  const pages = node.pages ??= new Map();
  const first = Math.floor(offset / P), last = Math.floor((end - 1) / P);
  let missing = 0;
  for (let i = first; i <= last; i++) if (!pages.has(i)) missing++;
  if (tm.pagesUsed + missing > tm.maxPages) throw kerr('ENOSPC', 'tmpfs: size limit reached');
  tm.pagesUsed += missing;
  for (let i = first; i <= last; i++) {
    if (pages.has(i)) continue;
    let k = 1;
    while (k < RUN_PAGES && i + k <= last && !pages.has(i + k)) k++;
    const run = new ArrayBuffer(k * P);
    for (let j = 0; j < k; j++) pages.set(i + j, new Uint8Array(run, j * P, P));
    i += k - 1;
  }
  // Into each run's buffer at once, as tmpfs_loan_pages reads them.
  for (let done = 0; done < buf.length;) {
    const off = offset + done;
    const page = pages.get(Math.floor(off / P))!;
    const at = page.byteOffset + off % P;
    const len = Math.min(page.buffer.byteLength - at, buf.length - done);
    new Uint8Array(page.buffer, at, len).set(buf.subarray(done, done + len));
    done += len;
  }
  if (end > node.size) node.size = end;
}

/**
 * Set the size. Shrinking frees the pages past the end and zeros the tail
 * of the last one, so bytes past the size are always zero and a later
 * extension reads zeros; growing allocates nothing (a hole).
 */
export function tmpfs_truncate(tm: TmpfsMount, node: TmpfsNode, size: number): void {
  if (size > TMPFS_MAXFILESIZE) throw kerr('EFBIG');
  if (size < node.size) {
    const pages = node.pages ?? new Map<number, Uint8Array>();
    const keep = Math.ceil(size / P);
    for (const idx of pages.keys()) {
      if (idx >= keep) {
        pages.delete(idx);
        tm.pagesUsed--;
      }
    }
    const tail = pages.get(keep - 1);
    if (tail) {
      // The kept pages of the last run move to a buffer of their own: the
      // freed ones' memory goes with them, and what follows a page in its
      // buffer is still the file's next bytes (RUN_PAGES).
      let start = keep - 1;
      while (pages.get(start - 1)?.buffer === tail.buffer) start--;
      if ((keep - start) * P < tail.buffer.byteLength) {
        const run = new ArrayBuffer((keep - start) * P);
        for (let i = start; i < keep; i++) {
          const moved = new Uint8Array(run, (i - start) * P, P);
          moved.set(pages.get(i)!);
          pages.set(i, moved);
        }
      }
      if (size % P !== 0) pages.get(keep - 1)!.fill(0, size % P);
    }
  }
  node.size = size;
}
