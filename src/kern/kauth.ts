// Credentials (kauth_cred_t) and the permission checks drivers call
// (vaccess and the genfs_can_* family), so that every driver decides alike.
import { kerr } from './errno.js';
import { VType } from './vnode_types.js';

export class Cred {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  constructor(uid: number, gid: number, groups: readonly number[] = []) {
    this.uid = uid;
    this.gid = gid;
    this.groups = groups;
  }
  static readonly root = new Cred(0, 0, []);
  isRoot(): boolean { return this.uid === 0; }
  /** Is the credential a member of group gid (primary or supplementary)? */
  groupmember(gid: number): boolean {
    return this.gid === gid || this.groups.includes(gid);
  }
  toString(): string { return `uid=${this.uid} gid=${this.gid} groups=${this.groups.join(',')}`; }
}

/** Access modes, as access(2). */
export const VREAD = 4, VWRITE = 2, VEXEC = 1;

/**
 * vaccess: may cred do accmode (VREAD|VWRITE|VEXEC bits) on a file with this
 * type, mode and owner? Throws EACCES. Root may do anything except execute
 * a regular file with no execute bit at all.
 */
export function vaccess(type: VType, mode: number, uid: number, gid: number, accmode: number, cred: Cred): void {
  if (cred.isRoot()) {
    if ((accmode & VEXEC) && type !== VType.VDIR && (mode & 0o111) === 0) throw kerr('EACCES');
    return;
  }
  let granted: number;
  if (cred.uid === uid) granted = (mode >> 6) & 7;
  else if (cred.groupmember(gid)) granted = (mode >> 3) & 7;
  else granted = mode & 7;
  if ((accmode & granted) !== accmode) throw kerr('EACCES');
}

/** May cred remove or rename entry owned by `uid` from a directory (sticky bit)? */
export function genfs_can_sticky(cred: Cred, dirMode: number, dirUid: number, fileUid: number): void {
  if ((dirMode & 0o1000) && !cred.isRoot() && cred.uid !== dirUid && cred.uid !== fileUid) {
    throw kerr('EPERM', 'sticky directory');
  }
}

/**
 * chmod: only the owner or root. A non-root owner setting the setgid bit on
 * a file of a group it is not in loses that bit, as in Linux (which, unlike
 * BSD, lets an owner keep the sticky bit on a file). Returns the mode to store.
 */
export function genfs_can_chmod(type: VType, cred: Cred, uid: number, gid: number, newMode: number): number {
  if (!cred.isRoot() && cred.uid !== uid) throw kerr('EPERM');
  let mode = newMode & 0o7777;
  if (!cred.isRoot()) {
    if ((mode & 0o2000) && !cred.groupmember(gid)) mode &= ~0o2000;
  }
  return mode;
}

/**
 * The mode a write or truncation by an unprivileged caller leaves (Linux's
 * file_remove_privs): setuid cleared, and setgid where group execute is set
 * (without it, setgid marks mandatory locking, not privilege).
 */
export function genfs_killpriv_mode(mode: number): number {
  let m = mode & ~0o4000;
  if (mode & 0o010) m &= ~0o2000;
  return m;
}

/**
 * chown: root may do anything; the owner may only change the group, to one it
 * is a member of, and leave the owner as it is. Returns the mode to store:
 * setuid and setgid are cleared when a non-root caller changes ownership.
 */
export function genfs_can_chown(cred: Cred, uid: number, gid: number, newUid: number, newGid: number, mode: number): number {
  if (cred.isRoot()) return mode;
  if (cred.uid !== uid || newUid !== uid || !cred.groupmember(newGid)) throw kerr('EPERM');
  return mode & ~0o6000;
}

/**
 * utimes: the owner or root may set any times; anyone with write permission
 * may set both to "now" (utimes(path, NULL)).
 */
export function genfs_can_utimes(type: VType, mode: number, uid: number, gid: number, toNow: boolean, cred: Cred): void {
  if (cred.isRoot() || cred.uid === uid) return;
  if (!toNow) throw kerr('EPERM');
  vaccess(type, mode, uid, gid, VWRITE, cred);
}
