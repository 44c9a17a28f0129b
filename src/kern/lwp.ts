// The context of one request (NetBSD's lwp): who asks (credential), where
// names start (root, cwd), and the owner of every vnode lock it takes.
import { Cred } from './kauth.js';
import type { Vnode } from './vnode.js';

let nextId = 1;

export class Lwp {
  readonly id = nextId++;
  constructor(
    readonly cred: Cred,
    /** Where absolute names and `..` stop: names never leave this mount. */
    readonly root: Vnode | null,
    /** Where relative names start. */
    readonly cwd: Vnode | null = root,
    /** Applied to the mode of every file created (creat(2) semantics). */
    readonly umask = 0,
    readonly pid = 0,
  ) {}
  toString(): string { return `lwp ${this.id} (${this.cred})`; }
}

/** A context for the kernel's own work (inactive, reclaim, unmount), as root, with no names. */
export function kernel_lwp(): Lwp {
  return new Lwp(Cred.root, null);
}
