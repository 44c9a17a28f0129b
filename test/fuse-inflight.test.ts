// The in-flight region a session shares with its supervisor (p2k/fuse/
// inflight.ts): a request's unique is there from its read until its reply
// is written, never for FORGET; the INIT settled is kept; a session resumed
// on it skips INIT; the layout is the one the supervisor (C, in
// src/rumpuser/launch.c, REGION_*) reads the pending uniques from. Its EIO
// answers: test/restart.test.ts.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { INIT, Op } from '../p2k/fuse/abi.js';
import { Inflight, INFLIGHT_BYTES } from '../p2k/fuse/inflight.js';
import { FuseSession, type FuseFilesystem } from '../p2k/fuse/session.js';
import { FakeChannel, request, u32s } from './helpers/fuse.js';
import { mapShared, memfdShared } from '../src/rumpuser/native.js';

const E = constants.errno;

const t0 = { sec: 0, nsec: 0 };
const attr = { attrValid: 1, attr: { ino: 1, size: 0, blocks: 0, atime: t0, mtime: t0, ctime: t0, mode: 0o40755, nlink: 2, uid: 0, gid: 0, rdev: 0, blksize: 4096 } };

/** A region as a server makes it, mapped twice: the server's view, and the raw bytes the supervisor sees. */
function region() {
  const fd = memfdShared('test', INFLIGHT_BYTES);
  const raw = mapShared(fd, INFLIGHT_BYTES);
  return { server: new Inflight(mapShared(fd, INFLIGHT_BYTES)), supervisor: new Inflight(raw), raw };
}

/** What launch.c takes: the f64 slots from byte 64 that are not 0 (it then clears them). */
function pending(raw: ArrayBuffer): number[] {
  return [...new Float64Array(raw, 64)].filter(u => u !== 0);
}

describe('requests in flight, shared with a supervisor', () => {
  it('a unique stays from the read until the reply; FORGET is never kept; the supervisor takes the pending ones', async () => {
    const r = region();
    const gate: (() => void)[] = [];
    const fs: FuseFilesystem = {
      getattr: () => new Promise(resolve => gate.push(() => resolve(attr))),
      statfs: () => ({ blocks: 1, bfree: 0, bavail: 0, files: 1, ffree: 0, bsize: 512, namelen: 255, frsize: 512 }),
      forget: () => {},
    };
    const ch = new FakeChannel();
    const s = new FuseSession(ch, fs, { want: INIT.ASYNC_READ, maxWrite: 1 << 20, onError: e => { throw e; }, inflight: r.server });
    s.start();
    const slow1 = request(Op.GETATTR, 1, Buffer.alloc(16)), slow2 = request(Op.GETATTR, 1, Buffer.alloc(16));
    const quick = request(Op.STATFS, 1), forget = request(Op.FORGET, 5, Buffer.alloc(8));
    ch.queue.push(slow1, quick, forget, slow2);
    ch.ready();
    // The quick one was answered at once; the two slow ones wait.
    expect(ch.out.map(b => Number(b.readBigUInt64LE(8)))).toEqual([Number(quick.readBigUInt64LE(8))]);
    gate.shift()!();
    await new Promise(res => setImmediate(res));
    expect(ch.out).toHaveLength(2);
    // slow1 answered; slow2 is what a crash now would leave.
    expect(pending(r.raw)).toEqual([Number(slow2.readBigUInt64LE(8))]);
    gate.shift()!();
    await s.quiesce();
    expect(pending(r.raw)).toEqual([]);
  });

  it('keeps the INIT settled; a session resumed on the region skips INIT and serves at once', () => {
    const r = region();
    expect(r.supervisor.conn()).toBeNull();
    const ch = new FakeChannel();
    const inits: number[] = [];
    const fs: FuseFilesystem = { init: c => inits.push(c.flags), getattr: () => attr };
    const s = new FuseSession(ch, fs, { want: INIT.ASYNC_READ | INIT.MAX_PAGES, maxWrite: 1 << 20, onError: e => { throw e; }, inflight: r.server });
    s.start();
    ch.queue.push(request(Op.INIT, 0, u32s(7, 40, 1 << 20, INIT.ASYNC_READ | INIT.MAX_PAGES | INIT.DO_READDIRPLUS)));
    ch.ready();
    const conn = r.supervisor.conn();
    expect(conn).toEqual({ minor: 40, flags: INIT.ASYNC_READ | INIT.MAX_PAGES, maxWrite: 1 << 20, maxReadahead: 1 << 20 });

    // The next server: no INIT comes; it serves with the first one's.
    const ch2 = new FakeChannel();
    const s2 = new FuseSession(ch2, fs, { want: INIT.ASYNC_READ, maxWrite: 1 << 20, onError: e => { throw e; }, inflight: r.server, resume: conn! });
    s2.start();
    expect(s2.conn).toEqual(conn);
    expect(inits).toEqual([conn!.flags, conn!.flags]);
    ch2.queue.push(request(Op.GETATTR, 1, Buffer.alloc(16)));
    ch2.ready();
    expect(ch2.out).toHaveLength(1);
    expect(ch2.out[0].readInt32LE(4)).toBe(0);
    void s;
  });

  it('the layout launch.c reads: the magic, uniques as f64 from byte 64, a count of requests that found no slot', () => {
    const r = region();
    const hdr = new Uint32Array(r.raw, 0, 16);
    expect(hdr[0]).toBe(0x52535452);
    expect(INFLIGHT_BYTES).toBe(64 * 1024);
    const slot = r.server.begin(12);
    r.server.begin(2 ** 40 + 6);
    r.server.end(slot);
    expect(pending(r.raw)).toEqual([2 ** 40 + 6]);
    // Every slot taken: the next request is counted at u32[6], not kept.
    for (let i = 1; i < (INFLIGHT_BYTES - 64) / 8; i++) expect(r.server.begin(100 + i)).toBeGreaterThanOrEqual(0);
    expect(r.server.begin(99)).toBe(-1);
    expect(hdr[6]).toBe(1);
    // A server that finds slots cleared by the supervisor (and the magic kept) takes them all again.
    new Float64Array(r.raw, 64).fill(0);
    hdr[6] = 0;
    const next = new Inflight(r.raw);
    expect(next.begin(7)).toBe(0);
  });
});
