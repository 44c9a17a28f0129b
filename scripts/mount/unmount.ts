// Unmounting a rump mount and waiting for its server: umount returns as soon
// as the kernel lets go of the mount, while the server is still flushing its
// buffers and closing the device; only its exit says the image is complete.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { EXIT_FAILURE, MountError } from './types.js';
import type { MountInfo } from '../../servers/mountinfo.js';

/** Exited, or a zombie nobody has reaped yet (servers are detached). */
export function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
  } catch {
    return true;
  }
}

function holdsDevFuse(pid: string): boolean {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse') return true;
    } catch { /* closed meanwhile */ }
  }
  return false;
}

/** Kept in step with src/rumpuser/launch.c, which starts the unmounters. */
const UNMOUNTER_MARK = ': rumpfs-unmounter;';

/**
 * The rump servers serving mountpoint. The launcher gives each server an
 * unmounter (`/bin/sh -c ': rumpfs-unmounter; ...' MOUNTPOINT PID`) that
 * lives as long as the server: its command line names both. PID is the
 * server's, or for a read-only mount its supervisor's (the C launcher,
 * which exits after its server). It must hold /dev/fuse.
 */
export function serverPids(mountpoint: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[1] !== '-c' || !argv[2]?.startsWith(UNMOUNTER_MARK) || argv[3] !== mountpoint) continue;
      const server = Number(argv[4]);
      if (holdsDevFuse(String(server)) && !processGone(server)) pids.push(server);
    } catch { /* gone meanwhile, or not ours to look at */ }
  }
  return pids;
}

/** Wait until every pid has exited; false on timeout. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (pids.some(p => !processGone(p))) {
    if (Date.now() > end) return false;
    await new Promise(r => setTimeout(r, 25));
  }
  return true;
}

/**
 * Unmount the rump mount m (as umount does for root, through fusermount3
 * for its owner) and wait for its server to exit. The status umount would
 * give; MountError when the server outlives the timeout.
 */
export async function unmountAndWait(m: MountInfo, opts: { verbose?: boolean; lazy?: boolean; timeoutMs?: number } = {}): Promise<number> {
  const pids = serverPids(m.target);
  const root = process.geteuid?.() === 0;
  // -c: the target is mountinfo's own; canonicalizing it would stat into
  // the mount and hang on a server that does not answer. -i: not through
  // our own umount.fuse.<type> helper again.
  const argv = root ? ['umount', '-i', '-c', ...(opts.lazy ? ['-l'] : []), m.target] : ['fusermount3', '-u', ...(opts.lazy ? ['-z'] : []), m.target];
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
  if (r.error) throw new MountError(`cannot run ${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) return r.status ?? EXIT_FAILURE;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (!await waitGone(pids, timeoutMs)) {
    const left = pids.filter(p => !processGone(p)).join(', ');
    throw new MountError(`${m.target}: unmounted, but its server (pid ${left}) is still running after ${timeoutMs / 1000} s (still flushing to ${m.source}?)`);
  }
  if (opts.verbose) {
    process.stdout.write(`${m.target} (${m.source}) unmounted${pids.length > 0 ? `; server ${pids.join(', ')} exited` : '; no server was running'}\n`);
  }
  return 0;
}
