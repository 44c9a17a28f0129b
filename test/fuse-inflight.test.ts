// The in-flight region a session shares with its supervisor (p2k/fuse/
// inflight.ts): a request's unique is there from its read until its reply
// is written, never for FORGET; the INIT settled is kept; a session resumed
// on it skips INIT; the supervisor takes what is pending and answers EIO.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { INIT, Op } from '../p2k/fuse/abi.js';
import { errorReply, Inflight, INFLIGHT_BYTES } from '../p2k/fuse/inflight.js';
import { FuseSession, type FuseFilesystem } from '../p2k/fuse/session.js';
import { FakeChannel, request, u32s } from './helpers/fuse.js';
import { mapShared, memfdShared } from '../src/rumpuser/native.js';

const E = constants.errno;

const t0 = { sec: 0, nsec: 0 };
const attr = { attrValid: 1, attr: { ino: 1, size: 0, blocks: 0, atime: t0, mtime: t0, ctime: t0, mode: 0o40755, nlink: 2, uid: 0, gid: 0, rdev: 0, blksize: 4096 } };

/** A region as the supervisor makes it, mapped twice: the server's view and the supervisor's. */
function region() {
  const fd = memfdShared('test', INFLIGHT_BYTES);
  return { server: new Inflight(mapShared(fd, INFLIGHT_BYTES)), supervisor: new Inflight(mapShared(fd, INFLIGHT_BYTES)) };
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
    expect(r.supervisor.takePending()).toEqual([Number(slow2.readBigUInt64LE(8))]);
    expect(r.supervisor.takePending()).toEqual([]);
    gate.shift()!();
    await s.quiesce();
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

  it('the supervisor\'s answer is a fuse_out_header with -EIO; only integers are taken as uniques', () => {
    const b = errorReply(2 ** 40 + 6, E.EIO);
    expect([b.length, b.readUInt32LE(0), b.readInt32LE(4), b.readBigUInt64LE(8)]).toEqual([16, 16, -E.EIO, BigInt(2 ** 40 + 6)]);
    const r = region();
    const slot = r.server.begin(12);
    r.server.begin(14);
    r.server.end(slot);
    expect(r.supervisor.takePending()).toEqual([14]);
  });
});
