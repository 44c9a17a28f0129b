#!/usr/bin/env node
// Builds the rumpuser addon (build/Release/rumpuser.node beside this file)
// and the server launcher (build/Release/rumpfs_launch) with node-gyp,
// against the headers of the Node that runs us (no network). Fast when up to
// date: rebuilds only when one is missing or older than its inputs.
import { existsSync, statSync, mkdirSync, rmdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import os from 'node:os';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const dir = path.dirname(fileURLToPath(import.meta.url));
const builtFiles = ['rumpuser.node', 'rumpfs_launch'].map((f) => path.join(dir, 'build', 'Release', f));
const prefix = path.resolve(path.dirname(process.execPath), '..');
const header = path.join(prefix, 'include', 'node', 'node_api.h');
const inputs = ['rumpuser.c', 'launch.c', 'binding.gyp', 'build.mjs'].map((f) => path.join(dir, f));
if (existsSync(header)) inputs.push(header);

const mtime = (f) => statSync(f).mtimeMs;
const stale = () => builtFiles.some((built) => !existsSync(built) || inputs.some((f) => mtime(f) > mtime(built)));

// Test files may run this concurrently: one builds, the others wait for it.
const lock = path.join(os.tmpdir(), `rumpuser-build-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}.lock`);
function withLock(fn) {
  const start = Date.now();
  for (;;) {
    try { mkdirSync(lock); break; } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      try { if (Date.now() - statSync(lock).mtimeMs > 300_000) rmdirSync(lock); } catch { /* gone */ }
      if (Date.now() - start > 300_000) throw new Error(`rumpuser: ${lock} held for 5 minutes`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try { fn(); } finally { rmdirSync(lock); }
}

if (stale()) withLock(() => {
  if (!stale()) return;
  const nodedir = existsSync(header) ? [`--nodedir=${prefix}`] : [];
  try {
    execFileSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '--loglevel=warn', ...nodedir],
      { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    console.error(`rumpuser: building the native addon failed (${e.message})`);
    process.exitCode = 1;
  }
});
