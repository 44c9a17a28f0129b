// Which file runs a server program: its one-file bundle (dist/bin, made at
// set-up by scripts/bundle.mjs: it starts faster), else the compiled module
// (dist/servers). A bundle older than the module is stale and not used.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launcherPath } from '../src/rumpuser/native.js';

/** Node flags for a server: a small young generation, a quarter less peak memory at no CPU cost (measured, shared/NOTES). */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=1'];

const mtime = (f: string) => { try { return statSync(f).mtimeMs; } catch { return -1; } };

export function serverProgram(server: string): string {
  const bundle = fileURLToPath(new URL(`../bin/${server}.cjs`, import.meta.url));
  const module = fileURLToPath(new URL(`../servers/${server}.js`, import.meta.url));
  return mtime(bundle) >= mtime(module) ? bundle : module;
}

/** The command that mounts with a server (operands follow): its launcher, which starts Node on it. */
export function serverCommand(server: string): string[] {
  return [launcherPath(), process.execPath, ...SERVER_NODE_FLAGS, serverProgram(server)];
}
