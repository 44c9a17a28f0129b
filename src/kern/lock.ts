// Asynchronous shared/exclusive locks with owners, granted in arrival order
// (a waiting writer holds back later readers, so writers never starve).
// Owners are request contexts (Lwp); a lock is never recursive.

export const LK_SHARED = 1, LK_EXCLUSIVE = 2;
export type LockMode = typeof LK_SHARED | typeof LK_EXCLUSIVE;

/** A broken lock protocol: a kernel or driver bug, never a user error. */
export class LockProtocolError extends Error {
  constructor(message: string) { super(message); this.name = 'LockProtocolError'; }
}

interface Waiter { owner: object; mode: LockMode; grant: () => void }

export class RwLock {
  private exclusive: object | null = null;
  // Most locks (one per cached vnode) sit unlocked, or shared by one owner:
  // a Set and a waiter list are made only when needed (~200 bytes a vnode).
  private sharedOne: object | null = null;
  private sharedMore: Set<object> | null = null;
  private waiters: Waiter[] | null = null;
  /** What the lock guards, for messages: a name, or an object that names itself (a vnode: no string kept per lock). */
  constructor(private readonly naming: string | { toString(): string }) {}

  get name(): string { return String(this.naming); }

  /** LK_EXCLUSIVE, LK_SHARED, or 0: how owner holds the lock. */
  heldBy(owner: object): 0 | LockMode {
    if (this.exclusive === owner) return LK_EXCLUSIVE;
    return this.sharedOne === owner || this.sharedMore?.has(owner) ? LK_SHARED : 0;
  }

  isLocked(): boolean { return this.exclusive !== null || this.isShared(); }

  lock(owner: object, mode: LockMode): Promise<void> {
    if (this.heldBy(owner)) throw new LockProtocolError(`${this.name}: locking against myself`);
    if (!this.waiters?.length && this.grantable(mode)) {
      this.take(owner, mode);
      return Promise.resolve();
    }
    return new Promise(resolve => {
      (this.waiters ??= []).push({ owner, mode, grant: resolve });
    });
  }

  tryLock(owner: object, mode: LockMode): boolean {
    if (this.heldBy(owner)) throw new LockProtocolError(`${this.name}: locking against myself`);
    if (!this.waiters?.length && this.grantable(mode)) {
      this.take(owner, mode);
      return true;
    }
    return false;
  }

  unlock(owner: object): void {
    if (this.exclusive === owner) this.exclusive = null;
    else if (this.sharedOne === owner) this.sharedOne = null;
    else if (!this.sharedMore?.delete(owner)) throw new LockProtocolError(`${this.name}: unlock by a non-owner`);
    if (this.sharedMore?.size === 0) this.sharedMore = null;
    this.wakeup();
  }

  /** Exclusive to shared, without letting anyone else in between. */
  downgrade(owner: object): void {
    if (this.exclusive !== owner) throw new LockProtocolError(`${this.name}: downgrade without exclusive lock`);
    this.exclusive = null;
    this.take(owner, LK_SHARED);
    this.wakeup();
  }

  private isShared(): boolean { return this.sharedOne !== null || this.sharedMore !== null; }

  private grantable(mode: LockMode): boolean {
    return this.exclusive === null && (mode === LK_SHARED || !this.isShared());
  }

  private take(owner: object, mode: LockMode): void {
    if (mode === LK_EXCLUSIVE) this.exclusive = owner;
    else if (this.sharedOne === null) this.sharedOne = owner;
    else (this.sharedMore ??= new Set()).add(owner);
  }

  private wakeup(): void {
    const w = this.waiters;
    if (!w) return;
    while (w.length > 0 && this.grantable(w[0].mode)) {
      const next = w.shift()!;
      this.take(next.owner, next.mode);
      next.grant();
      if (next.mode === LK_EXCLUSIVE) break;
    }
    if (w.length === 0) this.waiters = null;
  }
}

/** A mutex for a driver's own state (a FAT, an allocation bitmap). */
export class Mutex {
  private readonly lk: RwLock;
  constructor(name: string) { this.lk = new RwLock(name); }
  /** Run fn holding the mutex. The mutex is not recursive. */
  async with<T>(fn: () => Promise<T> | T): Promise<T> {
    const me = {};
    await this.lk.lock(me, LK_EXCLUSIVE);
    try { return await fn(); } finally { this.lk.unlock(me); }
  }
}
