/*
 * rumpfs_launch: what a user's rump_<fs> command runs. It starts the server
 * (a Node program) detached, waits until the server says its mount is ready,
 * and exits 0 then, so that the command returns as mount(8) does while the
 * server stays. Written in C so that a mount costs one Node start, not two;
 * and a read-only mount's supervisor is this small program too, not a
 * second Node.
 *
 *   rumpfs_launch PROGRAM [ARG...]     (PROGRAM: the node binary, ARGs: its flags, the server script, its operands)
 *
 * Processes. The launcher L (the user's command) forks S, which makes a
 * session of its own (setsid), enters a new network namespace as root
 * (named to P in RUMPFS_NETNS: its sandbox keeps it), and forks the server P
 * (it execs PROGRAM). S does what a launcher does for P:
 * it reads P's lines, starts the unmounter, detaches a half-made mount, and
 * passes P's stderr on (P's stderr is a pipe to S). L waits for S: S says
 * "ready" to L (a pipe), or exits with the status L returns.
 *   - An unsupervised mount (read-write; restart=0; a driver without
 *     VFS_VGET): once P is ready, S waits until P has let go of its stderr
 *     (P moves its stdio to the log) and exits 0; L exits 0 after it. What
 *     stays is exactly what a mount always left: P (reparented, as a
 *     detached server always was) and its unmounter. With "foreground", S
 *     stays in front with L and exits with P's status.
 *   - A supervised mount (P says "supervise N PATH" and hands over its FUSE
 *     descriptor, the in-flight region and its log): S stays as the
 *     supervisor: it tells L "ready", moves its own stdio to the log, and
 *     restarts P when it dies (below). It holds /dev/fuse, and the
 *     unmounter names S, whom rumpumount then waits for.
 * Why S sits between L and P for every mount: only a parent gets a child's
 * exit status and signal, and whether P is supervised is known only once P
 * has read its options (the driver's VFS_VGET). An unsupervised S is gone
 * before L returns.
 *
 * P talks to S on fd 3 (a unix socket), a line each:
 *   foreground         stay: pass signals on, exit with the server's status
 *   supervise N PATH   with 2 or 3 descriptors (SCM_RIGHTS): P's /dev/fuse
 *                      session, the in-flight region (a memfd, sealed here
 *                      against shrinking), P's log; N restarts a minute;
 *                      PATH the mount point, escaped as in mountinfo
 *   mounted ID PATH    its FUSE mount (mountinfo ID) is at PATH
 *   ready              serving; it closes fd 3 after this
 * and prints its own errors (its stderr reaches ours until it is ready).
 *
 * When the server is mounted S starts its unmounter, outside the sandbox:
 * a shell reading the server's fd 4 (fd 6 in a restarted server). A server
 * asked to stop (SIGTERM) writes a line there and the unmounter unmounts
 * from outside, which the sandboxed server cannot; when every writer is
 * gone the pipe closes and the unmounter goes. Its command line names the
 * mount point and the pid rumpumount waits for (scripts/mount/unmount.ts
 * serverPids): P's, or S's when S supervises.
 *
 * The supervisor (servers/runner.ts decides: read-only, VFS_VGET,
 * restart != 0). When P dies by a signal (a panic aborts) or exits non-zero,
 * S logs it with P's last "panic:" line, answers EIO (on the FUSE
 * descriptor) every request still in the in-flight region (its layout:
 * p2k/fuse/inflight.ts, kept in step with REGION_* below), and starts a new
 * P on the same descriptor: fds 4 FUSE, 5 region, 6 unmounter pipe, env
 * P2K_FUSE_FD, P2K_INFLIGHT_FD, P2K_UNMOUNT_FD, P2K_MOUNTPOINT,
 * P2K_GENERATION; an injected fault (RUMPFS_FAULT) is dropped once it has
 * fired, unless it ends in ":always". At most N restarts in 60 s; past
 * that S closes the descriptor (the mount answers ENOTCONN until unmounted)
 * and exits. P exiting 0 has seen its mount unmounted: S exits 0. SIGTERM
 * or SIGINT is passed to P (between two servers S unmounts itself);
 * SIGUSR1/2 are passed on; SIGHUP is ignored. S stays root for root's
 * mounts (each new server sandboxes itself, which needs root), in the
 * network namespace; it never reads a request or the image. What it takes
 * from a server (untrusted) is bounded: lines of at most 4 KiB (8 KiB on
 * fd 3), at most 3 descriptors, checked (a character device 10:229; a
 * memfd it can seal, of the region's size), and uniques from the region
 * that are positive integers below 2^53 (a wrong one the kernel refuses).
 *
 * Exit status: 0 mounted; the server's own status when it ends before
 * (0 for --help, 1 usage, 32 mount failure); 32 when it dies or hangs before the mount is ready
 * (a FUSE mount it left is detached); with "foreground", the server's
 * status, or 128 + the signal that killed it (a supervised one: after the
 * supervisor has given up, the last server's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_MOUNT_FAILURE 32
#define READY_TIMEOUT_MS 60000
#define EXIT_WAIT_MS 5000
/* How long an unsupervised server may take to let go of our stderr pipe after "ready". */
#define DETACH_WAIT_MS 2000
#define RESTART_WINDOW_MS 60000
#define MAX_RESTARTS 999

/* The server's environment names the network namespace made for it (src/rumpuser/sandbox.ts keeps it). */
#define NETNS_VAR "RUMPFS_NETNS="
#define NETNS_LEN (sizeof NETNS_VAR - 1)

/* Kept in step with scripts/mount/unmount.ts, which looks for it. */
#define UNMOUNTER_MARK ": rumpfs-unmounter;"

/*
 * The in-flight region: kept in step with p2k/fuse/inflight.ts.
 *   u32[0] MAGIC, u32[1] INIT settled, u32[2..5] the INIT, u32[6] requests
 *   that found no slot; f64 slots from byte 64: a unique each, 0 when free.
 */
#define REGION_BYTES (64 * 1024)
#define REGION_MAGIC 0x52535452u
#define REGION_HEADER 64
#define REGION_SLOTS ((REGION_BYTES - REGION_HEADER) / 8)
#define REGION_UNTRACKED 6

/* struct fuse_out_header (linux/fuse.h). */
struct fuse_out_header_ { uint32_t len; int32_t error; uint64_t unique; };
#define FUSE_MAJOR 10
#define FUSE_MINOR 229

#define LINE_MAX_CTL 8192
#define LINE_MAX_ERR 4096
#define MAX_FDS 3

extern char **environ;
static const char *prog = "rumpfs_launch";
static int root;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* nowhere to write: dropped */
    p += w;
    n -= (size_t)w;
  }
}

/* ---------- the launcher L ---------- */

static pid_t child = -1;

static void forward(int sig) {
  if (child > 0) kill(child, sig);
}

static int supervisor_main(char **argv, int status_fd);

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rumpfs_launch PROGRAM [ARG...]\n");
    return 1;
  }
  /* For messages: the server script's name (rump_msdos.cjs -> rump_msdos). */
  for (int i = 1; i < argc; i++) {
    const char *b = strrchr(argv[i], '/');
    b = b ? b + 1 : argv[i];
    const char *dot = strrchr(b, '.');
    if (dot && dot != b && (strcmp(dot, ".js") == 0 || strcmp(dot, ".cjs") == 0)) {
      char *p = strndup(b, (size_t)(dot - b));
      if (p) prog = p;
      break;
    }
  }
  root = geteuid() == 0;
  int status[2];
  if (pipe2(status, O_CLOEXEC) < 0) {
    fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  fflush(NULL);
  child = fork();
  if (child < 0) {
    fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  if (child == 0) {
    /* S lives as long as the mount: it keeps nothing its caller left open (a pipe someone waits on) but stdio and L's pipe, at 3. */
    if (status[1] != 3 && (dup2(status[1], 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)) _exit(EXIT_MOUNT_FAILURE);
    if (close_range(4, ~0U, 0) < 0 && errno != ENOSYS) _exit(EXIT_MOUNT_FAILURE);
    _exit(supervisor_main(argv, 3));
  }
  close(status[1]);
  struct sigaction sa = { 0 };
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (int s = 0, sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 }; s < 5; s++) sigaction(sigs[s], &sa, NULL);
  /* S says "ready" (it stays, supervising), or exits with the status we return. */
  char buf[16];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(status[0], buf + have, sizeof buf - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = 0;
    if (strstr(buf, "ready\n")) return 0;
    if (have >= sizeof buf - 1) break;
  }
  close(status[0]);
  for (;;) {
    int st;
    pid_t r = waitpid(child, &st, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return EXIT_MOUNT_FAILURE;
    /* As a shell reports it; re-raising would make us dump core too. */
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
  }
}

/* ---------- helpers of S ---------- */

static sigset_t handled;

/* In a child of S: signals as a fresh process has them (S blocks some and ignores SIGPIPE). */
static void child_signals(void) {
  signal(SIGPIPE, SIG_DFL);
  sigprocmask(SIG_UNBLOCK, &handled, NULL);
}

/* Run argv and wait for it; its stdio goes nowhere. */
static int run_quietly(char *const argv[]) {
  pid_t p = vfork(); /* the child only moves descriptors and execs */
  if (p < 0) return -1;
  if (p == 0) {
    child_signals();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }
    execvp(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  return st;
}

/* Take the FUSE mount at path away, lazily (files still open keep it alive until closed). */
static void detach_mount(const char *path) {
  char *lazy[] = { root ? "umount" : "fusermount3", root ? "-l" : "-uz", (char *)path, NULL };
  run_quietly(lazy);
}

/* Whether mount ID is still mounted at path (our server's FUSE mount). */
static int still_mounted(long id, const char *path) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return 0;
  char line[8192];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    long mid;
    char mnt[4096];
    /* Paths are octal-escaped in mountinfo; ours are compared escaped alike by the server. */
    if (sscanf(line, "%ld %*d %*s %*s %4095s", &mid, mnt) == 2 && mid == id && strcmp(mnt, path) == 0) found = 1;
  }
  fclose(f);
  return found;
}

static char *unescape(const char *s) {
  /* mountinfo's \040 and the like, as the server sent it. */
  char *out = malloc(strlen(s) + 1), *o = out;
  if (!out) return NULL;
  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    } else {
      *o++ = *s++;
    }
  }
  *o = 0;
  return out;
}

/* "SIGABRT" for 6. */
static const char *signame(int sig, char *buf, size_t n) {
  const char *a = sigabbrev_np(sig);
  if (a) snprintf(buf, n, "SIG%s", a);
  else snprintf(buf, n, "signal %d", sig);
  return buf;
}

/* ---------- the supervisor S ---------- */

enum phase { STARTING, SERVING, RESTARTING };

static struct {
  char **argv;            /* PROGRAM ARG... */
  char **env;             /* the servers' environment, without the per-start entries */
  int status_fd;          /* to L; -1 once told */
  int sigfd;
  int unmount_r, unmount_w;
  /* The server now. */
  pid_t pid;
  int ctl, err;           /* its fd 3 and 2, our ends; -1 when closed */
  long long deadline;     /* to be ready by; 0 when ready */
  enum phase phase;
  int ready;
  char ctlbuf[LINE_MAX_CTL];
  size_t ctlhave;
  char errbuf[LINE_MAX_ERR];
  size_t errhave;
  char panic[LINE_MAX_ERR];
  /* Descriptors P sent, until its "supervise" line. */
  int sent[MAX_FDS];
  int nsent;
  /* The mount. */
  int foreground;
  long mount_id;
  char *mount_escaped, *mount_path;
  /* Supervision. */
  int supervising;
  int limit;
  int fuse, memfd, logfd;
  volatile unsigned char *region;
  char *mountpoint;       /* from "supervise", for P2K_MOUNTPOINT */
  int generation;
  long long restarts[MAX_RESTARTS];
  int nrestarts;
  int stopping;
  int tagged;             /* our lines carry a time and our name: writing to the log */
  int fault_always;
  int drop_fault;
} s;

/* A supervisor's line: "supervisor: ..." (with the log's time and tag once detached). */
static void say(const char *fmt, ...) {
  char line[6144];
  size_t n = 0;
  if (s.tagged) {
    struct timespec t;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s[%d]: ", t.tv_nsec / 1000000, prog, (int)getpid());
  }
  n += (size_t)snprintf(line + n, sizeof line - n, "supervisor: ");
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  n += (size_t)k;
  if (n > sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  write_all(2, line, n);
}

/* An environment: the servers' and the extra entries, NULL-terminated. */
static char **env_with(char *const extra[], int drop_fault) {
  size_t n = 0, k = 0, m = 0;
  while (s.env[n]) n++;
  while (extra[m]) m++;
  char **e = calloc(n + m + 1, sizeof *e);
  if (!e) return NULL;
  for (size_t i = 0; i < n; i++)
    if (!(drop_fault && strncmp(s.env[i], "RUMPFS_FAULT=", 13) == 0)) e[k++] = s.env[i];
  for (size_t i = 0; i < m; i++) e[k++] = extra[i];
  e[k] = NULL;
  return e;
}

/* The environment every server gets: ours, less what a server never uses or must not be told by the user. */
static char **server_env(const char *netns) {
  static const char *drop[] = { "NODE_EXTRA_CA_CERTS=", "SSL_CERT_FILE=", "SSL_CERT_DIR=", "NODE_OPTIONS=",
                                "UV_USE_IO_URING=", "P2K_READY_FD=", "P2K_UNMOUNT_FD=", "P2K_FUSE_FD=",
                                "P2K_INFLIGHT_FD=", "P2K_MOUNTPOINT=", "P2K_GENERATION=", NETNS_VAR, NULL };
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 4, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int keep = 1;
    for (const char **d = drop; *d; d++)
      if (strncmp(environ[i], *d, strlen(*d)) == 0) keep = 0;
    if (keep) env[k++] = environ[i];
  }
  env[k++] = "UV_USE_IO_URING=0";
  env[k++] = "P2K_READY_FD=3";
  if (netns[NETNS_LEN]) env[k++] = (char *)netns;
  env[k] = NULL;
  return env;
}

/*
 * In the child: put each of from[i] at fd i (-1: /dev/null), every other
 * descriptor closed, signals as a fresh process has them, and exec.
 */
static void exec_server(const int *from, int nfd, char **env) {
  child_signals();
  int high[8];
  for (int i = 0; i < nfd; i++) {
    /* Out of the way first: a source may sit where another goes. A closed stdin or stdout is /dev/null. */
    high[i] = from[i] < 0 ? -1 : fcntl(from[i], F_DUPFD_CLOEXEC, 16);
    if (high[i] < 0 && (from[i] < 0 || i < 2)) high[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (high[i] < 0) _exit(EXIT_MOUNT_FAILURE);
  }
  for (int i = 0; i < nfd; i++)
    if (dup2(high[i], i) < 0) _exit(EXIT_MOUNT_FAILURE);
  /* Nothing of ours beyond these reaches the server, close-on-exec or not. */
  if (close_range((unsigned)nfd, ~0U, 0) < 0 && errno != ENOSYS) _exit(EXIT_MOUNT_FAILURE);
  execve(s.argv[0], s.argv, env);
  char m[512];
  int n = snprintf(m, sizeof m, "%s: cannot run %s: %s\n", prog, s.argv[0], strerror(errno));
  if (n > 0) write_all(2, m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1);
  _exit(EXIT_MOUNT_FAILURE);
}

static int nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Start a server: the first (stdio ours, unmounter pipe at 4) or a restarted one (fds 4, 5, 6). -1 on failure. */
static int start_server(int first) {
  int ctl[2], err[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) return -1;
  if (pipe2(err, O_CLOEXEC) < 0) { close(ctl[0]); close(ctl[1]); return -1; }
  char **env;
  /* Live until the fork: env points into them. */
  char gen[40], mp[4200];
  if (first) {
    char *extra[] = { "P2K_UNMOUNT_FD=4", NULL };
    env = env_with(extra, 0);
  } else {
    snprintf(gen, sizeof gen, "P2K_GENERATION=%d", s.generation);
    snprintf(mp, sizeof mp, "P2K_MOUNTPOINT=%s", s.mountpoint);
    char *extra[] = { "P2K_FUSE_FD=4", "P2K_INFLIGHT_FD=5", "P2K_UNMOUNT_FD=6", mp, gen, NULL };
    env = env_with(extra, s.drop_fault);
  }
  if (!env) { close(ctl[0]); close(ctl[1]); close(err[0]); close(err[1]); return -1; }
  fflush(NULL);
  /* vfork: the child only moves descriptors and execs (exec_server never returns), and a fork costs ~1 ms more here. */
  pid_t p = vfork();
  if (p == 0) {
    if (first) {
      int fds[] = { 0, 1, err[1], ctl[1], s.unmount_w };
      exec_server(fds, 5, env);
    } else {
      /* Its stdout would hold the user's terminal (or a caller's pipe) past our detach: servers write only to stderr. */
      int fds[] = { -1, -1, err[1], ctl[1], s.fuse, s.memfd, s.unmount_w };
      exec_server(fds, 7, env);
    }
  }
  int e = errno;
  free(env);
  close(ctl[1]);
  close(err[1]);
  if (p < 0 || nonblock(ctl[0]) < 0 || nonblock(err[0]) < 0) {
    close(ctl[0]);
    close(err[0]);
    errno = p < 0 ? e : errno;
    return -1;
  }
  s.pid = p;
  s.ctl = ctl[0];
  s.err = err[0];
  s.ctlhave = s.errhave = 0;
  s.panic[0] = 0;
  s.ready = 0;
  s.deadline = now_ms() + READY_TIMEOUT_MS;
  return 0;
}

static void close_sent(void) {
  for (int i = 0; i < s.nsent; i++) close(s.sent[i]);
  s.nsent = 0;
}

/* The server's stderr: passed on to ours as is (it tags its own lines), its last panic kept. */
static void err_line(const char *line) {
  const char *p = strstr(line, "panic: ");
  if (p) snprintf(s.panic, sizeof s.panic, "%s", p + 7);
}

/* Read what is there (a bounded amount: a server that floods us cannot keep us here); 0 at end of file (closed), 1 otherwise. */
static int read_err(void) {
  char buf[4096];
  for (int round = 0; round < 16; round++) {
    ssize_t n = read(s.err, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 1;
    if (n <= 0) {
      if (s.errhave > 0) { s.errbuf[s.errhave] = 0; err_line(s.errbuf); s.errhave = 0; }
      close(s.err);
      s.err = -1;
      return 0;
    }
    write_all(2, buf, (size_t)n);
    /* Lines are scanned for the panic; a longer one is kept only in part (the server cannot fill our memory). */
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        s.errbuf[s.errhave] = 0;
        err_line(s.errbuf);
        s.errhave = 0;
      } else if (s.errhave < sizeof s.errbuf - 1) {
        s.errbuf[s.errhave++] = buf[i];
      }
    }
  }
  return 1;
}

/* Everything the dead server left in its stderr (it cannot write more; a child of its own holding the pipe is not waited for). */
static void drain_err(void) {
  for (int round = 0; round < 64 && s.err >= 0 && read_err(); round++) {
    struct pollfd p = { .fd = s.err, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0) break;
  }
}

static int valid_fuse(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == FUSE_MAJOR && minor(st.st_rdev) == FUSE_MINOR;
}

/* The region: a memfd we seal against shrinking (a mapping past its end would fault), mapped shared. */
static volatile unsigned char *map_region(int fd) {
  struct stat st;
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) return NULL;
  if (fstat(fd, &st) < 0 || st.st_size != REGION_BYTES) return NULL;
  void *p = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void start_unmounter(void);

/* "supervise N PATH" with the descriptors: 0, or -1 with a message in why. */
static int take_supervise(const char *args, char *why, size_t n) {
  char *end;
  errno = 0;
  long limit = strtol(args, &end, 10);
  if (errno || end == args || *end != ' ' || limit < 1 || limit > MAX_RESTARTS) return snprintf(why, n, "bad restart count"), -1;
  char *mp = unescape(end + 1);
  if (!mp || mp[0] != '/' || strlen(mp) >= 4096) { free(mp); return snprintf(why, n, "bad mount point"), -1; }
  if (s.nsent < 2 || s.nsent > 3) { free(mp); return snprintf(why, n, "%d descriptors, want 2 or 3", s.nsent), -1; }
  if (!valid_fuse(s.sent[0])) { free(mp); return snprintf(why, n, "the first descriptor is not /dev/fuse"), -1; }
  volatile unsigned char *r = map_region(s.sent[1]);
  if (!r) { free(mp); return snprintf(why, n, "the in-flight region cannot be sealed and mapped: %s", strerror(errno)), -1; }
  s.fuse = s.sent[0];
  s.memfd = s.sent[1];
  s.region = r;
  s.limit = (int)limit;
  s.mountpoint = mp;
  s.supervising = 1;
  /* The log: ours once we detach (in front, our stderr stays the user's). */
  if (s.nsent == 3 && !s.foreground) s.logfd = s.sent[2];
  else if (s.nsent == 3) close(s.sent[2]);
  s.nsent = 0;
  return 0;
}

static void ctl_line(char *line) {
  if (s.phase != STARTING) return; /* a restarted server has nothing to tell but ready */
  if (strcmp(line, "foreground") == 0) {
    s.foreground = 1;
  } else if (strncmp(line, "supervise ", 10) == 0 && !s.supervising && s.mount_id < 0) {
    char why[256];
    if (take_supervise(line + 10, why, sizeof why) < 0) {
      /* A server that cannot be supervised serves without (a restart would find nothing to take over). */
      fprintf(stderr, "%s: cannot supervise: %s\n", prog, why);
      close_sent();
    }
  } else if (strncmp(line, "mounted ", 8) == 0 && s.mount_id < 0) {
    char *sp = strchr(line + 8, ' ');
    if (sp) {
      s.mount_id = strtol(line + 8, NULL, 10);
      s.mount_escaped = strdup(sp + 1);
      s.mount_path = unescape(sp + 1);
      if (s.mount_path) start_unmounter();
    }
  }
}

/* The unmounter, outside the sandbox, reading the servers' unmount pipe. */
static void start_unmounter(void) {
  /* Closed by the unmounter's exec: once it is read, rumpumount can find the unmounter by its command line. */
  int exec_seen[2] = { -1, -1 };
  if (pipe2(exec_seen, O_CLOEXEC) < 0) exec_seen[0] = exec_seen[1] = -1;
  pid_t whom = s.supervising ? getpid() : s.pid;
  fflush(NULL);
  pid_t u = fork();
  if (u == 0) {
    child_signals();
    char pid[24];
    snprintf(pid, sizeof pid, "%d", (int)whom);
    int null = open("/dev/null", O_RDWR);
    if (dup2(s.unmount_r, 0) < 0) _exit(127);
    if (null >= 0) { dup2(null, 1); dup2(null, 2); }
    setsid();
    const char *script = root
      ? UNMOUNTER_MARK " read x || exit; umount -i \"$0\" || umount -i -l \"$0\""
      : UNMOUNTER_MARK " read x || exit; fusermount3 -u \"$0\" || fusermount3 -u -z \"$0\"";
    execl("/bin/sh", "/bin/sh", "-c", script, s.mount_path, pid, (char *)NULL);
    _exit(127);
  }
  if (exec_seen[1] >= 0) close(exec_seen[1]);
  if (exec_seen[0] >= 0) {
    char c;
    while (u > 0 && read(exec_seen[0], &c, 1) < 0 && errno == EINTR) {}
    close(exec_seen[0]);
  }
  close(s.unmount_r);
  s.unmount_r = -1;
}

/* Lines on fd 3, with any descriptors sent along (a bounded amount at a time). 0 at end of file. */
static int read_ctl(void) {
  for (int round = 0; round < 16; round++) {
    char *at = s.ctlbuf + s.ctlhave;
    size_t room = sizeof s.ctlbuf - 1 - s.ctlhave;
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; } u;
    struct iovec iov = { at, room };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t n = recvmsg(s.ctl, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 1;
    /* Descriptors: kept (at most MAX_FDS, from the first server before it is mounted), else closed. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (s.phase == STARTING && !s.supervising && s.nsent < MAX_FDS) s.sent[s.nsent++] = fd;
        else close(fd);
      }
    }
    if (n > 0 && (msg.msg_flags & MSG_CTRUNC)) {
      /* More descriptors than anyone sends: none is taken. */
      close_sent();
    }
    if (n <= 0) {
      close(s.ctl);
      s.ctl = -1;
      close_sent();
      return 0;
    }
    s.ctlhave += (size_t)n;
    s.ctlbuf[s.ctlhave] = 0;
    char *line = s.ctlbuf, *nl;
    while ((nl = strchr(line, '\n'))) {
      *nl = 0;
      if (strcmp(line, "ready") == 0) s.ready = 1;
      else ctl_line(line);
      line = nl + 1;
    }
    s.ctlhave = strlen(line);
    memmove(s.ctlbuf, line, s.ctlhave + 1);
    if (s.ctlhave >= sizeof s.ctlbuf - 1) s.ctlhave = 0; /* a line too long to be ours */
  }
  return 1;
}

/* Tell L the mount is ready: it exits 0 and leaves us. */
static void tell_ready(void) {
  if (s.status_fd < 0) return;
  write_all(s.status_fd, "ready\n", 6);
  close(s.status_fd);
  s.status_fd = -1;
}

/* Wait up to ms for the server; its status, or -1 if it still runs. */
static int wait_server(int ms) {
  long long end = now_ms() + ms;
  for (;;) {
    int st;
    pid_t r = waitpid(s.pid, &st, WNOHANG);
    if (r == s.pid) return st;
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= end) return -1;
    poll(NULL, 0, 10);
  }
}

/* The first server ended (or hangs) before its mount was ready: what L returns. */
static int failed_start(int st, int timed_out) {
  drain_err();
  if (timed_out)
    fprintf(stderr, "%s: the server did not finish starting in %d s\n", prog, READY_TIMEOUT_MS / 1000);
  else if (WIFSIGNALED(st))
    fprintf(stderr, "%s: the server was killed by signal %d (%s) before the mount was ready\n", prog, WTERMSIG(st), strsignal(WTERMSIG(st)));
  /* A server that died after attaching leaves its mount dead: detach it (handed to us and not yet said mounted: ours too). */
  if (s.mount_id >= 0 && s.mount_escaped && still_mounted(s.mount_id, s.mount_escaped)) detach_mount(s.mount_path);
  else if (s.supervising && s.mount_id < 0) { close(s.fuse); s.fuse = -1; detach_mount(s.mountpoint); }
  /* Its own status: 0 for --help or --version, 1 for usage, 32 for a failed mount. */
  if (!timed_out && WIFEXITED(st)) return WEXITSTATUS(st);
  return EXIT_MOUNT_FAILURE;
}

/* The first server is ready: check the mount answers; then stay (supervisor, foreground) or go. */
static int first_ready(void) {
  struct stat st;
  if (s.mount_path && stat(s.mount_path, &st) < 0) {
    fprintf(stderr, "%s: mounted, but %s does not answer: %s\n", prog, s.mount_path, strerror(errno));
    kill(s.pid, SIGTERM);
    wait_server(EXIT_WAIT_MS);
    return EXIT_MOUNT_FAILURE;
  }
  s.phase = SERVING;
  s.deadline = 0;
  if (s.supervising) {
    if (!s.foreground) {
      tell_ready();
      /* Detached from the user's terminal (and a caller's pipes): what we print goes to the log. */
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (null >= 0) { dup2(null, 0); dup2(null, 1); close(null); }
      if (s.logfd >= 0) { dup2(s.logfd, 2); close(s.logfd); s.logfd = -1; }
      else if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) { dup2(null, 2); close(null); }
      s.tagged = 1;
      say("server %d serves %s; restarts allowed: %d in %d s", (int)s.pid, s.mountpoint, s.limit, RESTART_WINDOW_MS / 1000);
    }
    return -1;
  }
  /* Unsupervised: the server alone holds the unmounter's pipe. */
  close(s.unmount_w);
  s.unmount_w = -1;
  if (s.foreground) return -1;
  /* Once it has let go of our pipe (its stdio is its log now), we go; L returns after us. */
  long long end = now_ms() + DETACH_WAIT_MS;
  while (s.err >= 0) {
    long long left = end - now_ms();
    if (left <= 0) break;
    struct pollfd p = { .fd = s.err, .events = POLLIN };
    if (poll(&p, 1, (int)left) < 0 && errno != EINTR) break;
    read_err();
  }
  return 0;
}

/* Every request the dead server had read and not answered: EIO. */
static void answer_inflight(void) {
  volatile uint32_t *hdr = (volatile uint32_t *)s.region;
  if (hdr[0] != REGION_MAGIC) {
    say("the in-flight region was never set up: requests in flight unanswered");
    return;
  }
  uint32_t untracked = hdr[REGION_UNTRACKED];
  if (untracked > 0) say("%u request%s in flight beyond the region's slots: unanswered", untracked, untracked == 1 ? " was" : "s were");
  int answered = 0;
  for (int i = 0; i < REGION_SLOTS; i++) {
    volatile unsigned char *slot = s.region + REGION_HEADER + (size_t)i * 8;
    double u;
    memcpy(&u, (const void *)slot, sizeof u);
    memset((void *)slot, 0, 8);
    /* A server's memory: only what can be a unique is taken (a wrong one the kernel refuses). */
    if (!(u >= 1 && u <= 9007199254740991.0) || (double)(uint64_t)u != u) continue;
    struct fuse_out_header_ h = { .len = sizeof h, .error = -EIO, .unique = (uint64_t)u };
    ssize_t w;
    do w = write(s.fuse, &h, sizeof h); while (w < 0 && errno == EINTR);
    if (w == (ssize_t)sizeof h) answered++;
  }
  hdr[REGION_UNTRACKED] = 0;
  if (answered > 0) say("%d request%s in flight answered EIO", answered, answered == 1 ? "" : "s");
}

/* How a server ended, in words, and as a shell's status. */
static int how(int st, char *text, size_t n) {
  char sn[32];
  if (WIFSIGNALED(st)) {
    snprintf(text, n, "killed by %s", signame(WTERMSIG(st), sn, sizeof sn));
    return 128 + WTERMSIG(st);
  }
  snprintf(text, n, "exited with status %d", WEXITSTATUS(st));
  return WEXITSTATUS(st);
}

/* A supervised server died: restart it, or give up. An exit status, or -1 to go on. */
static int server_died(pid_t pid, int st) {
  char text[64];
  int status = how(st, text, sizeof text);
  drain_err();
  if (s.ctl >= 0) { close(s.ctl); s.ctl = -1; }
  if (s.err >= 0) { close(s.err); s.err = -1; }
  s.pid = -1;
  int clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (clean || s.stopping) {
    /* Unmounted (or stopped by a signal we passed on): done. One killed before it could unmount leaves the mount to us. */
    if (!clean) detach_mount(s.mountpoint);
    return status;
  }
  say("server %d %s%s%s", (int)pid, text, s.panic[0] ? ": panic: " : "", s.panic);
  /* Whoever waits for an answer the dead server owed gets EIO. */
  answer_inflight();
  long long now = now_ms();
  int k = 0;
  for (int i = 0; i < s.nrestarts; i++)
    if (now - s.restarts[i] <= RESTART_WINDOW_MS) s.restarts[k++] = s.restarts[i];
  s.nrestarts = k;
  if (s.nrestarts >= s.limit) {
    say("%d restart%s in %d s already: giving up; %s answers ENOTCONN until unmounted",
        s.nrestarts, s.nrestarts == 1 ? "" : "s", RESTART_WINDOW_MS / 1000, s.mountpoint);
    close(s.fuse);
    close(s.memfd);
    return status;
  }
  s.restarts[s.nrestarts++] = now;
  /* An injected fault fires once per mount, unless it says :always. */
  if (!s.fault_always && strstr(s.panic, "RUMPFS_FAULT: injected")) s.drop_fault = 1;
  s.generation++;
  s.phase = RESTARTING;
  if (start_server(0) < 0) {
    /* Not started at all (out of processes or memory): a failure like any other, with its place in the bound. */
    say("cannot start a server: %s", strerror(errno));
    while (s.nrestarts < s.limit) {
      s.restarts[s.nrestarts++] = now_ms();
      s.generation++;
      if (start_server(0) == 0) break;
      say("cannot start a server: %s", strerror(errno));
    }
    if (s.pid < 0) {
      say("%d restart%s in %d s already: giving up; %s answers ENOTCONN until unmounted",
          s.nrestarts, s.nrestarts == 1 ? "" : "s", RESTART_WINDOW_MS / 1000, s.mountpoint);
      close(s.fuse);
      close(s.memfd);
      return status;
    }
  }
  say("restart %d of %d in %d s: server %d", s.nrestarts, s.limit, RESTART_WINDOW_MS / 1000, (int)s.pid);
  return -1;
}

/* A signal for us: passed to the server; SIGTERM/SIGINT between two servers unmount. An exit status, or -1. */
static int on_signal(int sig) {
  if (sig == SIGHUP) return -1;
  if (sig == SIGUSR1 || sig == SIGUSR2) {
    if (s.pid > 0) kill(s.pid, sig);
    return -1;
  }
  /* SIGTERM, SIGINT */
  if (s.pid > 0) {
    if (s.phase != STARTING) s.stopping = 1;
    kill(s.pid, sig);
    return -1;
  }
  if (s.supervising) detach_mount(s.mountpoint);
  return 0;
}

/* S: start the server, tell L, supervise. Returns what L is to return. */
static int supervisor_main(char **argv, int status_fd) {
  memset(&s, 0, sizeof s);
  s.argv = argv + 1;
  s.status_fd = status_fd;
  s.mount_id = -1;
  s.pid = -1;
  s.ctl = s.err = s.fuse = s.memfd = s.logfd = s.unmount_r = s.unmount_w = -1;
  if (setsid() < 0) {
    fprintf(stderr, "%s: setsid: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  /* No thread of the server ever sees the host's network. */
  if (root && unshare(CLONE_NEWNET) < 0) {
    fprintf(stderr, "%s: cannot make a network namespace for the server: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  /* Named for the server, whose sandbox then keeps it instead of making another (~1 ms). */
  static char netns[64] = NETNS_VAR;
  if (root) {
    ssize_t n = readlink("/proc/self/ns/net", netns + NETNS_LEN, sizeof netns - NETNS_LEN - 1);
    netns[NETNS_LEN + (n > 0 ? n : 0)] = 0;
  }
  /* A reader of our stderr gone (the user's terminal, a caller's pipe) must not end the supervisor. */
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&handled);
  for (int i = 0, sigs[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 }; i < 6; i++) sigaddset(&handled, sigs[i]);
  int unmount[2];
  s.env = server_env(netns);
  if (!s.env || sigprocmask(SIG_BLOCK, &handled, NULL) < 0 || (s.sigfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
      pipe2(unmount, O_CLOEXEC) < 0) {
    fprintf(stderr, "%s: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  s.unmount_r = unmount[0];
  s.unmount_w = unmount[1];
  for (char **e = s.env; *e; e++) {
    size_t n = strlen(*e);
    if (strncmp(*e, "RUMPFS_FAULT=", 13) == 0 && n >= 7 && strcmp(*e + n - 7, ":always") == 0) s.fault_always = 1;
  }
  s.phase = STARTING;
  if (start_server(1) < 0) {
    fprintf(stderr, "%s: cannot start the server: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }

  for (;;) {
    struct pollfd p[3] = { { .fd = s.sigfd, .events = POLLIN }, { .fd = s.ctl, .events = POLLIN }, { .fd = s.err, .events = POLLIN } };
    int timeout = -1;
    if (s.pid > 0 && !s.ready) {
      long long left = s.deadline - now_ms();
      timeout = left < 0 ? 0 : (int)left;
    }
    int n = poll(p, 3, timeout);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
      if (s.pid > 0) kill(s.pid, SIGKILL);
      return EXIT_MOUNT_FAILURE;
    }
    if (s.err >= 0 && p[2].revents) read_err();
    if (s.ctl >= 0 && p[1].revents) {
      int open_ = read_ctl();
      if (s.ready && s.deadline) {
        if (s.phase == STARTING) {
          int r = first_ready();
          if (r >= 0) return r;
        } else {
          s.phase = SERVING;
          s.deadline = 0;
        }
      } else if (!open_ && !s.ready && s.pid > 0) {
        /* It closed fd 3 without saying ready: it is ending; a little while to do so. */
        if (s.phase == RESTARTING) say("server %d failed to start", (int)s.pid);
        long long soon = now_ms() + EXIT_WAIT_MS;
        if (s.deadline > soon) s.deadline = soon;
      }
    }
    if (s.pid > 0 && !s.ready && now_ms() >= s.deadline) {
      kill(s.pid, SIGKILL);
      if (s.phase == STARTING) {
        int st = wait_server(EXIT_WAIT_MS);
        return failed_start(st, 1);
      }
      s.deadline = now_ms() + EXIT_WAIT_MS;
    }
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(s.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo != SIGCHLD) {
          int r = on_signal((int)si.ssi_signo);
          if (r >= 0) return r;
          continue;
        }
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
          if (w != s.pid) continue; /* the unmounter */
          if (s.phase == STARTING) return failed_start(st, 0);
          if (!s.supervising) {
            /* In front, unsupervised: the server's status is ours. */
            drain_err();
            char text[64];
            return how(st, text, sizeof text);
          }
          int r = server_died(w, st);
          if (r >= 0) return r;
        }
      }
    }
  }
}
