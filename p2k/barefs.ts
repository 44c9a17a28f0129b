#!/usr/bin/env node
// barefs: the smallest in-memory file system written directly on the FUSE
// transport p2k uses (p2k/fuse), with the same INIT flags, timeouts and
// mount options: the yardstick for what p2k, the kernel and a driver add
// per request (scripts/bench). Flat: files in the root directory only. Not
// a server for real use.
//   node dist/p2k/barefs.js [--nocache] mountpoint   (foreground; SIGTERM or umount ends it)
import { constants } from 'node:os';
import { FOPEN, FUSE_ROOT_ID } from './fuse/abi.js';
import type { AttrOut, DirentWriter, EntryOut, FuseAttr, OpenOut, StatfsOut, Timespec } from './fuse/codec.js';
import { DevChannel, fuseMount, fuseUnmount } from './fuse/mount.js';
import { FuseSession, type FuseFilesystem, type FuseRequest, type SetattrIn } from './fuse/session.js';
import { p2kWants } from './p2k.js';

interface BareFile { ino: number; name: string; data: Buffer; size: number; mode: number; mtime: Timespec }

const S_IFDIR = 0o040000, S_IFREG = 0o100000;
const E = constants.errno;
const fail = (errno: number) => Object.assign(new Error(`errno ${errno}`), { errno });

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

class BareFs implements FuseFilesystem {
  private readonly byName = new Map<string, BareFile>();
  private readonly byIno = new Map<number, BareFile>();
  private nextIno = FUSE_ROOT_ID + 1;
  private readonly started = now();

  constructor(private readonly timeout: number, private readonly openFlags: number) {}

  private attr(f: BareFile | null): FuseAttr {
    if (!f) {
      const t = this.started;
      return { ino: FUSE_ROOT_ID, size: 0, blocks: 0, atime: t, mtime: t, ctime: t, mode: S_IFDIR | 0o777, nlink: 2, uid: 0, gid: 0, rdev: 0, blksize: 4096 };
    }
    return { ino: f.ino, size: f.size, blocks: Math.ceil(f.size / 512), atime: f.mtime, mtime: f.mtime, ctime: f.mtime,
      mode: S_IFREG | f.mode, nlink: 1, uid: 0, gid: 0, rdev: 0, blksize: 4096 };
  }

  private file(ino: number): BareFile {
    const f = this.byIno.get(ino);
    if (!f) throw fail(E.ENOENT);
    return f;
  }

  private entry(f: BareFile): EntryOut {
    return { nodeid: f.ino, generation: 0, entryValid: this.timeout, attrValid: this.timeout, attr: this.attr(f) };
  }

  lookup(req: FuseRequest, parent: number, name: string): EntryOut {
    const f = this.byName.get(name);
    if (!f) throw fail(E.ENOENT);
    return this.entry(f);
  }

  getattr(req: FuseRequest, ino: number): AttrOut {
    return { attrValid: this.timeout, attr: this.attr(ino === FUSE_ROOT_ID ? null : this.file(ino)) };
  }

  setattr(req: FuseRequest, ino: number, set: SetattrIn): AttrOut {
    if (ino !== FUSE_ROOT_ID) {
      const f = this.file(ino);
      if (set.size !== undefined) this.resize(f, set.size);
      if (set.mode !== undefined) f.mode = set.mode & 0o7777;
      if (set.mtime !== undefined) f.mtime = set.mtime === 'now' ? now() : set.mtime;
    }
    return this.getattr(req, ino);
  }

  create(req: FuseRequest, parent: number, name: string, mode: number): { entry: EntryOut; open: OpenOut } {
    const f: BareFile = { ino: this.nextIno++, name, data: Buffer.alloc(0), size: 0, mode: mode & 0o7777, mtime: now() };
    this.byName.set(name, f);
    this.byIno.set(f.ino, f);
    return { entry: this.entry(f), open: { fh: f.ino, openFlags: this.openFlags } };
  }

  open(req: FuseRequest, ino: number): OpenOut {
    this.file(ino);
    return { fh: ino, openFlags: this.openFlags };
  }

  opendir(): OpenOut { return { fh: 0, openFlags: 0 }; }
  release(): void {}
  releasedir(): void {}
  flush(): void {}
  fsync(): void {}
  forget(): void {}

  readdir(req: FuseRequest, ino: number, fh: number, offset: number, out: DirentWriter): void {
    const all: [string, number, number][] = [['.', FUSE_ROOT_ID, S_IFDIR], ['..', FUSE_ROOT_ID, S_IFDIR],
      ...[...this.byName.values()].map(f => [f.name, f.ino, S_IFREG] as [string, number, number])];
    for (let i = offset; i < all.length; i++) {
      const [name, fino, mode] = all[i];
      const f = this.byIno.get(fino);
      if (!out.add(name, fino, mode, i + 1, out.plus && f ? this.entry(f) : null)) break;
    }
  }

  read(req: FuseRequest, ino: number, fh: number, offset: number, size: number): Uint8Array {
    const f = this.file(fh);
    return f.data.subarray(Math.min(offset, f.size), Math.min(offset + size, f.size));
  }

  write(req: FuseRequest, ino: number, fh: number, offset: number, data: Buffer): number {
    const f = this.file(fh);
    this.resize(f, Math.max(f.size, offset + data.length));
    data.copy(f.data, offset);
    f.mtime = now();
    return data.length;
  }

  private resize(f: BareFile, size: number): void {
    if (size > f.data.length) {
      const d = Buffer.alloc(Math.max(size, f.data.length * 2));
      f.data.copy(d, 0, 0, f.size);
      f.data = d;
    } else if (size < f.size) {
      f.data.fill(0, size, f.size);
    }
    f.size = size;
  }

  unlink(req: FuseRequest, parent: number, name: string): void {
    const f = this.byName.get(name);
    if (!f) throw fail(E.ENOENT);
    this.byName.delete(name);
    this.byIno.delete(f.ino);
  }

  statfs(): StatfsOut {
    return { blocks: 1 << 20, bfree: 1 << 20, bavail: 1 << 20, files: 1 << 20, ffree: 1 << 20, bsize: 4096, namelen: 255, frsize: 4096 };
  }
}

const args = process.argv.slice(2);
const nocache = args.includes('--nocache');
const mountpoint = args.filter(a => a !== '--nocache')[0];
if (!mountpoint) {
  process.stderr.write('usage: barefs [--nocache] mountpoint\n');
  process.exit(1);
}
// The same choices p2k makes for a read-write mount (servers/runner.ts).
const fs = new BareFs(nocache ? 0 : 1, nocache ? FOPEN.DIRECT_IO : FOPEN.KEEP_CACHE);
const fd = fuseMount({ mountpoint, fsname: 'barefs', subtype: 'barefs', readOnly: false, noexec: false, allowOther: process.geteuid?.() === 0 });
const session = new FuseSession(new DevChannel(fd), fs, {
  want: p2kWants(false), maxWrite: 1 << 20,
  onError: e => { process.stderr.write(`barefs: ${String(e)}\n`); process.exit(70); },
});
session.onEnded = () => process.exit(0);
session.start();
process.on('SIGTERM', () => { try { fuseUnmount(mountpoint); } catch { /* already gone */ } process.exit(0); });
process.stdout.write('ready\n');
