// A FUSE session: requests read from the channel on the main thread (drained
// until EAGAIN whenever the event loop says the fd is readable), decoded,
// handed to a FuseFilesystem, and answered with one writev each, at once
// when the handler answers synchronously, else when its promise settles.
// This is the only interface between the protocol and p2k: a different
// transport (a libfuse3 low-level binding) would call the same handlers.
import { constants } from 'node:os';
import {
  ATTR_OUT_SIZE, COUNT_OUT_SIZE, ENTRY_OUT_SIZE, FATTR, FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION, INIT, INIT_OUT_SIZE, MIN_READ_BUFFER, NOTIFY_INVAL_ENTRY, NOTIFY_INVAL_INODE, OPEN_OUT_SIZE,
  OUT_HEADER_SIZE, Op, STATFS_OUT_SIZE, opName,
} from './abi.js';
import {
  ArgReader, DirentWriter, ProtocolError, decodeHeader, encodeAttrOut, encodeCount, encodeEntry, encodeOpen, encodeOutHeader,
  encodeStatfs, type AttrOut, type EntryOut, type InHeader, type OpenOut, type StatfsOut, type Timespec,
} from './codec.js';
import { rumpuser_clock_monotonic_ms } from '../../src/rumpuser/index.js';
import type { Inflight } from './inflight.js';

export type MaybePromise<T> = T | Promise<T>;

/** How a request's answer is written: a reply method, or a function (called with the session as this). */
type Reply<T> = (this: FuseSession, u: number, v: T) => void;

const E = constants.errno;

/** Who asks, and which request: the handlers' first argument. */
export type FuseRequest = Readonly<InHeader>;

/** SETATTR's arguments: only what `valid` names is present. */
export interface SetattrIn {
  fh: number | null;
  mode?: number; uid?: number; gid?: number; size?: number;
  /** A time, or 'now' (UTIME_NOW). */
  atime?: Timespec | 'now'; mtime?: Timespec | 'now';
  /** Clear setuid/setgid as a write by an unprivileged caller would (HANDLE_KILLPRIV_V2). */
  killSuidgid: boolean;
}

/** What INIT settled. */
export interface FuseConnInfo {
  /** The protocol minor both sides speak. */
  minor: number;
  /** INIT flags granted. */
  flags: number;
  maxWrite: number;
  maxReadahead: number;
}

/**
 * The operations a file system serves, on node ids. Each returns its answer
 * or a promise of it; an error with a numeric errno (positive or negative)
 * is answered as that errno, anything else goes to SessionOptions.onError
 * and is answered EIO. A missing operation is ENOSYS.
 */
export interface FuseFilesystem {
  init?(conn: FuseConnInfo): void;
  /** The kernel ends the session (fuseblk mounts, and shutdown). */
  destroy?(): MaybePromise<void>;
  lookup?(req: FuseRequest, parent: number, name: string): MaybePromise<EntryOut>;
  /** The kernel dropped nlookup lookups of a node; no answer. */
  forget?(nodeid: number, nlookup: number): void;
  getattr?(req: FuseRequest, ino: number, fh: number | null): MaybePromise<AttrOut>;
  setattr?(req: FuseRequest, ino: number, set: SetattrIn): MaybePromise<AttrOut>;
  readlink?(req: FuseRequest, ino: number): MaybePromise<string>;
  symlink?(req: FuseRequest, parent: number, name: string, target: string): MaybePromise<EntryOut>;
  mknod?(req: FuseRequest, parent: number, name: string, mode: number, rdev: number): MaybePromise<EntryOut>;
  mkdir?(req: FuseRequest, parent: number, name: string, mode: number): MaybePromise<EntryOut>;
  unlink?(req: FuseRequest, parent: number, name: string): MaybePromise<void>;
  rmdir?(req: FuseRequest, parent: number, name: string): MaybePromise<void>;
  rename?(req: FuseRequest, parent: number, name: string, newParent: number, newName: string, flags: number): MaybePromise<void>;
  link?(req: FuseRequest, ino: number, newParent: number, newName: string): MaybePromise<EntryOut>;
  open?(req: FuseRequest, ino: number, flags: number): MaybePromise<OpenOut>;
  create?(req: FuseRequest, parent: number, name: string, mode: number, flags: number): MaybePromise<{ entry: EntryOut; open: OpenOut }>;
  /**
   * At most size bytes; fewer only at end of file. Pieces (at most
   * MAX_READ_PIECES) are the reply's bytes in order, written out as they lie:
   * they need not outlive the reply.
   */
  read?(req: FuseRequest, ino: number, fh: number, offset: number, size: number): MaybePromise<Uint8Array | Uint8Array[]>;
  /** The reply to a READ has been written (or dropped): its bytes may be reused. */
  readDone?(data: Uint8Array | Uint8Array[]): void;
  /** data is valid until the returned promise settles. */
  write?(req: FuseRequest, ino: number, fh: number, offset: number, data: Buffer, writeFlags: number): MaybePromise<number>;
  flush?(req: FuseRequest, ino: number, fh: number): MaybePromise<void>;
  release?(req: FuseRequest, ino: number, fh: number, flags: number): MaybePromise<void>;
  fsync?(req: FuseRequest, ino: number, fh: number, datasync: boolean): MaybePromise<void>;
  opendir?(req: FuseRequest, ino: number, flags: number): MaybePromise<OpenOut>;
  /** Fill out from offset on (out.plus: READDIRPLUS, with a lookup per entry added). */
  readdir?(req: FuseRequest, ino: number, fh: number, offset: number, out: DirentWriter): MaybePromise<void>;
  releasedir?(req: FuseRequest, ino: number, fh: number): MaybePromise<void>;
  fsyncdir?(req: FuseRequest, ino: number, fh: number, datasync: boolean): MaybePromise<void>;
  statfs?(req: FuseRequest, ino: number): MaybePromise<StatfsOut>;
  access?(req: FuseRequest, ino: number, mask: number): MaybePromise<void>;
  getxattr?(req: FuseRequest, ino: number, name: string): MaybePromise<Uint8Array>;
  listxattr?(req: FuseRequest, ino: number): MaybePromise<string[]>;
  setxattr?(req: FuseRequest, ino: number, name: string, value: Buffer, flags: number): MaybePromise<void>;
  removexattr?(req: FuseRequest, ino: number, name: string): MaybePromise<void>;
}

/** Where requests come from and replies go: /dev/fuse (DevChannel), or a test's buffers. */
export interface FuseChannel {
  /** One request into buf: its length, or -errno (-EAGAIN: none pending; -ENODEV: unmounted). */
  read(buf: Buffer): number;
  /** One reply: bytes written or -errno. The buffers are the caller's again on return (a reply buffer is reused). */
  writev(bufs: Uint8Array[]): number;
  /** Call ready() whenever requests may be pending. */
  watch(ready: () => void): void;
  close(): void;
}

export interface SessionOptions {
  /** INIT flags to ask for; the kernel grants what it offers of them. */
  want: number;
  /** Largest WRITE (and READ) in bytes: up to 1 MiB (256 pages) where the kernel allows. */
  maxWrite: number;
  /** A handler failed with something that is not an errno: a bug. */
  onError(e: unknown, op: string): void;
  /** Every request and its outcome (P2K_DEBUG). */
  trace?(line: string): void;
  /**
   * Where the uniques of requests read and not yet answered are kept for a
   * supervisor that answers them EIO if this server dies (read-only mounts;
   * inflight.ts). The INIT settled is kept there too.
   */
  inflight?: Inflight;
  /**
   * The INIT an earlier server on the same connection settled: the kernel
   * sends no other, so this session starts with it (a restarted server).
   */
  resume?: FuseConnInfo;
}

const PAGE = 4096;
/** What a dead request, an interrupted one the kernel dropped, or an unmount makes a reply write return. */
const GONE = new Set([-E.ENOENT, -E.ENODEV, -E.ECONNABORTED]);
/** A READ reply's pieces at most: one writev takes IOV_MAX (1024) buffers, the header one of them. */
const MAX_READ_PIECES = 1023;

/** How long the session reads on for the next request before the event loop sleeps (see spin()). */
const SPIN_MS = 0.03;
const SPIN_READS = 4;
/** Spins that catch nothing in a row before the session spins only every SPIN_PROBE-th time. */
const SPIN_MISSES = 4;
const SPIN_PROBE = 16;

/** Read buffers kept for the next WRITEs beyond the one being read into. */
const MAX_SPARE_BUFFERS = 2;

export class FuseSession {
  /** Set once the kernel has ended the session (unmount) or stop() was called. */
  ended = false;
  /** Called once when the kernel ends the session. */
  onEnded: () => void = () => {};
  /** Requests answered, by opcode. */
  private readonly opCounts: number[] = [];
  /** Arguments are read as each request is served, never later: one reader serves them all. */
  private readonly args = new ArgReader();

  /** Requests answered, by operation name. */
  get counts(): Map<string, number> {
    const m = new Map<string, number>();
    this.opCounts.forEach((n, opcode) => m.set(opName[opcode] ?? `opcode ${opcode}`, n));
    return m;
  }
  conn: FuseConnInfo | null = null;
  private buf: Buffer;
  /** Read buffers whose bytes a pending WRITE still uses, and spares. */
  private readonly spare: Buffer[] = [];
  private readonly small = Buffer.alloc(OUT_HEADER_SIZE + 256);
  private readonly scratches: Buffer[] = [];
  private readonly one: Uint8Array[] = [this.small];
  private inflight = 0;
  /** Spins in a row that caught no request, and requests since one was tried after that (see spinning()). */
  private spinMisses = 0;
  private spinSkipped = 0;
  private idle: (() => void)[] = [];
  /** The in-flight slot of the request being dispatched; settle() takes it over when the answer comes later. */
  private slot = -1;

  constructor(private readonly ch: FuseChannel, private readonly fs: FuseFilesystem, private readonly opts: SessionOptions) {
    this.buf = this.newBuffer();
    // Never more than this server's buffers hold (the region an earlier server wrote says it).
    if (opts.resume) this.conn = { ...opts.resume, maxWrite: Math.min(opts.resume.maxWrite, opts.maxWrite) };
  }

  private newBuffer(): Buffer {
    // A WRITE of maxWrite bytes with its headers; the kernel wants at least MIN_READ_BUFFER.
    return Buffer.allocUnsafe(Math.max(MIN_READ_BUFFER, this.opts.maxWrite + PAGE));
  }

  start(): void {
    if (this.opts.resume) this.fs.init?.(this.conn!);
    this.ch.watch(() => this.drain());
  }

  /** Stop reading requests and close the channel (the mount then fails with ENOTCONN until unmounted). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.ch.close();
  }

  /** Resolves when no request is being served. */
  quiesce(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise(r => this.idle.push(r));
  }

  /** Every pending request, read and dispatched. */
  drain(): void {
    while (!this.ended) {
      let n = this.ch.read(this.buf);
      if (n === -E.EAGAIN && this.inflight === 0 && this.spinning()) n = this.spin();
      if (n === -E.EAGAIN || n === -E.EINTR) return;
      if (n === -E.ENODEV || n === -E.ECONNABORTED || n === 0) { this.end(); return; }
      if (n < 0) { this.opts.onError(new Error(`reading /dev/fuse: errno ${-n}`), 'read'); this.end(); return; }
      this.dispatch(this.buf, n);
    }
  }

  /**
   * Whether to wait a little for the next request before the event loop
   * sleeps: while recent waits caught one, and every SPIN_PROBE-th time
   * after SPIN_MISSES in a row did not (a client that has gone quiet costs
   * no more than that).
   */
  private spinning(): boolean {
    return this.spinMisses < SPIN_MISSES || ++this.spinSkipped % SPIN_PROBE === 0;
  }

  /**
   * Read again for up to SPIN_MS. A client that waits for each answer (a
   * stat, a create, a single reader) sends its next request within tens of
   * microseconds; a server that has gone to sleep by then is woken by the
   * host, which on a VM costs more than the wait (a cold stat of 10,000
   * names on cd9660: 0.54 -> 0.46 s, fuseiso 0.45; no more server CPU). Only
   * with nothing in flight: the event loop has nothing else to do meanwhile.
   */
  private spin(): number {
    const until = rumpuser_clock_monotonic_ms() + SPIN_MS;
    let n = -E.EAGAIN;
    // The clock (a call and an allocation) only every SPIN_READS reads: the
    // loop comes round to a read sooner after a request comes.
    for (let i = 1; n === -E.EAGAIN && (i % SPIN_READS !== 0 || rumpuser_clock_monotonic_ms() < until); i++) n = this.ch.read(this.buf);
    this.spinMisses = n === -E.EAGAIN ? this.spinMisses + 1 : 0;
    return n;
  }

  private end(): void {
    if (this.ended) return;
    this.stop();
    this.onEnded();
  }

  /** One request of n bytes in buf. Never throws. */
  dispatch(buf: Buffer, n: number): void {
    let h: InHeader;
    try {
      h = decodeHeader(buf, n);
    } catch (e) {
      // Without a trustworthy header there is no one to answer.
      this.opts.trace?.(`fuse: dropped a request: ${(e as Error).message}`);
      return;
    }
    const op = opName[h.opcode] ?? `opcode ${h.opcode}`;
    this.opCounts[h.opcode] = (this.opCounts[h.opcode] ?? 0) + 1;
    const t = this.opts.inflight;
    // FORGET, BATCH_FORGET and INTERRUPT get no reply.
    if (t && h.opcode !== Op.FORGET && h.opcode !== Op.BATCH_FORGET && h.opcode !== Op.INTERRUPT) this.slot = t.begin(h.unique);
    try {
      this.serve(h, this.args.reset(buf, n), op);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.opts.trace?.(`fuse: ${op} #${h.unique}: ${e.message}`);
        this.replyError(h.unique, E.EINVAL);
      } else {
        this.fail(h.unique, op, e);
      }
    }
    // Answered now (or needs no answer); a pending one's slot went to settle().
    if (this.slot >= 0) { t!.end(this.slot); this.slot = -1; }
  }

  private serve(h: InHeader, a: ArgReader, op: string): void {
    const fs = this.fs, u = h.unique, id = h.nodeid;
    switch (h.opcode) {
      case Op.INIT: return this.init(h, a);
      case Op.DESTROY: return this.settle(u, op, fs.destroy?.(), () => this.replyEmpty(u));
      case Op.FORGET: fs.forget?.(id, a.u64()); return;
      case Op.BATCH_FORGET: {
        const count = a.u32();
        a.skip(4);
        for (let i = 0; i < count; i++) { const node = a.u64(); fs.forget?.(node, a.u64()); }
        return;
      }
      // The request still gets its answer; nothing here can be cancelled midway.
      case Op.INTERRUPT: return;
      case Op.LOOKUP: return this.entry(u, op, fs.lookup && (() => fs.lookup!(h, id, a.name())));
      case Op.GETATTR: {
        const flags = a.u32();
        a.skip(4);
        const fh = a.u64();
        return this.attr(u, op, fs.getattr && (() => fs.getattr!(h, id, flags & FUSE_GETATTR_FH ? fh : null)));
      }
      case Op.SETATTR: return this.attr(u, op, fs.setattr && (() => fs.setattr!(h, id, decodeSetattr(a))));
      case Op.READLINK:
        return this.call(u, op, fs.readlink && (() => fs.readlink!(h, id)), (_, t: string) => this.replyData(u, Buffer.from(t)));
      case Op.SYMLINK: {
        const name = a.name(), target = a.name();
        return this.entry(u, op, fs.symlink && (() => fs.symlink!(h, id, name, target)));
      }
      case Op.MKNOD: {
        const mode = a.u32(), rdev = a.u32();
        a.skip(8);
        return this.entry(u, op, fs.mknod && (() => fs.mknod!(h, id, a.name(), mode, rdev)));
      }
      case Op.MKDIR: {
        const mode = a.u32();
        a.skip(4);
        return this.entry(u, op, fs.mkdir && (() => fs.mkdir!(h, id, a.name(), mode)));
      }
      case Op.UNLINK: return this.empty(u, op, fs.unlink && (() => fs.unlink!(h, id, a.name())));
      case Op.RMDIR: return this.empty(u, op, fs.rmdir && (() => fs.rmdir!(h, id, a.name())));
      case Op.RENAME: case Op.RENAME2: {
        const newDir = a.u64();
        let flags = 0;
        if (h.opcode === Op.RENAME2) { flags = a.u32(); a.skip(4); }
        const name = a.name(), newName = a.name();
        return this.empty(u, op, fs.rename && (() => fs.rename!(h, id, name, newDir, newName, flags)));
      }
      case Op.LINK: {
        const old = a.u64();
        return this.entry(u, op, fs.link && (() => fs.link!(h, old, id, a.name())));
      }
      case Op.OPEN: case Op.OPENDIR: {
        const flags = a.u32();
        const f = h.opcode === Op.OPEN ? fs.open : fs.opendir;
        return this.call(u, op, f && (() => f.call(fs, h, id, flags)), this.replyOpen);
      }
      case Op.CREATE: {
        const flags = a.u32(), mode = a.u32();
        a.skip(8);
        return this.call(u, op, fs.create && (() => fs.create!(h, id, a.name(), mode, flags)),
          (_, r: { entry: EntryOut; open: OpenOut }) => this.replyCreate(u, r.entry, r.open));
      }
      case Op.READ: {
        const fh = a.u64(), offset = a.u64(), size = this.sized(a.u32());
        return this.call(u, op, fs.read && (() => fs.read!(h, id, fh, offset, size)), (_, d: Uint8Array | Uint8Array[]) => {
          if (Array.isArray(d)) this.replyPieces(u, d, size);
          else this.replyData(u, d.length > size ? d.subarray(0, size) : d);
          fs.readDone?.(d);
        });
      }
      case Op.WRITE: {
        const fh = a.u64(), offset = a.u64(), size = a.u32(), writeFlags = a.u32();
        a.skip(16);
        const data = a.bytes(size);
        return this.call(u, op, fs.write && (() => fs.write!(h, id, fh, offset, data, writeFlags)),
          this.replyWrite, true);
      }
      case Op.FLUSH: return this.empty(u, op, fs.flush && (() => fs.flush!(h, id, a.u64())));
      case Op.RELEASE: case Op.RELEASEDIR: {
        const fh = a.u64(), flags = a.u32();
        if (h.opcode === Op.RELEASEDIR) return this.empty(u, op, fs.releasedir && (() => fs.releasedir!(h, id, fh)));
        return this.empty(u, op, fs.release && (() => fs.release!(h, id, fh, flags)));
      }
      case Op.FSYNC: case Op.FSYNCDIR: {
        const fh = a.u64(), datasync = (a.u32() & FUSE_FSYNC_FDATASYNC) !== 0;
        const f = h.opcode === Op.FSYNC ? fs.fsync : fs.fsyncdir;
        return this.empty(u, op, f && (() => f.call(fs, h, id, fh, datasync)));
      }
      case Op.READDIR: case Op.READDIRPLUS: {
        const fh = a.u64(), offset = a.u64(), size = this.sized(a.u32());
        const out = new DirentWriter(size, h.opcode === Op.READDIRPLUS);
        return this.call(u, op, fs.readdir && (() => fs.readdir!(h, id, fh, offset, out)), () => this.replyDirents(u, out));
      }
      case Op.STATFS: return this.call(u, op, fs.statfs && (() => fs.statfs!(h, id)), this.replyStatfs);
      case Op.ACCESS: return this.empty(u, op, fs.access && (() => fs.access!(h, id, a.u32())));
      case Op.GETXATTR: {
        const size = a.u32();
        a.skip(4);
        return this.call(u, op, fs.getxattr && (() => fs.getxattr!(h, id, a.name())), (_, v: Uint8Array) => this.replyXattr(u, size, v));
      }
      case Op.LISTXATTR: {
        const size = a.u32();
        return this.call(u, op, fs.listxattr && (() => fs.listxattr!(h, id)),
          (_, names: string[]) => this.replyXattr(u, size, Buffer.from(names.map(x => x + '\0').join(''))));
      }
      case Op.SETXATTR: {
        // fuse_setxattr_in without SETXATTR_EXT (not asked for): size, flags.
        const size = a.u32(), flags = a.u32();
        const name = a.name(), value = a.bytes(size);
        return this.call(u, op, fs.setxattr && (() => fs.setxattr!(h, id, name, value, flags)), this.replyEmpty, true);
      }
      case Op.REMOVEXATTR: return this.empty(u, op, fs.removexattr && (() => fs.removexattr!(h, id, a.name())));
      default: return this.replyError(u, E.ENOSYS);
    }
  }

  /** A size the kernel asks for: never more than INIT settled (the buffer is allocated from it). */
  private sized(n: number): number {
    if (n > (this.conn?.maxWrite ?? this.opts.maxWrite)) throw new ProtocolError(`asks for ${n} bytes, more than max_write`);
    return n;
  }

  private init(h: InHeader, a: ArgReader): void {
    const major = a.u32(), minor = a.u32(), maxReadahead = a.u32(), offered = a.u32();
    if (major < FUSE_KERNEL_VERSION) return this.replyError(h.unique, E.EPROTO);
    const out = Buffer.alloc(OUT_HEADER_SIZE + INIT_OUT_SIZE);
    if (major > FUSE_KERNEL_VERSION) {
      // Tell a newer kernel our major; it asks again with ours.
      out.writeUInt32LE(FUSE_KERNEL_VERSION, OUT_HEADER_SIZE);
      return this.send(h.unique, 0, out.subarray(0, OUT_HEADER_SIZE + 8));
    }
    const flags = offered & this.opts.want & ~INIT.INIT_EXT;
    const maxPages = flags & INIT.MAX_PAGES ? Math.ceil(this.opts.maxWrite / PAGE) : 32;
    const maxWrite = Math.min(this.opts.maxWrite, maxPages * PAGE);
    this.conn = { minor: Math.min(minor, FUSE_KERNEL_MINOR_VERSION), flags, maxWrite, maxReadahead: Math.min(maxReadahead, maxWrite) };
    let o = OUT_HEADER_SIZE;
    out.writeUInt32LE(FUSE_KERNEL_VERSION, o);
    out.writeUInt32LE(this.conn.minor, o + 4);
    out.writeUInt32LE(this.conn.maxReadahead, o + 8);
    out.writeUInt32LE(flags >>> 0, o + 12);
    out.writeUInt16LE(64, o + 16); // max_background
    out.writeUInt16LE(48, o + 18); // congestion_threshold
    out.writeUInt32LE(maxWrite, o + 20);
    out.writeUInt32LE(1, o + 24); // time_gran: nanoseconds
    out.writeUInt16LE(flags & INIT.MAX_PAGES ? maxPages : 0, o + 28);
    this.fs.init?.(this.conn);
    this.opts.inflight?.setConn(this.conn);
    // Older minors read a shorter fuse_init_out (24 bytes before 7.23).
    const size = this.conn.minor < 23 ? 24 : INIT_OUT_SIZE;
    this.send(h.unique, 0, out.subarray(0, OUT_HEADER_SIZE + size));
  }

  // Running a handler and answering

  /**
   * Call fn and answer with reply, now or when its promise settles. pins:
   * the request's bytes are used after the handler returns (WRITE data), so
   * a pending handler keeps the read buffer and the next read gets another.
   */
  private call<T>(u: number, op: string, fn: (() => MaybePromise<T>) | undefined, reply: Reply<T>, pins = false): void {
    if (!fn) return this.replyError(u, E.ENOSYS);
    let r: MaybePromise<T>;
    try {
      r = fn();
    } catch (e) {
      // Arguments are read as the handler is called: a short request ends here.
      if (e instanceof ProtocolError) throw e;
      return this.fail(u, op, e);
    }
    this.settle(u, op, r, reply, pins);
  }

  private settle<T>(u: number, op: string, r: MaybePromise<T>, reply: Reply<T>, pins = false): void {
    if (!(r instanceof Promise)) {
      this.trace(op, u, 'ok');
      return reply.call(this, u, r);
    }
    this.settleLater(u, op, r, reply, pins);
  }
  // Apart from settle: the closures' captured variables would cost it a context object per request, answered at once or not.
  private settleLater<T>(u: number, op: string, r: Promise<T>, reply: Reply<T>, pins: boolean): void {
    this.inflight++;
    const slot = this.slot;
    this.slot = -1;
    let held: Buffer | null = null;
    if (pins) {
      held = this.buf;
      this.buf = this.spare.pop() ?? this.newBuffer();
    }
    r.then(v => { this.trace(op, u, 'ok'); reply.call(this, u, v); }, e => this.fail(u, op, e)).finally(() => {
      this.opts.inflight?.end(slot);
      // A burst of concurrent WRITEs must not keep a megabyte each for good.
      if (held && this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(held);
      if (--this.inflight > 0) return;
      for (const w of this.idle.splice(0)) w();
      // This answer went from a continuation, not from drain(): a client that
      // waits for each answer sends its next request now, so wait for it here
      // too rather than let the loop sleep (a single reader's cold READs).
      if (!this.ended) this.drain();
    });
  }

  private entry(u: number, op: string, fn: (() => MaybePromise<EntryOut>) | undefined): void {
    this.call(u, op, fn, this.replyEntry);
  }

  private attr(u: number, op: string, fn: (() => MaybePromise<AttrOut>) | undefined): void {
    this.call(u, op, fn, this.replyAttr);
  }

  private empty(u: number, op: string, fn: (() => MaybePromise<void>) | undefined): void {
    this.call(u, op, fn, this.replyEmpty);
  }

  private fail(u: number, op: string, e: unknown): void {
    const errno = errnoOf(e);
    if (errno === null) {
      this.opts.onError(e, op);
      return this.replyError(u, E.EIO);
    }
    this.trace(op, u, `errno ${errno}`);
    this.replyError(u, errno);
  }

  private trace(op: string, u: number, outcome: string): void {
    this.opts.trace?.(`fuse: ${op} #${u} -> ${outcome}`);
  }

  // Replies: one typed call per kind of answer

  private send(u: number, error: number, msg: Buffer, data?: Uint8Array): void {
    if (data) return this.sendv(u, error, [msg, data], msg.length + data.length);
    // One buffer (nearly every reply): an array kept for it.
    this.one[0] = msg;
    this.sendv(u, error, this.one, msg.length);
  }

  /** One reply of len bytes: its header (bufs[0], whose length field is filled in here) and the bytes after it. */
  private sendv(u: number, error: number, bufs: Uint8Array[], len: number): void {
    if (this.ended) return;
    encodeOutHeader(bufs[0] as Buffer, len, error, u);
    const n = this.ch.writev(bufs);
    // The kernel forgets a request whose caller was interrupted, or the mount ended: nothing to do.
    if (n < 0 && !GONE.has(n)) this.opts.onError(new Error(`replying to request ${u}: errno ${-n}`), 'reply');
  }

  /** The reply buffer's first OUT_HEADER_SIZE + size bytes (one view per size, made once). */
  private scratch(size: number): Buffer {
    return this.scratches[size] ??= this.small.subarray(0, OUT_HEADER_SIZE + size);
  }

  replyError(u: number, errno: number): void {
    this.send(u, -Math.abs(errno), this.scratch(0));
  }

  replyEmpty(u: number): void {
    this.send(u, 0, this.scratch(0));
  }

  /** A fixed-size reply: encode writes v at OUT_HEADER_SIZE (no closure per reply). */
  private replyFixed<T>(u: number, size: number, encode: (b: Buffer, off: number, v: T) => void, v: T): void {
    const b = this.scratch(size);
    encode(b, OUT_HEADER_SIZE, v);
    this.send(u, 0, b);
  }

  replyEntry(u: number, e: EntryOut): void {
    this.replyFixed(u, ENTRY_OUT_SIZE, encodeEntry, e);
  }

  replyAttr(u: number, a: AttrOut): void {
    this.replyFixed(u, ATTR_OUT_SIZE, encodeAttrOut, a);
  }

  replyOpen(u: number, o: OpenOut): void {
    this.replyFixed(u, OPEN_OUT_SIZE, encodeOpen, o);
  }

  replyCreate(u: number, e: EntryOut, o: OpenOut): void {
    const b = this.scratch(ENTRY_OUT_SIZE + OPEN_OUT_SIZE);
    encodeEntry(b, OUT_HEADER_SIZE, e);
    encodeOpen(b, OUT_HEADER_SIZE + ENTRY_OUT_SIZE, o);
    this.send(u, 0, b);
  }

  replyStatfs(u: number, s: StatfsOut): void {
    this.replyFixed(u, STATFS_OUT_SIZE, encodeStatfs, s);
  }

  /** WRITE's count, and GETXATTR/LISTXATTR's size: fuse_write_out and fuse_getxattr_out are alike. */
  private replyCount(u: number, n: number): void {
    this.replyFixed(u, COUNT_OUT_SIZE, encodeCount, n);
  }

  replyWrite(u: number, written: number): void {
    this.replyCount(u, written);
  }

  /** READ's bytes (and READLINK's). */
  replyData(u: number, data: Uint8Array): void {
    this.send(u, 0, this.scratch(0), data);
  }

  /** READ's bytes in pieces, no more than size of them. */
  private replyPieces(u: number, pieces: Uint8Array[], size: number): void {
    let len = 0;
    for (let i = 0; i < pieces.length; i++) len += pieces[i].length;
    if (len > size || pieces.length > MAX_READ_PIECES) {
      const all = Buffer.concat(pieces, len);
      return this.replyData(u, all.subarray(0, Math.min(len, size)));
    }
    const head = this.scratch(0);
    // Not [head, ...pieces]: spreading iterates, an object per step in code not yet optimized.
    const bufs: Uint8Array[] = [head];
    for (let i = 0; i < pieces.length; i++) bufs.push(pieces[i]);
    this.sendv(u, 0, bufs, head.length + len);
  }

  replyDirents(u: number, out: DirentWriter): void {
    this.send(u, 0, out.reply());
    // Written (writev copies it into the kernel): the buffer serves the next READDIR.
    out.recycle();
  }

  /** GETXATTR/LISTXATTR: size 0 asks for the length; a smaller buffer is ERANGE. */
  replyXattr(u: number, size: number, value: Uint8Array): void {
    if (size === 0) return this.replyCount(u, value.length);
    if (value.length > size) return this.replyError(u, E.ERANGE);
    this.replyData(u, value);
  }

  // Notifications (unique 0): the server tells the kernel to drop what it cached

  /** Forget cached attributes and data of a node (off 0, len 0: attributes only; len -1: all data). */
  notifyInvalInode(ino: number, off: number, len: number): void {
    const b = Buffer.alloc(OUT_HEADER_SIZE + 24);
    b.writeBigUInt64LE(BigInt(ino), 16);
    b.writeBigInt64LE(BigInt(off), 24);
    b.writeBigInt64LE(BigInt(len), 32);
    this.send(0, NOTIFY_INVAL_INODE, b);
  }

  /** Forget a cached name in a directory. */
  notifyInvalEntry(parent: number, name: string): void {
    const nameBuf = Buffer.from(name + '\0');
    const b = Buffer.alloc(OUT_HEADER_SIZE + 16 + nameBuf.length);
    b.writeBigUInt64LE(BigInt(parent), 16);
    b.writeUInt32LE(nameBuf.length - 1, 24);
    nameBuf.copy(b, 32);
    this.send(0, NOTIFY_INVAL_ENTRY, b);
  }
}

function decodeSetattr(a: ArgReader): SetattrIn {
  const valid = a.u32();
  a.skip(4);
  const fh = a.u64(), size = a.u64();
  a.skip(8); // lock_owner
  const atime = a.i64(), mtime = a.i64();
  a.skip(8); // ctime
  const atimensec = a.u32(), mtimensec = a.u32();
  a.skip(4);
  const mode = a.u32();
  a.skip(4);
  const uid = a.u32(), gid = a.u32();
  const s: SetattrIn = { fh: valid & FATTR.FH ? fh : null, killSuidgid: (valid & FATTR.KILL_SUIDGID) !== 0 };
  if (valid & FATTR.MODE) s.mode = mode;
  if (valid & FATTR.UID) s.uid = uid;
  if (valid & FATTR.GID) s.gid = gid;
  if (valid & FATTR.SIZE) s.size = size;
  if (valid & FATTR.ATIME) s.atime = valid & FATTR.ATIME_NOW ? 'now' : { sec: atime, nsec: atimensec };
  if (valid & FATTR.MTIME) s.mtime = valid & FATTR.MTIME_NOW ? 'now' : { sec: mtime, nsec: mtimensec };
  return s;
}

/** The errno an error carries (KernError, Node's errors), or null. */
function errnoOf(e: unknown): number | null {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === 'number' && Number.isInteger(n) && n !== 0 ? Math.abs(n) : null;
}
