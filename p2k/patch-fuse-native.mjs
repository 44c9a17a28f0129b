#!/usr/bin/env node
// Rebuilds fuse-native from its C source with the fixes p2k depends on:
//  - utimens hands JavaScript both times as (seconds, nanoseconds), with
//    UTIME_NOW and UTIME_OMIT passed through (flag_utime_omit_ok), so
//    `touch -m`, `touch -a` and nanosecond times work; upstream passed atime
//    twice and dropped single-time changes;
//  - the FUSE caller (uid, gid, pid) of the request being dispatched is
//    readable from JavaScript (fuse_native_context), for credential conversion;
//  - create passes the open flags; readdir passes the opendir handle;
//  - handle operations need no path (flag_nullpath_ok, flag_nopath): a file
//    unlinked while open (hard_remove) keeps working; a NULL path reaches
//    JavaScript as null instead of an uninitialised value;
//  - when the FUSE loop ends (umount, fusermount -u), the JavaScript object
//    that mounted is told (its _fuseEnded method), and the handle that kept
//    the process alive is released.
// Idempotent: a marker in the source says which version is applied; the
// pristine source is kept beside it (.orig) so a newer version re-applies
// from scratch. The build is redone when fuse.node is older than the source.
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const dir = path.dirname(require.resolve('fuse-native/package.json'));
const src = path.join(dir, 'fuse-native.c');
const orig = src + '.orig';
const MARKER = '/* rumpfs-patched v2 */';

const PATH_ARG = 'napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));';

const edits = [
  // Remember who made the request, on the libfuse thread that received it.
  ['  l->op = op_##name;\\\n  l->op_fn = fuse_native_dispatch_##name;\\\n',
   '  l->op = op_##name;\\\n  l->op_fn = fuse_native_dispatch_##name;\\\n' +
   '  { struct fuse_context *fc = fuse_get_context(); l->caller_uid = fc->uid; l->caller_gid = fc->gid; l->caller_pid = fc->pid; }\\\n'],
  ['  // Internal bookkeeping\n  fuse_thread_t *fuse;',
   '  uint32_t caller_uid;\n  uint32_t caller_gid;\n  uint32_t caller_pid;\n  const struct timespec *tv;\n\n  // Internal bookkeeping\n  fuse_thread_t *fuse;'],
  ['  uv_async_t async;\n  uv_mutex_t mut;\n  uv_sem_t sem;\n} fuse_thread_t;',
   '  uv_async_t async;\n  uv_async_t ended;\n  uv_mutex_t mut;\n  uv_sem_t sem;\n} fuse_thread_t;'],
  // Times now cross as (seconds, nanoseconds), not milliseconds.
  ['static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n  uint64_t ms = (ts->tv_sec * 1000) + (ts->tv_nsec / 1000000);\n  return ms;\n}\n\n', ''],
  // Paths may be NULL (nopath): JavaScript gets null.
  ['// Methods\n',
   'static void fuse_native_path_arg (napi_env env, const char *path, napi_value *out) {\n' +
   '  if (path == NULL) napi_get_null(env, out);\n' +
   '  else napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, out);\n}\n\n// Methods\n'],
  // utimens: (path, atime sec, atime nsec, mtime sec, mtime nsec); nsec may be UTIME_NOW/UTIME_OMIT.
  ['FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {\n  l->path = path;\n' +
   '  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n}, {\n  ' + PATH_ARG + '\n' +
   '  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)\n})',
   'FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {\n  l->path = path;\n' +
   '  l->tv = tv;\n}, {\n  ' + PATH_ARG + '\n' +
   '  napi_create_double(env, (double) l->tv[0].tv_sec, &(argv[3]));\n' +
   '  napi_create_uint32(env, (uint32_t) l->tv[0].tv_nsec, &(argv[4]));\n' +
   '  napi_create_double(env, (double) l->tv[1].tv_sec, &(argv[5]));\n' +
   '  napi_create_uint32(env, (uint32_t) l->tv[1].tv_nsec, &(argv[6]));\n})'],
  // create: (path, mode, flags).
  ['FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {\n' +
   '  l->path = path;\n  l->mode = mode;\n  l->info = info;\n}, {\n  ' + PATH_ARG + '\n' +
   '  napi_create_uint32(env, l->mode, &(argv[3]));\n}, {',
   'FUSE_METHOD(create, 3, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {\n' +
   '  l->path = path;\n  l->mode = mode;\n  l->info = info;\n}, {\n  ' + PATH_ARG + '\n' +
   '  napi_create_uint32(env, l->mode, &(argv[3]));\n  napi_create_uint32(env, l->info->flags, &(argv[4]));\n}, {'],
  // readdir: (path, fh of opendir).
  ['FUSE_METHOD(readdir, 1, 2, (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info), {\n' +
   '  l->buf = buf;\n  l->path = path;\n  l->offset = offset;\n  l->info = info;\n  l->readdir_filler = filler;\n}, {\n  ' + PATH_ARG + '\n}',
   'FUSE_METHOD(readdir, 2, 2, (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info), {\n' +
   '  l->buf = buf;\n  l->path = path;\n  l->offset = offset;\n  l->info = info;\n  l->readdir_filler = filler;\n}, {\n  ' + PATH_ARG + '\n' +
   '  napi_create_uint32(env, l->info != NULL ? l->info->fh : 0, &(argv[3]));\n}'],
  // The request being dispatched on the JS thread, for fuse_native_context;
  // the end of the FUSE loop, for _fuseEnded.
  ['static void fuse_native_dispatch (uv_async_t* handle) {\n  fuse_thread_locals_t *l = (fuse_thread_locals_t *) handle->data;\n  fuse_thread_t *ft = l->fuse;\n  void (*fn)(uv_async_t *, fuse_thread_locals_t *, fuse_thread_t *) = l->op_fn;\n\n  fn(handle, l, ft);\n}',
   'static fuse_thread_locals_t *dispatching = NULL;\n\n' +
   'static void fuse_native_dispatch (uv_async_t* handle) {\n  fuse_thread_locals_t *l = (fuse_thread_locals_t *) handle->data;\n  fuse_thread_t *ft = l->fuse;\n  void (*fn)(uv_async_t *, fuse_thread_locals_t *, fuse_thread_t *) = l->op_fn;\n\n  dispatching = l;\n  fn(handle, l, ft);\n  dispatching = NULL;\n}\n\n' +
   'NAPI_METHOD(fuse_native_context) {\n  napi_value arr;\n  napi_create_array_with_length(env, 3, &arr);\n  uint32_t v[3] = { 0, 0, 0 };\n  if (dispatching != NULL) { v[0] = dispatching->caller_uid; v[1] = dispatching->caller_gid; v[2] = dispatching->caller_pid; }\n  for (uint32_t i = 0; i < 3; i++) { napi_value n; napi_create_uint32(env, v[i], &n); napi_set_element(env, arr, i, n); }\n  return arr;\n}\n\n' +
   'static void fuse_native_ended (uv_async_t* handle) {\n  fuse_thread_t *ft = (fuse_thread_t *) handle->data;\n' +
   '  uv_unref((uv_handle_t *) &(ft->async));\n' +
   '  FUSE_NATIVE_CALLBACK(ft->ctx, {\n    napi_value fn;\n    napi_valuetype t = napi_undefined;\n' +
   '    if (napi_get_named_property(env, ctx, "_fuseEnded", &fn) == napi_ok) napi_typeof(env, fn, &t);\n' +
   '    if (t == napi_function) {\n      NAPI_MAKE_CALLBACK(env, NULL, ctx, fn, 0, NULL, NULL)\n    }\n  })\n}'],
  ['  fuse_loop_mt(ft->fuse);\n\n  fuse_unmount(ft->mnt, ft->ch);\n  fuse_session_remove_chan(ft->ch);\n  fuse_destroy(ft->fuse);\n',
   '  fuse_loop_mt(ft->fuse);\n\n  fuse_unmount(ft->mnt, ft->ch);\n  fuse_session_remove_chan(ft->ch);\n  fuse_destroy(ft->fuse);\n  uv_async_send(&(ft->ended));\n'],
  ['  struct fuse_operations ops = { };\n',
   '  struct fuse_operations ops = { };\n  ops.flag_nullpath_ok = 1;\n  ops.flag_nopath = 1;\n  ops.flag_utime_omit_ok = 1;\n'],
  ['  int err = uv_async_init(uv_default_loop(), &(ft->async), (uv_async_cb) fuse_native_async_init);\n',
   '  int err = uv_async_init(uv_default_loop(), &(ft->async), (uv_async_cb) fuse_native_async_init);\n' +
   '  if (err >= 0) {\n    err = uv_async_init(uv_default_loop(), &(ft->ended), (uv_async_cb) fuse_native_ended);\n' +
   '    ft->ended.data = ft;\n    uv_unref((uv_handle_t *) &(ft->ended));\n  }\n'],
  ['  NAPI_EXPORT_FUNCTION(fuse_native_mount)\n',
   '  NAPI_EXPORT_FUNCTION(fuse_native_mount)\n  NAPI_EXPORT_FUNCTION(fuse_native_context)\n'],
];

let text = readFileSync(src, 'utf8');
if (!text.startsWith(MARKER)) {
  if (text.startsWith('/* rumpfs-patched')) {
    if (!existsSync(orig)) {
      console.error(`patch-fuse-native: ${src} carries an older patch and no pristine copy; reinstall fuse-native (npm ci)`);
      process.exit(1);
    }
    text = readFileSync(orig, 'utf8');
  } else {
    writeFileSync(orig, text);
  }
  for (const [from, to] of edits) {
    if (!text.includes(from)) {
      console.error(`patch-fuse-native: fuse-native.c has changed; cannot find:\n${from}`);
      process.exit(1);
    }
    text = text.replace(from, to);
  }
  text = text.replaceAll(PATH_ARG, 'fuse_native_path_arg(env, l->path, &(argv[2]));');
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
