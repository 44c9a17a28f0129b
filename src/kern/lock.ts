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
  private readonly shared = new Set<object>();
  private readonly waiters: Waiter[] = [];
  constructor(readonly name: string) {}

  /** LK_EXCLUSIVE, LK_SHARED, or 0: how owner holds the lock. */
  heldBy(owner: object): 0 | LockMode {
    if (this.exclusive === owner) return LK_EXCLUSIVE;
    return this.shared.has(owner) ? LK_SHARED : 0;
  }

  isLocked(): boolean { return this.exclusive !== null || this.shared.size > 0; }

  lock(owner: object, mode: LockMode): Promise<void> {
    if (this.heldBy(owner)) throw new LockProtocolError(`${this.name}: locking against myself`);
    if (this.waiters.length === 0 && this.grantable(mode)) {
      this.take(owner, mode);
      return Promise.resolve();
    }
    return new Promise(resolve => {
      this.waiters.push({ owner, mode, grant: resolve });
    });
  }

  tryLock(owner: object, mode: LockMode): boolean {
    if (this.heldBy(owner)) throw new LockProtocolError(`${this.name}: locking against myself`);
    if (this.waiters.length === 0 && this.grantable(mode)) {
      this.take(owner, mode);
      return true;
    }
    return false;
  }

  unlock(owner: object): void {
    if (this.exclusive === owner) this.exclusive = null;
    else if (!this.shared.delete(owner)) throw new LockProtocolError(`${this.name}: unlock by a non-owner`);
    this.wakeup();
  }

  /** Exclusive to shared, without letting anyone else in between. */
  downgrade(owner: object): void {
    if (this.exclusive !== owner) throw new LockProtocolError(`${this.name}: downgrade without exclusive lock`);
    this.exclusive = null;
    this.shared.add(owner);
    this.wakeup();
  }

  private grantable(mode: LockMode): boolean {
    return this.exclusive === null && (mode === LK_SHARED || this.shared.size === 0);
  }

  private take(owner: object, mode: LockMode): void {
    if (mode === LK_EXCLUSIVE) this.exclusive = owner;
    else this.shared.add(owner);
  }

  private wakeup(): void {
    while (this.waiters.length > 0 && this.grantable(this.waiters[0].mode)) {
      const w = this.waiters.shift()!;
      this.take(w.owner, w.mode);
      w.grant();
      if (w.mode === LK_EXCLUSIVE) break;
    }
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
