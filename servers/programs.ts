// Which file runs a server program: its one-file bundle (dist/bin, made at
// set-up by scripts/bundle.mjs: it starts faster), else the compiled module
// (dist/servers). A bundle older than the module is stale and not used.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launcherPath } from '../src/rumpuser/native.js';

/**
 * Node flags for a server (scripts/setup asks this function for the commands
 * it installs): a small young generation (a quarter less peak memory at no
 * CPU cost, measured, shared/NOTES), and, for servers of an image, an old
 * generation that may grow 20% past what the last full GC kept before the
 * next (V8 lets a small heap grow to several times that: after 10,000 files
 * created, listed and removed on FAT the heap held ~60 MiB, mostly garbage;
 * with 20% ~20 MiB), and a tier-up budget 8 times V8's (its
 * --interrupt-budget): what a user does on a stick or disc (an ls -lR, a
 * find, a copy) is over before most of the server's functions would repay
 * their optimizing compile, which otherwise took half of a cold find's server
 * CPU on threads competing with the client (find: rump_cd9660 207 -> 146 ms,
 * fuseiso 151; rump_msdos 200 -> 148, fusefat 154; ls -lR 15-25% faster).
 * The price: creating or removing 10,000 files on FAT took 15-50% longer
 * (still a third of fusefat's time or less). The disc servers (cd9660, udf),
 * which never create or remove, take 32 times: at 8 the byte helpers that
 * every directory entry calls (isonum_733, put32, utf8Length) still reached
 * the optimizing compiler within a cold find of 5,000 files, and the
 * compiler's own code then came from disk, dropped with the page cache (22
 * page faults against 4; find 105 -> 94 ms, fuseiso 98; stat of 10,000
 * files and ls -lR unchanged, sequential and random reads no slower).
 * Not rump_tmpfs: its heap holds every file it has, so the growth limit
 * would only make it collect more often (measured: create 9%, stat 14%,
 * unlink 20% slower), and it is measured against a bare server on the same
 * runtime.
 * Every server: no young-generation collection as a task of its own
 * (--no-minor-gc-task; one then comes when the young generation is full, as
 * it would anyway). V8 posted one as the mount became ready, and it took
 * 3-4 ms on the way to the first request (the start-up's young objects
 * survive it); the mount answered ~4 ms sooner without.
 */
export function serverNodeFlags(server: string): string[] {
  if (server === 'rump_tmpfs') return ['--max-semi-space-size=1', '--no-minor-gc-task'];
  const budget = server === 'rump_cd9660' || server === 'rump_udf' ? 4325376 : 1081344;
  return ['--max-semi-space-size=1', '--heap-growing-percent=20', `--interrupt-budget=${budget}`, '--no-minor-gc-task'];
}

const mtime = (f: string) => { try { return statSync(f).mtimeMs; } catch { return -1; } };

export function serverProgram(server: string): string {
  const bundle = fileURLToPath(new URL(`../bin/${server}.cjs`, import.meta.url));
  const module = fileURLToPath(new URL(`../servers/${server}.js`, import.meta.url));
  return mtime(bundle) >= mtime(module) ? bundle : module;
}

/** The command that mounts with a server (operands follow): its launcher, which starts Node on it. */
export function serverCommand(server: string): string[] {
  return [launcherPath(), process.execPath, ...serverNodeFlags(server), serverProgram(server)];
}
