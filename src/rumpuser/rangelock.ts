// Exclusive opening by byte range. Several partitions of one disk image (an
// SD card's boot and root) may be open read-write at once; two openers of
// overlapping bytes, one of them writing, may not, whatever name each used:
// the image file, a loop device over it or a partition of that, a disk or
// its partition device. Names are reduced to the object underneath (a
// regular file by device and inode, else a whole disk by device number)
// and where the opened bytes start in it.
//
// flock(2) locks whole files and Node has no fcntl(2) range locks (an OFD
// lock call in the addon would replace what follows), so a claim is a small
// file, named by its range and mode, in a directory per underlying object,
// flocked by its holder while it holds the range: a holder that dies
// releases it with its descriptors, and a claim nobody holds is stale. The
// directory's own lock file serialises claimers.
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync, chmodSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { flock } from './native.js';

/** The object under an opened file or device, and the offset of its byte 0 in it. */
export interface Underlying {
  key: string;
  base: number;
  /** A loop device's backing file, for messages. */
  via?: string;
}

function hosterr(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const readSys = (f: string): string | null => {
  try { return readFileSync(f, 'utf8').trim(); } catch { return null; }
};

/**
 * What st (of path) opens underneath: a regular file is itself; a block
 * device's sysfs entry names its disk and, for a partition, its start; a
 * loop device's its backing file (compared by device and inode) and offset.
 */
export function underlying(st: Stats): Underlying {
  if (!st.isBlockDevice()) return { key: `f${st.dev}:${st.ino}`, base: 0 };
  // glibc's dev_t layout (devices numbered below 2^32).
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | (Math.floor(st.rdev / 4096) & 0xfff00);
  let dir: string;
  try { dir = realpathSync(`/sys/dev/block/${major}:${minor}`); } catch { return { key: `b${major}:${minor}`, base: 0 }; }
  let base = 0;
  if (existsSync(path.join(dir, 'partition'))) {
    base = Number(readSys(path.join(dir, 'start')) ?? 0) * 512;
    dir = path.dirname(dir);
  }
  const backing = readSys(path.join(dir, 'loop/backing_file'));
  if (backing !== null) {
    try {
      const b = statSync(backing);
      return { key: `f${b.dev}:${b.ino}`, base: base + Number(readSys(path.join(dir, 'loop/offset')) ?? 0), via: backing };
    } catch { /* a deleted backing file: only the loop device is left to claim */ }
  }
  return { key: `b${readSys(path.join(dir, 'dev')) ?? `${major}:${minor}`}`, base };
}

/** Where claims live: RUMPFS_LOCKDIR, else /run/lock/rumpfs (else under the temporary directory). */
function lockRoot(): string {
  for (const d of [process.env.RUMPFS_LOCKDIR, '/run/lock/rumpfs', path.join(tmpdir(), 'rumpfs-locks')]) {
    if (!d) continue;
    try {
      if (!existsSync(d)) {
        mkdirSync(d, { recursive: true });
        chmodSync(d, 0o1777); // every user's servers claim here, as in /run/lock
      }
      return d;
    } catch { /* the next */ }
  }
  throw hosterr('EACCES', 'no directory for device claims');
}

export interface RangeClaim {
  release(): void;
}

const MUTEX_WAIT_MS = 5000;

function tryFlock(fd: number, op: 'sh' | 'ex'): boolean {
  try {
    flock(fd, op);
    return true;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') return false;
    throw e;
  }
}

/**
 * Claim bytes [start, start + length) of u for reading or writing: EBUSY
 * when a live claim overlaps and either writes.
 */
export async function claimRange(u: Underlying, start: number, length: number, write: boolean): Promise<RangeClaim> {
  const dir = path.join(lockRoot(), u.key);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777);
  }
  const from = u.base + start, to = from + length;
  // Read-only is enough to flock; created readable by all (the directory is shared).
  const mutex = openSync(path.join(dir, '.lock'), constants.O_RDONLY | constants.O_CREAT, 0o444);
  try {
    for (const end = Date.now() + MUTEX_WAIT_MS; !tryFlock(mutex, 'ex');) {
      if (Date.now() > end) throw hosterr('EBUSY', `claims in ${dir} locked for ${MUTEX_WAIT_MS} ms`);
      await new Promise(r => setTimeout(r, 10));
    }
    for (const name of readdirSync(dir)) {
      const m = /^(\d+)-(\d+)-(rw|ro)-/.exec(name);
      if (!m) continue;
      const f = path.join(dir, name);
      let fd: number;
      try { fd = openSync(f, 'r'); } catch { continue; }
      try {
        if (tryFlock(fd, 'sh')) {
          // Nobody holds it: a holder that died, or one that could not remove it (sandboxed).
          try { unlinkSync(f); } catch { /* another user's, in a sticky directory */ }
          continue;
        }
      } finally {
        closeSync(fd);
      }
      const [a, b] = [Number(m[1]), Number(m[2])];
      if (a < to && from < b && (write || m[3] === 'rw')) {
        const whose = u.via ? ` of ${u.via}` : '';
        throw hosterr('EBUSY', `bytes ${a}-${b}${whose} are in use ${m[3] === 'rw' ? 'read-write' : 'read-only'} by another mount`);
      }
    }
    const f = path.join(dir, `${from}-${to}-${write ? 'rw' : 'ro'}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    const fd = openSync(f, 'wx', 0o644);
    flock(fd, 'ex');
    let held = true;
    return {
      release() {
        if (!held) return;
        held = false;
        try { unlinkSync(f); } catch { /* chrooted: the next claimer removes it */ }
        closeSync(fd);
      },
    };
  } finally {
    closeSync(mutex);
  }
}
