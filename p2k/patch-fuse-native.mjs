#!/usr/bin/env node
// Rebuilds fuse-native from its C source with the fixes p2k depends on:
//  - utimens hands JavaScript the real mtime (upstream passes atime twice);
//  - the FUSE caller (uid, gid, pid) of the request being dispatched is
//    readable from JavaScript (fuse_native_context), for credential conversion.
// Idempotent: a marker in the source says it is patched; the build is redone
// only when build/Release/fuse.node is missing or older than the source.
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const dir = path.dirname(require.resolve('fuse-native/package.json'));
const src = path.join(dir, 'fuse-native.c');
const MARKER = '/* rumpfs-patched v1 */';

const edits = [
  // utimens: the second pair of arguments is mtime, not atime again.
  ['  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)',
   '  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
  // Remember who made the request, on the libfuse thread that received it.
  ['  l->op = op_##name;\\\n  l->op_fn = fuse_native_dispatch_##name;\\\n',
   '  l->op = op_##name;\\\n  l->op_fn = fuse_native_dispatch_##name;\\\n' +
   '  { struct fuse_context *fc = fuse_get_context(); l->caller_uid = fc->uid; l->caller_gid = fc->gid; l->caller_pid = fc->pid; }\\\n'],
  ['  // Internal bookkeeping\n  fuse_thread_t *fuse;',
   '  uint32_t caller_uid;\n  uint32_t caller_gid;\n  uint32_t caller_pid;\n\n  // Internal bookkeeping\n  fuse_thread_t *fuse;'],
  // The request being dispatched on the JS thread, for fuse_native_context.
  ['static void fuse_native_dispatch (uv_async_t* handle) {\n  fuse_thread_locals_t *l = (fuse_thread_locals_t *) handle->data;\n  fuse_thread_t *ft = l->fuse;\n  void (*fn)(uv_async_t *, fuse_thread_locals_t *, fuse_thread_t *) = l->op_fn;\n\n  fn(handle, l, ft);\n}',
   'static fuse_thread_locals_t *dispatching = NULL;\n\n' +
   'static void fuse_native_dispatch (uv_async_t* handle) {\n  fuse_thread_locals_t *l = (fuse_thread_locals_t *) handle->data;\n  fuse_thread_t *ft = l->fuse;\n  void (*fn)(uv_async_t *, fuse_thread_locals_t *, fuse_thread_t *) = l->op_fn;\n\n  dispatching = l;\n  fn(handle, l, ft);\n  dispatching = NULL;\n}\n\n' +
   'NAPI_METHOD(fuse_native_context) {\n  napi_value arr;\n  napi_create_array_with_length(env, 3, &arr);\n  uint32_t v[3] = { 0, 0, 0 };\n  if (dispatching != NULL) { v[0] = dispatching->caller_uid; v[1] = dispatching->caller_gid; v[2] = dispatching->caller_pid; }\n  for (uint32_t i = 0; i < 3; i++) { napi_value n; napi_create_uint32(env, v[i], &n); napi_set_element(env, arr, i, n); }\n  return arr;\n}'],
  ['  NAPI_EXPORT_FUNCTION(fuse_native_mount)\n',
   '  NAPI_EXPORT_FUNCTION(fuse_native_mount)\n  NAPI_EXPORT_FUNCTION(fuse_native_context)\n'],
];

let text = readFileSync(src, 'utf8');
if (!text.startsWith(MARKER)) {
  for (const [from, to] of edits) {
    if (!text.includes(from)) {
      console.error(`patch-fuse-native: fuse-native.c has changed; cannot find:\n${from}`);
      process.exit(1);
    }
    text = text.replace(from, to);
  }
  writeFileSync(src, MARKER + '\n' + text);
}

const built = path.join(dir, 'build', 'Release', 'fuse.node');
if (!existsSync(built) || statSync(built).mtimeMs < statSync(src).mtimeMs) {
  execFileSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '--loglevel=warn', ...nodedirArgs()],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}

// Build against the headers of the Node that runs us (no download: the
// machine has no network but the package registries).
function nodedirArgs() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}
