// util-linux's utab (/run/mount/utab): the notes libmount keeps on mounts
// beyond what the kernel records. A root server notes its FUSE mount there
// with uhelper=rump, as `mount --fake -o uhelper=rump` would, without the
// cost of running it on every mount (~15 ms here). Without the note umount
// takes the type from statfs ("fuse") and runs no helper; with it umount
// reads fuse.<subtype> from the mount table and runs /sbin/umount.fuse.<subtype>
// (or umount.rump), which waits for the server to flush.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { flock } from '../src/rumpuser/native.js';
import { escapeMount, readMountinfo } from './mountinfo.js';

const UTAB = '/run/mount/utab';

/** Hold libmount's lock on utab (flock of utab.lock) while fn runs. */
function withUtabLock<T>(fn: () => T): T {
  const fd = openSync(`${UTAB}.lock`, 'r', 0o644);
  try {
    const tick = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; ; waited++) {
      try {
        flock(fd, 'ex');
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EWOULDBLOCK' || waited > 10_000) throw e;
        Atomics.wait(tick, 0, 0, 1);
      }
    }
    return fn();
  } finally {
    closeSync(fd); // and the lock with it
  }
}

/** Add the line libmount would for a mount at target of source with these user options. Best effort. */
export function utabAdd(source: string, target: string, options: string): void {
  try {
    mkdirSync(path.dirname(UTAB), { recursive: true, mode: 0o755 });
    // The lock file must exist before it can be opened read-only.
    closeSync(openSync(`${UTAB}.lock`, 'a', 0o644));
    withUtabLock(() => {
      let text = '';
      try { text = readFileSync(UTAB, 'utf8'); } catch { /* the first note */ }
      // Read under the lock: a mount noted meanwhile by someone else is mounted already.
      const here = escapeMount(target);
      const mounted = new Set(readMountinfo().map(m => escapeMount(m.target)));
      mounted.delete(here); // a note left there by an earlier mount is not ours
      text = utabPrune(text, mounted) + `SRC=${escapeMount(source)} TARGET=${here} ROOT=/ OPTS=${escapeMount(options)}\n`;
      // A new file renamed over the old, as libmount does: readers never see half of it.
      const tmp = `${UTAB}.rumpfs.${process.pid}`;
      writeFileSync(tmp, text, { mode: 0o644 });
      renameSync(tmp, UTAB);
    });
  } catch {
    // Without the note umount still unmounts; it only returns before the server has flushed.
  }
}

/**
 * utab without the notes on mounts that are gone (by TARGET, escaped as in
 * utab; mounted: the escaped mount points now): a server that died, or was
 * unmounted with fusermount, leaves its note behind, and nothing else takes
 * it away. Lines that name no target stay.
 */
export function utabPrune(text: string, mounted: ReadonlySet<string>): string {
  const kept = text.split('\n').filter(line => {
    const target = / TARGET=(\S+)/.exec(' ' + line)?.[1];
    return line !== '' && (target === undefined || mounted.has(target));
  });
  return kept.map(l => l + '\n').join('');
}
