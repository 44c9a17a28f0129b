import { describe, expect, it } from 'vitest';
import { LK_EXCLUSIVE, LK_SHARED, LockProtocolError, Mutex, RwLock } from '../src/kern/lock.js';

const tick = () => new Promise(r => setImmediate(r));

describe('RwLock', () => {
  it('shares between readers and excludes writers', async () => {
    const lk = new RwLock('t');
    const a = {}, b = {}, w = {};
    await lk.lock(a, LK_SHARED);
    await lk.lock(b, LK_SHARED);
    let writer = false;
    const pw = lk.lock(w, LK_EXCLUSIVE).then(() => { writer = true; });
    await tick();
    expect(writer).toBe(false);
    lk.unlock(a);
    await tick();
    expect(writer).toBe(false);
    lk.unlock(b);
    await pw;
    expect(writer).toBe(true);
    expect(lk.heldBy(w)).toBe(LK_EXCLUSIVE);
  });

  it('is fair: a waiting writer holds back later readers', async () => {
    const lk = new RwLock('t');
    const order: string[] = [];
    const r1 = {}, w = {}, r2 = {};
    await lk.lock(r1, LK_SHARED);
    const pw = lk.lock(w, LK_EXCLUSIVE).then(() => { order.push('w'); });
    const pr = lk.lock(r2, LK_SHARED).then(() => { order.push('r2'); });
    await tick();
    expect(order).toEqual([]);
    lk.unlock(r1);
    await pw;
    await tick();
    expect(order).toEqual(['w']);
    lk.unlock(w);
    await pr;
    expect(order).toEqual(['w', 'r2']);
  });

  it('grants a run of readers together after a writer', async () => {
    const lk = new RwLock('t');
    const w = {}, readers = [{}, {}, {}];
    await lk.lock(w, LK_EXCLUSIVE);
    const ps = readers.map(r => lk.lock(r, LK_SHARED));
    lk.unlock(w);
    await Promise.all(ps);
    expect(readers.map(r => lk.heldBy(r))).toEqual([LK_SHARED, LK_SHARED, LK_SHARED]);
  });

  it('refuses recursion and unlock by a non-owner', async () => {
    const lk = new RwLock('t');
    const a = {}, b = {};
    await lk.lock(a, LK_SHARED);
    expect(() => lk.lock(a, LK_SHARED)).toThrow(LockProtocolError);
    expect(() => lk.unlock(b)).toThrow(LockProtocolError);
    expect(lk.tryLock(b, LK_EXCLUSIVE)).toBe(false);
    expect(lk.tryLock(b, LK_SHARED)).toBe(true);
  });

  it('downgrade lets waiting readers in, not writers', async () => {
    const lk = new RwLock('t');
    const a = {}, r = {}, w = {};
    await lk.lock(a, LK_EXCLUSIVE);
    let got = '';
    const pr = lk.lock(r, LK_SHARED).then(() => { got += 'r'; });
    lk.downgrade(a);
    await pr;
    expect(got).toBe('r');
    expect(lk.tryLock(w, LK_EXCLUSIVE)).toBe(false);
  });

  it('serialises many writers without losing updates', async () => {
    const m = new Mutex('m');
    let counter = 0;
    await Promise.all(Array.from({ length: 200 }, () => m.with(async () => {
      const v = counter;
      await tick();
      counter = v + 1;
    })));
    expect(counter).toBe(200);
  });
});
