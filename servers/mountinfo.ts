// /proc/self/mountinfo: what is mounted, read without touching the mount
// points themselves (a stat of a dead FUSE mount fails; of a stuck one, hangs).
import { readFileSync } from 'node:fs';

/** mountinfo and fstab escape blanks and backslashes as octal (\040). */
export const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
export const escapeMount = (s: string) => s.replace(/[ \t\n\\]/g, c => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));

export interface MountInfo {
  /** The mount's id. */
  id: string;
  /** major:minor of the mounted file system (for FUSE, 0:N, N the connection). */
  dev: string;
  target: string;
  /** Per-mount options (rw, nosuid, ...). */
  options: string;
  fstype: string;
  source: string;
}

export function readMountinfo(): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const f = left.split(' ');
    const [fstype, source] = right.split(' ');
    out.push({ id: f[0], dev: f[2], target: unescapeMount(f[4]), options: f[5], fstype, source: unescapeMount(source) });
  }
  return out;
}

/** What is mounted at dir (the topmost mount), if anything. */
export function mountAt(dir: string): MountInfo | null {
  return readMountinfo().filter(m => m.target === dir).pop() ?? null;
}
