/*
 * rumpuser native addon: the few host system calls Node cannot make.
 *
 * Everything here is a thin N-API wrapper; the policy (what to call, in which
 * order, what to verify) lives in sandbox.ts. Every failure throws a
 * Node-style Error: message "<syscall>: <strerror>", .code (errno name),
 * .errno (negative, as Node's fs errors), .syscall.
 *
 * Linux only; x86_64 and aarch64 (little-endian) for the seccomp filter.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <grp.h>
#include <math.h>
#include <stdio.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the seccomp filter reads the low 32 bits of arguments at offset 0"
#endif

/* ---------- N-API plumbing ---------- */

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

/* Throw Error("<syscall>: <strerror>") with .code/.errno/.syscall; returns NULL. */
static napi_value throw_errno(napi_env env, const char *syscall_name, int err) {
  const char *name = strerrorname_np(err);
  char msg[256];
  napi_value m, e, v;
  snprintf(msg, sizeof msg, "%s: %s", syscall_name, strerror(err));
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "code", v);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Fetch up to n arguments; missing ones are undefined. */
static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok;
}

static int arg_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int arg_double(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok;
}

/* Copies a string argument into buf; 0 when not a string or too long. */
static int arg_str(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return 0;
  return len < size - 1;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

/* ---------- locks and block devices ---------- */

/* flock(fd, op): op 0 shared, 1 exclusive, 2 unlock; never blocks. */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, op;
  static const int ops[] = { LOCK_SH, LOCK_EX, LOCK_UN };
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &op) || op < 0 || op > 2)
    return throw_type(env, "flock(fd, op)");
  if (flock(fd, ops[op] | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) { /* same value as EAGAIN; flock(2) names it EWOULDBLOCK */
      napi_value r = throw_errno(env, "flock", errno), e, v;
      napi_get_and_clear_last_exception(env, &e);
      napi_create_string_utf8(env, "EWOULDBLOCK", NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, e, "code", v);
      napi_throw(env, e);
      return r;
    }
    return throw_errno(env, "flock", errno);
  }
  return undefined(env);
}

/* A background server's stdout and stderr become its log once it is ready. */
static napi_value js_dup2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t from, to;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &from) || !arg_i32(env, argv[1], &to))
    return throw_type(env, "dup2(from, to)");
  if (dup2(from, to) < 0) return throw_errno(env, "dup2", errno);
  return undefined(env);
}

static napi_value js_blkdev_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  uint64_t size;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "blkdevSize(fd)");
  if (ioctl(fd, BLKGETSIZE64, &size) < 0) return throw_errno(env, "ioctl(BLKGETSIZE64)", errno);
  return num(env, (double)size);
}

static napi_value js_blkdev_sector_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  int ssz;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "blkdevSectorSize(fd)");
  if (ioctl(fd, BLKSSZGET, &ssz) < 0) return throw_errno(env, "ioctl(BLKSSZGET)", errno);
  return num(env, ssz);
}

/* ---------- file system view ---------- */

/* chroot(path) then chdir("/"), so that no directory outside stays current. */
static napi_value js_chroot(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[4096];
  if (!get_args(env, info, 1, argv) || !arg_str(env, argv[0], path, sizeof path)) return throw_type(env, "chroot(path)");
  if (chroot(path) < 0) return throw_errno(env, "chroot", errno);
  if (chdir("/") < 0) return throw_errno(env, "chdir", errno);
  return undefined(env);
}

/*
 * A private, detached procfs instance showing only the pid directories
 * (subset=pid), read-only. Being detached (never attached to a mount point),
 * ".." at its root stays at its root, so openat(fd, "../etc/passwd") cannot
 * climb to the host's file system: a plain /proc fd would allow exactly that.
 */
static napi_value js_open_proc_dir(napi_env env, napi_callback_info info) {
  (void)info;
  int fs = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
  if (fs < 0) return throw_errno(env, "fsopen(proc)", errno);
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "subset", "pid", 0) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int e = errno;
    close(fs);
    return throw_errno(env, "fsconfig(proc)", e);
  }
  int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                         MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int e = errno;
  close(fs);
  if (mnt < 0) return throw_errno(env, "fsmount(proc)", e);
  return num(env, mnt);
}

/* True when ".." of the directory fd is the directory itself (a root). */
static napi_value js_is_root_dir(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  int32_t fd;
  struct stat a, b;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "isRootDir(fd)");
  if (fstatat(fd, "", &a, AT_EMPTY_PATH) < 0) return throw_errno(env, "fstatat", errno);
  if (fstatat(fd, "..", &b, AT_SYMLINK_NOFOLLOW) < 0) return throw_errno(env, "fstatat", errno);
  napi_get_boolean(env, a.st_dev == b.st_dev && a.st_ino == b.st_ino, &r);
  return r;
}

/* openat(dirfd, path, O_RDONLY|O_NOFOLLOW|O_CLOEXEC): the one open the filter can allow. */
static napi_value js_openat(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t dirfd;
  char path[4096];
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &dirfd) || !arg_str(env, argv[1], path, sizeof path))
    return throw_type(env, "openat(dirfd, path)");
  int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "openat", errno);
  return num(env, fd);
}

/*
 * threadFiles(taskDirFd, name): the contents of <tid>/<name> for every thread
 * listed in an open /proc/<pid>/task directory, as [tid, text] pairs. Used to
 * verify per-thread state (credentials, capabilities) on every thread, since
 * Node has several.
 */
static napi_value js_thread_files(napi_env env, napi_callback_info info) {
  napi_value argv[2], arr;
  int32_t taskfd;
  char name[64];
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &taskfd) || !arg_str(env, argv[1], name, sizeof name))
    return throw_type(env, "threadFiles(taskDirFd, name)");
  int dfd = fcntl(taskfd, F_DUPFD_CLOEXEC, 0);
  if (dfd < 0) return throw_errno(env, "fcntl", errno);
  DIR *d = fdopendir(dfd);
  if (!d) { int e = errno; close(dfd); return throw_errno(env, "fdopendir", e); }
  rewinddir(d);
  CHECK(napi_create_array(env, &arr));
  uint32_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
    char rel[512], buf[8192];
    snprintf(rel, sizeof rel, "%s/%s", de->d_name, name);
    int fd = openat(dirfd(d), rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* the thread exited meanwhile */
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len < 0) continue;
    napi_value pair, tid, text;
    CHECK(napi_create_array_with_length(env, 2, &pair));
    CHECK(napi_create_int32(env, atoi(de->d_name), &tid));
    CHECK(napi_create_string_utf8(env, buf, (size_t)len, &text));
    napi_set_element(env, pair, 0, tid);
    napi_set_element(env, pair, 1, text);
    napi_set_element(env, arr, n++, pair);
  }
  closedir(d);
  return arr;
}

/* ---------- namespaces, credentials, limits ---------- */

/*
 * unshare(CLONE_NEWNET): a new, empty network namespace (only a down
 * loopback). Namespaces are per thread: this moves the calling thread and
 * the threads it creates from now on; seccomp's socket ban covers the rest.
 */
static napi_value js_unshare_net(napi_env env, napi_callback_info info) {
  (void)info;
  if (unshare(CLONE_NEWNET) < 0) return throw_errno(env, "unshare(CLONE_NEWNET)", errno);
  return undefined(env);
}

/* setgroups(list). glibc broadcasts set*id/setgroups to every thread (SIGSETXID). */
static napi_value js_setgroups(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t n = 0;
  gid_t gids[64];
  if (!get_args(env, info, 1, argv) || napi_get_array_length(env, argv[0], &n) != napi_ok || n > 64)
    return throw_type(env, "setgroups(gids)");
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    uint32_t g;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_uint32(env, v, &g) != napi_ok)
      return throw_type(env, "setgroups(gids)");
    gids[i] = g;
  }
  if (setgroups(n, gids) < 0) return throw_errno(env, "setgroups", errno);
  return undefined(env);
}

/* setresuid/setresgid through libc, which applies them to all threads. */
static napi_value set_res(napi_env env, napi_callback_info info, int gid) {
  napi_value argv[3];
  uint32_t id[3];
  if (!get_args(env, info, 3, argv)) return throw_type(env, "setres[ug]id(r, e, s)");
  for (int i = 0; i < 3; i++)
    if (napi_get_value_uint32(env, argv[i], &id[i]) != napi_ok) return throw_type(env, "setres[ug]id(r, e, s)");
  int r = gid ? setresgid(id[0], id[1], id[2]) : setresuid(id[0], id[1], id[2]);
  if (r < 0) return throw_errno(env, gid ? "setresgid" : "setresuid", errno);
  return undefined(env);
}
static napi_value js_setresuid(napi_env env, napi_callback_info info) { return set_res(env, info, 0); }
static napi_value js_setresgid(napi_env env, napi_callback_info info) { return set_res(env, info, 1); }

static napi_value get_res(napi_env env, int gid) {
  unsigned int id[3];
  napi_value arr;
  int r = gid ? getresgid(&id[0], &id[1], &id[2]) : getresuid(&id[0], &id[1], &id[2]);
  if (r < 0) return throw_errno(env, gid ? "getresgid" : "getresuid", errno);
  CHECK(napi_create_array_with_length(env, 3, &arr));
  for (uint32_t i = 0; i < 3; i++) napi_set_element(env, arr, i, num(env, id[i]));
  return arr;
}
static napi_value js_getresuid(napi_env env, napi_callback_info info) { (void)info; return get_res(env, 0); }
static napi_value js_getresgid(napi_env env, napi_callback_info info) { (void)info; return get_res(env, 1); }

/* capget() of the calling thread: { effective, permitted, inheritable } as bigints. */
static napi_value js_capget(napi_env env, napi_callback_info info) {
  (void)info;
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  napi_value o, v;
  if (syscall(SYS_capget, &h, d) < 0) return throw_errno(env, "capget", errno);
  CHECK(napi_create_object(env, &o));
  napi_create_bigint_uint64(env, (uint64_t)d[1].effective << 32 | d[0].effective, &v);
  napi_set_named_property(env, o, "effective", v);
  napi_create_bigint_uint64(env, (uint64_t)d[1].permitted << 32 | d[0].permitted, &v);
  napi_set_named_property(env, o, "permitted", v);
  napi_create_bigint_uint64(env, (uint64_t)d[1].inheritable << 32 | d[0].inheritable, &v);
  napi_set_named_property(env, o, "inheritable", v);
  return o;
}

static int rlimit_resource(napi_env env, napi_value v) {
  char name[16];
  if (!arg_str(env, v, name, sizeof name)) return -1;
  if (!strcmp(name, "core")) return RLIMIT_CORE;
  if (!strcmp(name, "nofile")) return RLIMIT_NOFILE;
  if (!strcmp(name, "nproc")) return RLIMIT_NPROC;
  if (!strcmp(name, "fsize")) return RLIMIT_FSIZE;
  return -1;
}

/* setrlimit(resource, soft, hard); Infinity means RLIM_INFINITY. */
static napi_value js_setrlimit(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double soft, hard;
  if (!get_args(env, info, 3, argv)) return throw_type(env, "setrlimit(resource, soft, hard)");
  int res = rlimit_resource(env, argv[0]);
  if (res < 0 || !arg_double(env, argv[1], &soft) || !arg_double(env, argv[2], &hard))
    return throw_type(env, "setrlimit(resource, soft, hard)");
  struct rlimit rl = {
    soft == INFINITY ? RLIM_INFINITY : (rlim_t)soft,
    hard == INFINITY ? RLIM_INFINITY : (rlim_t)hard,
  };
  if (setrlimit(res, &rl) < 0) return throw_errno(env, "setrlimit", errno);
  return undefined(env);
}

static napi_value js_getrlimit(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  struct rlimit rl;
  if (!get_args(env, info, 1, argv)) return throw_type(env, "getrlimit(resource)");
  int res = rlimit_resource(env, argv[0]);
  if (res < 0) return throw_type(env, "getrlimit(resource)");
  if (getrlimit(res, &rl) < 0) return throw_errno(env, "getrlimit", errno);
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, num(env, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur));
  napi_set_element(env, arr, 1, num(env, rl.rlim_max == RLIM_INFINITY ? INFINITY : (double)rl.rlim_max));
  return arr;
}

/* prctl(PR_SET_DUMPABLE): a uid change resets it, so call it after setresuid. */
static napi_value js_set_dumpable(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool on;
  if (!get_args(env, info, 1, argv) || napi_get_value_bool(env, argv[0], &on) != napi_ok)
    return throw_type(env, "setDumpable(on)");
  if (prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_DUMPABLE)", errno);
  return undefined(env);
}

/* prctl(PR_SET_NO_NEW_PRIVS): per thread; seccomp's TSYNC extends it to all threads. */
static napi_value js_set_no_new_privs(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
  return undefined(env);
}

static napi_value js_get_no_new_privs(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r;
  int v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  if (v < 0) return throw_errno(env, "prctl(PR_GET_NO_NEW_PRIVS)", errno);
  napi_get_boolean(env, v == 1, &r);
  return r;
}

/* ---------- FUSE transport: /dev/fuse polled on the loop, I/O without exceptions, mounting ---------- */

/* One uv_poll watcher on a descriptor, calling back into JavaScript on the main thread. */
typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
} fd_poll;

static void fd_poll_closed(uv_handle_t *h) {
  free(h->data);
}

/* libuv calls this when the fd is readable (or failed): cb(events or -errno), microtasks run after. */
static void fd_poll_ready(uv_poll_t *h, int status, int events) {
  fd_poll *p = h->data;
  napi_handle_scope scope;
  napi_value cb, global, arg, res;
  if (napi_open_handle_scope(p->env, &scope) != napi_ok) return;
  napi_get_reference_value(p->env, p->cb, &cb);
  napi_get_global(p->env, &global);
  napi_create_int32(p->env, status < 0 ? status : events, &arg);
  if (napi_make_callback(p->env, p->ctx, global, cb, 1, &arg, &res) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(p->env, &e);
    napi_fatal_exception(p->env, e);
  }
  napi_close_handle_scope(p->env, scope);
}

static void fd_poll_finalize(napi_env env, void *data, void *hint) {
  fd_poll *p = data;
  /* Stopped (and freed by uv_close) through pollStop; a dropped handle is closed here. */
  if (p && p->env) {
    napi_delete_reference(env, p->cb);
    napi_async_destroy(env, p->ctx);
    p->env = NULL;
    uv_close((uv_handle_t *)&p->handle, fd_poll_closed);
  }
}

/* pollStart(fd, cb): watch fd for readability; returns a handle for pollStop. */
static napi_value js_poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2], name, ext;
  int32_t fd;
  uv_loop_t *loop;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "pollStart(fd, cb)");
  fd_poll *p = calloc(1, sizeof *p);
  if (!p) return throw_errno(env, "pollStart", ENOMEM);
  CHECK(napi_get_uv_event_loop(env, &loop));
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) { free(p); return throw_errno(env, "uv_poll_init", -r); }
  p->handle.data = p;
  p->env = env;
  CHECK(napi_create_reference(env, argv[1], 1, &p->cb));
  CHECK(napi_create_string_utf8(env, "rumpfs:fuse", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->ctx));
  r = uv_poll_start(&p->handle, UV_READABLE | UV_DISCONNECT, fd_poll_ready);
  if (r < 0) { fd_poll_finalize(env, p, NULL); return throw_errno(env, "uv_poll_start", -r); }
  CHECK(napi_create_external(env, p, NULL, NULL, &ext));
  return ext;
}

/* pollStop(handle): stop watching; the handle is freed once libuv has closed it. */
static napi_value js_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  if (!get_args(env, info, 1, argv) || napi_get_value_external(env, argv[0], &data) != napi_ok) return throw_type(env, "pollStop(handle)");
  fd_poll_finalize(env, data, NULL);
  return undefined(env);
}

/* readInto(fd, buf): read(2) into the whole buffer; bytes read or -errno (EAGAIN is no exception). */
static napi_value js_read_into(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_type(env, "readInto(fd, buffer)");
  ssize_t n;
  do n = read(fd, data, len); while (n < 0 && errno == EINTR);
  return num(env, n < 0 ? -errno : (double)n);
}

/*
 * preadNowait(fd, buffer, offset): one preadv2(2) with RWF_NOWAIT: what the
 * host's page cache holds, without waiting for the device; bytes read (0 at
 * the end of the file), or -1 when that would wait (or the file or kernel
 * cannot tell: EOPNOTSUPP, ENOSYS). Other errors throw.
 */
static napi_value js_pread_nowait(napi_env env, napi_callback_info info) {
  napi_value argv[3], ab;
  int32_t fd;
  double offset;
  void *data;
  size_t len, off;
  napi_typedarray_type t;
  if (!get_args(env, info, 3, argv) || !arg_i32(env, argv[0], &fd) ||
      napi_get_typedarray_info(env, argv[1], &t, &len, &data, &ab, &off) != napi_ok || t != napi_uint8_array ||
      napi_get_value_double(env, argv[2], &offset) != napi_ok || offset < 0)
    return throw_type(env, "preadNowait(fd, Uint8Array, offset)");
  struct iovec iov = { data, len };
  ssize_t n;
  do n = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS) return num(env, -1);
    return throw_errno(env, "preadv2", errno);
  }
  return num(env, (double)n);
}

/* Linux's IOV_MAX: a READ reply's header and the pieces of file a driver lends (p2k MAX_READ_PIECES). */
#define WRITEV_MAX 1024

/* writevFrom(fd, buffers): one writev(2); bytes written or -errno. */
static napi_value js_writev_from(napi_env env, napi_callback_info info) {
  napi_value argv[2], el;
  int32_t fd;
  uint32_t count;
  struct iovec iov[WRITEV_MAX];
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count > WRITEV_MAX) return throw_type(env, "writevFrom(fd, buffers[<=1024])");
  for (uint32_t i = 0; i < count; i++) {
    CHECK(napi_get_element(env, argv[1], i, &el));
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, el, &data, &len) != napi_ok) {
      /* A Uint8Array view is as good as a Buffer. */
      napi_typedarray_type t;
      napi_value ab;
      size_t off;
      if (napi_get_typedarray_info(env, el, &t, &len, &data, &ab, &off) != napi_ok || t != napi_uint8_array)
        return throw_type(env, "writevFrom: not a byte buffer");
    }
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  ssize_t n;
  do n = writev(fd, iov, (int)count); while (n < 0 && errno == EINTR);
  return num(env, n < 0 ? -errno : (double)n);
}

/* socketpair(): two connected AF_UNIX stream sockets [ours, theirs], close-on-exec (fusermount3's _FUSE_COMMFD). */
static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  int sv[2];
  napi_value arr;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return throw_errno(env, "socketpair", errno);
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, num(env, sv[0])));
  CHECK(napi_set_element(env, arr, 1, num(env, sv[1])));
  return arr;
}

/* recvFd(sock): receive one descriptor (SCM_RIGHTS), made non-blocking and close-on-exec. */
static napi_value js_recv_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t sock;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &sock)) return throw_type(env, "recvFd(sock)");
  char byte;
  struct iovec iov = { &byte, 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "recvmsg", errno);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return throw_errno(env, "recvmsg", ENODATA);
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) { int e = errno; close(fd); return throw_errno(env, "fcntl", e); }
  return num(env, fd);
}

/* sendFds(sock, fds, text): one sendmsg of text with the descriptors (SCM_RIGHTS, at most 8); the rest of a short write written after. */
static napi_value js_send_fds(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t sock;
  uint32_t nfds;
  char text[4096];
  bool isarr;
  if (!get_args(env, info, 3, argv) || !arg_i32(env, argv[0], &sock) || napi_is_array(env, argv[1], &isarr) != napi_ok || !isarr ||
      napi_get_array_length(env, argv[1], &nfds) != napi_ok || nfds < 1 || nfds > 8 || !arg_str(env, argv[2], text, sizeof text) || !text[0])
    return throw_type(env, "sendFds(sock, fds, text)");
  int fds[8];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || !arg_i32(env, v, &fds[i]) || fds[i] < 0) return throw_type(env, "sendFds(sock, fds, text)");
  }
  size_t len = strlen(text);
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 8)]; } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = { text, len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = CMSG_SPACE(sizeof(int) * nfds) };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  for (size_t off = (size_t)n; off < len;) {
    ssize_t w = send(sock, text + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return throw_errno(env, "send", errno);
    off += (size_t)w;
  }
  return undefined(env);
}

/* mount(source, target, type, flags, data): mount(2). Root only. */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char source[4096], target[4096], type[256], data[4096];
  double flags;
  if (!get_args(env, info, 5, argv) || !arg_str(env, argv[0], source, sizeof source) || !arg_str(env, argv[1], target, sizeof target) ||
      !arg_str(env, argv[2], type, sizeof type) || !arg_double(env, argv[3], &flags) || !arg_str(env, argv[4], data, sizeof data))
    return throw_type(env, "mount(source, target, type, flags, data)");
  if (mount(source, target, type, (unsigned long)flags, data) < 0) return throw_errno(env, "mount", errno);
  return undefined(env);
}

/* umount2(target, flags): MNT_DETACH is 2. */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char target[4096];
  int32_t flags;
  if (!get_args(env, info, 2, argv) || !arg_str(env, argv[0], target, sizeof target) || !arg_i32(env, argv[1], &flags))
    return throw_type(env, "umount2(target, flags)");
  if (umount2(target, flags) < 0) return throw_errno(env, "umount2", errno);
  return undefined(env);
}

/* ---------- memory shared with a supervisor ---------- */

/* memfdShared(name, size): memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING) of size bytes (zeroed); the supervisor seals its size. */
static napi_value js_memfd_shared(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[64];
  int32_t size;
  if (!get_args(env, info, 2, argv) || !arg_str(env, argv[0], name, sizeof name) || !arg_i32(env, argv[1], &size) || size <= 0)
    return throw_type(env, "memfdShared(name, size)");
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, size) < 0) { int e = errno; close(fd); return throw_errno(env, "ftruncate", e); }
  return num(env, fd);
}

static void unmap_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/* mapShared(fd, size): mmap(PROT_READ|PROT_WRITE, MAP_SHARED) as an ArrayBuffer (unmapped when collected). */
static napi_value js_map_shared(napi_env env, napi_callback_info info) {
  napi_value argv[2], ab;
  int32_t fd, size;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &size) || size <= 0)
    return throw_type(env, "mapShared(fd, size)");
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  if (napi_create_external_arraybuffer(env, p, (size_t)size, unmap_finalize, (void *)(uintptr_t)size, &ab) != napi_ok) {
    munmap(p, (size_t)size);
    return NULL;
  }
  return ab;
}

/* setCloexec(fd, on): FD_CLOEXEC on or off. */
static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  bool on;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || napi_get_value_bool(env, argv[1], &on) != napi_ok)
    return throw_type(env, "setCloexec(fd, on)");
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC) < 0) return throw_errno(env, "fcntl", errno);
  return undefined(env);
}

/* ---------- seccomp ---------- */

#if defined(__x86_64__)
#define ARCH_NR AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NR AUDIT_ARCH_AARCH64
#else
#error "unsupported architecture for the seccomp filter"
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* Linux 6.6, same number on every architecture */
#endif

#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i)) /* low 32 bits (LE) */
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define ALLOW RET(SECCOMP_RET_ALLOW)
#define EPERM_ RET(SECCOMP_RET_ERRNO | EPERM)
#define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JSET(k, t, f) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f))
/* Denied outright: each a two-instruction rule "if nr == X return EPERM". */
#define DENY(name) JEQ(__NR_##name, 0, 1), EPERM_

/* Namespace-creating clone flags: never allowed, even with CLONE_THREAD. */
#define CLONE_NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
                        CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)
/* The flags an openat through the proc directory may carry (0 is O_RDONLY). */
#define OPENAT_OK (O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY | O_NONBLOCK | O_NOCTTY | 0100000 /* kernel O_LARGEFILE */)

/*
 * seccomp(procDirFd): install the filter on every thread (TSYNC). Default
 * allow; deny with EPERM (observable, not fatal) what a file server never
 * needs after start-up: opening files, programs, processes, sockets, mounts,
 * namespaces, credentials, kernel modules and keys, path-changing calls,
 * io_uring (it bypasses this filter), and signals to other processes.
 * Foreign architectures kill the process; x32 numbers are denied.
 * procDirFd >= 0 allows openat(procDirFd, ..., O_RDONLY|O_NOFOLLOW...) only.
 */
static napi_value js_seccomp(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t procfd;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &procfd)) return throw_type(env, "seccomp(procDirFd)");
  const uint32_t self = (uint32_t)getpid();
  struct sock_filter head[] = {
    LD(offsetof(struct seccomp_data, arch)),
    JEQ(ARCH_NR, 1, 0),
    RET(SECCOMP_RET_KILL_PROCESS),
    LD(offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, 0, 1), EPERM_,
#endif
    /* Files: only descriptors opened before the sandbox are usable. */
#ifdef __NR_open
    DENY(open), DENY(creat),
#endif
    DENY(openat2), DENY(open_by_handle_at), DENY(name_to_handle_at),
    /* Programs and processes (threads are handled below). */
    DENY(execve), DENY(execveat),
#ifdef __NR_fork
    DENY(fork), DENY(vfork),
#endif
    JEQ(__NR_clone3, 0, 1), RET(SECCOMP_RET_ERRNO | ENOSYS), /* flags are in memory: glibc falls back to clone */
    DENY(ptrace), DENY(process_vm_readv), DENY(process_vm_writev), DENY(pidfd_getfd), DENY(pidfd_send_signal),
    DENY(tkill), DENY(personality), DENY(userfaultfd),
    /* Network. */
    DENY(socket), DENY(socketpair), DENY(connect), DENY(bind), DENY(listen), DENY(accept), DENY(accept4),
    /* Mounts, roots, namespaces. */
    DENY(mount), DENY(umount2), DENY(pivot_root), DENY(chroot), DENY(unshare), DENY(setns),
    DENY(fsopen), DENY(fsconfig), DENY(fsmount), DENY(fspick), DENY(open_tree), DENY(move_mount),
    DENY(mount_setattr), DENY(swapon), DENY(swapoff), DENY(quotactl), DENY(acct),
    /* Kernel attack surface. */
    DENY(io_uring_setup), DENY(io_uring_enter), DENY(io_uring_register), DENY(bpf), DENY(perf_event_open),
    DENY(kexec_load), DENY(kexec_file_load), DENY(init_module), DENY(finit_module), DENY(delete_module),
    DENY(keyctl), DENY(add_key), DENY(request_key), DENY(reboot),
    /* Names in the (empty) file system view. */
    DENY(mknodat), DENY(linkat), DENY(symlinkat), DENY(unlinkat), DENY(renameat), DENY(renameat2),
    DENY(mkdirat), DENY(fchmodat), DENY(fchmodat2), DENY(fchownat), DENY(truncate),
#ifdef __NR_mknod
    DENY(mknod), DENY(link), DENY(symlink), DENY(unlink), DENY(rename), DENY(mkdir), DENY(rmdir),
    DENY(chmod), DENY(chown), DENY(lchown), DENY(uselib),
#endif
    /* Credentials. */
    DENY(setuid), DENY(setgid), DENY(setreuid), DENY(setregid), DENY(setresuid), DENY(setresgid),
    DENY(setfsuid), DENY(setfsgid), DENY(setgroups), DENY(capset),

    /* clone: threads only (CLONE_THREAD), and no namespace flags. */
    JEQ(__NR_clone, 0, 5),
    LD(ARG_LO(0)),
    JSET(CLONE_NS_FLAGS, 2, 0),
    JSET(CLONE_THREAD, 0, 1),
    ALLOW,
    EPERM_,
    /* ioctl: no faking terminal input (TIOCSTI) or console selection pastes. */
    JEQ(__NR_ioctl, 0, 5),
    LD(ARG_LO(1)),
    JEQ(TIOCSTI, 2, 0),
    JEQ(TIOCLINUX, 1, 0),
    ALLOW,
    EPERM_,
    /* Signals only to ourselves (raise/abort use tgkill(getpid(), ...)). */
    JEQ(__NR_kill, 0, 4), LD(ARG_LO(0)), JEQ(self, 0, 1), ALLOW, EPERM_,
    JEQ(__NR_tgkill, 0, 4), LD(ARG_LO(0)), JEQ(self, 0, 1), ALLOW, EPERM_,
    JEQ(__NR_rt_sigqueueinfo, 0, 4), LD(ARG_LO(0)), JEQ(self, 0, 1), ALLOW, EPERM_,
    JEQ(__NR_rt_tgsigqueueinfo, 0, 4), LD(ARG_LO(0)), JEQ(self, 0, 1), ALLOW, EPERM_,
    /* Resource limits only of ourselves (0 or our pid). */
    JEQ(__NR_prlimit64, 0, 5), LD(ARG_LO(0)), JEQ(0, 1, 0), JEQ(self, 0, 1), ALLOW, EPERM_,
  };
  /* openat: denied, or allowed read-only below procDirFd only. */
  struct sock_filter tail_deny[] = { DENY(openat), ALLOW };
  struct sock_filter tail_proc[] = {
    JEQ(__NR_openat, 0, 7),
    LD(ARG_LO(0)),
    JEQ((uint32_t)procfd, 0, 4),
    LD(ARG_LO(2)),
    JSET(~(uint32_t)OPENAT_OK, 2, 0),
    JSET(O_NOFOLLOW, 0, 1), /* the final component may not be a (magic) link */
    ALLOW,
    EPERM_,
    ALLOW,
  };
  struct sock_filter *tail = procfd >= 0 ? tail_proc : tail_deny;
  size_t ntail = procfd >= 0 ? sizeof tail_proc / sizeof *tail_proc : sizeof tail_deny / sizeof *tail_deny;
  size_t nhead = sizeof head / sizeof *head;
  struct sock_filter prog_buf[nhead + ntail];
  memcpy(prog_buf, head, sizeof head);
  memcpy(prog_buf + nhead, tail, ntail * sizeof *tail);
  struct sock_fprog prog = { (unsigned short)(nhead + ntail), prog_buf };

  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (r < 0) return throw_errno(env, "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)", errno);
  if (r > 0) { /* TSYNC names a thread it could not synchronise */
    char msg[96];
    snprintf(msg, sizeof msg, "seccomp(TSYNC): thread %ld could not be synchronised", r);
    napi_throw_error(env, "ESRCH", msg);
    return NULL;
  }
  return undefined(env);
}

/* ---------- self-test: what libfuse's multi-threaded loop needs ---------- */

static void *idle_thread(void *arg) {
  (void)arg;
  for (;;) pause(); /* a cancellation point */
  return NULL;
}

/*
 * threadTest(): create, cancel and join a pthread, as fuse_loop_mt does with
 * its workers (pthread_cancel needs libgcc_s, already mapped by Node).
 */
static napi_value js_thread_test(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_t t;
  void *ret;
  int e = pthread_create(&t, NULL, idle_thread, NULL);
  if (e) return throw_errno(env, "pthread_create", e);
  if ((e = pthread_cancel(t)) != 0) return throw_errno(env, "pthread_cancel", e);
  if ((e = pthread_join(t, &ret)) != 0) return throw_errno(env, "pthread_join", e);
  napi_value r;
  napi_get_boolean(env, ret == PTHREAD_CANCELED, &r);
  return r;
}

/* ---------- module ---------- */

static napi_value init(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    { "flock", js_flock },
    { "dup2", js_dup2 },
    { "blkdevSize", js_blkdev_size },
    { "blkdevSectorSize", js_blkdev_sector_size },
    { "chroot", js_chroot },
    { "openProcDir", js_open_proc_dir },
    { "isRootDir", js_is_root_dir },
    { "openat", js_openat },
    { "threadFiles", js_thread_files },
    { "preadNowait", js_pread_nowait },
    { "unshareNet", js_unshare_net },
    { "setgroups", js_setgroups },
    { "setresuid", js_setresuid },
    { "setresgid", js_setresgid },
    { "getresuid", js_getresuid },
    { "getresgid", js_getresgid },
    { "capget", js_capget },
    { "setrlimit", js_setrlimit },
    { "getrlimit", js_getrlimit },
    { "setDumpable", js_set_dumpable },
    { "setNoNewPrivs", js_set_no_new_privs },
    { "getNoNewPrivs", js_get_no_new_privs },
    { "seccomp", js_seccomp },
    { "threadTest", js_thread_test },
    { "pollStart", js_poll_start },
    { "pollStop", js_poll_stop },
    { "readInto", js_read_into },
    { "writevFrom", js_writev_from },
    { "socketpair", js_socketpair },
    { "recvFd", js_recv_fd },
    { "sendFds", js_send_fds },
    { "mount", js_mount },
    { "umount2", js_umount2 },
    { "memfdShared", js_memfd_shared },
    { "mapShared", js_map_shared },
    { "setCloexec", js_set_cloexec },
  };
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
    napi_value f;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
