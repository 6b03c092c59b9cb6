/*
 * `pinheap record -- CMD ARGS`: runs a program under the recording library
 * (record/recorder.c) in front of libpinheap-preload.so, and says what the
 * trace holds when it ends.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

#define RECORD_DEFAULT_FILE "pinheap.trace"

void record_usage(FILE *out) {
  fprintf(out,
          "usage: pinheap record [-o FILE] [--children] [--no-heap] -- CMD [ARGS...]\n"
          "\n"
          "Runs CMD with libpinheap-record.so preloaded in front of\n"
          "libpinheap-preload.so, so that its allocations are served by a pinheap\n"
          "heap in the mode the environment asks (PINHEAP_MODE, PINHEAP_SIZE, ...),\n"
          "and writes every malloc, calloc, realloc, aligned allocation and free it\n"
          "makes, from every thread, to a trace (docs/trace.md). A process CMD forks\n"
          "or runs records nothing, unless --children: then each writes its own\n"
          "trace to FILE.PID. When CMD ends, what the trace holds is printed on\n"
          "standard error.\n"
          "\n"
          "options:\n"
          "  -o FILE      the trace (default %s)\n"
          "  --children   every other process of CMD writes FILE.PID\n"
          "  --no-heap    the C library's malloc serves the calls, not pinheap\n"
          "  -h, --help   print this text\n"
          "\n"
          "Exit status: CMD's (128 + the signal that ended it), or 2 when it could\n"
          "not be run.\n",
          RECORD_DEFAULT_FILE);
}

/* The library name, next to this program (a build tree) or in the
 * installed library directory beside its bin/. */
static int record_find(const char *name, char *out, size_t len) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  const char *dir = dirname(exe);
  const char *places[] = {"", "/../" PINHEAP_TOOL_LIBDIR};
  for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
    snprintf(out, len, "%s%s/%s", dir, places[i], name);
    if (access(out, R_OK) == 0) return 0;
  }
  return -1;
}

static void record_summary(const char *path) {
  trace_reader r;
  size_t heap;
  char h[32];
  if (cli_scan_trace("record", path, &r, &heap) != 0) return;
  fprintf(stderr, "pinheap record: %s: %llu events, threads %llu, peak live %s (%llu bytes)%s\n", path,
          (unsigned long long)r.events, (unsigned long long)r.threads, cli_human(h, sizeof h, r.peak_live_bytes),
          (unsigned long long)r.peak_live_bytes, r.ended ? "" : "; no end record: the program did not exit normally");
}

int record_main(int argc, char **argv) {
  const char *file = RECORD_DEFAULT_FILE;
  bool children = false, no_heap = false;
  int i = 1;
  for (; i < argc; i++) {
    const char *v = NULL;
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (cli_option(argc, argv, &i, "-o", &v)) {
      if (!v || !*v) return cli_usage_error("record", record_usage, "-o needs a file");
      file = v;
    } else if (strcmp(argv[i], "--children") == 0) {
      children = true;
    } else if (strcmp(argv[i], "--no-heap") == 0) {
      no_heap = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      record_usage(stdout);
      return 0;
    } else if (argv[i][0] == '-') {
      return cli_usage_error("record", record_usage, "unknown option '%s'", argv[i]);
    } else {
      break;
    }
  }
  if (i >= argc) return cli_usage_error("record", record_usage, "no command given");
  char recorder[PATH_MAX], preload[PATH_MAX];
  if (record_find("libpinheap-record.so", recorder, sizeof recorder) != 0 ||
      (!no_heap && record_find("libpinheap-preload.so", preload, sizeof preload) != 0)) {
    fprintf(stderr, "pinheap record: libpinheap-record.so or libpinheap-preload.so is not beside this program "
                    "nor in ../" PINHEAP_TOOL_LIBDIR "\n");
    return 2;
  }
  /* The trace's absolute path: the program may change directory. */
  char path[2 * PATH_MAX + 2];
  if (file[0] == '/') {
    snprintf(path, sizeof path, "%s", file);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
      fprintf(stderr, "pinheap record: getcwd: %s\n", strerror(errno));
      return 2;
    }
    snprintf(path, sizeof path, "%s/%s", cwd, file);
  }
  if (strlen(path) + 24 >= PATH_MAX) {
    fprintf(stderr, "pinheap record: the path of the trace is too long: %s\n", path);
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "pinheap record: fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    char preloads[3 * PATH_MAX + 2], me[32];
    const char *old = getenv("LD_PRELOAD");
    snprintf(preloads, sizeof preloads, "%s%s%s%s%s", recorder, no_heap ? "" : " ", no_heap ? "" : preload,
             old && *old ? " " : "", old ? old : "");
    snprintf(me, sizeof me, "%ld", (long)getpid());
    if (setenv("LD_PRELOAD", preloads, 1) || setenv("PINHEAP_RECORD_FILE", path, 1) ||
        setenv("PINHEAP_RECORD_PID", me, 1) || setenv("PINHEAP_RECORD_CHILDREN", children ? "1" : "0", 1)) {
      fprintf(stderr, "pinheap record: setenv: %s\n", strerror(errno));
      _exit(127);
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "pinheap record: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "pinheap record: waitpid: %s\n", strerror(errno));
      return 2;
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && access(path, F_OK) != 0) return 2;
  record_summary(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
