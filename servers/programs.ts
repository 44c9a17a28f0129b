// Which file runs a server program: its one-file bundle (dist/bin, made at
// set-up by scripts/bundle.mjs: it starts faster), else the compiled module
// (dist/servers). A bundle older than the module is stale and not used.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const mtime = (f: string) => { try { return statSync(f).mtimeMs; } catch { return -1; } };

export function serverProgram(server: string): string {
  const bundle = fileURLToPath(new URL(`../bin/${server}.js`, import.meta.url));
  const module = fileURLToPath(new URL(`../servers/${server}.js`, import.meta.url));
  return mtime(bundle) >= mtime(module) ? bundle : module;
}
