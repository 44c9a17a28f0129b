/*
 * rumpfs_launch: what a user's rump_<fs> command runs. It starts the server
 * (a Node program) detached, waits until the server says its mount is ready,
 * and exits 0 then, so that the command returns as mount(8) does while the
 * server stays. Written in C so that a mount costs one Node start, not two.
 *
 *   rumpfs_launch PROGRAM [ARG...]     (PROGRAM: the node binary, ARGs: its flags, the server script, its operands)
 *
 * The server runs in a session of its own, with UV_USE_IO_URING=0 (the
 * sandbox needs it from process start), without what makes Node load what a
 * server never uses (NODE_EXTRA_CA_CERTS ...), and as root in a new network
 * namespace from its first instruction. It talks to us on fd 3, a line each:
 *   foreground         stay: pass signals on, exit with the server's status
 *   mounted ID PATH    its FUSE mount (mountinfo ID) is at PATH
 *   ready              serving; it closes fd 3 after this
 * and prints its own errors (its stderr is ours until it is ready).
 *
 * When the server is mounted we start its unmounter, outside the sandbox:
 * a shell reading the server's fd 4. A server asked to stop (SIGTERM) writes
 * a line there and the unmounter unmounts from outside, which the sandboxed
 * server cannot; at the server's exit the pipe closes and the unmounter
 * goes. Its command line names the mount point and the server's pid, which
 * is how rumpumount finds the server to wait for.
 *
 * Exit status: 0 mounted; the server's own status when it ends before
 * (0 for --help, 1 usage, 32 mount failure); 32 when it dies or hangs before the mount is ready
 * (a FUSE mount it left is detached); with "foreground", the server's
 * status, or 128 + the signal that killed it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_MOUNT_FAILURE 32
#define READY_TIMEOUT_MS 60000
#define EXIT_WAIT_MS 5000

/* Kept in step with scripts/mount/unmount.ts, which looks for it. */
#define UNMOUNTER_MARK ": rumpfs-unmounter;"

extern char **environ;
static const char *prog = "rumpfs_launch";
static pid_t server = -1;

static void forward(int sig) {
  if (server > 0) kill(server, sig);
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The environment the server gets: ours, less what a server never uses, plus its pipes. */
static char **server_env(void) {
  static const char *drop[] = { "NODE_EXTRA_CA_CERTS=", "SSL_CERT_FILE=", "SSL_CERT_DIR=", "NODE_OPTIONS=",
                                "UV_USE_IO_URING=", "P2K_READY_FD=", "P2K_UNMOUNT_FD=", NULL };
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
  env[k++] = "P2K_UNMOUNT_FD=4";
  env[k] = NULL;
  return env;
}

/* Run argv and wait for it; its stdio goes nowhere. */
static int run_quietly(char *const argv[]) {
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }
    execvp(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  return st;
}

/* Whether mount ID is still mounted at path (our server's FUSE mount). */
static int still_mounted(long id, const char *path) {
  FILE *f = fopen("/proc/self/mountinfo", "r");
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
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    } else {
      *o++ = *s++;
    }
  }
  *o = 0;
  return out;
}

/* Wait up to ms for the server to exit; its status, or -1 if it is still running. */
static int wait_server(int ms) {
  long long end = now_ms() + ms;
  for (;;) {
    int st;
    pid_t r = waitpid(server, &st, WNOHANG);
    if (r == server) return st;
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= end) return -1;
    poll(NULL, 0, 10);
  }
}

static void say_status(int st) {
  if (WIFSIGNALED(st))
    fprintf(stderr, "%s: the server was killed by signal %d (%s) before the mount was ready\n", prog, WTERMSIG(st), strsignal(WTERMSIG(st)));
  else if (st == -1)
    fprintf(stderr, "%s: the server did not finish starting in %d s\n", prog, READY_TIMEOUT_MS / 1000);
}

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
  int ready_pipe[2], unmount_pipe[2];
  char **env = server_env();
  if (!env || pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(unmount_pipe, O_CLOEXEC) < 0) {
    fprintf(stderr, "%s: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  int root = geteuid() == 0;
  server = fork();
  if (server < 0) {
    fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
    return EXIT_MOUNT_FAILURE;
  }
  if (server == 0) {
    setsid();
    /* No thread of the server ever sees the host's network. */
    if (root && unshare(CLONE_NEWNET) < 0) {
      fprintf(stderr, "%s: cannot make a network namespace for the server: %s\n", prog, strerror(errno));
      _exit(EXIT_MOUNT_FAILURE);
    }
    /* dup2 onto 3 and 4 clears close-on-exec; mind a pipe already at 3 or 4. */
    int r = fcntl(ready_pipe[1], F_DUPFD_CLOEXEC, 10), u = fcntl(unmount_pipe[1], F_DUPFD_CLOEXEC, 10);
    if (r < 0 || u < 0 || dup2(r, 3) < 0 || dup2(u, 4) < 0) _exit(EXIT_MOUNT_FAILURE);
    execve(argv[1], argv + 1, env);
    fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[1], strerror(errno));
    _exit(EXIT_MOUNT_FAILURE);
  }
  close(ready_pipe[1]);
  close(unmount_pipe[1]);
  struct sigaction sa = { 0 };
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (int s = 0, sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 }; s < 5; s++) sigaction(sigs[s], &sa, NULL);

  int foreground = 0, ready = 0;
  long mount_id = -1;
  char *mount_path = NULL, *mount_escaped = NULL;
  char buf[8192];
  size_t have = 0;
  long long end = now_ms() + READY_TIMEOUT_MS;
  int timed_out = 0;
  for (;;) {
    struct pollfd p = { .fd = ready_pipe[0], .events = POLLIN };
    long long left = end - now_ms();
    if (left <= 0) { timed_out = 1; break; }
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { timed_out = n == 0; break; }
    ssize_t got = read(ready_pipe[0], buf + have, sizeof buf - 1 - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += (size_t)got;
    buf[have] = 0;
    char *line = buf, *nl;
    while ((nl = strchr(line, '\n'))) {
      *nl = 0;
      if (strcmp(line, "foreground") == 0) {
        foreground = 1;
      } else if (strcmp(line, "ready") == 0) {
        ready = 1;
      } else if (strncmp(line, "mounted ", 8) == 0 && mount_id < 0) {
        char *sp = strchr(line + 8, ' ');
        if (sp) {
          mount_id = strtol(line + 8, NULL, 10);
          mount_escaped = strdup(sp + 1);
          mount_path = unescape(sp + 1);
          /* Closed by the unmounter's exec: once it is read, rumpumount can find the unmounter by its command line. */
          int exec_seen[2] = { -1, -1 };
          if (pipe2(exec_seen, O_CLOEXEC) < 0) exec_seen[0] = exec_seen[1] = -1;
          pid_t u = mount_path ? fork() : -1;
          if (u == 0) {
            char pid[24];
            snprintf(pid, sizeof pid, "%d", (int)server);
            int null = open("/dev/null", O_RDWR);
            dup2(unmount_pipe[0], 0);
            if (null >= 0) { dup2(null, 1); dup2(null, 2); }
            setsid();
            const char *script = root
              ? UNMOUNTER_MARK " read x || exit; umount -i \"$0\" || umount -i -l \"$0\""
              : UNMOUNTER_MARK " read x || exit; fusermount3 -u \"$0\" || fusermount3 -u -z \"$0\"";
            execl("/bin/sh", "/bin/sh", "-c", script, mount_path, pid, (char *)NULL);
            _exit(127);
          }
          if (exec_seen[1] >= 0) close(exec_seen[1]);
          if (exec_seen[0] >= 0) {
            char c;
            while (u > 0 && read(exec_seen[0], &c, 1) < 0 && errno == EINTR) {}
            close(exec_seen[0]);
          }
          close(unmount_pipe[0]);
        }
      }
      line = nl + 1;
    }
    have = strlen(line);
    memmove(buf, line, have + 1);
    if (have >= sizeof buf - 1) have = 0; /* a line too long to be ours */
  }
  close(ready_pipe[0]);

  if (!ready) {
    if (timed_out) kill(server, SIGKILL);
    int st = wait_server(EXIT_WAIT_MS);
    say_status(timed_out ? -1 : st);
    /* A server that died after attaching leaves its mount dead: detach it. */
    if (mount_id >= 0 && mount_escaped && still_mounted(mount_id, mount_escaped)) {
      char *lazy[] = { root ? "umount" : "fusermount3", root ? "-l" : "-uz", mount_path, NULL };
      run_quietly(lazy);
    }
    /* Its own status: 0 for --help or --version, 1 for usage, 32 for a failed mount. */
    if (!timed_out && st != -1 && WIFEXITED(st)) return WEXITSTATUS(st);
    return EXIT_MOUNT_FAILURE;
  }
  /* Ready: the mount point answers. */
  struct stat st;
  if (mount_path && stat(mount_path, &st) < 0) {
    fprintf(stderr, "%s: mounted, but %s does not answer: %s\n", prog, mount_path, strerror(errno));
    kill(server, SIGTERM);
    wait_server(EXIT_WAIT_MS);
    return EXIT_MOUNT_FAILURE;
  }
  if (!foreground) return 0;
  for (;;) {
    int s;
    pid_t r = waitpid(server, &s, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 1;
    /* As a shell reports it; re-raising would make us dump core too. */
    return WIFSIGNALED(s) ? 128 + WTERMSIG(s) : WEXITSTATUS(s);
  }
}
