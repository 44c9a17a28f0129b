// Supplementary groups of FUSE callers. FUSE tells a server only the
// caller's uid, gid and pid; the groups are on the `Groups:` line of
// /proc/<pid>/status. The server reads them relative to a /proc directory
// descriptor opened before it entered its sandbox (where openat() below that
// descriptor is the only open left), and keeps each answer briefly.
import { closeSync, readSync } from 'node:fs';
import { openat } from '../src/rumpuser/native.js';
import { rumpuser_clock_monotonic_ms } from '../src/rumpuser/index.js';

/** How long one process's groups are trusted (ms): group changes of a running process are rare. */
const TTL_MS = 2000;
const MAX_ENTRIES = 4096;

export class CallerGroups {
  private readonly cache = new Map<number, { groups: readonly number[]; at: number }>();
  private readonly buf = Buffer.alloc(16384);

  /** procDirFd: a directory fd of a procfs (openProcDir(), or an open /proc). */
  constructor(private readonly procDirFd: number) {}

  /** Supplementary groups of process pid; [] when it is gone or unreadable. */
  get(pid: number): readonly number[] {
    if (pid <= 0) return [];
    const now = rumpuser_clock_monotonic_ms();
    const hit = this.cache.get(pid);
    if (hit && now - hit.at < TTL_MS) return hit.groups;
    const groups = this.read(pid);
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(pid, { groups, at: now });
    return groups;
  }

  private read(pid: number): readonly number[] {
    let fd: number;
    try {
      fd = openat(this.procDirFd, `${pid}/status`);
    } catch {
      return []; // the caller exited
    }
    try {
      // Groups: is near the top; 16 KiB holds it for any sane number of groups.
      const n = readSync(fd, this.buf, 0, this.buf.length, 0);
      return parseGroups(this.buf.toString('latin1', 0, n));
    } catch {
      return [];
    } finally {
      closeSync(fd);
    }
  }
}

/** The numbers on the `Groups:` line of a /proc/<pid>/status text. */
export function parseGroups(status: string): number[] {
  const m = /^Groups:[ \t]*(.*)$/m.exec(status);
  if (!m) return [];
  return m[1].trim().split(/\s+/).filter(s => s.length > 0).map(Number).filter(Number.isInteger);
}
