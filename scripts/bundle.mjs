#!/usr/bin/env node
// One file per command that starts a server (dist/bin/<name>.js), made with
// esbuild from what tsc built: Node then reads one file instead of a
// hundred modules, which is most of a server's start-up (issue: mount in
// under 100 ms). The native addon stays a file of its own (see native.ts).
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const entries = [
  ...readdirSync(path.join(dist, 'servers')).filter(f => /^rump_\w+\.js$/.test(f)).map(f => path.join(dist, 'servers', f)),
  ...['mount_rump', 'umount_rump', 'rumpmount', 'rumpumount'].map(f => path.join(dist, 'scripts', `${f}.js`)),
  // A read-only mount's supervisor (servers/supervisor.ts), beside the servers that start it.
  path.join(dist, 'servers', 'supervise.js'),
];
await build({
  entryPoints: Object.fromEntries(entries.map(e => [path.basename(e, '.js'), e])),
  outdir: path.join(dist, 'bin'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // ESM output has no require(): give the bundled CommonJS packages one.
  banner: { js: "import { createRequire as __rumpfsRequire } from 'node:module'; const require = __rumpfsRequire(import.meta.url);" },
});
