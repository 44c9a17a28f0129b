// The FUSE protocol layer without a kernel: requests built as the kernel
// builds them, fed to a session over a fake channel, replies decoded; and a
// fuzz run of malformed requests that must each end in an error reply or a
// logged drop, never an exception.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { FATTR, INIT, Op } from '../p2k/fuse/abi.js';
import { ArgReader, DirentWriter, ProtocolError, decodeHeader, direntSize, encodeAttr, type EntryOut, type FuseAttr } from '../p2k/fuse/codec.js';
import { FuseSession, type FuseFilesystem } from '../p2k/fuse/session.js';
import { FakeChannel, request, u32s } from './helpers/fuse.js';

const E = constants.errno;

const u64 = (v: number | bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const cstr = (s: string) => Buffer.from(s + '\0');

interface Reply { len: number; error: number; unique: number; body: Buffer }
const decode = (b: Buffer): Reply => ({ len: b.readUInt32LE(0), error: b.readInt32LE(4), unique: Number(b.readBigUInt64LE(8)), body: b.subarray(16) });

const t0 = { sec: 1_700_000_000, nsec: 123_456_789 };
const fileAttr = (ino: number): FuseAttr => ({
  ino, size: 5, blocks: 1, atime: t0, mtime: t0, ctime: t0, mode: 0o100644, nlink: 1, uid: 1000, gid: 100, rdev: 0, blksize: 4096,
});
const entry = (nodeid: number): EntryOut => ({ nodeid, generation: 0, entryValid: 1.5, attrValid: 1, attr: fileAttr(2 ** 40 + nodeid) });

const getattr = (ino: number) => request(Op.GETATTR, ino, Buffer.concat([u32s(0, 0), u64(0)]));

/**
 * A client on ch whose next request (late) comes at the session's next read
 * that finds none, as one sent while the session waits; empty counts those reads.
 */
function arriving(ch: FakeChannel): { late: Buffer | null; empty: number } {
  const client = { late: null as Buffer | null, empty: 0 };
  const read = ch.read.bind(ch);
  ch.read = (buf) => {
    const n = read(buf);
    if (n !== -E.EAGAIN) return n;
    client.empty++;
    if (client.late) { ch.queue.push(client.late); client.late = null; }
    return n;
  };
  return client;
}

function session(fs: FuseFilesystem, onError: (e: unknown) => void = e => { throw e; }) {
  const ch = new FakeChannel();
  const s = new FuseSession(ch, fs, { want: INIT.ASYNC_READ | INIT.MAX_PAGES | INIT.DO_READDIRPLUS, maxWrite: 1 << 20, onError });
  s.start();
  const send = (...reqs: Buffer[]) => { ch.queue.push(...reqs); ch.ready(); };
  return { s, ch, send, replies: () => ch.out.splice(0).map(decode) };
}

describe('codec', () => {
  it('reads arguments within bounds, NUL-terminated names, and s64 seconds', () => {
    const b = Buffer.concat([Buffer.alloc(40), u32s(7), u64(-5n & 0xffffffffffffffffn), cstr('name'), cstr('')]);
    const a = new ArgReader(b, b.length);
    expect(a.u32()).toBe(7);
    expect(a.i64()).toBe(-5);
    expect(a.name()).toBe('name');
    expect(a.name()).toBe('');
    expect(() => a.u32()).toThrow(ProtocolError);
    const noNul = Buffer.concat([Buffer.alloc(40), Buffer.from('abc')]);
    expect(() => new ArgReader(noNul, noNul.length).name()).toThrow(ProtocolError);
  });

  it('encodes fuse_attr with 64-bit numbers, nanoseconds and times before 1970', () => {
    const b = Buffer.alloc(88);
    encodeAttr(b, 0, { ...fileAttr(2 ** 52 + 3), size: 2 ** 40 + 1, mtime: { sec: -86400, nsec: 5 } });
    expect(b.readBigUInt64LE(0)).toBe(2n ** 52n + 3n);
    expect(b.readBigUInt64LE(8)).toBe(2n ** 40n + 1n);
    expect(b.readBigInt64LE(24)).toBe(1_700_000_000n);
    expect(b.readBigInt64LE(32)).toBe(-86400n);
    expect(b.readUInt32LE(48)).toBe(123_456_789);
    expect(b.readUInt32LE(52)).toBe(5);
    expect(b.readUInt32LE(60)).toBe(0o100644);
  });

  it('pads dirents to 8 bytes and stops, writing nothing, when the next one does not fit', () => {
    expect(direntSize(1, false)).toBe(32);
    expect(direntSize(8, false)).toBe(32);
    expect(direntSize(9, false)).toBe(40);
    expect(direntSize(1, true)).toBe(160);
    const w = new DirentWriter(64, false);
    expect(w.add('a', 5, 0o100000, 1)).toBe(true);
    expect(w.add('bbbbbbbbb', 6, 0o040000, 2)).toBe(false);
    expect(w.add('c', 7, 0o120000, 3)).toBe(true);
    expect(w.count).toBe(64);
    const r = w.reply().subarray(16);
    expect(r.readBigUInt64LE(0)).toBe(5n);
    expect(r.readBigUInt64LE(8)).toBe(1n);
    expect(r.readUInt32LE(16)).toBe(1);
    expect(r.readUInt32LE(20)).toBe(8); // DT_REG
    expect(r.readUInt32LE(32 + 20)).toBe(10); // DT_LNK
  });
});

describe('codec byte stores', () => {
  /** One dirent as Buffer's own writers lay it out (the reference). */
  function reference(name: string, ino: number, type: number, off: number): Buffer {
    const n = Buffer.byteLength(name), b = Buffer.alloc(direntSize(n, false));
    b.writeBigUInt64LE(BigInt(ino), 0);
    b.writeBigUInt64LE(BigInt(off), 8);
    b.writeUInt32LE(n, 16);
    b.writeUInt32LE(type, 20);
    b.write(name, 24, 'utf8');
    return b;
  }

  it('dirents of ASCII, UTF-8 and lone-surrogate names, and 53-bit numbers, are what Buffer writes', () => {
    const names = ['a', 'plain-name.txt', 'ünïcödé', 'clef 𝄞', 'lone \ud800 half', 'x'.repeat(255), 'ÿ'];
    const ids = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    const w = new DirentWriter(1 << 16, false);
    const want: Buffer[] = [];
    names.forEach((n, i) => {
      const ino = ids[i % ids.length], off = ids[(i + 2) % ids.length];
      expect(w.add(n, ino, 0o100644, off)).toBe(true);
      want.push(reference(n, ino, 8, off));
    });
    expect(w.reply().subarray(16)).toEqual(Buffer.concat(want));
  });

  it('a recycled reply buffer serves the next writer of its size, zero again: its replies are a fresh writer\'s', () => {
    const fill = (w: DirentWriter) => { for (let i = 0; w.add(`name-${i}-${'x'.repeat(i % 13)}`, i + 1, 0o100644, i + 1); i++); return w; };
    const first = fill(new DirentWriter(4096, true));
    const buf = first.buf;
    first.recycle();
    expect(buf.every(x => x === 0)).toBe(true);
    const again = new DirentWriter(4096, false);
    expect(again.buf).toBe(buf);
    again.add('short', 9, 0o040000, 3);
    const fresh = new DirentWriter(4096, false);
    fresh.add('short', 9, 0o040000, 3);
    expect(again.reply()).toEqual(fresh.reply());
    expect(new DirentWriter(2048, false).buf).not.toBe(buf);
  });

  it('refuses a field that is not 4-byte aligned, as a protocol error', () => {
    const b = Buffer.alloc(80);
    const odd = b.subarray(1, 41);
    odd.writeUInt32LE(40, 0);
    expect(() => decodeHeader(odd, 40)).toThrow(ProtocolError);
    expect(() => new ArgReader(b.subarray(2), 60).u32()).toThrow(ProtocolError);
    const aligned = b.subarray(8, 48);
    aligned.writeUInt32LE(40, 0);
    expect(decodeHeader(aligned, 40).len).toBe(40);
  });

  it('an out header with a negative error and a 64-bit unique', async () => {
    const { encodeOutHeader } = await import('../p2k/fuse/codec.js');
    const b = Buffer.alloc(16);
    encodeOutHeader(b, 4096, -2, 2 ** 40 + 7);
    expect([b.readUInt32LE(0), b.readInt32LE(4), b.readBigUInt64LE(8)]).toEqual([4096, -2, 2n ** 40n + 7n]);
  });
});

describe('session', () => {
  it('negotiates INIT: the flags both want, 1 MiB writes in 256 pages, the older minor', () => {
    const { send, replies, s } = session({});
    send(request(Op.INIT, 0, Buffer.concat([u32s(7, 38, 131072, INIT.ASYNC_READ | INIT.MAX_PAGES | INIT.WRITEBACK_CACHE, 0), Buffer.alloc(44)])));
    const [r] = replies();
    expect(r.error).toBe(0);
    expect(r.len).toBe(16 + 64);
    expect(r.body.readUInt32LE(0)).toBe(7);
    expect(r.body.readUInt32LE(4)).toBe(38);
    expect(r.body.readUInt32LE(12)).toBe(INIT.ASYNC_READ | INIT.MAX_PAGES);
    expect(r.body.readUInt32LE(20)).toBe(1 << 20);
    expect(r.body.readUInt16LE(28)).toBe(256);
    expect(s.conn?.maxWrite).toBe(1 << 20);
  });

  it('tells a kernel with a newer major its own, and refuses an older one', () => {
    const { send, replies } = session({});
    send(request(Op.INIT, 0, u32s(8, 0, 0, 0)));
    const [r] = replies();
    expect(r.error).toBe(0);
    expect(r.body.readUInt32LE(0)).toBe(7);
    send(request(Op.INIT, 0, u32s(6, 0, 0, 0)));
    expect(replies()[0].error).toBe(-E.EPROTO);
  });

  it('answers typed replies now or when the promise settles, errnos as errors, a bug as EIO', async () => {
    const bugs: unknown[] = [];
    const { send, replies } = session({
      lookup: (req, parent, name) => {
        if (name === 'missing') throw Object.assign(new Error('x'), { errno: E.ENOENT });
        if (name === 'bug') throw new TypeError('oops');
        if (name === 'later') return Promise.resolve(entry(9));
        expect(req.uid).toBe(1000);
        return entry(parent + 1);
      },
    }, e => bugs.push(e));
    send(request(Op.LOOKUP, 1, cstr('a')), request(Op.LOOKUP, 1, cstr('missing')), request(Op.LOOKUP, 1, cstr('bug')), request(Op.LOOKUP, 1, cstr('later')));
    let rs = replies();
    expect(rs.map(r => r.error)).toEqual([0, -E.ENOENT, -E.EIO]);
    expect(rs[0].len).toBe(16 + 128);
    expect(Number(rs[0].body.readBigUInt64LE(0))).toBe(2);
    expect(rs[0].body.readBigUInt64LE(16)).toBe(1n); // entry_valid seconds
    expect(rs[0].body.readUInt32LE(32)).toBe(500_000_000);
    expect(bugs).toHaveLength(1);
    await new Promise(r => setTimeout(r, 0));
    rs = replies();
    expect(rs).toHaveLength(1);
    expect(Number(rs[0].body.readBigUInt64LE(0))).toBe(9);
  });

  it('decodes SETATTR by its valid bits and GETATTR with a handle', () => {
    const seen: unknown[] = [];
    const { send, replies } = session({
      setattr: (req, ino, set) => { seen.push(set); return { attrValid: 0, attr: fileAttr(ino) }; },
      getattr: (req, ino, fh) => { seen.push(fh); return { attrValid: 0, attr: fileAttr(ino) }; },
    });
    const body = Buffer.alloc(88);
    body.writeUInt32LE(FATTR.MODE | FATTR.SIZE | FATTR.MTIME | FATTR.ATIME | FATTR.ATIME_NOW | FATTR.FH, 0);
    body.writeBigUInt64LE(77n, 8); // fh
    body.writeBigUInt64LE(2n ** 33n, 16); // size
    body.writeBigInt64LE(-10n, 40); // mtime
    body.writeUInt32LE(999, 60); // mtimensec
    body.writeUInt32LE(0o104755, 68); // mode
    send(request(Op.SETATTR, 5, body), request(Op.GETATTR, 5, Buffer.concat([u32s(1, 0), u64(12)])), request(Op.GETATTR, 5, Buffer.concat([u32s(0, 0), u64(12)])));
    expect(replies().map(r => r.error)).toEqual([0, 0, 0]);
    expect(seen[0]).toEqual({ fh: 77, mode: 0o104755, size: 2 ** 33, atime: 'now', mtime: { sec: -10, nsec: 999 }, killSuidgid: false });
    expect(seen.slice(1)).toEqual([12, null]);
  });

  it('keeps a pending WRITE\'s bytes while later requests are read', async () => {
    let release!: () => void;
    const got: string[] = [];
    const { send, replies } = session({
      write: async (req, ino, fh, off, data) => { await new Promise<void>(r => { release = r; }); got.push(data.toString()); return data.length; },
      lookup: () => entry(3),
    });
    const w = Buffer.concat([u64(1), u64(0), u32s(5, 0), u64(0), u32s(0, 0), Buffer.from('hello')]);
    send(request(Op.WRITE, 2, w), request(Op.LOOKUP, 1, cstr('x'.repeat(200))));
    expect(replies().map(r => r.error)).toEqual([0]);
    release();
    await new Promise(r => setTimeout(r, 0));
    expect(got).toEqual(['hello']);
    const [r] = replies();
    expect(r.body.readUInt32LE(0)).toBe(5);
  });

  it('answers a READ given in pieces with their bytes in order, no more than asked, pieces back to readDone', () => {
    const done: unknown[] = [];
    const many = Array.from({ length: 2000 }, (_, i) => Buffer.from([i & 0xff]));
    const { send, replies } = session({
      read: (req, ino, fh, off, size) => fh === 1 ? [Buffer.from('he'), Buffer.from('llo '), Buffer.from('world')]
        : fh === 2 ? [Buffer.from('abc'), Buffer.from('defgh')] // more than size: cut
          : many, // more pieces than one writev takes: joined
      readDone: d => done.push(d),
    });
    const read = (fh: number, size: number) => request(Op.READ, 2, Buffer.concat([u64(fh), u64(0), u32s(size, 0), u64(0), u32s(0, 0)]));
    send(read(1, 100), read(2, 5), read(3, 4096));
    const rs = replies();
    expect(rs.map(r => [r.error, r.len])).toEqual([[0, 16 + 11], [0, 16 + 5], [0, 16 + 2000]]);
    expect(rs.map(r => r.body.subarray(0, 11).toString('latin1'))).toEqual(['hello world', 'abcde', Buffer.from(many.slice(0, 11).map(b => b[0])).toString('latin1')]);
    expect(rs[2].body.equals(Buffer.concat(many))).toBe(true);
    expect(done).toHaveLength(3);
    expect(done[2]).toBe(many);
  });

  it('waits a little for the next request before the loop sleeps, and stops when none comes in time', () => {
    const { ch, send, replies } = session({ getattr: (_req, ino) => ({ attrValid: 0, attr: fileAttr(ino) }) });
    const client = arriving(ch);
    client.late = getattr(3);
    send(getattr(2));
    expect(replies().map(r => r.error)).toEqual([0, 0]);
    // Nothing comes: after SPIN_MISSES (4) empty waits, a wait only every 16th request.
    const perSend: number[] = [];
    for (let i = 0; i < 40; i++) {
      client.empty = 0;
      send(getattr(4));
      perSend.push(client.empty);
    }
    expect(replies()).toHaveLength(40);
    const spun = perSend.map(e => e > 1);
    expect(spun.slice(0, 3)).toEqual([true, true, true]);
    expect(spun.slice(4).filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(spun.slice(4).filter(Boolean).length).toBeLessThanOrEqual(3);
  });

  it('waits for the next request after an answer given later, too', async () => {
    let answer: (() => void) | null = null;
    const { ch, send, replies } = session({
      getattr: (_req, ino) => ino === 9
        ? new Promise(r => { answer = () => r({ attrValid: 0, attr: fileAttr(ino) }); })
        : { attrValid: 0, attr: fileAttr(ino) },
    });
    const client = arriving(ch);
    send(getattr(9));
    expect(replies()).toHaveLength(0);
    client.late = getattr(3);
    answer!();
    await new Promise(r => setImmediate(r));
    // The late request was read by the session itself after the answer, with no poll to say it came.
    expect(replies().map(r => Number(r.body.readBigUInt64LE(16)))).toEqual([9, 3]);
  });

  it('FORGET and BATCH_FORGET get no reply; unknown opcodes ENOSYS; short requests EINVAL', () => {
    const forgot: [number, number][] = [];
    const { send, replies } = session({ forget: (n, k) => { forgot.push([n, k]); }, lookup: () => entry(2) });
    send(request(Op.FORGET, 7, u64(3)), request(Op.BATCH_FORGET, 0, Buffer.concat([u32s(2, 0), u64(8), u64(1), u64(9), u64(2)])));
    expect(replies()).toEqual([]);
    expect(forgot).toEqual([[7, 3], [8, 1], [9, 2]]);
    const hugeRead = Buffer.concat([u64(1), u64(0), u32s(2 ** 31, 0), u64(0), u32s(0, 0)]);
    send(request(999, 1), request(Op.LOOKUP, 1, Buffer.from('no-nul')), request(Op.READ, 1, u32s(1)), request(Op.READ, 1, hugeRead));
    expect(replies().map(r => r.error)).toEqual([-E.ENOSYS, -E.EINVAL, -E.EINVAL, -E.EINVAL]);
  });

  it('answers GETXATTR with the size when asked for 0 bytes, and ERANGE when the buffer is short', () => {
    const { send, replies } = session({ getxattr: () => Buffer.from('value') });
    send(request(Op.GETXATTR, 1, Buffer.concat([u32s(0, 0), cstr('user.a')])), request(Op.GETXATTR, 1, Buffer.concat([u32s(3, 0), cstr('user.a')])),
      request(Op.GETXATTR, 1, Buffer.concat([u32s(64, 0), cstr('user.a')])));
    const rs = replies();
    expect(rs[0].body.readUInt32LE(0)).toBe(5);
    expect(rs[1].error).toBe(-E.ERANGE);
    expect(rs[2].body.toString()).toBe('value');
  });

  it('notifies the kernel with unique 0 and the notify code: inval_entry and inval_inode', () => {
    const { s, ch } = session({});
    s.notifyInvalEntry(2 ** 40, 'name');
    s.notifyInvalInode(7, 0, -1);
    const [e, i] = ch.out.splice(0).map(decode);
    expect([e.unique, e.error, e.len]).toEqual([0, 3, 16 + 16 + 5]);
    expect(e.body.readBigUInt64LE(0)).toBe(2n ** 40n);
    expect(e.body.readUInt32LE(8)).toBe(4);
    expect(e.body.toString('utf8', 16)).toBe('name\0');
    expect([i.unique, i.error, i.len]).toEqual([0, 2, 16 + 24]);
    expect(i.body.readBigUInt64LE(0)).toBe(7n);
    expect(i.body.readBigInt64LE(16)).toBe(-1n);
  });

  it('survives 20,000 malformed requests: each answered once or dropped, never an exception', () => {
    let x = 12345;
    const rand = (n: number) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
    const bugs: unknown[] = [];
    const attr = { attrValid: 0, attr: fileAttr(2) };
    const { send, replies } = session({
      lookup: () => entry(2), getattr: () => attr, setattr: () => attr, mkdir: () => entry(3), mknod: () => entry(4),
      symlink: () => entry(5), link: () => entry(6), unlink: () => {}, rmdir: () => {}, rename: () => {},
      open: () => ({ fh: 1, openFlags: 0 }), read: () => Buffer.alloc(3), write: (r, i, f, o, d) => d.length,
      readdir: (r, i, f, o, out) => { out.add('a', 2, 0o100000, 1, out.plus ? entry(2) : null); },
      create: () => ({ entry: entry(7), open: { fh: 2, openFlags: 0 } }), statfs: () => ({ blocks: 1, bfree: 1, bavail: 1, files: 1, ffree: 1, bsize: 512, namelen: 255, frsize: 512 }),
      getxattr: () => Buffer.from('v'), listxattr: () => ['user.a'], setxattr: () => {}, removexattr: () => {},
    }, e => bugs.push(e));
    const ops = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 27, 28, 29, 30, 34, 35, 36, 42, 44, 45, 46, 0, 4096];
    let wellFormed = 0;
    for (let i = 0; i < 20_000; i++) {
      const body = Buffer.alloc(rand(200));
      for (let j = 0; j < body.length; j++) body[j] = rand(4) === 0 ? 0 : rand(256);
      const req = request(ops[rand(ops.length)], rand(5), body);
      if (rand(20) === 0) req.writeUInt32LE(rand(400), 0); // a length that lies
      if (req.readUInt32LE(0) === req.length) wellFormed++;
      send(req);
    }
    const rs = replies();
    expect(bugs).toEqual([]);
    expect(rs.length).toBeLessThanOrEqual(wellFormed);
    expect(new Set(rs.map(r => r.unique)).size).toBe(rs.length);
    for (const r of rs) expect(r.len).toBe(16 + r.body.length);
  });
});
