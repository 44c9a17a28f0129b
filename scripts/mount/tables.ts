// The two tables mount reads: fstab (what should be mounted) and
// /proc/self/mountinfo (what is).
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { splitOptions } from '../../servers/options.js';
import { readMountinfo, unescapeMount as unescape, type MountInfo } from '../../servers/mountinfo.js';
import { EXIT_USAGE, MountError } from './types.js';


export interface FstabEntry {
  spec: string;
  file: string;
  type: string;
  options: [string, string | true][];
  /** For messages: file:line. */
  where: string;
}

export function readFstab(file: string): FstabEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new MountError(`cannot read ${file}: ${(e as Error).message}`, EXIT_USAGE);
  }
  const out: FstabEntry[] = [];
  text.split('\n').forEach((line, i) => {
    const f = line.trim().split(/\s+/);
    if (f[0] === '' || f[0].startsWith('#')) return;
    if (f.length < 3) throw new MountError(`${file}:${i + 1}: expected at least spec, mount point and type`, EXIT_USAGE);
    out.push({ spec: unescape(f[0]), file: unescape(f[1]), type: f[2], options: splitOptions(f[3] ?? 'defaults'), where: `${file}:${i + 1}` });
  });
  return out;
}

/** LABEL=, UUID=, PARTLABEL=, PARTUUID= to a device path, as mount does (through findfs). */
export function resolveSpec(spec: string): string {
  if (!/^(LABEL|UUID|PARTLABEL|PARTUUID)=/.test(spec)) return spec;
  const r = spawnSync('findfs', [spec], { encoding: 'utf8' });
  if (r.status !== 0) throw new MountError(`cannot find ${spec}`);
  return r.stdout.trim();
}

/** A path as the mount table shows it: absolute, symbolic links resolved where the path exists. */
export function canonical(p: string): string {
  const abs = path.resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}


/**
 * The topmost mount whose mount point or source is `what`, as umount looks
 * it up. The path is not stat'ed where it is mounted (a dead FUSE mount
 * would fail); its parent is resolved instead.
 */
export function findMount(what: string): MountInfo | null {
  const abs = path.resolve(what);
  const real = path.join(canonical(path.dirname(abs)), path.basename(abs));
  const all = readMountinfo();
  const byTarget = all.filter(m => m.target === real || m.target === abs);
  if (byTarget.length > 0) return byTarget[byTarget.length - 1];
  const bySource = all.filter(m => m.source === what || m.source === abs || m.source === real);
  return bySource.length > 0 ? bySource[bySource.length - 1] : null;
}
