#!/usr/bin/env node
// barefs: the smallest in-memory file system written directly on the FUSE
// transport p2k uses, with the same mount options: the yardstick for what
// p2k, the kernel and a driver add per request (scripts/bench).
// Flat: files in the root directory only. Not a server for real use.
//   node dist/p2k/barefs.js [--nocache] mountpoint   (foreground; SIGTERM or umount ends it)
import { errnos } from '../src/kern/index.js';
import { FuseMount, direntStat, serverMountOptions, statArray, statfsArray, u64, type Signal } from './fuse.js';

interface BareFile { ino: number; data: Buffer; size: number; mode: number; mtimeMs: number }

const S_IFDIR = 0o040000, S_IFREG = 0o100000;

class BareFs extends FuseMount {
  private readonly files = new Map<string, BareFile>();
  private readonly handles: (BareFile | undefined)[] = [undefined];
  private nextIno = 2;
  private readonly started = Date.now();

  private stat(f: BareFile | null): Uint32Array {
    if (!f) {
      return statArray({ mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 0, nlink: 2, ino: 1, rdev: 0, blksize: 4096, blocks: 0,
        atimeMs: this.started, mtimeMs: this.started, ctimeMs: this.started });
    }
    return statArray({ mode: S_IFREG | f.mode, uid: 0, gid: 0, size: f.size, nlink: 1, ino: f.ino, rdev: 0, blksize: 4096,
      blocks: Math.ceil(f.size / 512), atimeMs: f.mtimeMs, mtimeMs: f.mtimeMs, ctimeMs: f.mtimeMs });
  }

  private handle(f: BareFile): number {
    this.handles.push(f);
    return this.handles.length - 1;
  }

  _op_getattr(signal: Signal, path: string): void {
    if (path === '/') return signal(0, this.stat(null));
    const f = this.files.get(path);
    signal(f ? 0 : -errnos.ENOENT, f ? this.stat(f) : undefined);
  }

  _op_fgetattr(signal: Signal, path: string | null, fh: number): void {
    const f = this.handles[fh];
    signal(f ? 0 : -errnos.EBADF, f ? this.stat(f) : undefined);
  }

  _op_access(signal: Signal): void { signal(0); }
  _op_statfs(signal: Signal): void {
    signal(0, statfsArray({ bsize: 4096, frsize: 4096, blocks: 1 << 20, bfree: 1 << 20, bavail: 1 << 20, files: 1 << 20, ffree: 1 << 20, favail: 1 << 20, flag: 0, namemax: 255 }));
  }

  _op_opendir(signal: Signal): void { signal(0, 0); }
  _op_releasedir(signal: Signal): void { signal(0); }
  _op_readdir(signal: Signal): void {
    const names = ['.', '..', ...[...this.files.keys()].map(p => p.slice(1))];
    const stats = [direntStat(S_IFDIR, 1), direntStat(S_IFDIR, 1), ...[...this.files.values()].map(f => direntStat(S_IFREG, f.ino))];
    signal(0, names, stats);
  }

  _op_create(signal: Signal, path: string, mode: number): void {
    const f: BareFile = { ino: this.nextIno++, data: Buffer.alloc(0), size: 0, mode: mode & 0o7777, mtimeMs: Date.now() };
    this.files.set(path, f);
    signal(0, this.handle(f));
  }

  _op_open(signal: Signal, path: string): void {
    const f = this.files.get(path);
    signal(f ? 0 : -errnos.ENOENT, f ? this.handle(f) : 0);
  }

  _op_release(signal: Signal, path: string | null, fh: number): void {
    this.handles[fh] = undefined;
    signal(0);
  }

  _op_flush(signal: Signal): void { signal(0); }
  _op_fsync(signal: Signal): void { signal(0); }

  _op_read(signal: Signal, path: string | null, fh: number, buf: Buffer, len: number, lo: number, hi: number): void {
    const f = this.handles[fh];
    if (!f) return signal(-errnos.EBADF, 0, buf.buffer);
    const off = u64(lo, hi);
    const n = Math.max(0, Math.min(len, f.size - off));
    if (n > 0) f.data.copy(buf, 0, off, off + n);
    signal(n, 0, buf.buffer);
  }

  _op_write(signal: Signal, path: string | null, fh: number, buf: Buffer, len: number, lo: number, hi: number): void {
    const f = this.handles[fh];
    if (!f) return signal(-errnos.EBADF, 0, buf.buffer);
    const off = u64(lo, hi);
    this.resize(f, Math.max(f.size, off + len));
    buf.copy(f.data, off, 0, len);
    f.mtimeMs = Date.now();
    signal(len, 0, buf.buffer);
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

  _op_truncate(signal: Signal, path: string, lo: number, hi: number): void {
    const f = this.files.get(path);
    if (f) this.resize(f, u64(lo, hi));
    signal(f ? 0 : -errnos.ENOENT);
  }

  _op_ftruncate(signal: Signal, path: string | null, fh: number, lo: number, hi: number): void {
    const f = this.handles[fh];
    if (f) this.resize(f, u64(lo, hi));
    signal(f ? 0 : -errnos.EBADF);
  }

  _op_utimens(signal: Signal, path: string): void {
    signal(this.files.has(path) || path === '/' ? 0 : -errnos.ENOENT);
  }

  _op_unlink(signal: Signal, path: string): void {
    signal(this.files.delete(path) ? 0 : -errnos.ENOENT);
  }
}

const args = process.argv.slice(2);
const nocache = args.includes('--nocache');
const mountpoint = args.filter(a => a !== '--nocache')[0];
if (!mountpoint) {
  process.stderr.write('usage: barefs [--nocache] mountpoint\n');
  process.exit(1);
}
const fs = new BareFs(mountpoint, serverMountOptions('barefs', 'barefs', { nocachePage: nocache, nocacheName: nocache }));
fs.onEnded = () => process.exit(0);
process.on('SIGTERM', () => process.exit(0));
await fs.attach();
process.stdout.write('ready\n');
