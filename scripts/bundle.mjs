#!/usr/bin/env node
// One file per command that starts a server (dist/bin/<name>.cjs), made with
// esbuild from what tsc built: Node then reads one file instead of a
// hundred modules, which is most of a server's start-up (issue: mount in
// under 100 ms). The native addon stays a file of its own (see native.ts).
// CommonJS, not ESM: Node reaches the first line of a CommonJS file ~20 ms
// sooner (measured here: 62 against 82 ms), as its ESM loader does more.
// Whitespace minified (a quarter smaller: a few ms less to read and parse
// at each start), code and names as written: a panic's stack still names its
// functions.
//
// A server's bundle is <name>.bundle.cjs, started by <name>.cjs, a loader
// that runs it with V8's code cache of a whole mount (<name>.<hash>.cache): the
// functions a mount runs are then not compiled again at each start (~6 ms
// less CPU for rump_tmpfs, measured). The first server that starts without
// a cache V8 accepts (none yet, a new bundle, another Node) makes it, as
// Python writes its .pyc files beside the sources: it creates the file
// before its sandbox, where it may, and fills it from the open descriptor
// once its mount has answered the first requests (servers/runner.ts), so
// that the sandbox's code and the first requests' are in it too (the mount
// answered ~4 ms sooner than with a cache made before the sandbox). A
// reader of a file still being written gets a cache V8 refuses. A cache is
// as trusted as the bundle beside it, in the same directory; V8 refuses one
// from another V8 or other flags, and the name ties it to the bundle's
// content (below).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const bin = path.join(dist, 'bin');
const servers = readdirSync(path.join(dist, 'servers')).filter(f => /^rump_\w+\.js$/.test(f)).map(f => path.basename(f, '.js'));
const commands = ['mount_rump', 'umount_rump', 'rumpmount', 'rumpumount'];
await build({
  entryPoints: Object.fromEntries([
    ...servers.map(s => [`${s}.bundle`, path.join(dist, 'servers', `${s}.js`)]),
    ...commands.map(c => [c, path.join(dist, 'scripts', `${c}.js`)]),
  ]),
  outdir: bin,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  target: 'node20',
  // ASCII only (esbuild's default, said here because the loader reads it as latin1, the cheaper way).
  charset: 'ascii',
  minifyWhitespace: true,
  logLevel: 'warning',
  // node:module's createRequire is the bundle's own require (CommonJS):
  // loading node:module costs a start ~2 ms (it brings the ES module loader).
  plugins: [{
    name: 'commonjs-require',
    setup(b) {
      b.onResolve({ filter: /^node:module$/ }, () => ({ path: 'node:module', namespace: 'commonjs-require' }));
      b.onLoad({ filter: /.*/, namespace: 'commonjs-require' }, () => ({ contents: 'export const createRequire = () => require;', loader: 'js' }));
    },
  }],
  // The modules find the addon from their own URL. (The banner goes before
  // esbuild's "use strict", which is then no directive: the bundles run as
  // sloppy code, as they always have. Made strict, rump_tmpfs's sequential
  // I/O took 8-20% more CPU in one A/B and the same in the next: left as is.)
  // (The URL is made by hand: node:url's pathToFileURL costs a start ~0.6 ms;
  // encodeURI leaves only "?" and "#" for a path to escape.)
  define: { 'import.meta.url': '__rumpfsUrl' },
  banner: { js: "const __rumpfsUrl = 'file://' + encodeURI(__filename).replace(/[?#]/g, encodeURIComponent);" },
});

for (const s of servers) {
  // The loader wraps the bundle in a function: a #! line would not parse there.
  const bundle = path.join(bin, `${s}.bundle.cjs`);
  const text = readFileSync(bundle, 'latin1').replace(/^#!.*/, '');
  writeFileSync(bundle, text, 'latin1');
  // The cache is named after the bundle's content: V8 checks a cache against
  // its source's length only, so a rebuilt bundle of the same length would
  // take the old one's code.
  const cache = `${s}.${createHash('sha256').update(text).digest('hex').slice(0, 16)}.cache`;
  for (const f of readdirSync(bin)) if (f.startsWith(`${s}.`) && f.includes('.cache') && f !== cache) rmSync(path.join(bin, f));
  writeFileSync(path.join(bin, `${s}.cjs`), loader(s, cache), { mode: 0o755 });
}

/** The loader of server s: see above; the hook's name is the one servers/runner.ts calls. */
function loader(s, cache) {
  return `#!/usr/bin/env node
// ${s}: runs ${s}.bundle.cjs with V8's code cache of a mount (${cache}), made by scripts/bundle.mjs.
'use strict';
const fs = require('node:fs');
const file = __dirname + '/${s}.bundle.cjs', cache = __dirname + '/${cache}';
let cachedData;
try { cachedData = fs.readFileSync(cache); } catch {}
const script = new (require('node:vm').Script)('(function (exports, require, module, __filename, __dirname) {' + fs.readFileSync(file, 'latin1') + '\\n})', { filename: file, cachedData });
const missing = cachedData === undefined, refused = !missing && script.cachedDataRejected;
cachedData = undefined; // not kept for the server's life
if (missing || refused) {
  globalThis[Symbol.for('rumpfs.claimCodeCache')] = () => {
    // Refused by V8: another Node, other flags, or cut short (its server was
    // killed while writing, or before: then it is empty and old). Replaced;
    // an empty one just claimed by another server is left to it.
    if (refused) try { const st = fs.statSync(cache); if (st.size > 0 || Date.now() - st.mtimeMs > 10000) fs.unlinkSync(cache); } catch {}
    let fd;
    try { fd = fs.openSync(cache, 'wx', 0o644); } catch { return undefined; } // not ours to write, or another's
    return () => {
      if (fd === undefined) return;
      try { fs.writeFileSync(fd, script.createCachedData()); } catch {}
      try { fs.closeSync(fd); } catch {}
      fd = undefined;
    };
  };
}
script.runInThisContext()(exports, require, module, file, __dirname);
`;
}
